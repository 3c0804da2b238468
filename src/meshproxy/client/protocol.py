"""The client's protocol without I/O: requests to make, replies to judge, retries to schedule.

An API call is a generator (an *exchange*) that yields `Request`s and receives each one's
decoded JSON; most calls make one request, paging makes several. `conversation` wraps an
exchange with status handling and retries and yields *actions* (`Request` or `Sleep`) to a
driver, which performs them and sends back the outcome (`Reply` or `NetworkError`). The sync
and async clients are two such drivers: everything else is written once, here.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from meshproxy.client.errors import (
    ApiError,
    NetworkError,
    PlanUnavailable,
    ServerError,
    UnexpectedBody,
    error_for,
)

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Request:
    """One API request: fields go in the query string (GET) or the form body (others)."""

    method: str
    path: str
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def idempotent(self) -> bool:
        return self.method.upper() in IDEMPOTENT_METHODS

    @property
    def query(self) -> Mapping[str, str] | None:
        return self.fields if self.idempotent and self.fields else None

    @property
    def form(self) -> Mapping[str, str] | None:
        return self.fields if not self.idempotent and self.fields else None


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Sleep:
    seconds: float


Action = Request | Sleep
Outcome = Reply | NetworkError | None  # None answers a Sleep
Exchange = Generator[Request, Any, T]  # yields requests, receives decoded JSON
Conversation = Generator[Action, Outcome, T]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent requests (GET) after 500, 503 or a network error.

    The n-th retry waits `backoff * 2**n` seconds (at most `max_delay`), or the server's
    Retry-After when longer. A 503 asking for more than `max_delay` is raised at once: the
    caller can schedule a later run better than a blocked process can.
    """

    retries: int = 2
    backoff: float = 0.5
    max_delay: float = 10.0

    def delay(self, request: Request, error: Exception, retries_done: int) -> float | None:
        """Seconds to wait before trying `request` again, or None to give up."""
        if not request.idempotent or retries_done >= self.retries:
            return None
        if not isinstance(error, NetworkError | ServerError | PlanUnavailable):
            return None
        wait = min(self.max_delay, self.backoff * 2.0**retries_done)
        asked = error.retry_after if isinstance(error, PlanUnavailable) else None
        if asked is not None:
            if asked > self.max_delay:
                return None
            wait = max(wait, asked)
        return wait


NO_RETRIES = RetryPolicy(retries=0)


def decode(reply: Reply) -> Any:
    """The JSON body of a success; None for an empty one; raises the error class otherwise."""
    body = _body(reply)
    if 200 <= reply.status < 300:
        if isinstance(body, str) and body:
            raise UnexpectedBody(f"{reply.status} with a body that is not JSON: {body[:200]!r}")
        return body
    raise error_for(reply.status, body, reply.headers)


def _body(reply: Reply) -> Any:
    if not reply.body.strip():
        return None
    text = reply.body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def attempt(request: Request, policy: RetryPolicy) -> Conversation[Any]:
    """Send `request` until it succeeds or the policy gives up; return its decoded body."""
    retries_done = 0
    while True:
        outcome = yield request
        error: ApiError | NetworkError
        if isinstance(outcome, Reply):
            try:
                return decode(outcome)
            except ApiError as api_error:
                error = api_error
        elif isinstance(outcome, NetworkError):
            error = outcome
        else:
            raise TypeError(f"a request needs a Reply or NetworkError, got {outcome!r}")
        wait = policy.delay(request, error, retries_done)
        if wait is None:
            raise error
        yield Sleep(wait)
        retries_done += 1


def conversation(exchange: Exchange[T], policy: RetryPolicy) -> Conversation[T]:
    """Drive `exchange`: each request it yields is attempted; its result is sent back."""
    try:
        request = next(exchange)
        while True:
            data = yield from attempt(request, policy)
            request = exchange.send(data)
    except StopIteration as done:
        result: T = done.value
        return result


class Steps(Generic[T]):
    """A driver's view of a conversation: `send` the outcome of each action (None at first)
    to get the next action; None means done, and `result` holds the call's value."""

    def __init__(self, exchange: Exchange[T], policy: RetryPolicy) -> None:
        self._conversation = conversation(exchange, policy)
        self._result: list[T] = []

    def send(self, outcome: Outcome) -> Action | None:
        try:
            return self._conversation.send(outcome)
        except StopIteration as done:
            self._result.append(done.value)
            return None

    @property
    def result(self) -> T:
        return self._result[0]
