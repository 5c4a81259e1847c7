"""local: see DESIGN.md §2."""
