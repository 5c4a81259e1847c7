"""source: see DESIGN.md §2."""
