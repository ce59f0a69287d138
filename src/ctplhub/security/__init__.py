"""security layer; see STYLE.md."""
