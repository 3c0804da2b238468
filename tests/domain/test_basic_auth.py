"""HTTP Basic credentials mean the same to the proxies and the API (domain/basic_auth.py):
one table run against the parser, the proxy's directory and the API's authenticator.
UTF-8 only (a latin-1 header is refused, not guessed at), a non-empty username."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meshproxy.api.auth import Authenticator, Unauthorized
from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.basic_auth import parse_basic
from meshproxy.domain.passwords import hash_password
from meshproxy.proxy.core.directory import AccountDirectory, CredentialCheck
from meshproxy.store import Store


def basic(raw: bytes, scheme: bytes = b"Basic") -> bytes:
    return scheme + b" " + base64.b64encode(raw)


# header -> the credentials it carries (None: malformed, refused)
CASES: dict[str, tuple[bytes, tuple[str, str] | None]] = {
    "plain": (basic(b"alice:secret"), ("alice", "secret")),
    "scheme in any case, spaces around": (b"  bAsIc " + base64.b64encode(b"bob:pw") + b" ",
                                          ("bob", "pw")),
    "a password with colons": (basic(b"carol:a:b:c"), ("carol", "a:b:c")),
    "an empty password": (basic(b"dave:"), ("dave", "")),
    "UTF-8": (basic("zoë:pässwörd".encode()), ("zoë", "pässwörd")),
    "latin-1 is not UTF-8": (basic("zoë:pässwörd".encode("latin-1")), None),
    "an empty username": (basic(b":secret"), None),
    "no colon": (basic(b"alice"), None),
    "not base64": (b"Basic !!!not-base64", None),
    "another scheme": (basic(b"alice:secret", b"Bearer"), None),
    "no credentials after the scheme": (b"Basic ", None),
}

Face = Callable[[bytes, tuple[str, str] | None], tuple[str, str] | None]


def by_parser(header: bytes, _: tuple[str, str] | None) -> tuple[str, str] | None:
    return parse_basic(header)


def by_proxy(header: bytes, _: tuple[str, str] | None) -> tuple[str, str] | None:
    result = AccountDirectory(BanPolicy()).authenticate("127.0.0.1", header, 1000.0)
    if isinstance(result, CredentialCheck):
        return result.username, result.password
    return None


@pytest.fixture
def api_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    yield store
    store.close()


def by_api(store: Store) -> Face:
    # Every account a header of the table names, read strictly or leniently (zoë's latin-1
    # header), exists: only the reading of the header can refuse it.
    for username, password in [c for _, c in CASES.values() if c] + [("alice", "secret")]:
        if store.accounts.get(username) is None:
            store.accounts.create(username, password_hash=hash_password(password))

    def authenticate(header: bytes, carried: tuple[str, str] | None) -> tuple[str, str] | None:
        try:
            account = Authenticator(store, BanPolicy()).authenticate(
                header.decode("latin-1"), "127.0.0.1", 1000.0
            )
        except Unauthorized:
            return None
        assert carried is not None  # it authenticated with the password of the table
        return account.username, carried[1]

    return authenticate


@pytest.fixture(params=["parser", "proxy", "api"])
def face(request: pytest.FixtureRequest) -> Face:
    if request.param == "parser":
        return by_parser
    if request.param == "proxy":
        return by_proxy
    return by_api(request.getfixturevalue("api_store"))


@pytest.mark.parametrize("case", list(CASES))
def test_a_basic_header_carries_the_same_credentials_to_every_face(face: Face, case: str) -> None:
    header, carried = CASES[case]
    assert face(header, carried) == carried
