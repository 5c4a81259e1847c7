"""The local Azure Functions host: an azure bundle run the way the Functions host runs it (its own
worker process, host.json routing, auth keys, instance memory and timeouts), measured like the
local Lambda platform."""
