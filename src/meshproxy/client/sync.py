"""`Client`: the API over a blocking httpx client."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, TypeVar

import httpx

from meshproxy.client.binding import Endpoints
from meshproxy.client.connection import network_error, reply_of
from meshproxy.client.protocol import Action, Exchange, Outcome, Sleep, Steps

T = TypeVar("T")


class Client(Endpoints[httpx.Client, httpx.BaseTransport]):
    """A blocking client of a ProxyMesh-compatible API, authenticated as a parent account.

    Client(base_url, username, password, *, timeout=30.0, verify=True, retry=None,
    transport=None); `verify` takes a CA file such as meshproxy's self-signed certificate.

    >>> with Client("https://127.0.0.1:8443", "pm_reseller", "secret", verify="cert.pem") as api:
    ...     api.create_sub_account("pm_alice", monthly_limit=5)
    """

    def _open(self, options: dict[str, Any], transport: httpx.BaseTransport | None) -> httpx.Client:
        return httpx.Client(**options, transport=transport)

    def run(self, exchange: Exchange[T]) -> T:
        """Carry out an exchange of `meshproxy.client.calls` (what every method does)."""
        steps = Steps(exchange, self.retry)
        outcome: Outcome = None
        while (action := steps.send(outcome)) is not None:
            outcome = self._perform(action)
        return steps.result

    def _perform(self, action: Action) -> Outcome:
        if isinstance(action, Sleep):
            time.sleep(action.seconds)
            return None
        try:
            response = self._http.request(
                action.method, action.path, params=action.query, data=action.form
            )
        except httpx.TransportError as error:
            return network_error(error)
        return reply_of(response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
