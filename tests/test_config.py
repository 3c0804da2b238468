from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from meshproxy.config import (
    AccessLogConfig,
    AdminConfig,
    AlertsConfig,
    ApiConfig,
    BanConfig,
    ConfigError,
    EgressAddress,
    PlanConfig,
    Problem,
    ProxyBehaviour,
    ProxyConfig,
    Settings,
    SharedConfig,
    checked,
    load_settings,
)


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
        ("unknown_key = 1", "unknown_key: unknown key"),
        ("data_dri = 'x'", "data_dri: unknown key; did you mean data_dir?"),
        ("[api]\ntls_crt = '/x.pem'", "api.tls_crt: unknown key; did you mean tls_cert?"),
        (
            "[[proxies]]\nname = 'a'\nlisten_prot = 1",
            "proxies.0.listen_prot: unknown key; did you mean listen_port?",
        ),
        ("[[proxies]]\nname = 'a'\negress = [{adress = '127.0.0.2'}]", "did you mean address?"),
        ("[api]\nhttps_port = 31280", "https_port and proxy 'open' both listen on 127.0.0.1:31280"),
        ("[api]\nhttp_port = 8443", "https_port and api.http_port both listen on 127.0.0.1:8443"),
        ("[admin]\nport = 8080", "api.http_port and admin.port both listen"),
        (
            "[[proxies]]\nname = 'a'\nport = 40000\nlisten = '0.0.0.0'\n"
            "[[proxies]]\nname = 'b'\nport = 40000",
            "proxy 'a' and proxy 'b' both listen on 0.0.0.0:40000",
        ),
        ("[api]\ntls_cert = '/x.pem'", "tls_cert and tls_key"),
        ("[proxy]\nallow_destinations = ['10.0.0.0/33']", "proxy.allow_destinations"),
        ("[proxy]\nmax_verifications_in_flight = 0", "proxy.max_verifications_in_flight"),
        ("log_level = 'loud'", "log_level: must be one of DEBUG, INFO, WARNING, ERROR"),
        ("[api]\nhttps_port = 70000", "api.https_port: Expected int <= 65535"),
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
    with pytest.raises(ConfigError, match=r"api\.https_port \(from MESHPROXY_API__HTTPS_PORT\)"):
        load_settings()


def test_a_value_from_the_file_does_not_blame_a_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHPROXY_API__LISTEN", "127.0.0.1")
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "[api]\nhttps_port = 70000"))
    assert "api.https_port: " in str(info.value) and "MESHPROXY" not in str(info.value)


def test_a_bad_key_in_a_json_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHPROXY_API", '{"https_prt": 9443}')
    with pytest.raises(ConfigError, match=r"api\.https_prt \(from MESHPROXY_API\): unknown key; "
                       r"did you mean https_port\?"):
        load_settings()


def test_a_list_variable_not_given_as_json_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHPROXY_PROXY__ALLOW_DESTINATIONS", "127.0.0.0/8")
    with pytest.raises(ConfigError, match="MESHPROXY_PROXY__ALLOW_DESTINATIONS: not valid JSON"):
        load_settings()


