"""HTTP Basic authentication of API callers, with the client-IP ban shared through the
store (the proxies count failures into the same ban)."""

from __future__ import annotations

from meshproxy.control.credentials import BANNED, CredentialChecker, LoginRefused
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.basic_auth import parse_basic
from meshproxy.store import Store

REALM = "meshproxy API"


class Unauthorized(Exception):
    """401; `retry_after` is set while the client IP is banned."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Authenticator:
    """The Basic header on top of the shared login rule (`CredentialChecker`).
    Synchronous (it hashes and queries): run it in a worker thread."""

    def __init__(self, store: Store, policy: BanPolicy) -> None:
        self._store = store
        self._checker = CredentialChecker(store, policy)

    def authenticate(self, authorization: str | None, client_ip: str, now: float) -> AccountRecord:
        if not authorization:
            # Not a failed attempt (clients often try without credentials first), but a
            # banned address still learns it is banned.
            until = self._store.bans.until(client_ip, now)
            if until is not None:
                raise Unauthorized(BANNED, retry_after=until - now)
            raise Unauthorized("Authentication credentials were not provided.")
        username, password = parse_basic(authorization) or ("", "")
        try:
            return self._checker.check(username, password, client_ip, now)
        except LoginRefused as refused:
            until = refused.banned_until
            raise Unauthorized(
                refused.message, retry_after=None if until is None else until - now
            ) from None
