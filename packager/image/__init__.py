"""image: see DESIGN.md §2."""