def test_every_bad_key_and_entry_is_named_at_once(tmp_path: Path) -> None:
    text = (
        "data_dri = 'x'\n[api]\nhttps_port = 70000\n"
        "[[proxies]]\nname = 'a'\n[[proxies]]\nname = 'B'\n[[proxies]]\nname = 'c'\nport = 0"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert [problem.key for problem in info.value.problems] == [
        ("data_dri",), ("api", "https_port"), ("proxies", 1, "name"), ("proxies", 2, "port"),
    ]
    assert str(info.value).count("\n  ") == 4


def test_a_secret_in_a_bad_value_is_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    upstream = "http://reseller:s3cret-pw@198.51.100.7:99999"
    monkeypatch.setenv("MESHPROXY_PROXIES", json.dumps(
        [{"name": "a", "egress": [{"upstream": upstream}]}]))
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert ("proxies.0.egress.0.upstream (from MESHPROXY_PROXIES): the upstream's port must "
            "be a number") in message
    assert "s3cret" not in message and "reseller" not in message


def test_variables_in_any_case_sections_and_variables_of_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MESHPROXY_API", '{"https_port": 9443, "http_port": 9080}')
    monkeypatch.setenv("MESHPROXY_API__HTTPS_PORT", "9444")  # a key's variable wins
    monkeypatch.setenv("meshproxy_log_level", "debug")
    monkeypatch.setenv("MESHPROXY_FIRST_PARENT", "off")  # yes/no, on/off, true/false, 1/0
    monkeypatch.setenv("MESHPROXY_CONFIG", "/nowhere.toml")  # the command's, not a setting
    monkeypatch.setenv("MESHPROXY_API_URL", "https://api.example.net")  # the API client's
    settings = load_settings()
    assert (settings.api.https_port, settings.api.http_port) == (9444, 9080)
    assert settings.log_level == "DEBUG" and settings.first_parent is False


def test_a_dumped_section_loads_back_and_a_copy_is_checked_again() -> None:
    settings = load_settings()
    again = load_settings(None, plans=[p.model_dump() for p in settings.plans],
                          proxies=[p.model_dump(exclude_none=True) for p in settings.proxies])
    assert again == settings
    with pytest.raises(ValueError, match=r"api\.https_port and admin\.port both listen"):
        settings.model_copy(update={"admin": settings.admin.model_copy(update={"port": 8443})})


def test_one_entry_checked_alone_names_its_own_keys() -> None:
    entry = checked(EgressAddress, {"address": "2001:DB8:0::0001", "country": "fr"})
    assert (entry.address, entry.country) == ("2001:db8::1", "FR")
    with pytest.raises(ConfigError) as info:
        checked(EgressAddress, {"country": "USA"})
    assert info.value.problems == (
        Problem(("country",), "must be a two-letter ISO 3166 country code"),)


def test_list_variables_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHPROXY_PROXY__ALLOW_DESTINATIONS", '["127.0.0.0/8", "::1/128"]')
    monkeypatch.setenv("MESHPROXY_API__TRUSTED_PROXIES", '["10.0.0.1"]')
    settings = load_settings()
    assert settings.proxy.allow_destinations == ["127.0.0.0/8", "::1/128"]
    assert settings.api.trusted_proxies == ["10.0.0.1/32"]


def test_proxies_without_plans_get_the_built_in_plan_on_them(tmp_path: Path) -> None:
    text = "[[proxies]]\nname = 'us'\n[[proxies]]\nname = 'de'\nport = 31282"
    settings = load_settings(write(tmp_path, text))
    plan = settings.plan("default")
    assert plan is not None and plan.default_proxies == ["us", "de"]


def test_listeners_on_distinct_addresses_may_share_a_port(tmp_path: Path) -> None:
    text = (
        "[[proxies]]\nname = 'a'\nport = 40000\n"
        "[[proxies]]\nname = 'b'\nport = 40000\nlisten = '127.0.0.2'"
    )
    assert [p.bind_port for p in load_settings(write(tmp_path, text)).proxies] == [40000, 40000]
    # Port 0 (any free port, in tests) never collides.
    zeros = "[api]\nhttps_port = 0\nhttp_port = 0\n[admin]\nport = 0"
    assert load_settings(write(tmp_path, zeros)).api.https_port == 0


def test_the_example_file_is_valid_and_matches_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    example = Path(__file__).parent.parent / "meshproxy.example.toml"
    assert load_settings(example) == load_settings()


def _keys_by_section(text: str) -> dict[str, set[str]]:
    """Every `key =` of the example file, commented out or not (inline tables too), by the
    section it appears under ("" for the top level)."""
    found: dict[str, set[str]] = {"": set()}
    section = ""
    for line in text.splitlines():
        header = re.match(r"^\[\[?([a-z_]+)\]\]?", line)
        if header:
            section = header.group(1)
            found.setdefault(section, set())
            continue
        found[section] |= set(re.findall(r"([a-z_]+)\s*=", line.split("  #", 1)[0].lstrip("# ")))
    return found


def _fields(section: type[msgspec.Struct]) -> set[str]:
    return set(section.__struct_fields__)


def test_the_example_file_names_every_setting() -> None:
    example = Path(__file__).parent.parent / "meshproxy.example.toml"
    found = _keys_by_section(example.read_text(encoding="utf-8"))
    sections: dict[str, type[msgspec.Struct]] = {
        "api": ApiConfig, "ban": BanConfig, "shared": SharedConfig, "admin": AdminConfig,
        "proxy": ProxyBehaviour, "plans": PlanConfig, "proxies": ProxyConfig,
        "access_log": AccessLogConfig, "alerts": AlertsConfig,
    }
    top = _fields(Settings) - set(sections)
    missing = {"": top - found[""]}
    for name, model in sections.items():
        missing[name] = _fields(model) - found.get(name, set())
    missing["proxies"] |= _fields(EgressAddress) - found["proxies"]  # egress = [{...}]
    assert not any(missing.values()), missing
