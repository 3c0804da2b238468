"""Who is asking and over which scheme. The dashboard takes this from its host application
(the API node knows its trusted front proxies); alone, it trusts only the TCP peer."""

from __future__ import annotations

from typing import Protocol

from starlette.types import Scope


class ClientInfo(Protocol):
    def client_address(self, scope: Scope) -> str: ...

    def scheme(self, scope: Scope) -> str: ...


class PeerOnly:
    """No front proxy: the peer address and the connection's own scheme."""

    def client_address(self, scope: Scope) -> str:
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    def scheme(self, scope: Scope) -> str:
        return "https" if scope.get("scheme") == "https" else "http"
