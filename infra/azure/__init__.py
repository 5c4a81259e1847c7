"""Deploying azure bundles to Azure Functions: the platform's state read through ARM and Blob
Storage, a typed plan, one executor."""
