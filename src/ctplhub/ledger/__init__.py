"""ledger layer; see STYLE.md."""
