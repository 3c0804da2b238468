"""The JSON and Squid lines of an entry: every field, no path unless asked, no secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from accesslog.entries import BASE, entry
from meshproxy.accesslog.formats import JsonFormat, SquidFormat, line
from meshproxy.accesslog.record import ABORTED, ANSWERED, TUNNEL
from meshproxy.accesslog.search import parse_line

T = 1_764_754_262.125  # entries.BASE's time


def _json(**fields: object) -> dict[str, object]:
    text = line(JsonFormat("node-a", paths=False), entry(**fields))
    assert "\n" not in text
    result: dict[str, object] = json.loads(text)
    return result


def test_json_line_has_every_field() -> None:
    assert _json() == {
        "time": "2025-12-03T09:31:02.125Z",
        "node": "node-a",
        "proxy": "open",
        "account": "alice",
        "parent": None,
        "client": "127.0.0.1",
        "egress": "127.0.0.2",
        "method": "GET",
        "target": "example.test:80",
        "status": 200,
        "bytes_in": 100,
        "bytes_out": 2000,
        "duration_ms": 12.5,
        "outcome": "relayed",
        "error": None,
        "server": "127.0.0.1",
    }


def test_json_path_only_when_asked() -> None:
    plain = line(JsonFormat("n", paths=False), entry())
    assert "secret" not in plain and "token" not in plain
    with_path = json.loads(line(JsonFormat("n", paths=True), entry()))
    assert with_path["path"] == "/secret?token=abc"


def test_json_answered_by_the_proxy_and_ipv6() -> None:
    record = _json(
        status=407, outcome=ANSWERED, error="proxy authentication required", account=None,
        egress="", server="", host="::1", port=8080,
    )
    assert record["status"] == 407 and record["error"] == "proxy authentication required"
    assert record["account"] is None and record["egress"] is None
    assert record["target"] == "[::1]:8080"


def test_json_escapes_what_a_client_sent() -> None:
    record = _json(method=b"G\"E\nT", error='bad "option"\r\nX-Injected: 1')
    assert record["method"] == 'G"E\nT' and record["error"] == 'bad "option"\r\nX-Injected: 1'


def _squid(paths: bool = False, **fields: object) -> str:
    return line(SquidFormat("node-a", paths=paths), entry(**fields))


def test_squid_native_fields() -> None:
    assert _squid() == (
        "1764754262.125     12 127.0.0.1 TCP_MISS/200 2000 GET http://example.test:80"
        " alice HIER_DIRECT/127.0.0.1 -"
    )
    assert _squid(paths=True).split()[6] == "http://example.test:80/secret?token=abc"


def test_squid_result_codes() -> None:
    tunnel = _squid(method=b"CONNECT", port=443, path=b"", outcome=TUNNEL)
    assert tunnel.split()[3:7] == ["TCP_TUNNEL/200", "2000", "CONNECT", "example.test:443"]
    denied = _squid(status=407, outcome=ANSWERED, account=None, server="")
    assert denied.split()[3] == "TCP_DENIED/407" and denied.split()[7:9] == ["-", "HIER_NONE/-"]
    assert _squid(status=502, outcome=ANSWERED).split()[3] == "NONE/502"
    assert _squid(status=0, outcome=ABORTED).split()[3] == "TCP_MISS_ABORTED/000"


def test_squid_fields_never_split() -> None:
    line = _squid(account="a b", method=b"G T", host="", port=0)
    assert len(line.split()) == 10
    assert line.split()[5:8] == ["G%20T", "-", "a%20b"]


def test_both_formats_read_back() -> None:
    for line_format in (JsonFormat, SquidFormat):
        record = parse_line(line(line_format("n", paths=False), entry()))
        assert record is not None
        assert record["client"] == "127.0.0.1" and record["account"] == "alice"
        assert record["status"] == 200 and record["bytes_out"] == 2000
        assert record["target"] == "example.test:80" and record["outcome"] == "relayed"
        assert record["_end"] == 1_764_754_262.125


def test_lines_of_one_slice_keep_their_own_time_target_and_duration() -> None:
    """The texts a format keeps between lines (the time's, the target's) are never a
    previous line's: same millisecond, next second, same host on another port."""
    entries = [
        entry(time=T, host="example.test", port=80, duration=0.0000025),
        entry(time=T + 0.0004, host="example.test", port=443, duration=0.0000035),
        entry(time=T + 1, host="example.test", port=80, duration=1.0),
        entry(time=T + 1.125, host="::1", port=80, duration=0.0),
    ]
    for line_format in (JsonFormat, SquidFormat):
        records = [
            parse_line(text)
            for text in line_format("n", paths=False).encode(entries).decode().splitlines()
        ]
        assert [record and record["target"] for record in records] == [
            "example.test:80", "example.test:443", "example.test:80", "[::1]:80",
        ]
        assert [record and record["_end"] for record in records] == [
            T, T, T + 1, T + 1.125,
        ]  # fmt: skip
    lines = JsonFormat("n", paths=False).encode(entries).decode().splitlines()
    objects = [json.loads(text) for text in lines]
    assert [record["time"][-7:] for record in objects] == [
        "02.125Z", "02.125Z", "03.125Z", "03.250Z",
    ]  # fmt: skip
    # whole microseconds, half to even as round() (2.5 -> 2, 3.5 -> 4)
    assert [record["duration_ms"] for record in objects] == [0.002, 0.004, 1000.0, 0.0]


