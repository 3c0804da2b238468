"""The proxy's sans-I/O rules: pure functions and state, no asyncio, no sockets."""
