"""The asyncio side of the proxy: protocols, listeners, the upstream pool and splice(2)."""
