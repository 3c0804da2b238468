"""The directory's authentication path: what it keeps of credentials, and what it spends."""

from __future__ import annotations

import base64
import gc
import types
from dataclasses import replace

from meshproxy.domain.accounts import AccountView
from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.passwords import VerifiedCredentials, hash_password
from meshproxy.proxy.core.directory import AccountDirectory, AccountState, CredentialCheck
from meshproxy.proxy.core.errors import ProxyError, render

from .test_core_directory import NOW, T, authenticate, basic, directory, pw_hash, record, view

PASSWORD = "Correct-Horse-7f3a9c"


def reachable_texts(root: object) -> list[bytes | str]:
    """Every str and bytes object reachable from `root` (what a memory dump of it holds)."""
    seen: set[int] = set()
    stack, texts = [root], []
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, str | bytes):
            texts.append(item)
        elif not isinstance(item, type | types.ModuleType | types.FunctionType):
            # Classes, modules and functions (their globals) lead to the whole module
            # graph, this test's constants included: the directory's own state is the rest.
            stack.extend(gc.get_referents(item))
    return texts


def test_the_directory_keeps_no_credentials_it_verified() -> None:
    """Remembered headers are keyed fingerprints: neither the password nor the Basic token
    is reachable from the directory once requests have been answered."""
    d = directory(view(record(1, "alice", password_hash=pw_hash(PASSWORD))))
    header = basic("alice", PASSWORD)
    for ip in ("10.0.0.1", "10.0.0.2"):
        assert authenticate(d, header, ip=ip) is d.by_username["alice"]
    # Another spelling of the same credentials: known to the verified-credentials cache
    # (no argon2) and remembered under its own fingerprint.
    lower = b"basic " + header.split(b" ", 1)[1]
    assert d.authenticate("10.0.0.3", lower, T) is d.by_username["alice"]
    token = header.split(b" ", 1)[1]
    for text in reachable_texts(d):
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        assert PASSWORD.encode() not in raw
        assert token not in raw and base64.b64decode(token) not in raw


def test_a_remembered_fingerprint_answers_without_a_check_until_the_password_changes() -> None:
    rec = record(1, "alice", password_hash=pw_hash(PASSWORD))
    d = directory(view(rec))
    first = d.authenticate("10.0.0.1", basic("alice", PASSWORD), T)
    assert isinstance(first, CredentialCheck) and isinstance(first.authorization_key, int)
    assert d.verified(first, d.verify(first), T) is d.by_username["alice"]
    assert d.authenticate("10.0.0.9", basic("alice", PASSWORD), T) is d.by_username["alice"]
    # A different header never hits another's fingerprint.
    assert isinstance(d.authenticate("10.0.0.9", basic("alice", PASSWORD + "x"), T),
                      CredentialCheck)
    d.update({"alice"}, [view(replace(rec, password_hash=hash_password("new")))], NOW, {})
    assert isinstance(d.authenticate("10.0.0.1", basic("alice", PASSWORD), T), CredentialCheck)
    d.update({"alice"}, [], NOW, {})
    assert not isinstance(authenticate(d, basic("alice", PASSWORD)), AccountState)


