"""HTTP Basic authentication of API callers, with the client-IP ban shared through the
store (the proxies count failures into the same ban)."""

from __future__ import annotations

import base64
import binascii
import threading

from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.passwords import VerifiedCredentials, hash_password, random_password
from meshproxy.store import Store

REALM = "meshproxy API"


class Unauthorized(Exception):
    """401; `retry_after` is set while the client IP is banned."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    username, colon, password = text.partition(":")
    return (username, password) if colon else None


class Authenticator:
    """Synchronous (it hashes and queries): run it in a worker thread."""

    def __init__(self, store: Store, policy: BanPolicy) -> None:
        self._store = store
        self._policy = policy
        self._credentials = VerifiedCredentials()
        self._decoy_lock = threading.Lock()
        self._decoy: str | None = None

    def _decoy_hash(self) -> str:
        """A hash to verify against for unknown usernames, so they cost the same time."""
        with self._decoy_lock:
            if self._decoy is None:
                self._decoy = hash_password(random_password())
            return self._decoy

    def authenticate(self, authorization: str | None, client_ip: str, now: float) -> AccountRecord:
        until = self._store.ban_until(client_ip, now)
        if until is not None:
            raise Unauthorized(
                "Too many authentication failures from your address; it is banned for now.",
                retry_after=until - now,
            )
        if not authorization:
            # Not a failed attempt: clients often try without credentials first.
            raise Unauthorized("Authentication credentials were not provided.")
        credentials = parse_basic(authorization)
        account = None
        if credentials is not None:
            username, password = credentials
            account = self._store.get_account(username)
            stored = account.password_hash if account else None
            if not self._credentials.check(username, password, stored or self._decoy_hash()):
                account = None
        if account is None or not account.password_hash:
            self._store.record_auth_failure(client_ip, now, self._policy)
            raise Unauthorized("Invalid username or password.")
        self._store.record_auth_success(client_ip)
        return account
