"""cli layer; see STYLE.md."""