def _expected(fields: dict[str, Any]) -> dict[str, object]:
    """The JSON object of an entry's fields, made without the format's kept texts."""
    host, port = fields["host"], fields["port"]
    target = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}") if host else None
    return {
        "node": "n",
        "proxy": fields["proxy"],
        "account": fields["account"],
        "parent": fields["parent"],
        "client": fields["client"],
        "egress": fields["egress"] or None,
        "method": fields["method"].decode("latin-1"),
        "target": target,
        "status": fields["status"] or None,
        "bytes_in": fields["bytes_in"],
        "bytes_out": fields["bytes_out"],
        "duration_ms": round(fields["duration"] * 1000, 3),
        "outcome": fields["outcome"],
        "error": fields["error"],
        "server": fields["server"] or None,
    }


# Each step changes one field of the line before (then the next changes it back or on):
# the texts a format keeps for repeated fields must never leak into a changed line.
_STEPS: list[dict[str, object]] = [
    {},
    {},  # the same fields again
    {"proxy": "other"},
    {"proxy": "open"},
    {"account": "bob"},
    {"account": None},
    {"parent": "alice", "account": "alice-sub"},
    {"parent": None, "account": "alice"},
    {"client": "127.0.0.9"},
    {"client": "::1"},
    {"egress": ""},
    {"egress": "127.0.0.3"},
    {"method": b"POST"},
    {"method": b"GET"},
    {"host": "other.test"},
    {"host": ""},
    {"host": "example.test", "port": 8080},
    {"port": 80},
    {"status": 0},
    {"status": 503},
    {"outcome": ANSWERED, "error": "upstream unreachable"},
    {"error": "upstream timed out"},
    {"outcome": ABORTED, "error": None},
    {"server": ""},
    {"server": "127.0.0.7"},
    {"outcome": TUNNEL, "method": b"CONNECT", "server": "127.0.0.7"},
    {"bytes_in": 0, "bytes_out": 1_234_567, "duration": 0.0},
]


@pytest.mark.parametrize("copies", [False, True], ids=["same objects", "equal copies"])
def test_json_lines_after_any_change_of_one_field(copies: bool) -> None:
    fields: dict[str, Any] = dict(BASE)
    entries, expected = [], []
    for step in _STEPS:
        fields = {**fields, **step}
        if copies:  # equal strings that are other objects: compared, not `is`
            fields = {
                key: (value.encode().decode() if isinstance(value, str) else value)
                for key, value in fields.items()
            }
        entries.append(entry(**fields))
        expected.append(_expected(fields))
    text = JsonFormat("n", paths=False).encode(entries).decode()
    got = [json.loads(one) for one in text.splitlines()]
    for record in got:
        del record["time"]
    assert got == expected
