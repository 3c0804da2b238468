"""Settings: one TOML file plus MESHPROXY_* environment overrides, validated at start.

Environment variables override the file; nested keys use a double underscore, e.g.
MESHPROXY_DATABASE_URL, MESHPROXY_API__HTTPS_PORT, MESHPROXY_BAN__MAX_FAILURES; a list or
table value is given as JSON (MESHPROXY_PROXY__ALLOW_DESTINATIONS='["127.0.0.0/8"]').
Errors name the key, and the variable when the value came from one; an unknown key is
answered with the closest known one.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
import types
from pathlib import Path
from typing import Any, Literal, NamedTuple, Self, Union, get_args, get_origin
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from meshproxy import geoip
from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.passwords import MAX_VERIFICATIONS_IN_FLIGHT

DEFAULT_DATA_DIR = Path("data")
ENV_PREFIX = "MESHPROXY_"


class ListenerAddress(NamedTuple):
    what: str  # the setting that names it: "api.https_port", "proxy 'open'"
    host: str
    port: int
    face: Literal["api", "admin", "proxy"]


class ConfigError(Exception):
    """A configuration that cannot be used; the message says every bad value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


UPSTREAM_SCHEMES = ("http", "https", "socks5")
EGRESS_NAME = re.compile(r"[A-Za-z0-9._:\[\]-]{1,64}")


