"""Typed outcomes of a refused operation. Each carries the HTTP status the API answers with;
the dashboard renders the same errors its own way."""

from __future__ import annotations

from typing import ClassVar

RETRY_AFTER_SECONDS = 120


class ControlError(Exception):
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FormInvalid(ControlError):
    """400: field name -> messages (non-field errors under "__all__")."""

    status = 400

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors

    @classmethod
    def one(cls, field: str, message: str) -> FormInvalid:
        return cls({field: [message]})


class PaymentRequired(ControlError):
    """402: the caller's plan allows no more (sub-accounts, proxies)."""

    status = 402


class Forbidden(ControlError):
    """403: sub-account credentials, or an account that is not the caller's sub-account."""

    status = 403


class NotFound(ControlError):
    """404: no such account (or geo proxy)."""

    status = 404


class Unavailable(ControlError):
    """503: try again later (the store cannot be reached)."""

    status = 503

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PlanUnavailable(Unavailable):
    """503: the caller's subscription plan cannot be looked up."""
