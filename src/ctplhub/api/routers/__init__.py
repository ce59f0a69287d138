"""api/routers layer; see STYLE.md."""
