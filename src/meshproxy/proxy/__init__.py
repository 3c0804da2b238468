"""The data plane: authenticated forward proxies with egress rotation, metering and quotas.

Pure request/response logic lives in small sans-I/O modules (`errors`, `target`,
`request`, `response`, `options`, `egress`, `policy`, `directory`); sockets live at the
edge (`connection` — one client, `exchange` — one request through an upstream,
`upstream`, `splice`, `tunnel`, `node`).
"""

from meshproxy.proxy.node import ProxyNode

__all__ = ["ProxyNode"]
