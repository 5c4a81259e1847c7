"""check: see DESIGN.md §2."""
