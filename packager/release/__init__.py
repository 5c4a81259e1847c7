"""Releases that follow the registry: ``mpack sync`` reads which version an alias names, what the platform
serves, and converges one to the other with the deployers' plans (DESIGN.md §14)."""
