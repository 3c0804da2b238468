"""Options in the proxy username, the industry convention (design.md, "Beyond the
ProxyMesh API"): `USER-country-us-session-abc123-sesstime-30-ip-203.0.113.7`.

Each option is `-key-value` after the account's username, in any order; Oxylabs'
spellings are aliases (`cc`, `sessid`). A username that is itself an account wins over
parsing; otherwise the longest account name the directory knows that the name starts
with is the account, and the rest must parse: an unknown key or a bad value is a 407
naming it (reported only once the password has verified for the account, so the answer
never tells who exists). Clients send the same credentials on every request, so each
parse is remembered by the header's fingerprint, like verified credentials: a repeat
costs one hash and one dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import replace
from typing import Final, NamedTuple, Protocol

from meshproxy.domain.addresses import normalise_ip
from meshproxy.domain.steering import SESSION_ID, is_country_code, session_minutes
from meshproxy.proxy.core import errors
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.options import NO_OPTIONS, RequestOptions, overlay
from meshproxy.proxy.core.request import PreparedRequest

MAX_REMEMBERED: Final = 100_000  # parsed usernames kept (oldest dropped first)


class Account(Protocol):
    """An account of the directory (directory.AccountState) as options see it."""

    @property
    def id(self) -> int: ...

KEYS: Final = {
    "country": "country",
    "cc": "country",
    "session": "session",
    "sessid": "session",
    "sesstime": "sesstime",
    "ip": "ip",
}


class Login(NamedTuple):
    """What a username with options means."""

    whole: str  # the username as sent
    account: str  # the account's username
    options: RequestOptions
    error: str | None = None  # why the options are refused (the 407's reason)


def parse_options(tokens: list[str]) -> RequestOptions | str:
    """`tokens`: the username after the account's name, split at '-' (key, value, ...)."""
    if len(tokens) % 2:
        return f"username option {tokens[-1]!r} has no value"
    country = session = ip = None
    minutes = None
    seen: set[str] = set()
    for index in range(0, len(tokens), 2):
        key, value = tokens[index], tokens[index + 1]
        name = KEYS.get(key)
        if name is None:
            return f"unknown username option {key!r}"
        if name in seen:
            return f"username option {key!r} given twice"
        seen.add(name)
        if name == "country":
            if not is_country_code(value):
                return f"username option {key!r} must be a two-letter country code"
            country = value.upper()
        elif name == "session":
            if SESSION_ID.fullmatch(value) is None:
                return f"username option {key!r} must be 1-64 of A-Z a-z 0-9 . _ ~"
            session = value
        elif name == "sesstime":
            minutes = session_minutes(value)
            if minutes is None:
                return "username option 'sesstime' must be whole minutes, 1-1440"
        else:
            ip = normalise_ip(value)
            if ip is None:
                return "username option 'ip' must be an IP address"
    return RequestOptions(country=country, ip=ip, session=session, session_minutes=minutes)


def split_login(username: str, accounts: Container[str]) -> Login | None:
    """What `username` means given the account names in `accounts`; None: no options
    (it is an account itself, or starts with no account's name)."""
    if username in accounts or "-" not in username:
        return None
    parts = username.split("-")
    found: Login | None = None
    for cut in range(len(parts) - 1, 0, -1):  # the longest account name first
        account = "-".join(parts[:cut])
        if account in accounts:
            parsed = parse_options(parts[cut:])
            if isinstance(parsed, RequestOptions):
                return Login(username, account, parsed)
            found = found or Login(username, account, NO_OPTIONS, parsed)
    return found


class Logins:
    """Usernames with options, parsed once per credentials header (see the module)."""

    def __init__(
        self,
        accounts: Mapping[str, Account],
        credentials: Callable[[bytes], tuple[str, str] | None],
    ) -> None:
        self.accounts = accounts  # the directory's live `by_username`
        self._credentials = credentials  # Proxy-Authorization -> (username, password)
        self._by_header: dict[int, Login | None] = {}

    def account_name(self, username: str, header: int) -> str:
        """The account a username names (the directory's credential check of the header
        with fingerprint `header`, remembered for `found`)."""
        login = self._split(username)
        self._remember(header, login)
        return username if login is None else login.account

    def _split(self, username: str) -> Login | None:
        """`split_login`, its options already the account's (a sticky session's owner):
        a remembered request builds nothing."""
        login = split_login(username, self.accounts)
        if login is None or login.options.session is None:
            return login
        owner = self.accounts[login.account].id
        return login._replace(options=replace(login.options, session_account=owner))

    def _remember(self, header: int, login: Login | None) -> None:
        by_header = self._by_header
        if len(by_header) >= MAX_REMEMBERED:
            by_header.pop(next(iter(by_header)))
        by_header[header] = login

    def forget(self, username: str) -> list[int]:
        """A new account of this name: the remembered headers that read it as another
        account's username with options (their fingerprints, for the directory to forget
        too). A scan, only when an account with a '-' in its name appears."""
        keys = [k for k, login in self._by_header.items()
                if login is not None and login.whole == username]
        for key in keys:
            del self._by_header[key]
        return keys

    def found(self, authorization: bytes) -> Login | None:
        """The options of these credentials (None: none), remembered."""
        key = hash(authorization)
        try:
            login = self._by_header[key]
        except KeyError:
            pass
        else:
            if login is None or login.whole not in self.accounts:
                return login
        credentials = self._credentials(authorization)
        login = None if credentials is None else self._split(credentials[0])
        self._remember(key, login)
        return login


def steer(options: RequestOptions, login: Login | None) -> RequestOptions | ProxyError:
    """The options a request is served with: its headers' over its username's."""
    if login is None:
        return options
    if login.error is not None:
        return errors.auth_required(login.error)
    return overlay(options, login.options)


def steer_request(
    request: PreparedRequest | None, logins: Logins, account: int
) -> ProxyError | None:
    """Serve `account`'s authenticated request with its username's options (`steer`);
    a sticky session becomes the account's."""
    if request is None:
        return None
    options = request.options
    if request.authorization is not None:
        steered = steer(options, logins.found(request.authorization))
        if isinstance(steered, ProxyError):
            return steered
        options = steered
    if options.session is not None and options.session_account != account:
        options = replace(options, session_account=account)  # a header's session
    request.options = options
    return None
