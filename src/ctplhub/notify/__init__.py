"""notify layer; see STYLE.md."""