class EgressAddress(_Section):
    """One entry of a proxy's egress pool (docs/egress.md), one of:
    `address` (a local IP; none of the three: the host's default source address),
    `prefix` (a routed network: a random address of it per request, bound with
    IP_FREEBIND) or `upstream` (another proxy: http://, https:// or socks5://, with
    optional user:password@; `name` is what X-ProxyMesh-IP says for it)."""

    address: str | None = None
    prefix: str | None = None
    upstream: str | None = None
    name: str | None = None
    country: str | None = None

    @field_validator("address")
    @classmethod
    def _valid_ip(cls, value: str | None) -> str | None:
        return None if value is None else str(ipaddress.ip_address(value))

    @field_validator("prefix")
    @classmethod
    def _valid_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as error:
            raise ValueError(f"must be a network such as 2001:db8:5::/64 ({error})") from None
        return str(network)

    @field_validator("upstream")
    @classmethod
    def _valid_upstream(cls, value: str | None) -> str | None:
        if value is not None:
            upstream_parts(value)  # raises ValueError naming what is wrong
        return value

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        # It goes into X-ProxyMesh-IP headers and comma-separated Not-IP lists.
        if value is not None and EGRESS_NAME.fullmatch(value) is None:
            raise ValueError("must be 1-64 of A-Z a-z 0-9 . _ - : [ ] (it is sent in headers)")
        return value

    @field_validator("country")
    @classmethod
    def _valid_country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) != 2 or not value.isalpha():
            raise ValueError("must be a two-letter ISO 3166 country code")
        return value.upper()

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        kinds = [k for k in ("address", "prefix", "upstream") if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise ValueError(f"an egress entry is one of address, prefix or upstream, not "
                             f"{' and '.join(kinds)}")
        if self.name is not None and self.upstream is None:
            raise ValueError("name is for upstream entries (the others are named by their "
                             "address or prefix)")
        return self

    @property
    def label(self) -> str:
        """What names this entry to a client (X-ProxyMesh-IP) and to the operator."""
        if self.upstream is not None:
            return self.name or upstream_parts(self.upstream).default_name
        return self.prefix or self.address or "(host default)"


class UpstreamParts(BaseModel):
    """An upstream proxy URL taken apart (credentials percent-decoded)."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def default_name(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def upstream_parts(url: str) -> UpstreamParts:
    """Parse `scheme://[user:password@]host:port`; ValueError says what is wrong."""
    split = urlsplit(url)
    scheme = split.scheme.lower()
    if scheme not in UPSTREAM_SCHEMES:
        raise ValueError(f"an upstream URL starts with http://, https:// or socks5://, "
                         f"not {split.scheme or 'nothing'}://")
    try:
        port = split.port
    except ValueError:
        raise ValueError("the upstream's port must be a number from 1 to 65535") from None
    if not split.hostname:
        raise ValueError("the upstream URL names no host")
    if port is None or port == 0:
        raise ValueError(f"the upstream URL needs a port ({scheme}://host:PORT)")
    if split.path not in ("", "/") or split.query or split.fragment:
        raise ValueError("an upstream URL is scheme://[user:password@]host:port, nothing after")
    username = unquote(split.username) if split.username is not None else None
    password = unquote(split.password) if split.password is not None else None
    if scheme == "socks5" and username is not None and (
        len(username.encode()) > 255 or len((password or "").encode()) > 255
    ):
        raise ValueError("SOCKS5 user names and passwords are at most 255 bytes (RFC 1929)")
    return UpstreamParts(
        scheme=scheme, host=split.hostname, port=port, username=username, password=password
    )


class ProxyConfig(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    domain: str = ""  # public domain; default: "<name>.<proxy_domain>"
    port: int = Field(default=31280, ge=1, le=65535)
    listen: str = "127.0.0.1"
    # default: `port`; 0 binds any free port (tests; the node reports the port it got)
    listen_port: int | None = Field(default=None, ge=0, le=65535)
    egress: list[EgressAddress] = Field(default_factory=lambda: [EgressAddress()])
    geo: bool = False
    # Its SOCKS5 listener (docs/socks5.md) and HTTPS proxy listener (TLS to the proxy), on
    # `listen`; None: none. The *_listen_port settings are as listen_port (0: any free port).
    socks_port: int | None = Field(default=None, ge=1, le=65535)
    socks_listen_port: int | None = Field(default=None, ge=0, le=65535)
    tls_port: int | None = Field(default=None, ge=1, le=65535)
    tls_listen_port: int | None = Field(default=None, ge=0, le=65535)

    @property
    def bind_port(self) -> int:
        return self.port if self.listen_port is None else self.listen_port

    @property
    def socks_bind_port(self) -> int | None:
        return self.socks_port if self.socks_listen_port is None else self.socks_listen_port

    @property
    def tls_bind_port(self) -> int | None:
        return self.tls_port if self.tls_listen_port is None else self.tls_listen_port

    @field_validator("egress")
    @classmethod
    def _non_empty_pool(cls, value: list[EgressAddress]) -> list[EgressAddress]:
        if not value:
            raise ValueError("the egress pool needs at least one address")
        seen: set[str] = set()
        for entry in value:
            if entry.address is not None or entry.label == "(host default)":
                continue  # a repeated address only weighs it more
            if entry.label in seen:  # X-ProxyMesh-IP could not tell them apart
                raise ValueError(f"two egress entries are named {entry.label}")
            seen.add(entry.label)
        return value


class PlanConfig(_Section):
    name: str
    max_sub_accounts: int = Field(default=100, ge=0)
    max_proxies: int = Field(default=10, ge=0)
    default_proxies: list[str] = Field(default_factory=list)


class ApiConfig(_Section):
    listen: str = "127.0.0.1"
    # Port 0 binds any free port (tests); the server reports the bound one.
    https_port: int = Field(default=8443, ge=0, le=65535)
    http_port: int | None = Field(default=8080, ge=0, le=65535)
    public_url: str = ""  # how clients reach the API; default https://<listen>:<https_port>
    tls: bool = True
    tls_cert: Path | None = None
    tls_key: Path | None = None
    require_https: bool = True
    trusted_proxies: list[str] = Field(default_factory=list)  # may send X-Forwarded-Proto

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(item, strict=False)) for item in value]

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        return self


class BanConfig(_Section):
    max_failures: int = Field(default=4, ge=1)
    window_seconds: float = Field(default=600.0, gt=0)
    ban_seconds: float = Field(default=10_800.0, ge=0)

    def policy(self) -> BanPolicy:
        return BanPolicy(self.max_failures, self.window_seconds, self.ban_seconds)


class ProxyBehaviour(_Section):
    """How every proxy listener of this node behaves."""

    allow_destinations: list[str] = Field(default_factory=list)  # networks let through
    # Non-public networks an authenticated hostname may resolve to (loopback, private...):
    # refused by default, at add time and at each re-resolution (domain/addresses.py).
    allow_hostname_networks: list[str] = Field(default_factory=list)
    upstream_timeout: float = Field(default=30.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    header_timeout: float = Field(default=30.0, gt=0)
    # A request body gets body_timeout seconds plus one for every body_min_rate bytes
    # received (a byte-at-a-time body is cut off; a big upload at a sane rate never is).
    body_timeout: float = Field(default=60.0, gt=0)
    body_min_rate: float = Field(default=500.0, gt=0)  # bytes per second
    idle_timeout: float = Field(default=120.0, gt=0)
    # A client that takes none of the bytes written to it for this long is dropped (a slow
    # reader that makes progress never is; nginx's send_timeout).
    send_timeout: float = Field(default=60.0, gt=0)
    tunnel_idle_timeout: float = Field(default=900.0, gt=0)  # CONNECT tunnels with no traffic
    flush_interval: float = Field(default=1.0, gt=0, le=60)
    sync_interval: float = Field(default=0.25, gt=0, le=60)
    hostname_refresh: float = Field(default=60.0, gt=0)
    quota_check_interval: float = Field(default=1.0, gt=0, le=2)
    add_forwarded_headers: bool = False
    realm: str = "meshproxy"
    # Argon2 checks of credentials not seen before, queued or running, per node process;
    # a request needing one more is answered 503 + Retry-After without checking.
    max_verifications_in_flight: int = Field(default=MAX_VERIFICATIONS_IN_FLIGHT, ge=1, le=1024)
    # Upstream egress health (docs/egress.md): this many failures in a row (connect,
    # handshake, the upstream's own 407/5xx) take an upstream out of rotation; a probe
    # through each upstream every health_check_interval (to health_check_url, or only
    # its handshake when empty) brings it back, probes of one that is out backing off
    # up to health_check_max_backoff.
    egress_max_failures: int = Field(default=3, ge=1, le=1000)
    health_check_url: str = ""
    health_check_interval: float = Field(default=10.0, gt=0, le=3600)
    health_check_max_backoff: float = Field(default=300.0, gt=0, le=86400)
    upstream_ca_file: Path | None = None  # CAs for https:// upstreams (default: the system's)

    @field_validator("health_check_url")
    @classmethod
    def _valid_check_url(cls, value: str) -> str:
        if value:
            split = urlsplit(value)
            if split.scheme != "http" or not split.hostname:
                raise ValueError("health_check_url is an http:// URL (fetched through each "
                                 "upstream in a CONNECT tunnel)")
        return value

    @field_validator("allow_destinations", "allow_hostname_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(item, strict=False)) for item in value]


class AdminConfig(_Section):
    """The admin listener of every node: /healthz, /readyz and Prometheus /metrics.
    Worker i of `--workers N` listens on `port + i`; port 0 binds any free port."""

    enabled: bool = True
    listen: str = "127.0.0.1"
    port: int = Field(default=9180, ge=0, le=65535)


class SharedConfig(_Section):
    """Live state shared through Redis when `redis_url` is set (see docs/scaling.md)."""

    prefix: str = "meshproxy:"  # every Redis key and channel starts with it
    fold_interval: float = Field(default=5.0, gt=0, le=3600)  # Redis usage -> the store
    fold: bool = True  # this node folds (any number may; each batch is folded once)


class AccessLogConfig(_Section):
    """One line per proxy request and tunnel (docs/operations.md), written by a thread."""

    enabled: bool = True
    path: Path = Path("access.log")  # relative to data_dir; "-": stdout
    format: Literal["json", "squid"] = "json"
    paths: bool = False  # also log plain HTTP requests' paths (query strings may hold secrets)
    max_bytes: int = Field(default=100 * 1024 * 1024, ge=0)  # rotate past this size; 0: never
    backups: int = Field(default=5, ge=0)  # rotated files kept: access.log.1 ... .<backups>
    queue: int = Field(default=65_536, ge=1)  # lines waiting for the writer; more are dropped
    interval: float = Field(default=0.25, gt=0, le=10)  # seconds between the writer's batches
    node: str = ""  # the "node" field; default: the host name


class AlertsConfig(_Section):
    """Usage alerts: parents' webhooks, called at 80 % and 100 % of a limit (docs/operations.md).
    Every API node's first worker checks usage and delivers (each notice once on a fleet)."""

    enabled: bool = True  # this node checks usage and delivers notices
    interval: float = Field(default=15.0, gt=0, le=3600)  # seconds between checks
    allow_networks: list[str] = Field(default_factory=list)  # private networks URLs may reach
    allow_http: bool = False  # plain http:// webhook URLs (the body is signed, not hidden)
    timeout: float = Field(default=10.0, gt=0, le=60)  # seconds for one delivery attempt
    ca_file: Path | None = None  # CAs to verify https:// webhooks with (default: the system's)
    retry_base: float = Field(default=60.0, gt=0)  # the first retry after this; then doubled
    retry_max: float = Field(default=3600.0, gt=0)  # retries at most this far apart
    retry_for: float = Field(default=86_400.0, gt=0)  # then the delivery has failed
    max_webhooks: int = Field(default=10, ge=0)  # per parent account

    @field_validator("allow_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(item, strict=False)) for item in value]


def _default_plans() -> list[PlanConfig]:
    return [PlanConfig(name="default", default_proxies=["open", "world"])]


def _default_proxies() -> list[ProxyConfig]:
    return [
        ProxyConfig(name="open", port=31280, geo=True),
        ProxyConfig(name="world", port=31281, geo=True),
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""  # default: sqlite:///<data_dir>/meshproxy.sqlite3
    redis_url: str = ""  # set: usage counters, bans and change notifications in Redis
    shared: SharedConfig = Field(default_factory=SharedConfig)
    admin: AdminConfig = Field(default_factory=AdminConfig)
    access_log: AccessLogConfig = Field(default_factory=AccessLogConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    # The node's own log (start, errors, warnings): DEBUG, INFO, WARNING or ERROR.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    proxy_domain: str = "localhost"
    default_plan: str = "default"
    api: ApiConfig = Field(default_factory=ApiConfig)
    ban: BanConfig = Field(default_factory=BanConfig)
    proxy: ProxyBehaviour = Field(default_factory=ProxyBehaviour)
    plans: list[PlanConfig] = Field(default_factory=_default_plans)
    proxies: list[ProxyConfig] = Field(default_factory=_default_proxies)
    # A MaxMind-format .mmdb (GeoLite2-Country layout): at start, every egress address
    # without a `country` is tagged from it (see load_settings).
    geoip_database: Path | None = None
    # On a store with no parent account, `meshproxy serve` / `api` create one ("parent")
    # and print its credentials; off for an operator who provisions accounts by script.
    first_parent: bool = True

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value  # "info" is INFO

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init kwargs; the environment overrides it.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _fill_and_check(self) -> Self:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'meshproxy.sqlite3'}"
        if "plans" not in self.model_fields_set:
            # The built-in plan authorizes the configured proxies, whichever they are.
            every_proxy = [p.name for p in self.proxies]
            self.plans = [PlanConfig(name="default", default_proxies=every_proxy)]
        for proxy in self.proxies:
            if not proxy.domain:
                proxy.domain = f"{proxy.name}.{self.proxy_domain}"
        _unique("proxies", [p.name for p in self.proxies])
        _unique("proxy domains", [p.domain for p in self.proxies])
        _unique("plans", [p.name for p in self.plans])
        names = {p.name for p in self.proxies}
        for plan in self.plans:
            unknown = sorted(set(plan.default_proxies) - names)
            if unknown:
                raise ValueError(f"plan {plan.name!r} names unknown proxies: {', '.join(unknown)}")
        if self.default_plan not in {p.name for p in self.plans}:
            raise ValueError(f"default_plan {self.default_plan!r} is not one of the plans")
        _distinct_listeners(self.listeners())
        return self

    def listeners(self) -> list[ListenerAddress]:
        """Every listener this configuration opens (port 0, any free port, excluded; the
        admin port of worker 0 only)."""
        api, admin = self.api, self.admin
        found = [ListenerAddress("api.https_port", api.listen, api.https_port, "api")]
        if api.tls and api.http_port is not None:
            found.append(ListenerAddress("api.http_port", api.listen, api.http_port, "api"))
        if admin.enabled:
            found.append(ListenerAddress("admin.port", admin.listen, admin.port, "admin"))
        found += [
            ListenerAddress(f"proxy {p.name!r}", p.listen, p.bind_port, "proxy")
            for p in self.proxies
        ]
        found += [
            ListenerAddress(f"proxy {p.name!r} {kind}", p.listen, port, "proxy")
            for p in self.proxies
            for kind, port in (("socks_port", p.socks_bind_port), ("tls_port", p.tls_bind_port))
            if port is not None
        ]
        return [listener for listener in found if listener.port != 0]

    def plan(self, name: str) -> PlanConfig | None:
        return next((p for p in self.plans if p.name == name), None)

    def proxy_by_name(self, name: str) -> ProxyConfig | None:
        return next((p for p in self.proxies if p.name == name), None)

    @property
    def api_url(self) -> str:
        if self.api.public_url:
            return self.api.public_url.rstrip("/")
        host = _url_host(self.api.listen)
        return (
            f"https://{host}:{self.api.https_port}"
            if self.api.tls
            else (f"http://{host}:{self.api.https_port}")
        )


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what}: {name!r} is declared twice")
        seen.add(name)


def _overlap(one: str, other: str) -> bool:
    """Whether two listen addresses can collide on one port."""
    if one == other or "" in (one, other) or "::" in (one, other):
        return True
    if "0.0.0.0" in (one, other):
        return ":" not in one + other  # an IPv4 wildcard holds every IPv4 address
    return False


def _distinct_listeners(listeners: list[ListenerAddress]) -> None:
    for index, (what, host, port, _face) in enumerate(listeners):
        for other, other_host, other_port, _other_face in listeners[:index]:
            if port == other_port and _overlap(host, other_host):
                raise ValueError(
                    f"{other} and {what} both listen on {_url_host(other_host or '*')}:{port}"
                )


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The settings model an error location points into (list indexes skipped)."""
    model: type[BaseModel] = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        inner = _inner_model(field.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, Union, types.UnionType):
        for arg in get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def _is_structured(annotation: Any) -> bool:
    """A list or a table: given in the environment as JSON."""
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_structured(arg) for arg in get_args(annotation) if arg is not type(None))
    return get_origin(annotation) in (list, dict) or _inner_model(annotation) is not None


def _environment() -> dict[str, str]:
    """MESHPROXY_* variables by their upper-case name (pydantic-settings ignores case)."""
    return {k.upper(): k for k in os.environ if k.upper().startswith(ENV_PREFIX)}


def _variable_for(loc: tuple[int | str, ...], environment: dict[str, str]) -> str | None:
    """The environment variable a value at `loc` came from, if one did (the longest one
    naming a prefix of the location: MESHPROXY_API__HTTPS_PORT, or MESHPROXY_API)."""
    names = [part for part in loc if isinstance(part, str)]
    for size in range(len(names), 0, -1):
        if loc[:size] != tuple(names[:size]):  # an index inside: not one variable
            continue
        found = environment.get(ENV_PREFIX + "__".join(names[:size]).upper())
        if found is not None:
            return found
    return None


def _suggestion(loc: tuple[int | str, ...]) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _format_errors(error: ValidationError) -> str:
    lines = []
    environment = _environment()
    for item in error.errors():
        loc = tuple(item["loc"])
        where = ".".join(str(part) for part in loc) or "config"
        variable = _variable_for(loc, environment) if loc else None
        if variable is not None:
            where += f" (from {variable})"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key" + _suggestion(loc)
        lines.append(f"  {where}: {message}")
    return "invalid configuration:\n" + "\n".join(lines)


def _format_environment_error() -> str:
    """pydantic-settings could not decode a variable (a list or table not given as JSON):
    name each such variable and say how to write it."""
    lines = []
    for upper, name in sorted(_environment().items()):
        path = upper.removeprefix(ENV_PREFIX).lower().split("__")
        model = _model_at(tuple(path[:-1]))
        field = None if model is None else model.model_fields.get(path[-1])
        if field is None or not _is_structured(field.annotation):
            continue
        try:
            json.loads(os.environ[name])
        except ValueError as error:
            lines.append(
                f"  {name}: not valid JSON ({error}); a list or table is given as JSON, "
                f"e.g. {ENV_PREFIX}PROXY__ALLOW_DESTINATIONS='[\"127.0.0.0/8\"]'"
            )
    if not lines:
        lines.append("  a MESHPROXY_* variable could not be read")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if any), apply the environment and `overrides`, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    data.update(overrides)
    try:
        settings = Settings(**data)
    except ValidationError as error:
        raise ConfigError(_format_errors(error)) from None
    except SettingsError:
        raise ConfigError(_format_environment_error()) from None
    if settings.geoip_database is not None:
        _tag_countries(settings.proxies, settings.geoip_database)
    return settings


def _tag_countries(proxies: list[ProxyConfig], database: Path) -> None:
    """Give every egress address without a configured country the database's one, so the
    proxies' pools and the API's geoips counts read the same countries. Configured ones win."""
    untagged = [e for proxy in proxies for e in proxy.egress if e.country is None]
    try:
        found = geoip.countries(database, {e.address for e in untagged if e.address is not None})
    except geoip.GeoIPError as error:
        raise ConfigError(f"geoip_database: {error}") from None
    for egress in untagged:
        if egress.address is not None:
            egress.country = found.get(egress.address)
