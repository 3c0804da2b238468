"""A real node under a flood of new credentials: the cap on argon2 checks, end to end."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import requests

from meshproxy.domain.passwords import VerifiedCredentials

from .clients import basic, read_reply
from .conftest import Env


class GatedCredentials(VerifiedCredentials):
    """The real verifier, holding every argon2 check until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)
        self.checked: list[str] = []  # usernames, one per argon2 check (append is atomic)

    def check(self, username: str, password: str, password_hash: str | None) -> bool:
        self.checked.append(username)
        self.started.release()
        assert self.gate.wait(30)
        return super().check(username, password, password_hash)


def test_a_flood_of_new_credentials_gets_503_and_cached_clients_are_served(
    start_env: Callable[..., Env],
) -> None:
    env = start_env(max_verifications_in_flight=1)
    env.account("alice")
    env.account("bob")
    env.sync()
    url = env.origins.url("/echo")
    assert requests.get(url, proxies={"http": env.proxy_url()}, timeout=10).status_code == 200
    gated = GatedCredentials()
    env.node.directory.credentials = gated

    def request(sock: socket.socket, authorization: str) -> None:
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: {authorization}"
                     "\r\n\r\n".encode())

    with ExitStack() as stack:
        def client(source: str) -> socket.socket:
            sock = socket.create_connection(env.address(), 10, source_address=(source, 0))
            return stack.enter_context(sock)

        held = client("127.0.9.1")
        request(held, basic("alice", "guess-1"))  # takes the one place...
        assert gated.started.acquire(timeout=10)  # ... and is being checked
        for i, (user, password) in enumerate(_flood(), start=2):
            sock = client(f"127.0.9.{i}")
            request(sock, basic(user, password))
            busy = read_reply(sock)  # at once, while the check is held
            assert busy.status == 503 and busy.headers["retry-after"] == "1"
            assert "proxy-authenticate" not in busy.headers
            assert "verified" in busy.headers["x-proxymesh-error"]
        # A new client with the right password is told to retry, and keeps its connection.
        bob = client("127.0.9.50")
        request(bob, basic("bob"))
        assert read_reply(bob).status == 503
        # The same header as the held check, from elsewhere: shares it, no 503.
        twin = client("127.0.9.51")
        request(twin, basic("alice", "guess-1"))
        # Remembered credentials are served throughout, by a real client.
        for _ in range(3):
            reply = requests.get(url, proxies={"http": env.proxy_url()}, timeout=10)
            assert reply.status_code == 200
        directory = env.node.directory
        assert len(directory.verifications) == 1  # the held check, the twin's too
        assert directory.verifications_refused == 7  # the flood and bob, not the twin
        gated.gate.set()
        assert read_reply(held).status == 407
        assert read_reply(twin).status == 407
        request(bob, basic("bob"))  # the retry, on the same connection
        assert read_reply(bob).status == 200
    assert gated.checked == ["alice", "bob"]  # one argon2 check for the held and the twin
    assert directory.auth_failures == 2  # the two checked; the refused counted nothing
    assert not any(directory.bans.is_banned(f"127.0.9.{i}", 0) for i in range(1, 52))


def _flood() -> Iterator[tuple[str, str]]:
    """Wrong passwords, unknown users: each new, each needing a check."""
    for i in range(6):
        yield ("alice", f"guess-{i + 2}") if i % 2 else (f"nobody{i}", "pw")
