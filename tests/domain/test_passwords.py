from __future__ import annotations

from unittest import mock

from meshproxy.domain import passwords
from meshproxy.domain.passwords import VerifiedCredentials, hash_password, verify_password


def test_argon2id_hash_and_verify() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "s3cret")
    assert not verify_password(stored, "S3cret")
    assert not verify_password("not a hash", "s3cret")


def test_verified_credentials_hash_once_per_password_and_hash() -> None:
    stored = hash_password("pw")
    cache = VerifiedCredentials()
    with mock.patch.object(passwords, "verify_password", wraps=verify_password) as spy:
        assert cache.check("alice", "pw", stored)
        assert cache.check("alice", "pw", stored)
        assert spy.call_count == 1
        assert not cache.check("alice", "wrong", stored)
        assert not cache.check("alice", "wrong", stored)  # failures are never cached
        assert spy.call_count == 3
    assert not cache.check("alice", "pw", None)


def test_new_hash_invalidates_cached_success() -> None:
    cache = VerifiedCredentials()
    assert cache.check("alice", "old", hash_password("old"))
    assert not cache.check("alice", "old", hash_password("new"))


def test_cache_is_bounded() -> None:
    cache = VerifiedCredentials(max_entries=2)
    stored = hash_password("pw")
    for user in ("a", "b", "c"):
        assert cache.check(user, "pw", stored)
    assert len(cache._known) == 2
