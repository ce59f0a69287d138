"""services layer; see STYLE.md."""
