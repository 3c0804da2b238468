"""The directory's authentication path: what it keeps of credentials, and what it spends."""

from __future__ import annotations

import base64
import gc
from dataclasses import replace

from meshproxy.domain.passwords import hash_password
from meshproxy.proxy.directory import AccountState, CredentialCheck

from .test_core_directory import NOW, T, authenticate, basic, directory, record, view

PASSWORD = "Correct-Horse-7f3a9c"
HASH = hash_password(PASSWORD)


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
        elif not isinstance(item, type):  # classes lead to the whole module graph
            stack.extend(gc.get_referents(item))
    return texts


def test_the_directory_keeps_no_credentials_it_verified() -> None:
    """Remembered headers are keyed digests: neither the password nor the Basic token is
    reachable from the directory once requests have been answered."""
    d = directory(view(record(1, "alice", password_hash=HASH)))
    header = basic("alice", PASSWORD)
    for ip in ("10.0.0.1", "10.0.0.2"):
        assert authenticate(d, header, ip=ip) is d.by_username["alice"]
    # Another spelling of the same credentials: known to the verified-credentials cache
    # (no argon2) and remembered under its own digest.
    lower = b"basic " + header.split(b" ", 1)[1]
    assert d.authenticate("10.0.0.3", lower, T) is d.by_username["alice"]
    token = header.split(b" ", 1)[1]
    for text in reachable_texts(d):
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        assert PASSWORD.encode() not in raw
        assert token not in raw and base64.b64decode(token) not in raw


def test_a_remembered_digest_answers_without_a_check_until_the_password_changes() -> None:
    rec = record(1, "alice", password_hash=HASH)
    d = directory(view(rec))
    first = d.authenticate("10.0.0.1", basic("alice", PASSWORD), T)
    assert isinstance(first, CredentialCheck) and len(first.authorization_digest) == 16
    assert d.verified(first, d.verify(first), T) is d.by_username["alice"]
    assert d.authenticate("10.0.0.9", basic("alice", PASSWORD), T) is d.by_username["alice"]
    # A different header never hits another's digest.
    assert isinstance(d.authenticate("10.0.0.9", basic("alice", PASSWORD + "x"), T),
                      CredentialCheck)
    d.update({"alice"}, [view(replace(rec, password_hash=hash_password("new")))], NOW, {})
    assert isinstance(d.authenticate("10.0.0.1", basic("alice", PASSWORD), T), CredentialCheck)
    d.update({"alice"}, [], NOW, {})
    assert not isinstance(authenticate(d, basic("alice", PASSWORD)), AccountState)


def test_digests_are_keyed_per_directory() -> None:
    """Two nodes (two directories) digest the same header differently."""
    rec = record(1, "alice", password_hash=HASH)
    digests = []
    for _ in range(2):
        check = directory(view(rec)).authenticate("10.0.0.1", basic("alice", PASSWORD), T)
        assert isinstance(check, CredentialCheck)
        digests.append(check.authorization_digest)
    assert digests[0] != digests[1]
