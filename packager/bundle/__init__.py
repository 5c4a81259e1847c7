"""bundle: see DESIGN.md §2."""
