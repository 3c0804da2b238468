"""The sans-I/O core: requests built, replies judged, retries scheduled, pages followed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshproxy.client import (
    ApiError,
    AuthenticationFailed,
    Forbidden,
    FormError,
    HttpsRequired,
    MethodNotAllowed,
    NetworkError,
    NotFound,
    PaymentRequired,
    PlanUnavailable,
    RetryPolicy,
    ServerError,
    SubAccount,
    UnexpectedBody,
    UnexpectedResponse,
    calls,
)
from meshproxy.client.protocol import Exchange, Reply, Request, Sleep, Steps, decode

POLICY = RetryPolicy(retries=2, backoff=0.5, max_delay=10.0)


def reply(status: int, body: Any = None, **headers: str) -> Reply:
    raw = b"" if body is None else json.dumps(body).encode()
    return Reply(status, {k.replace("_", "-"): v for k, v in headers.items()}, raw)


def details(username: str, monthly: float = 0.0) -> dict[str, Any]:
    return {
        "username": username,
        "active": True,
        "monthly_bandwidth": monthly,
        "monthly_bandwidth_limit": 0,
        "total_bandwidth": monthly,
        "total_bandwidth_limit": 0,
    }


def play(exchange: Exchange[Any], outcomes: list[Any], policy: RetryPolicy = POLICY) -> Any:
    """Drive an exchange with scripted outcomes; returns (result, the actions it asked for)."""
    steps = Steps(exchange, policy)
    actions: list[Any] = []
    outcome = None
    while (action := steps.send(outcome)) is not None:
        actions.append(action)
        outcome = None if isinstance(action, Sleep) else outcomes.pop(0)
    assert not outcomes, "the exchange stopped before using every scripted outcome"
    return steps.result, actions


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (302, HttpsRequired),
        (400, FormError),
        (401, AuthenticationFailed),
        (402, PaymentRequired),
        (403, Forbidden),
        (404, NotFound),
        (405, MethodNotAllowed),
        (500, ServerError),
        (503, PlanUnavailable),
        (418, UnexpectedResponse),
    ],
)
def test_each_error_status_has_its_class(status: int, cls: type[ApiError]) -> None:
    with pytest.raises(cls) as caught:
        decode(reply(status, {"error": "nope"}))
    assert caught.value.status == status and caught.value.body == {"error": "nope"}
    assert isinstance(caught.value, ApiError)


def test_error_details() -> None:
    form = FormError(400, {"username": ["This field is required."], "__all__": ["Bad."]})
    assert form.errors == {"username": ["This field is required."], "__all__": ["Bad."]}
    assert str(form) == "400: username: This field is required.; Bad."
    assert PlanUnavailable(503, {}, {"Retry-After": "120"}).retry_after == 120.0
    assert PlanUnavailable(503, {}, {"Retry-After": "Wed, 21 Oct 2015"}).retry_after is None
    assert MethodNotAllowed(405, {}, {"Allow": "POST, HEAD"}).allowed == ["POST", "HEAD"]
    assert HttpsRequired(302, None, {"Location": "https://h/x"}).location == "https://h/x"
    assert "https://h/x" in str(HttpsRequired(302, None, {"Location": "https://h/x"}))
    assert str(NotFound(404, "plain text\n")) == "404: plain text"


def test_success_bodies() -> None:
    assert decode(reply(200, {"ips": []})) == {"ips": []}
    assert decode(Reply(204, {}, b"")) is None
    with pytest.raises(UnexpectedBody):
        decode(Reply(200, {}, b"<html>proxy login</html>"))


def test_requests_put_fields_in_query_for_get_and_form_for_post() -> None:
    get = Request("GET", "/api/ips/", {"username": "pm_a"})
    post = Request("POST", "/api/ip/add/", {"ip": "10.0.0.1"})
    assert (get.query, get.form, get.idempotent) == ({"username": "pm_a"}, None, True)
    assert (post.query, post.form, post.idempotent) == (None, {"ip": "10.0.0.1"}, False)


def test_create_sends_only_given_fields_and_parses_details() -> None:
    exchange = calls.create_sub_account("pm_a", monthly_limit=5, email=None, first_name="")
    body = {**details("pm_a"), "monthly_bandwidth_limit": 5, "email": "a@example.com"}
    account, actions = play(exchange, [reply(200, body)])
    assert actions == [
        Request("POST", "/api/sub/create/", {"username": "pm_a", "monthly_limit": "5",
                                              "first_name": ""})
    ]
    assert account == SubAccount("pm_a", True, 0.0, 5, 0.0, 0, email="a@example.com")
    assert account.to_json() == body


def test_get_is_retried_with_exponential_backoff_then_succeeds() -> None:
    exchange = calls.proxies()
    outcomes = [reply(500), NetworkError("reset"), reply(200, {"proxies": ["open.x:31280"]})]
    result, actions = play(exchange, outcomes)
    assert result == ["open.x:31280"]
    assert [a for a in actions if isinstance(a, Sleep)] == [Sleep(0.5), Sleep(1.0)]


def test_retries_are_bounded() -> None:
    with pytest.raises(ServerError):
        play(calls.list_ips(), [reply(500)] * 3)


def test_post_is_never_retried() -> None:
    with pytest.raises(ServerError):
        play(calls.add_ip("10.0.0.1"), [reply(500)])
    with pytest.raises(NetworkError):
        play(calls.delete_ip("10.0.0.1"), [NetworkError("refused")])


def test_client_errors_are_not_retried() -> None:
    with pytest.raises(Forbidden):
        play(calls.get_sub_account("pm_b"), [reply(403, {"error": "not yours"})])


def test_503_waits_for_retry_after_unless_longer_than_max_delay() -> None:
    result, actions = play(
        calls.geoips("open"), [reply(503, {}, Retry_After="3"), reply(200, {"US": 2})]
    )
    assert result == {"US": 2} and Sleep(3.0) in actions
    with pytest.raises(PlanUnavailable) as caught:
        play(calls.geoips("open"), [reply(503, {"error": "plan"}, Retry_After="120")])
    assert caught.value.retry_after == 120.0


def test_all_sub_accounts_follows_pages() -> None:
    pages = [
        reply(200, {"sub_accounts": [details("a"), details("b")], "total": 3, "offset": 0,
                    "limit": 2}),
        reply(200, {"sub_accounts": [details("c")], "total": 3, "offset": 2, "limit": 2}),
    ]
    accounts, actions = play(calls.all_sub_accounts(page_size=2), pages)
    assert [a.username for a in accounts] == ["a", "b", "c"]
    assert [a.fields["offset"] for a in actions] == ["0", "2"]


def test_geoips_name_is_quoted_into_the_path() -> None:
    _, actions = play(calls.geoips("a/b"), [reply(200, {})])
    assert actions[0].path == "/api/geoips/a%2Fb/"


@pytest.mark.parametrize(
    "body",
    [[], {"username": "x"}, {**details("x"), "active": "yes"},
     {**details("x"), "monthly_bandwidth_limit": 1.5}],
)
def test_malformed_details_are_reported(body: Any) -> None:
    with pytest.raises(UnexpectedBody):
        play(calls.get_sub_account("x"), [reply(200, body)])
