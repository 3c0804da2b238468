"""What an audit entry keeps of a request's fields (docs/operations.md: a secret only by
name, at most 20 fields of 200 characters)."""

from __future__ import annotations

from meshproxy.domain.audit import audited_fields


def test_secrets_are_kept_by_name_only_and_none_is_left_out() -> None:
    kept = audited_fields({"username": "pm_a", "Password": "hunter2", "api_token": "t0k",
                           "webhook_secret": "s", "key_id": 7, "email": None})
    assert kept == {"username": "pm_a", "Password": "(redacted)", "api_token": "(redacted)",
                    "webhook_secret": "(redacted)", "key_id": "(redacted)"}


def test_at_most_20_fields_of_200_characters() -> None:
    fields = {f"f{i:02}": "x" * 500 for i in range(30)}
    kept = audited_fields({"n" * 300: "v", **fields})
    assert len(kept) == 20
    assert "n" * 200 in kept and all(len(name) <= 200 for name in kept)
    assert all(len(value) == 200 for name, value in kept.items() if name.startswith("f"))
