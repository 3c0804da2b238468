"""Checking a username and password against the store, under the shared client-IP ban.

The rule every face applies to a login (the dashboard's form; the API's Basic header could
use it too): a banned address is refused even with correct credentials; a wrong password,
an unknown username or an account without a password counts one failure toward the ban;
a success resets the count. Synchronous (it hashes and queries): run it in a worker thread.
"""

from __future__ import annotations

from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.passwords import VerifiedCredentials, decoy_hash
from meshproxy.store import Store

BANNED = "Too many authentication failures from your address; it is banned for now."
BAD_CREDENTIALS = "Invalid username or password."


class LoginRefused(Exception):
    """The credentials are not accepted; `banned_until` (epoch seconds) while banned."""

    def __init__(self, message: str, banned_until: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.banned_until = banned_until


class CredentialChecker:
    def __init__(self, store: Store, policy: BanPolicy) -> None:
        self._store = store
        self._policy = policy
        self._verified = VerifiedCredentials()

    def check(self, username: str, password: str, client_ip: str, now: float) -> AccountRecord:
        until = self._store.bans.until(client_ip, now)
        if until is not None:
            raise LoginRefused(BANNED, banned_until=until)
        account = self._store.accounts.get(username) if username else None
        stored = account.password_hash if account is not None else None
        verified = self._verified.check(username, password, stored or decoy_hash())
        # The process's ban book, when proxies run here too (store.bans.local): the
        # failures and successes of both faces count there in the order they happen.
        book = self._store.bans.local
        if account is None or not stored or not verified:
            until = self._store.bans.record_failure(client_ip, now, self._policy)
            local = None if book is None else book.record_failure(client_ip, now)
            if until is None and local is not None:
                self._store.bans.record(client_ip, local)  # for every face and node
                until = local
            if until is not None:
                raise LoginRefused(BANNED, banned_until=until)
            raise LoginRefused(BAD_CREDENTIALS)
        if book is not None:
            book.record_success(client_ip)
        self._store.bans.record_success(client_ip, now)
        return account

    def verify(self, account: AccountRecord, password: str) -> bool:
        """Is `password` the account's current one (for a password change; no ban count)."""
        return self._verified.check(account.username, password, account.password_hash)
