"""What username options cost a request (issue 13: at most 1 µs, remembered like
credentials): a directory's authentication of a remembered Proxy-Authorization plus the
steering of the request (core/username.py), against the authentication alone.

    .venv/bin/python -m bench.username_options            # 5 rounds of 200,000 requests
    .venv/bin/python -m bench.username_options --requests 50000 --rounds 2

Pure Python, in this process: no sockets. Rounds alternate (plain, options, plain ...) so
drift on a shared machine falls on both; the medians are printed.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from datetime import UTC, datetime

from meshproxy.domain.accounts import AccountRecord, AccountView
from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.limits import Limits
from meshproxy.domain.passwords import hash_password
from meshproxy.proxy.core.directory import AccountDirectory, AccountState, CredentialCheck
from meshproxy.proxy.core.options import NO_OPTIONS
from meshproxy.proxy.core.request import PreparedRequest, RequestHead, prepare_request
from meshproxy.proxy.core.username import steer_request

NOW = datetime.now(UTC)
ACCOUNTS = 1000


def _directory() -> AccountDirectory:
    secret = hash_password("pw")
    views = [
        AccountView(
            account=AccountRecord(
                id=i, username=f"user{i}", parent_id=None, password_hash=secret,
                first_name=None, last_name=None, email=None, active=True, limits=Limits(),
                plan=None, billing_day=1, created_at=NOW,
            ),
            proxies=("open",),
        )
        for i in range(1, ACCOUNTS + 1)
    ]
    directory = AccountDirectory(BanPolicy(4, 600, 10_800))
    directory.load(views, NOW, {})
    return directory


def _request(username: str) -> PreparedRequest:
    credentials = base64.b64encode(f"{username}:pw".encode())
    headers = [(b"Host", b"example.com"), (b"Proxy-Authorization", b"Basic " + credentials)]
    head = RequestHead(b"GET", b"http://example.com/", "1.1", headers, True)
    prepared = prepare_request(head)
    assert isinstance(prepared, PreparedRequest)
    return prepared


def _per_request(directory: AccountDirectory, request: PreparedRequest, count: int,
                 steer: bool) -> float:  # fmt: skip
    authorization = request.authorization
    assert authorization is not None
    options = NO_OPTIONS  # what the head's (absent) X-ProxyMesh-* headers parse to
    now = time.time()
    started = time.perf_counter()
    for _ in range(count):
        account = directory.authenticate("10.0.0.1", authorization, now)
        if steer:
            request.options = options  # as parsed from the head: nothing carried over
            steer_request(request, directory.logins, account.id)  # type: ignore[union-attr]
    return (time.perf_counter() - started) / count * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    directory = _directory()
    cases = {
        "no options": _request("user500"),
        "country + session": _request("user500-country-us-session-abc123-sesstime-30"),
    }
    for request in cases.values():  # verified once (argon2), then remembered
        result = directory.authenticate("10.0.0.1", request.authorization, time.time())
        if isinstance(result, CredentialCheck):
            result = directory.verified(result, directory.verify(result), time.time())
        assert isinstance(result, AccountState), result
    for name, request in cases.items():
        plain, steered = [], []
        for _ in range(options.rounds):
            plain.append(_per_request(directory, request, options.requests, steer=False))
            steered.append(_per_request(directory, request, options.requests, steer=True))
        cost = statistics.median(steered) - statistics.median(plain)
        print(f"{name}: authentication {statistics.median(plain):.0f} ns, with steering "
              f"{statistics.median(steered):.0f} ns: username options cost {cost:.0f} ns "
              "per request")  # fmt: skip


if __name__ == "__main__":
    main()
