"""The proxy's sans-I/O rules: pure functions and state, no asyncio, no sockets, nothing of
proxy.server (.importlinter checks). docs/architecture.md lists the modules."""
