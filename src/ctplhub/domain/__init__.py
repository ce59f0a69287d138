"""domain layer; see STYLE.md."""
