"""The data plane: authenticated forward proxies with egress rotation, metering and quotas.

Pure request/response logic lives in small sans-I/O modules (`errors`, `target`,
`request`, `response`, `options`, `egress`, `policy`, `directory`); sockets live at the
edge (`connection`, `upstream`, `tunnel`, `node`).
"""

from meshproxy.proxy.node import ProxyNode

__all__ = ["ProxyNode"]
