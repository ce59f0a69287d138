"""api layer; see STYLE.md."""
