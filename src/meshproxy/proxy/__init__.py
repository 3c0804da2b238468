"""The data plane: authenticated forward proxies with egress rotation, metering and quotas.

Two subpackages, one rule between them:

- `core/` — the sans-I/O rules: parsing and preparing requests (`request`, `target`,
  `options`, `username`), response framing (`response`), the headers both share
  (`headers`), the proxy's own answers (`errors`), egress choice (`egress`, `sticky`,
  `routing`) and upstream health (`health`), the client side of upstream proxy
  handshakes (`handshake`), the SOCKS5 handshake (`socks5`), destination policy
  (`policy`), the connection machine (`machine`) and the account directory (`directory`,
  `readthrough`, `verifications`). It imports no asyncio and no socket, and is tested
  without either.
- `server/` — the asyncio side that drives it: one client connection (`connection`,
  `socks` for SOCKS5), one request through an upstream (`exchange`), the upstream pool
  (`upstream`), the connect through any egress (`dial`: an address, a prefix, an upstream
  proxy) and its probes (`probe`), CONNECT relays (`splice`, `tunnel`), name resolution
  (`resolver`), the directory's feed from the store (`sync`, `notices`), what connections
  share (`services`), and the node that owns the listeners (`node`) and its figures
  (`stats`). docs/egress.md describes the egress kinds.

`server` imports `core`; `core` never imports `server`.
"""

from meshproxy.proxy.server.node import ProxyNode

__all__ = ["ProxyNode"]
