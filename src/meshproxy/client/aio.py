"""`AsyncClient`: the API over an asyncio httpx client."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, TypeVar

import httpx

from meshproxy.client.binding import Endpoints
from meshproxy.client.connection import network_error, reply_of
from meshproxy.client.protocol import Action, Exchange, Outcome, Sleep, Steps

T = TypeVar("T")


class AsyncClient(Endpoints[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """The same API and constructor as `Client`, every method a coroutine.

    >>> async with AsyncClient("https://127.0.0.1:8443", "pm_reseller", "secret") as api:
    ...     await api.get_sub_account("pm_alice")
    """

    def _open(
        self, options: dict[str, Any], transport: httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options, transport=transport)

    async def run(self, exchange: Exchange[T]) -> T:
        """Carry out an exchange of `meshproxy.client.calls` (what every method does)."""
        steps = Steps(exchange, self.retry)
        outcome: Outcome = None
        while (action := steps.send(outcome)) is not None:
            outcome = await self._perform(action)
        return steps.result

    async def _perform(self, action: Action) -> Outcome:
        if isinstance(action, Sleep):
            await asyncio.sleep(action.seconds)
            return None
        try:
            response = await self._http.request(
                action.method, action.path, params=action.query, data=action.form
            )
        except httpx.TransportError as error:
            return network_error(error)
        return reply_of(response)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
