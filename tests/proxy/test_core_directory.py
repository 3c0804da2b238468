"""The account directory's decisions, with a fake clock and hand-made views."""

from __future__ import annotations

import base64
import functools
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from meshproxy.domain.accounts import AccountRecord, AccountView
from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.limits import Limits
from meshproxy.domain.passwords import hash_password
from meshproxy.domain.units import GB
from meshproxy.proxy.core.directory import AccountDirectory, AccountState, CredentialCheck
from meshproxy.proxy.core.errors import ProxyError

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
T = NOW.timestamp()


@functools.cache
def pw_hash(password: str = "pw") -> str:
    """`password`'s hash, made at first use: by then conftest's fast_hashing holds (a hash
    made at import would be a real, slow argon2)."""
    return hash_password(password)


def record(id: int, username: str, parent: int | None = None, **kw: object) -> AccountRecord:
    base = AccountRecord(
        id=id, username=username, parent_id=parent, password_hash=pw_hash(), first_name=None,
        last_name=None, email=None, active=True, limits=Limits(), plan=None,
        billing_day=None if parent else 10, created_at=NOW,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def view(rec: AccountRecord, **kw: object) -> AccountView:
    return replace(AccountView(account=rec, proxies=("open",)), **kw)  # type: ignore[arg-type]


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def directory(
    *views: AccountView, pending: dict[int, int] | None = None, **options: Any
) -> AccountDirectory:
    d = AccountDirectory(BanPolicy(max_failures=3, window_seconds=60, ban_seconds=100), **options)
    d.load(views, NOW, pending or {})
    return d


def authenticate(d: AccountDirectory, auth: bytes | None, ip: str = "10.0.0.1",
                 now: float = T) -> AccountState | ProxyError:
    result = d.authenticate(ip, auth, now)
    if isinstance(result, CredentialCheck):
        result = d.verified(result, d.verify(result), now)
    return result


def test_credentials_are_verified_once_then_cached() -> None:
    d = directory(view(record(1, "alice")))
    first = d.authenticate("10.0.0.1", basic("alice", "pw"), T)
    assert isinstance(first, CredentialCheck)
    assert isinstance(d.verified(first, d.verify(first), T), AccountState)
    again = d.authenticate("10.0.0.1", basic("alice", "pw"), T)
    assert isinstance(again, AccountState) and again.username == "alice"


def test_a_remembered_header_misses_after_a_password_change_or_a_new_account() -> None:
    rec = record(1, "alice")
    d = directory(view(rec))
    assert isinstance(authenticate(d, basic("alice", "pw")), AccountState)
    # The raw header is remembered: no check, even from another client address.
    assert isinstance(d.authenticate("10.0.0.9", basic("alice", "pw"), T), AccountState)
    assert isinstance(d.authenticate("10.0.0.9", None, T), ProxyError)  # never per IP
    d.update({"alice"}, [view(replace(rec, password_hash=hash_password("new")))], NOW, {})
    stale = d.authenticate("10.0.0.1", basic("alice", "pw"), T)
    assert isinstance(stale, CredentialCheck)
    assert isinstance(d.verified(stale, d.verify(stale), T), ProxyError)
    assert isinstance(authenticate(d, basic("alice", "new")), AccountState)
    d.update({"alice"}, [view(record(2, "alice", password_hash=hash_password("new")))], NOW, {})
    recreated = d.authenticate("10.0.0.1", basic("alice", "new"), T)
    assert isinstance(recreated, CredentialCheck)  # another account under the same name
    assert isinstance(d.verified(recreated, d.verify(recreated), T), AccountState)
    assert d.authenticate("10.0.0.1", basic("alice", "new"), T) is d.by_username["alice"]
    d.update({"alice"}, [], NOW, {})
    assert isinstance(authenticate(d, basic("alice", "new")), ProxyError)


def test_unknown_usernames_cost_a_hash_like_wrong_passwords() -> None:
    """No timing difference tells which usernames exist: both go through argon2."""
    d = directory(view(record(1, "alice")))
    for auth in (basic("alice", "wrong"), basic("nobody", "pw")):
        check = d.authenticate("10.0.0.1", auth, T)
        assert isinstance(check, CredentialCheck)
        assert check.password_hash.startswith("$argon2id$")
        refused = d.verified(check, d.verify(check), T)
        assert isinstance(refused, ProxyError) and refused.status == 407


def test_missing_and_wrong_credentials() -> None:
    d = directory(view(record(1, "alice")))
    missing = authenticate(d, None)
    assert isinstance(missing, ProxyError) and missing.status == 407 and missing.challenge
    for auth in (basic("alice", "nope"), basic("bob", "pw"), b"Basic !!!", b"Bearer x"):
        result = authenticate(d, auth, ip=f"10.0.0.{len(auth)}")
        assert isinstance(result, ProxyError) and result.status == 407


def test_ip_and_hostname_authentication_and_credentials_win() -> None:
    d = directory(
        view(record(1, "alice")),
        view(record(2, "bob"), ips=("10.0.0.7",), hostnames=("bob.example",)),
        hostname_networks=["10.0.0.0/8"],
    )
    assert authenticate(d, None, ip="10.0.0.7") is d.by_username["bob"]
    assert isinstance(authenticate(d, None, ip="10.0.0.8"), ProxyError)
    d.set_hostname_addresses({"bob.example": ("10.0.0.8",)})
    assert authenticate(d, None, ip="10.0.0.8") is d.by_username["bob"]
    assert authenticate(d, basic("alice", "pw"), ip="10.0.0.7") is d.by_username["alice"]


def test_ban_after_failures_even_with_good_credentials_and_expiry() -> None:
    d = directory(view(record(1, "alice")))
    for i in range(3):
        assert isinstance(authenticate(d, basic("alice", "bad"), now=T + i), ProxyError)
    banned = authenticate(d, basic("alice", "pw"), now=T + 3)
    assert isinstance(banned, ProxyError) and "banned" in banned.reason
    # Each failure stamped with when it happened, then the ban this node decided then.
    assert list(d.auth_reports) == [
        ("failure", "10.0.0.1", T), ("failure", "10.0.0.1", T + 1),
        ("failure", "10.0.0.1", T + 2), ("ban", "10.0.0.1", T + 2),
    ]
    assert isinstance(authenticate(d, basic("alice", "pw"), now=T + 103), AccountState)


def test_success_resets_the_failure_count() -> None:
    d = directory(view(record(1, "alice")))
    for round_ in range(3):
        for i in range(2):
            authenticate(d, basic("alice", "bad"), now=T + round_ * 10 + i)
        assert isinstance(authenticate(d, basic("alice", "pw"), now=T + round_ * 10 + 5),
                          AccountState)
    assert ("success", "10.0.0.1", T + 25) in d.auth_reports


def test_bans_from_the_store() -> None:
    d = directory(view(record(1, "alice")))
    d.apply_bans({"10.0.0.9"}, {"10.0.0.9": T + 50})
    assert isinstance(authenticate(d, basic("alice", "pw"), ip="10.0.0.9"), ProxyError)
    d.apply_bans({"10.0.0.9"}, {})
    assert isinstance(authenticate(d, basic("alice", "pw"), ip="10.0.0.9"), AccountState)


def test_refusals() -> None:
    parent = record(1, "parent", limits=Limits(monthly_gb=2))
    d = directory(view(parent), view(record(2, "sub", parent=1), proxies=("open",)))
    sub = d.by_username["sub"]
    assert d.refusal(sub, "open") is None
    not_here = d.refusal(sub, "private")
    assert not_here is not None and not_here.status == 402
    d.update({"parent"}, [view(replace(parent, active=False))], NOW, {})
    off = d.refusal(sub, "open")
    assert off is not None and off.status == 402 and "deactivated" in off.reason
    d.update({"parent"}, [view(parent)], NOW, {})
    sub.add_usage(2 * GB)
    over = d.refusal(sub, "open")
    assert over is not None and over.status == 509 and "parent" in over.reason
    d.update({"sub"}, [], NOW, {})
    gone = d.refusal(sub, "open")
    assert gone is not None and gone.status == 407 and "sub" not in d.by_username


def test_own_quota_and_live_usage_across_reloads() -> None:
    rec = record(1, "alice", limits=Limits(total_gb=1))
    d = directory(view(rec, total_bytes=GB - 100, monthly_bytes=10), pending={1: 50})
    alice = d.by_username["alice"]
    assert alice.total_bytes == GB - 50 and d.refusal(alice, "open") is None
    alice.add_usage(50)
    assert d.refusal(alice, "open") is not None
    # A reload keeps the object (open connections hold it) and adds the unflushed bytes.
    d.update({"alice"}, [view(rec, total_bytes=GB - 100)], NOW, {1: 10})
    assert d.by_username["alice"] is alice and alice.total_bytes == GB - 90


def test_sub_usage_counts_for_the_parent() -> None:
    d = directory(view(record(1, "parent")), view(record(2, "sub", parent=1)))
    d.by_username["sub"].add_usage(1000)
    assert d.by_username["parent"].monthly_bytes == 1000


def test_ips_and_hostnames_follow_updates() -> None:
    rec = record(1, "alice")
    d = directory(
        view(rec, ips=("10.0.0.5",), hostnames=("a.example",)), hostname_networks=["10.0.0.0/8"]
    )
    d.set_hostname_addresses({"a.example": ("10.0.0.6",)})
    assert authenticate(d, None, ip="10.0.0.6") is d.by_username["alice"]
    d.update({"alice"}, [view(rec)], NOW, {})
    assert isinstance(authenticate(d, None, ip="10.0.0.5"), ProxyError)
    assert isinstance(authenticate(d, None, ip="10.0.0.6"), ProxyError)
    assert d.hostnames() == set()


def test_next_billing_reset() -> None:
    d = directory(view(record(1, "alice")))  # billing day 10; now is the 15th
    assert d.next_reset == datetime(2026, 4, 10, tzinfo=UTC).timestamp()


def test_password_change_invalidates_the_cache() -> None:
    rec = record(1, "alice")
    d = directory(view(rec))
    assert isinstance(authenticate(d, basic("alice", "pw")), AccountState)
    d.update({"alice"}, [view(replace(rec, password_hash=hash_password("new")))], NOW, {})
    assert isinstance(authenticate(d, basic("alice", "pw"), ip="10.0.0.2"), ProxyError)
    assert isinstance(authenticate(d, basic("alice", "new"), ip="10.0.0.2"), AccountState)
