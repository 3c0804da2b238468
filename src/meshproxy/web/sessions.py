"""Signed session cookies: who is logged in, the CSRF token, and a one-shot flash message.

The cookie holds no secret, only signed state (itsdangerous, keyed by the data directory's
secret). It also carries a fingerprint of the account's password hash and the account's
session epoch (a number in the store), and is honoured only while both still match: logging
out raises the epoch, so every copy of every session of that account ends with it ("log out
everywhere"); changing a password ends every other session of that account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from meshproxy.domain.accounts import AccountRecord

COOKIE_NAME = "meshproxy_session"
MAX_AGE_SECONDS = 12 * 3600  # since the session was last changed (login, flash, ...)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Session:
    csrf: str = field(default_factory=new_csrf_token)
    username: str | None = None
    key: str | None = None  # fingerprint of the password hash the login verified
    epoch: int | None = None  # the account's session epoch at login
    flash: str | None = None

    def with_flash(self, message: str | None) -> Session:
        return replace(self, flash=message)


class SessionCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._serializer = URLSafeTimedSerializer(secret, salt="meshproxy.dashboard.session")

    def dumps(self, session: Session) -> str:
        data: dict[str, Any] = {"c": session.csrf}
        if session.username is not None:
            data.update(u=session.username, k=session.key, e=session.epoch)
        if session.flash:
            data["f"] = session.flash
        return str(self._serializer.dumps(data))

    def loads(self, cookie: str | None) -> Session | None:
        """The session in a cookie; None when absent, tampered with or expired."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        username, key, epoch, flash = data.get("u"), data.get("k"), data.get("e"), data.get("f")
        return Session(
            csrf=data["c"],
            username=username if isinstance(username, str) else None,
            key=key if isinstance(key, str) else None,
            epoch=epoch if type(epoch) is int else None,
            flash=flash if isinstance(flash, str) else None,
        )

    def logged_in(self, account: AccountRecord) -> Session:
        """A new session of `account` (also after its own password change). A fresh CSRF
        token: a token planted before login is worth nothing after."""
        return Session(
            username=account.username,
            key=self._password_key(account.password_hash),
            epoch=account.session_epoch,
        )

    def still_valid(self, session: Session, account: AccountRecord) -> bool:
        """Is this session a login of `account` as it is now: the same password hash
        (compared in constant time) and the same session epoch (no logout since)?"""
        key = session.key
        return (
            session.username == account.username
            and session.epoch == account.session_epoch
            and key is not None
            and _same(key, self._password_key(account.password_hash))
        )

    def _password_key(self, password_hash: str | None) -> str:
        digest = hmac.new(self._secret, (password_hash or "").encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and _same(session.csrf, token)


def _same(a: str, b: str) -> bool:
    """Constant-time equality of any two strings (compare_digest refuses non-ASCII str)."""
    encoding = ("utf-8", "surrogatepass")
    return hmac.compare_digest(a.encode(*encoding), b.encode(*encoding))
