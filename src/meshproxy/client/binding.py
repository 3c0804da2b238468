"""Endpoints as client methods: each function of `calls` becomes a method of the same
signature that runs its exchange through the client, returning the value (on `Client`) or a
coroutine (on `AsyncClient`).

One descriptor serves both clients, so no signature is written twice; the constructor is
shared too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from meshproxy.client import calls
from meshproxy.client.connection import DEFAULT_TIMEOUT, Verify, httpx_options
from meshproxy.client.protocol import Exchange, RetryPolicy

P = ParamSpec("P")
T = TypeVar("T")
H = TypeVar("H")  # the httpx client
TR = TypeVar("TR")  # its transport


class SyncRunner(Protocol):
    def run(self, exchange: Exchange[T]) -> T: ...


class AsyncRunner(Protocol):
    async def run(self, exchange: Exchange[T]) -> T: ...


class Endpoint(Generic[P, T]):
    def __init__(self, build: Callable[P, Exchange[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Endpoint[P, T]: ...
    @overload
    def __get__(self, client: SyncRunner, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, client: AsyncRunner, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        build = self.build
        if inspect.iscoroutinefunction(client.run):

            @wraps(build)
            async def call_async(*args: P.args, **kwargs: P.kwargs) -> T:
                result: T = await client.run(build(*args, **kwargs))
                return result

            return call_async

        @wraps(build)
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            result: T = client.run(build(*args, **kwargs))
            return result

        return call


class Endpoints(Generic[H, TR]):
    """The API, one method per endpoint; `Client` and `AsyncClient` say how to run them
    (over an httpx client of type H with a transport of type TR)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        verify: Verify = True,
        retry: RetryPolicy | None = None,
        transport: TR | None = None,
    ) -> None:
        options = httpx_options(base_url, username, password, timeout=timeout, verify=verify)
        self._http: H = self._open(options, transport)
        self.retry = retry or RetryPolicy()

    def _open(self, options: dict[str, Any], transport: TR | None) -> H:
        raise NotImplementedError

    request = Endpoint(calls.request)
    create_sub_account = Endpoint(calls.create_sub_account)
    edit_sub_account = Endpoint(calls.edit_sub_account)
    get_sub_account = Endpoint(calls.get_sub_account)
    deactivate = Endpoint(calls.deactivate)
    activate = Endpoint(calls.activate)
    delete_sub_account = Endpoint(calls.delete_sub_account)
    list_sub_accounts = Endpoint(calls.list_sub_accounts)
    all_sub_accounts = Endpoint(calls.all_sub_accounts)
    account_stats = Endpoint(calls.account_stats)
    add_ip = Endpoint(calls.add_ip)
    delete_ip = Endpoint(calls.delete_ip)
    list_ips = Endpoint(calls.list_ips)
    add_hostname = Endpoint(calls.add_hostname)
    delete_hostname = Endpoint(calls.delete_hostname)
    list_hostnames = Endpoint(calls.list_hostnames)
    proxies = Endpoint(calls.proxies)
    add_proxy = Endpoint(calls.add_proxy)
    delete_proxy = Endpoint(calls.delete_proxy)
    geoips = Endpoint(calls.geoips)
