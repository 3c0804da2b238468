"""Password hashing (argon2id) and a cache of verified credentials.

Hashing is deliberately slow; the cache keeps bursts of API calls and every proxy request
from paying for it more than once per (username, password, hash) triple.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

# Default cap on a proxy node's argon2 checks queued or running (`[proxy]
# max_verifications_in_flight`): a new client waits behind at most 8 checks, a flood holds
# at most 8 x 64 MiB of argon2 memory, and a burst of new clients still gets 8 at once.
MAX_VERIFICATIONS_IN_FLIGHT = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def decoy_hash() -> str:
    """A hash of a random password, to verify unknown usernames against: a failed login
    then costs the same time whether or not the username exists (no enumeration). Made
    once (two first callers at once may each make one: any decoy serves, none is known)."""
    return hash_password(random_password())


def random_password(length: int = 20) -> str:
    return secrets.token_urlsafe(length)[:length]


class VerifiedCredentials:
    """Remembers digests of credentials that verified against a given hash.

    Keyed by the stored hash as well, so a password change invalidates old entries
    without any explicit eviction. Stores only a keyed digest, never the password.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._key = secrets.token_bytes(32)
        self._known: dict[bytes, None] = {}
        self._max_entries = max_entries

    def _digest(self, username: str, password: str, password_hash: str) -> bytes:
        message = "\x00".join((username, password, password_hash)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def known(self, username: str, password: str, password_hash: str | None) -> bool:
        """True if these credentials verified before (cheap: no hashing)."""
        if not password_hash:
            return False
        return self._digest(username, password, password_hash) in self._known

    def check(self, username: str, password: str, password_hash: str | None) -> bool:
        if not password_hash:
            return False
        digest = self._digest(username, password, password_hash)
        if digest in self._known:
            return True
        if not verify_password(password_hash, password):
            return False
        if len(self._known) >= self._max_entries:
            self._known.pop(next(iter(self._known)))
        self._known[digest] = None
        return True
