"""The asyncio side of the proxy: the node and its listeners, client connections (HTTP,
SOCKS5, TLS), exchanges, the upstream pool, dialing every kind of egress, CONNECT relays,
the directory's feed from the store and the node's stats. docs/architecture.md lists the
modules."""
