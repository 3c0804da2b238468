"""Who may use the proxy: credentials, IPs, hostnames, bans, and changes within a second."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store
from support.polling import wait_until

from .api_face import api_base, api_client  # noqa: F401 (a fixture)
from .clients import basic, connect, read_reply
from .conftest import Env


def get(env: Env, proxy_url: str, url: str | None = None, **kw: object) -> requests.Response:
    return requests.get(url or env.origins.url("/echo"), proxies={"http": proxy_url},
                        timeout=10, **kw)  # type: ignore[arg-type]


def assert_refusal(response: requests.Response, status: int, words: str) -> None:
    assert response.status_code == status
    assert words in response.headers["X-ProxyMesh-Error"]
    assert response.headers["Proxy-Status"].startswith("meshproxy; error=")
    assert f'details="{response.headers["X-ProxyMesh-Error"]}"' in response.headers["Proxy-Status"]
    assert response.text.count("\n") == 1 and words in response.text


def test_missing_and_wrong_credentials_get_407(env: Env) -> None:
    missing = get(env, env.proxy_url(user=None))
    assert_refusal(missing, 407, "authentication required")
    assert missing.headers["Proxy-Authenticate"] == 'Basic realm="meshproxy"'
    wrong = get(env, env.proxy_url(password="nope"))
    assert_refusal(wrong, 407, "invalid proxy credentials")
    unknown = get(env, env.proxy_url(user="nobody"))
    assert_refusal(unknown, 407, "invalid proxy credentials")


def test_407_keeps_the_connection_for_the_retry(env: Env) -> None:
    url = env.origins.url("/echo")
    with connect(env.address()) as sock:
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert read_reply(sock).status == 407
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: {basic()}\r\n\r\n"
                     .encode())
        assert read_reply(sock).status == 200


def test_deactivate_delete_and_password_change_within_a_second(env: Env) -> None:
    assert get(env, env.proxy_url()).status_code == 200
    env.store.accounts.update("alice", active=False)
    wait_until(lambda: get(env, env.proxy_url()).status_code == 402, 1.0)
    assert_refusal(get(env, env.proxy_url()), 402, "deactivated")
    env.store.accounts.update("alice", active=True)
    wait_until(lambda: get(env, env.proxy_url()).status_code == 200, 1.0)
    new_hash = hash_password("new")
    env.store.accounts.update("alice", password_hash=new_hash)
    # Polled on the node's state, not by requests: each refused request would count toward
    # the ban, and a busy machine could collect four before the change arrives.
    wait_until(lambda: env.node.directory.by_username["alice"].password_hash == new_hash, 1.0)
    assert get(env, env.proxy_url(password="new")).status_code == 200
    assert get(env, env.proxy_url()).status_code == 407
    env.store.accounts.delete("alice")
    wait_until(lambda: get(env, env.proxy_url(password="new")).status_code == 407, 1.0)


def test_proxy_authorization_is_per_proxy_and_follows_changes(env: Env) -> None:
    assert_refusal(get(env, env.proxy_url("private")), 402, "not authorized on this proxy")
    alice = env.store.accounts.get("alice")
    assert alice is not None
    env.store.access.authorize_proxy(alice, "private")
    wait_until(lambda: get(env, env.proxy_url("private")).status_code == 200, 1.0)
    env.store.access.deauthorize_proxy(alice, "open")
    wait_until(lambda: get(env, env.proxy_url("open")).status_code == 402, 1.0)


def test_sub_accounts_use_the_parents_proxies_and_activity(env: Env) -> None:
    parent = env.store.accounts.get("alice")
    assert parent is not None
    env.account("sub_1", parent=parent)
    env.sync()
    assert get(env, env.proxy_url(user="sub_1")).status_code == 200
    assert get(env, env.proxy_url("private", user="sub_1")).status_code == 402
    env.store.accounts.update("alice", active=False)
    env.sync()
    assert get(env, env.proxy_url(user="sub_1")).status_code == 402


def test_ip_authentication_and_credentials_win(env: Env) -> None:
    bob = env.account("bob", password=None)
    env.store.access.add_ip(bob, "127.0.0.1")
    wait_until(lambda: get(env, env.proxy_url(user=None)).status_code == 200, 1.0)
    # With credentials the request is alice's, not bob's (the IP's owner).
    before = env.node.directory.by_username["alice"].total_bytes
    assert get(env, env.proxy_url()).status_code == 200
    assert env.node.directory.by_username["alice"].total_bytes > before
    assert get(env, env.proxy_url(password="wrong")).status_code == 407
    env.store.access.delete_ip(bob, "127.0.0.1")
    wait_until(lambda: get(env, env.proxy_url(user=None)).status_code == 407, 1.0)


def test_hostname_authentication(start_env: Callable[..., Env]) -> None:
    env = start_env(allow_hostname_networks=["127.0.0.0/8", "::1/128"])  # localhost allowed
    carol = env.account("carol", password=None)
    env.store.access.add_hostname(carol, "localhost")  # resolves to 127.0.0.1 (and ::1)
    wait_until(lambda: get(env, env.proxy_url(user=None)).status_code == 200, 1.0)
    env.store.access.delete_hostname(carol, "localhost")
    wait_until(lambda: get(env, env.proxy_url(user=None)).status_code == 407, 1.0)


def test_a_hostname_resolving_to_loopback_authenticates_nobody(env: Env) -> None:
    """`localhost` on a sub-account must not make every client on the proxy host it."""
    carol = env.account("carol", password=None)
    env.store.access.add_hostname(carol, "localhost")
    env.sync()  # loaded and resolved (127.0.0.1), then dropped: loopback is not allowed
    assert "localhost" in env.node.directory.hostnames()
    assert get(env, env.proxy_url(user=None)).status_code == 407


def test_ban_after_four_failures_even_with_good_credentials(env: Env) -> None:
    assert get(env, env.proxy_url()).status_code == 200
    for _ in range(4):
        assert get(env, env.proxy_url(password="bad")).status_code == 407
    banned = get(env, env.proxy_url())
    assert_refusal(banned, 407, "banned")
    env.sync()  # reports the failures to the store: the ban is shared by every node
    assert env.store.bans.until("127.0.0.1", time.time()) is not None
    env.store.bans.unban("127.0.0.1")
    wait_until(lambda: get(env, env.proxy_url()).status_code == 200, 1.0)


def test_success_resets_the_failure_count(env: Env) -> None:
    for _ in range(3):
        for _ in range(3):
            assert get(env, env.proxy_url(password="bad")).status_code == 407
        assert get(env, env.proxy_url()).status_code == 200


def test_destination_policy_refuses_private_ranges(start_env: Callable[..., Env]) -> None:
    env = start_env(allow_destinations=[])
    env.account("alice")
    env.sync()
    refused = get(env, env.proxy_url())
    assert_refusal(refused, 403, "not allowed")
    assert refused.headers["Proxy-Status"].startswith(
        "meshproxy; error=destination_ip_prohibited")
    with connect(env.address()) as sock:
        sock.sendall(f"CONNECT [::1]:{env.origins.ipv6} HTTP/1.1\r\nHost: x\r\n"
                     f"Proxy-Authorization: {basic()}\r\n\r\n".encode())
        assert read_reply(sock).status == 403


# ---- one ban for every face (issue 12 item 5) -------------------------------------------


def test_a_proxy_ban_holds_on_the_api_of_the_same_process_at_once(
    env: Env, api_base: str  # noqa: F811
) -> None:
    env.account("reseller", plan="default")
    with api_client(api_base, "reseller", "pw") as api:
        assert api.get("/api/ips/").status_code == 200
        for _ in range(4):
            assert get(env, env.proxy_url(password="bad")).status_code == 407
        refused = api.get("/api/ips/")  # no sync, no wait: the decision is shared in memory
        assert refused.status_code == 401 and "retry-after" in refused.headers
    # And it is written to the store, where another node and `meshproxy admin unban` read it.
    env.sync()
    other = Store.open(str(env.store.engine.url), migrate=False)
    try:
        assert other.bans.until("127.0.0.1", time.time()) is not None
        assert other.bans.unban("127.0.0.1")
    finally:
        other.close()
    env.sync()  # the change feed lifts it here too
    assert get(env, env.proxy_url()).status_code == 200


def test_an_api_ban_holds_on_the_proxy_of_the_same_process_at_once(
    env: Env, api_base: str  # noqa: F811
) -> None:
    env.account("reseller", plan="default")
    assert get(env, env.proxy_url()).status_code == 200
    with api_client(api_base, "reseller", "wrong") as api:
        assert [api.get("/api/ips/").status_code for _ in range(4)] == [401] * 4
    assert_refusal(get(env, env.proxy_url()), 407, "banned")  # no sync, no wait


def test_failures_count_in_the_order_they_happened_whichever_face_saw_them(
    env: Env, api_base: str  # noqa: F811
) -> None:
    """Three proxy failures, an API success, one proxy failure: a count of one, nowhere a
    ban, although the proxy reports its failures to the store after the API's success."""
    env.account("reseller", plan="default")
    with api_client(api_base, "reseller", "pw") as api:
        for _ in range(3):
            assert get(env, env.proxy_url(password="bad")).status_code == 407
        assert api.get("/api/ips/").status_code == 200
        assert get(env, env.proxy_url(password="bad")).status_code == 407
        env.sync()  # the four failures reach the store now, after the success
        assert get(env, env.proxy_url()).status_code == 200
        assert api.get("/api/ips/").status_code == 200
    assert env.store.bans.until("127.0.0.1", time.time()) is None


def test_a_ban_decided_by_one_node_is_written_to_the_store(env: Env) -> None:
    """A success seen by another node (an API node) between this node's reports leaves the
    store's count short of a ban; the ban this node decided is written all the same."""
    api_node = Store.open(str(env.store.engine.url), migrate=False)
    try:
        for _ in range(2):
            assert get(env, env.proxy_url(password="bad")).status_code == 407
        env.sync()
        api_node.bans.record_success("127.0.0.1", time.time())
        for _ in range(2):
            assert get(env, env.proxy_url(password="bad")).status_code == 407
        assert_refusal(get(env, env.proxy_url()), 407, "banned")  # this node's own count
        env.sync()
        assert api_node.bans.until("127.0.0.1", time.time()) is not None
    finally:
        api_node.close()
