"""convert: see DESIGN.md §2."""
