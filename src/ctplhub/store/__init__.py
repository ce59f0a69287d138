"""store layer; see STYLE.md."""
