"""docs/client.md: its Python flow, run as written against the running API (only the address,
credentials and file paths swapped for the test server's); its table of methods names every
public method, with the type each one returns, checked against the code and a live call."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, get_args, get_type_hints

from meshproxy.client import AsyncClient, Client, DayStats, SubAccount, SubAccountPage, calls
from meshproxy.client.binding import Endpoint

from .conftest import PASSWORD, LiveApi, unique, unique_ip

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"


def test_the_documented_python_flow_runs(live_api: LiveApi, parent: str, tmp_path: Path) -> None:
    flow = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
    for documented, real in [
        ('"https://127.0.0.1:8443"', repr(live_api.url)),
        ('"pm_reseller"', repr(parent)),
        ('"the parent password"', repr(PASSWORD)),
        ('"data/tls/api-cert.pem"', repr(str(live_api.cert))),
        ('"usage-2025-10.csv"', repr(str(tmp_path / "usage.csv"))),
    ]:
        assert documented in flow
        flow = flow.replace(documented, real)
    namespace: dict[str, object] = {}
    exec(compile(flow, str(DOC), "exec"), namespace)
    alice = live_api.store.accounts.get("pm_alice")
    assert alice is not None and alice.limits.monthly_gb == 20 and alice.email is None
    assert isinstance(namespace["alice"], SubAccount)
    assert (tmp_path / "usage.csv").read_text().startswith("username,active,")


METHOD_ROW = re.compile(r"^\| `(\w+)\((.*?)\)`[^|]*\|[^|]*\| `([^`]+)`", re.M)


def _documented_methods() -> dict[str, str]:
    """Method name -> the type its row says it returns."""
    section = DOC.read_text().split("### Methods", 1)[1].split("\n## ", 1)[0]
    return {name: returns for name, _, returns in METHOD_ROW.findall(section)}


def _public_methods(cls: type) -> set[str]:
    return {
        name
        for name in dir(cls)
        if not name.startswith("_")
        and (isinstance(getattr(cls, name), Endpoint) or inspect.isfunction(getattr(cls, name)))
    }


def _type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "None"
    if annotation is Any:
        return "Any"
    if isinstance(annotation, type) and not get_args(annotation):
        return annotation.__name__
    return re.sub(r"\b(?:[a-z_]+\.)+(\w+)", r"\1", str(annotation))


def test_every_public_method_is_documented() -> None:
    section = DOC.read_text().split("### Methods", 1)[1].split("\n## ", 1)[0]
    documented = _documented_methods()
    for cls in (Client, AsyncClient):
        missing = {name for name in _public_methods(cls) if f"`{name}(" not in section}
        assert not missing, f"{cls.__name__} methods docs/client.md does not name: {missing}"
    assert set(documented) - {"run", "close"} == {
        name for name in _public_methods(Client) if isinstance(getattr(Client, name), Endpoint)
    }


def test_documented_return_types_are_the_annotated_ones() -> None:
    for name, returns in _documented_methods().items():
        if name in ("run", "close"):
            continue
        exchange = get_type_hints(getattr(calls, name))["return"]  # Exchange[T]
        assert _type_name(get_args(exchange)[-1]) == returns, name


def _is(value: Any, documented: str) -> bool:
    simple = {
        "SubAccount": SubAccount, "SubAccountPage": SubAccountPage, "DayStats": DayStats,
        "str": str,
    }
    if documented in simple:
        return isinstance(value, simple[documented])
    if documented == "None":
        return value is None
    if documented == "Any":
        return True
    if documented.startswith("list["):
        item = documented[5:-1]
        return isinstance(value, list) and all(_is(entry, item) for entry in value)
    if documented == "dict[str, int]":
        return isinstance(value, dict) and all(
            isinstance(k, str) and type(v) is int for k, v in value.items()
        )
    raise AssertionError(f"no check for {documented}")


def test_every_method_returns_what_the_doc_says(live_api: LiveApi, parent: str) -> None:
    documented = _documented_methods()
    name = unique("pm_doc")
    ip, host = unique_ip(11), f"{unique('gw')}.example.com"
    calls_made: list[tuple[str, tuple[str, ...], dict[str, Any]]] = [
        ("create_sub_account", (name,), {"password": "pw", "monthly_limit": 1}),
        ("edit_sub_account", (name,), {"first_name": "Doc"}),
        ("get_sub_account", (name,), {}),
        ("deactivate", (name,), {}),
        ("activate", (name,), {}),
        ("list_sub_accounts", (), {"limit": 5}),
        ("all_sub_accounts", (), {}),
        ("account_stats", (name,), {"days": 2}),
        ("add_ip", (ip,), {"username": name}),
        ("list_ips", (), {"username": name}),
        ("delete_ip", (ip,), {"username": name}),
        ("add_hostname", (host,), {"username": name}),
        ("list_hostnames", (), {"username": name}),
        ("delete_hostname", (host,), {"username": name}),
        ("proxies", (), {}),
        ("add_proxy", ("plain",), {}),
        ("delete_proxy", ("plain",), {}),
        ("geoips", ("open",), {}),
        ("request", ("GET", "/api/ips/"), {}),
        ("delete_sub_account", (name,), {}),
    ]
    assert {call[0] for call in calls_made} == set(documented) - {"run", "close"}
    with live_api.client(parent) as api:
        for method, args, kwargs in calls_made:
            value = getattr(api, method)(*args, **kwargs)
            assert _is(value, documented[method]), (method, value)
