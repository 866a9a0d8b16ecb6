"""The sidecar's I/O edge: aiohttp servers, the upstream client, file watching."""