class CountingCredentials(VerifiedCredentials):
    """The real verifier, counting the argon2 checks it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def check(self, username: str, password: str, password_hash: str | None) -> bool:
        self.checks += 1
        return super().check(username, password, password_hash)


def capped(limit: int, *views: AccountView) -> tuple[AccountDirectory, CountingCredentials]:
    credentials = CountingCredentials()
    d = AccountDirectory(BanPolicy(max_failures=3, window_seconds=60, ban_seconds=100),
                         credentials, max_verifying=limit)
    d.load(views, NOW, {})
    return d, credentials


def assert_busy(result: object) -> None:
    """503 with Retry-After, and nothing that tells the client its credentials are wrong."""
    assert isinstance(result, ProxyError)
    assert result.status == 503 and result.retry_after == 1 and not result.challenge
    assert not result.close  # the retry may use the same connection
    answer = render(result, realm="meshproxy", close=False)
    assert b"\r\nRetry-After: 1\r\n" in answer and b"Proxy-Authenticate" not in answer
    assert b"invalid" not in answer and b"credentials being verified" in answer


def test_a_flood_of_new_credentials_is_refused_beyond_the_cap_without_checking() -> None:
    d, credentials = capped(2, view(record(1, "alice", password_hash=pw_hash(PASSWORD))),
                            view(record(2, "bob", password_hash=pw_hash(PASSWORD))))
    good = basic("alice", PASSWORD)
    assert authenticate(d, good) is d.by_username["alice"]  # remembered from here on
    before = credentials.checks
    # Two wrong passwords from two IPs take both places...
    held = [d.authenticate(f"10.1.0.{i}", basic("alice", f"guess{i}"), T) for i in (1, 2)]
    assert all(isinstance(c, CredentialCheck) for c in held)
    # ... so every further new header, right or wrong, known user or not, is refused at
    # once, counted as no failure (never banned for it), and costs no argon2.
    for i in range(10):
        assert_busy(d.authenticate("10.1.0.9", basic("alice", f"more{i}"), T + i))
    assert_busy(d.authenticate("10.1.0.8", basic("nobody", "x"), T))
    assert_busy(d.authenticate("10.1.0.7", basic("bob", PASSWORD), T))  # new, and right
    assert d.auth_failures == 0 and not d.bans.is_banned("10.1.0.9", T + 10)
    assert d.verifications_refused == 12 and len(d.verifications) == 2  # for metrics
    # Remembered credentials are never affected, from any address.
    for ip in ("10.0.0.1", "10.1.0.9", "10.2.0.1"):
        assert d.authenticate(ip, good, T) is d.by_username["alice"]
    # Credentials verified before under another spelling need no argon2 either.
    lower = b"basic " + good.split(b" ", 1)[1]
    assert d.authenticate("10.2.0.2", lower, T) is d.by_username["alice"]
    assert credentials.checks == before
    # One check finishes: its place is free, and the new client gets in.
    first = held[0]
    assert isinstance(first, CredentialCheck)
    assert isinstance(d.verified(first, d.verify(first), T), ProxyError)  # 407 as before
    assert authenticate(d, basic("bob", PASSWORD), ip="10.1.0.7") is d.by_username["bob"]
    assert credentials.checks == before + 2


def test_the_same_new_header_shares_one_check_and_one_place() -> None:
    """A client opening many connections with new credentials costs one argon2 check."""
    d, credentials = capped(1, view(record(1, "alice", password_hash=pw_hash(PASSWORD))))
    header = basic("alice", PASSWORD)
    checks = [d.authenticate(f"10.0.0.{i}", header, T) for i in range(1, 9)]
    assert all(isinstance(c, CredentialCheck) for c in checks)
    assert_busy(d.authenticate("10.0.0.20", basic("alice", "other"), T))
    answers = [d.verified(c, d.verify(c), T) for c in checks if isinstance(c, CredentialCheck)]
    assert answers == [d.by_username["alice"]] * 8
    assert credentials.checks == 1
    # Wrong ones share too, and each request still counts as a failure for its IP.
    wrong = [d.authenticate("10.3.0.1", basic("alice", "nope"), T) for _ in range(3)]
    refused = [d.verified(c, d.verify(c), T) for c in wrong if isinstance(c, CredentialCheck)]
    assert len(refused) == 3 and all(isinstance(r, ProxyError) and r.status == 407
                                     for r in refused)
    assert credentials.checks == 2 and d.bans.is_banned("10.3.0.1", T)


def test_a_check_taken_before_a_password_change_is_not_shared_after_it() -> None:
    rec = record(1, "alice", password_hash=pw_hash(PASSWORD))
    d, credentials = capped(4, view(rec))
    header = basic("alice", PASSWORD)
    old = d.authenticate("10.0.0.1", header, T)
    d.update({"alice"}, [view(replace(rec, password_hash=hash_password("new")))], NOW, {})
    new = d.authenticate("10.0.0.2", header, T)
    assert isinstance(old, CredentialCheck) and isinstance(new, CredentialCheck)
    assert old.shared is not new.shared
    assert isinstance(d.verified(old, d.verify(old), T), ProxyError)  # hash changed since
    assert isinstance(d.verified(new, d.verify(new), T), ProxyError)  # wrong for the new hash
    assert credentials.checks == 2
