from __future__ import annotations

from pathlib import Path

import pytest

from meshproxy.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "meshproxy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_give_a_working_single_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.database_url == "sqlite:///data/meshproxy.sqlite3"
    assert settings.api.require_https and settings.api.tls
    assert [(p.name, p.domain, p.port, p.geo) for p in settings.proxies] == [
        ("open", "open.localhost", 31280, True),
        ("world", "world.localhost", 31281, True),
    ]
    assert settings.plan("default") is not None
    assert settings.ban.policy().max_failures == 4
    assert settings.api_url == "https://127.0.0.1:8443"


def test_toml_file_and_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        """
database_url = "sqlite:////tmp/x.sqlite3"
proxy_domain = "proxy.example.net"
[api]
https_port = 9443
[ban]
max_failures = 6
[[plans]]
name = "default"
max_sub_accounts = 3
default_proxies = ["us"]
[[proxies]]
name = "us"
port = 31290
geo = true
egress = [{address = "127.0.0.2", country = "us"}, {address = "127.0.0.3"}]
""",
    )
    monkeypatch.setenv("MESHPROXY_API__HTTPS_PORT", "10443")
    monkeypatch.setenv("MESHPROXY_BAN__BAN_SECONDS", "60")
    settings = load_settings(path)
    assert settings.api.https_port == 10443
    assert settings.ban.max_failures == 6 and settings.ban.ban_seconds == 60
    (proxy,) = settings.proxies
    assert proxy.domain == "us.proxy.example.net"
    assert [(e.address, e.country) for e in proxy.egress] == [
        ("127.0.0.2", "US"),
        ("127.0.0.3", None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[api]\nhttps_port = 70000", "api.https_port"),
        ("[ban]\nmax_failures = 0", "ban.max_failures"),
        ("[[proxies]]\nname = 'Bad Name'", "proxies.0.name"),
        (
            "[[proxies]]\nname = 'a'\negress = [{address = 'not-an-ip'}]",
            "proxies.0.egress.0.address",
        ),
        ("[[proxies]]\nname = 'a'\negress = [{country = 'USA'}]", "two-letter"),
        ("[[proxies]]\nname = 'a'\n[[proxies]]\nname = 'a'", "declared twice"),
        ("default_plan = 'gold'", "default_plan 'gold'"),
        ("unknown_key = 1", "unknown_key"),
        ("[api]\ntls_cert = '/x.pem'", "tls_cert and tls_key"),
        ("[proxy]\nallow_destinations = ['10.0.0.0/33']", "proxy.allow_destinations"),
        ("[proxy]\nmax_verifications_in_flight = 0", "proxy.max_verifications_in_flight"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid configuration") as info:
        load_settings(write(tmp_path, text))
    assert message in str(info.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "this is = = not toml"))


def test_bad_environment_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHPROXY_API__HTTPS_PORT", "many")
    with pytest.raises(ConfigError, match=r"api\.https_port"):
        load_settings()


def test_the_example_file_is_valid_and_matches_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    example = Path(__file__).parent.parent / "meshproxy.example.toml"
    assert load_settings(example) == load_settings()
