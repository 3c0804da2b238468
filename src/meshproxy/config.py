"""Settings: one TOML file plus MESHPROXY_* environment overrides, validated at start.

Environment variables override the file; nested keys use a double underscore, e.g.
MESHPROXY_DATABASE_URL, MESHPROXY_API__HTTPS_PORT, MESHPROXY_BAN__MAX_FAILURES; a list or
table value is given as JSON (MESHPROXY_PROXY__ALLOW_DESTINATIONS='["127.0.0.0/8"]').
Errors name the key, and the variable when the value came from one; an unknown key is
answered with the closest known one.

The sections are msgspec Structs: types and ranges in `Meta` constraints, the checks of
one key or of a whole section in `__post_init__`, and `msgspec.convert` (lax: "9443" is a
port) from the dict tomllib reads, merged with the environment read here. Not pydantic
and pydantic-settings: those cost a proxy node 13.7 MiB of RSS and 85 ms of CPU at start,
msgspec 1.9 MiB and 8 ms (docs/benchmarks.md), for the same checks. msgspec stops at the
first error of a value, so every top-level key, and every entry of a list of sections, is
converted on its own: each bad one is reported.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, NamedTuple, Self, TypeVar, Union, get_args, get_origin
from urllib.parse import unquote, urlsplit

import msgspec
from msgspec import Meta, Struct, field

from meshproxy import geoip
from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.passwords import MAX_VERIFICATIONS_IN_FLIGHT

DEFAULT_DATA_DIR = Path("data")
ENV_PREFIX = "MESHPROXY_"

Port = Annotated[int, Meta(ge=1, le=65535)]
BindPort = Annotated[int, Meta(ge=0, le=65535)]  # 0 binds any free port (tests)
Positive = Annotated[float, Meta(gt=0)]
Count = Annotated[int, Meta(ge=0)]

T = TypeVar("T")
S = TypeVar("S", bound=Struct)


class ListenerAddress(NamedTuple):
    what: str  # the setting that names it: "api.https_port", "proxy 'open'"
    host: str
    port: int
    face: Literal["api", "admin", "proxy"]


class Problem(NamedTuple):
    """One value that cannot be used: where (keys and list indexes) and why."""

    key: tuple[str | int, ...]
    message: str


class ConfigError(Exception):
    """A configuration that cannot be used; the message says every bad value."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class _BadValue(ValueError):
    """A `__post_init__` check of one key failed (msgspec locates the section; this names
    the key in it)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _check(key: str, check: Callable[[T], T], value: T | None) -> T | None:
    """`check(value)` (its result: the value made canonical) unless value is None; its
    ValueError blames `key`."""
    if value is None:
        return None
    try:
        return check(value)
    except ValueError as error:
        raise _BadValue(key, str(error)) from None


def _networks(key: str, values: list[str]) -> list[str]:
    """Each a network (a bare address is its /32 or /128), written canonically."""
    try:
        return [str(ipaddress.ip_network(item, strict=False)) for item in values]
    except ValueError as error:
        raise _BadValue(key, str(error)) from None


class _Section(Struct, forbid_unknown_fields=True):
    """A table of the configuration: unknown keys are errors."""

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        """A copy with `update`'s keys replaced (the name is the one callers used with
        pydantic; `__post_init__` checks the copy again)."""
        return msgspec.structs.replace(self, **(update or {}))

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The values as plain dicts and lists (paths stay Paths), as load_settings takes."""
        dumped: dict[str, Any] = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if not (exclude_none and value is None):
                dumped[name] = _dumped(value, exclude_none)
        return dumped


def _dumped(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, _Section):
        return value.model_dump(exclude_none=exclude_none)
    if isinstance(value, list):
        return [_dumped(item, exclude_none) for item in value]
    return value


UPSTREAM_SCHEMES = ("http", "https", "socks5")
EGRESS_NAME = re.compile(r"[A-Za-z0-9._:\[\]-]{1,64}")


def _canonical_ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


def _canonical_prefix(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"must be a network such as 2001:db8:5::/64 ({error})") from None
    return str(network)


def _valid_upstream(value: str) -> str:
    upstream_parts(value)  # raises ValueError naming what is wrong
    return value


def _valid_egress_name(value: str) -> str:
    # It goes into X-ProxyMesh-IP headers and comma-separated Not-IP lists.
    if EGRESS_NAME.fullmatch(value) is None:
        raise ValueError("must be 1-64 of A-Z a-z 0-9 . _ - : [ ] (it is sent in headers)")
    return value


def _country_code(value: str) -> str:
    if len(value) != 2 or not value.isalpha():
        raise ValueError("must be a two-letter ISO 3166 country code")
    return value.upper()


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

    def __post_init__(self) -> None:
        self.address = _check("address", _canonical_ip, self.address)
        self.prefix = _check("prefix", _canonical_prefix, self.prefix)
        self.upstream = _check("upstream", _valid_upstream, self.upstream)
        self.name = _check("name", _valid_egress_name, self.name)
        self.country = _check("country", _country_code, self.country)
        kinds = [k for k in ("address", "prefix", "upstream") if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise ValueError(f"an egress entry is one of address, prefix or upstream, not "
                             f"{' and '.join(kinds)}")
        if self.name is not None and self.upstream is None:
            raise ValueError("name is for upstream entries (the others are named by their "
                             "address or prefix)")

    @property
    def label(self) -> str:
        """What names this entry to a client (X-ProxyMesh-IP) and to the operator."""
        if self.upstream is not None:
            return self.name or upstream_parts(self.upstream).default_name
        return self.prefix or self.address or "(host default)"


class UpstreamParts(Struct, frozen=True):
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


PROXY_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def _valid_proxy_name(value: str) -> str:
    if PROXY_NAME.fullmatch(value) is None:
        raise ValueError("must be 1-63 of a-z 0-9 and -, starting with a letter or digit")
    return value


def _pool_check(value: list[EgressAddress]) -> list[EgressAddress]:
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


class ProxyConfig(_Section):
    name: str
    domain: str = ""  # public domain; default: "<name>.<proxy_domain>"
    port: Port = 31280
    listen: str = "127.0.0.1"
    # default: `port`; 0 binds any free port (tests; the node reports the port it got)
    listen_port: BindPort | None = None
    egress: list[EgressAddress] = field(default_factory=lambda: [EgressAddress()])
    geo: bool = False
    # Its SOCKS5 listener (docs/socks5.md) and HTTPS proxy listener (TLS to the proxy), on
    # `listen`; None: none. The *_listen_port settings are as listen_port (0: any free port).
    socks_port: Port | None = None
    socks_listen_port: BindPort | None = None
    tls_port: Port | None = None
    tls_listen_port: BindPort | None = None

    def __post_init__(self) -> None:
        _check("name", _valid_proxy_name, self.name)
        _check("egress", _pool_check, self.egress)

    @property
    def bind_port(self) -> int:
        return self.port if self.listen_port is None else self.listen_port

    @property
    def socks_bind_port(self) -> int | None:
        return self.socks_port if self.socks_listen_port is None else self.socks_listen_port

    @property
    def tls_bind_port(self) -> int | None:
        return self.tls_port if self.tls_listen_port is None else self.tls_listen_port


class PlanConfig(_Section):
    name: str
    max_sub_accounts: Count = 100
    max_proxies: Count = 10
    default_proxies: list[str] = field(default_factory=list)


class ApiConfig(_Section):
    listen: str = "127.0.0.1"
    # Port 0 binds any free port (tests); the server reports the bound one.
    https_port: BindPort = 8443
    http_port: BindPort | None = 8080
    public_url: str = ""  # how clients reach the API; default https://<listen>:<https_port>
    tls: bool = True
    tls_cert: Path | None = None
    tls_key: Path | None = None
    require_https: bool = True
    trusted_proxies: list[str] = field(default_factory=list)  # may send X-Forwarded-Proto

    def __post_init__(self) -> None:
        self.trusted_proxies = _networks("trusted_proxies", self.trusted_proxies)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")


class BanConfig(_Section):
    max_failures: Annotated[int, Meta(ge=1)] = 4
    window_seconds: Positive = 600.0
    ban_seconds: Annotated[float, Meta(ge=0)] = 10_800.0

    def policy(self) -> BanPolicy:
        return BanPolicy(self.max_failures, self.window_seconds, self.ban_seconds)


def _valid_check_url(value: str) -> str:
    if value:
        split = urlsplit(value)
        if split.scheme != "http" or not split.hostname:
            raise ValueError("health_check_url is an http:// URL (fetched through each "
                             "upstream in a CONNECT tunnel)")
    return value


class ProxyBehaviour(_Section):
    """How every proxy listener of this node behaves."""

    allow_destinations: list[str] = field(default_factory=list)  # networks let through
    # Non-public networks an authenticated hostname may resolve to (loopback, private...):
    # refused by default, at add time and at each re-resolution (domain/addresses.py).
    allow_hostname_networks: list[str] = field(default_factory=list)
    upstream_timeout: Positive = 30.0
    connect_timeout: Positive = 10.0
    header_timeout: Positive = 30.0
    # A request body gets body_timeout seconds plus one for every body_min_rate bytes
    # received (a byte-at-a-time body is cut off; a big upload at a sane rate never is).
    body_timeout: Positive = 60.0
    body_min_rate: Positive = 500.0  # bytes per second
    idle_timeout: Positive = 120.0
    # A client that takes none of the bytes written to it for this long is dropped (a slow
    # reader that makes progress never is; nginx's send_timeout).
    send_timeout: Positive = 60.0
    tunnel_idle_timeout: Positive = 900.0  # CONNECT tunnels with no traffic
    flush_interval: Annotated[float, Meta(gt=0, le=60)] = 1.0
    sync_interval: Annotated[float, Meta(gt=0, le=60)] = 0.25
    hostname_refresh: Positive = 60.0
    quota_check_interval: Annotated[float, Meta(gt=0, le=2)] = 1.0
    add_forwarded_headers: bool = False
    realm: str = "meshproxy"
    # Argon2 checks of credentials not seen before, queued or running, per node process;
    # a request needing one more is answered 503 + Retry-After without checking.
    max_verifications_in_flight: Annotated[int, Meta(ge=1, le=1024)] = (
        MAX_VERIFICATIONS_IN_FLIGHT
    )
    # Upstream egress health (docs/egress.md): this many failures in a row (connect,
    # handshake, the upstream's own 407/5xx) take an upstream out of rotation; a probe
    # through each upstream every health_check_interval (to health_check_url, or only
    # its handshake when empty) brings it back, probes of one that is out backing off
    # up to health_check_max_backoff.
    egress_max_failures: Annotated[int, Meta(ge=1, le=1000)] = 3
    health_check_url: str = ""
    health_check_interval: Annotated[float, Meta(gt=0, le=3600)] = 10.0
    health_check_max_backoff: Annotated[float, Meta(gt=0, le=86400)] = 300.0
    upstream_ca_file: Path | None = None  # CAs for https:// upstreams (default: the system's)

    def __post_init__(self) -> None:
        _check("health_check_url", _valid_check_url, self.health_check_url)
        self.allow_destinations = _networks("allow_destinations", self.allow_destinations)
        self.allow_hostname_networks = _networks(
            "allow_hostname_networks", self.allow_hostname_networks
        )


class AdminConfig(_Section):
    """The admin listener of every node: /healthz, /readyz and Prometheus /metrics.
    Worker i of `--workers N` listens on `port + i`; port 0 binds any free port."""

    enabled: bool = True
    listen: str = "127.0.0.1"
    port: BindPort = 9180


class SharedConfig(_Section):
    """Live state shared through Redis when `redis_url` is set (see docs/scaling.md)."""

    prefix: str = "meshproxy:"  # every Redis key and channel starts with it
    fold_interval: Annotated[float, Meta(gt=0, le=3600)] = 5.0  # Redis usage -> the store
    fold: bool = True  # this node folds (any number may; each batch is folded once)


class AccessLogConfig(_Section):
    """One line per proxy request and tunnel (docs/operations.md), written by a thread."""

    enabled: bool = True
    path: Path = Path("access.log")  # relative to data_dir; "-": stdout
    format: Literal["json", "squid"] = "json"
    paths: bool = False  # also log plain HTTP requests' paths (query strings may hold secrets)
    max_bytes: Count = 100 * 1024 * 1024  # rotate past this size; 0: never
    backups: Count = 5  # rotated files kept: access.log.1 ... .<backups>
    queue: Annotated[int, Meta(ge=1)] = 65_536  # lines waiting for the writer; more dropped
    interval: Annotated[float, Meta(gt=0, le=10)] = 0.25  # seconds between hand-overs to the writer
    node: str = ""  # the "node" field; default: the host name


class AlertsConfig(_Section):
    """Usage alerts: parents' webhooks, called at 80 % and 100 % of a limit (docs/operations.md).
    Every API node's first worker checks usage and delivers (each notice once on a fleet)."""

    enabled: bool = True  # this node checks usage and delivers notices
    interval: Annotated[float, Meta(gt=0, le=3600)] = 15.0  # seconds between checks
    allow_networks: list[str] = field(default_factory=list)  # private networks URLs may reach
    allow_http: bool = False  # plain http:// webhook URLs (the body is signed, not hidden)
    timeout: Annotated[float, Meta(gt=0, le=60)] = 10.0  # seconds for one delivery attempt
    ca_file: Path | None = None  # CAs to verify https:// webhooks with (default: the system's)
    retry_base: Positive = 60.0  # the first retry after this; then doubled
    retry_max: Positive = 3600.0  # retries at most this far apart
    retry_for: Positive = 86_400.0  # then the delivery has failed
    max_webhooks: Count = 10  # per parent account

    def __post_init__(self) -> None:
        self.allow_networks = _networks("allow_networks", self.allow_networks)


def _default_plans() -> list[PlanConfig]:
    return [PlanConfig(name="default", default_proxies=["open", "world"])]


def _default_proxies() -> list[ProxyConfig]:
    return [
        ProxyConfig(name="open", port=31280, geo=True),
        ProxyConfig(name="world", port=31281, geo=True),
    ]


class Settings(_Section):
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""  # default: sqlite:///<data_dir>/meshproxy.sqlite3
    redis_url: str = ""  # set: usage counters, bans and change notifications in Redis
    shared: SharedConfig = field(default_factory=SharedConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    access_log: AccessLogConfig = field(default_factory=AccessLogConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    # The node's own log (start, errors, warnings): DEBUG, INFO, WARNING or ERROR
    # (read in any case: "info" is INFO).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    proxy_domain: str = "localhost"
    default_plan: str = "default"
    api: ApiConfig = field(default_factory=ApiConfig)
    ban: BanConfig = field(default_factory=BanConfig)
    proxy: ProxyBehaviour = field(default_factory=ProxyBehaviour)
    # Not given: the built-in plan "default" on every configured proxy (load_settings).
    plans: list[PlanConfig] = field(default_factory=_default_plans)
    proxies: list[ProxyConfig] = field(default_factory=_default_proxies)
    # A MaxMind-format .mmdb (GeoLite2-Country layout): at start, every egress address
    # without a `country` is tagged from it (see load_settings).
    geoip_database: Path | None = None
    # On a store with no parent account, `meshproxy serve` / `api` create one ("parent")
    # and print its credentials; off for an operator who provisions accounts by script.
    first_parent: bool = True

    def __post_init__(self) -> None:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'meshproxy.sqlite3'}"
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


# -- the types of the keys ------------------------------------------------------------


def _field_types(section: type[Struct]) -> dict[str, Any]:
    return {f.name: f.type for f in msgspec.structs.fields(section)}


def _unwrapped(kind: Any) -> list[Any]:
    """The types a key's type admits: Annotated's constraints dropped, a union split."""
    if get_origin(kind) is Annotated:
        return _unwrapped(get_args(kind)[0])
    if get_origin(kind) in (Union, types.UnionType):
        return [inner for arg in get_args(kind) for inner in _unwrapped(arg)]
    return [kind]


def _section_of(kind: Any) -> type[Struct] | None:
    """The section a key of this type holds (or a list of), if it holds one."""
    for option in _unwrapped(kind):
        if isinstance(option, type) and issubclass(option, Struct):
            return option
        if get_origin(option) is list:
            found = _section_of(get_args(option)[0])
            if found is not None:
                return found
    return None


def _section_at(key: tuple[str | int, ...], root: type[Struct]) -> type[Struct] | None:
    """The section a location points into (list indexes skipped)."""
    section: type[Struct] | None = root
    for part in key:
        if isinstance(part, int):
            continue
        if section is None or part not in _field_types(section):
            return None
        section = _section_of(_field_types(section)[part])
    return section


def _type_at(path: list[str]) -> Any:
    """The type of the key at `path` from the top (None: no such key)."""
    kind: Any = Settings
    for part in path:
        section = None if get_origin(kind) is list else _section_of(kind)
        if section is None:
            return None
        kind = _field_types(section).get(part)
        if kind is None:
            return None
    return kind


def _is_structured(kind: Any) -> bool:
    """A list or a table: given in the environment as JSON."""
    return any(
        get_origin(option) in (list, dict) or _section_of(option) is not None
        for option in _unwrapped(kind)
    )


# -- the environment ------------------------------------------------------------------

# What a variable may say for a boolean besides true/false/1/0 (msgspec's own).
BOOLEAN_WORDS = {"yes": True, "on": True, "y": True, "t": True,
                 "no": False, "off": False, "n": False, "f": False}


def _environment() -> dict[str, str]:
    """MESHPROXY_* variables by their upper-case name (the names are read in any case)."""
    return {k.upper(): k for k in os.environ if k.upper().startswith(ENV_PREFIX)}


def _environment_values() -> dict[str, Any]:
    """The MESHPROXY_* variables naming settings, as nested values like the file's: a list
    or table decoded from JSON, anything else a string for `convert` to read. A variable
    naming a section's key overrides that key of a variable giving the whole section.
    Variables naming no setting (MESHPROXY_CONFIG, the API client's) are not settings."""
    values: dict[str, Any] = {}
    bad: list[str] = []
    for upper, name in sorted(_environment().items()):  # a section before its keys
        path = upper.removeprefix(ENV_PREFIX).lower().split("__")
        if path[0] not in _field_types(Settings):
            continue
        kind = _type_at(path)  # None: an unknown key, reported as such by the validation
        value: Any = os.environ[name]
        if kind is not None and _is_structured(kind):
            try:
                value = json.loads(value)
            except ValueError as error:
                bad.append(
                    f"  {name}: not valid JSON ({error}); a list or table is given as JSON, "
                    f"e.g. {ENV_PREFIX}PROXY__ALLOW_DESTINATIONS='[\"127.0.0.0/8\"]'"
                )
                continue
        elif kind is not None and bool in _unwrapped(kind):
            value = BOOLEAN_WORDS.get(value.lower(), value)
        for part in reversed(path):
            value = {part: value}
        _merge(values, value)
    if bad:
        raise ConfigError("invalid configuration:\n" + "\n".join(bad))
    return values


def _merge(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    """`values` over `into`, table by table (a list or a plain value replaces)."""
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


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


# -- validation -----------------------------------------------------------------------

# msgspec's messages: "Expected `int` <= 65535 - at `$.api.https_port`" (the path is
# relative to the value converted), "Object contains unknown field `data_dri`".
_AT = re.compile(r"(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)
_STEP = re.compile(r"\.(?P<key>[^.\[]+)|\[(?P<index>\d+)\]")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<key>[^`]*)`")
_MISSING = re.compile(r"Object missing required field `(?P<key>[^`]*)`")


def _problem(
    error: msgspec.ValidationError, key: tuple[str | int, ...], root: type[Struct]
) -> Problem:
    """msgspec's error for the value at `key` (under `root`) as a Problem that names the
    key: the one a `_BadValue` blames, an unknown key with the closest known one."""
    match = _AT.fullmatch(str(error))
    assert match is not None  # the pattern matches any text
    message = match["message"]
    for step in _STEP.finditer(match["path"] or ""):
        key += (step["key"],) if step["key"] is not None else (int(step["index"]),)
    if isinstance(error.__cause__, _BadValue):
        return Problem((*key, error.__cause__.key), message)
    if (unknown := _UNKNOWN.fullmatch(message)) is not None:
        return Problem((*key, unknown["key"]), _unknown_key((*key, unknown["key"]), root))
    if (missing := _MISSING.fullmatch(message)) is not None:
        return Problem((*key, missing["key"]), "required, and not given")
    if message.startswith("Invalid enum value") and (choices := _choices(key, root)):
        return Problem(key, f"must be one of {', '.join(choices)}")
    return Problem(key, message.replace("`", ""))  # "Expected int <= 65535"


def _unknown_key(key: tuple[str | int, ...], root: type[Struct]) -> str:
    section = _section_at(key[:-1], root)
    known = [] if section is None else list(_field_types(section))
    import difflib  # only for a misspelt key: a node that starts never needs it

    close = difflib.get_close_matches(str(key[-1]), known, n=1)
    return "unknown key" + (f"; did you mean {close[0]}?" if close else "")


def _choices(key: tuple[str | int, ...], root: type[Struct]) -> list[str]:
    """The values a Literal key admits (log_level: DEBUG, INFO...)."""
    section = _section_at(key[:-1], root)
    kind = None if section is None else _field_types(section).get(str(key[-1]))
    return [str(arg) for option in _unwrapped(kind) if get_origin(option) is Literal
            for arg in get_args(option)]


def _path_from(kind: type[Any], value: Any) -> Path:
    """msgspec's hook for the one type it does not read itself."""
    if kind is Path and isinstance(value, str | PurePath):
        return Path(value)
    raise TypeError(f"Expected a path (a string), got `{type(value).__name__}`")


def _converted(
    value: Any, kind: Any, key: tuple[str | int, ...], root: type[Struct],
    problems: list[Problem],
) -> Any:
    """`value` as a `kind`, or None with its problem added; each entry of a list of
    sections on its own, so every bad entry is reported."""
    entry = _section_of(kind)
    if entry is not None and get_origin(kind) is list and isinstance(value, list):
        return [_converted(item, entry, (*key, index), root, problems)
                for index, item in enumerate(value)]
    try:
        return msgspec.convert(value, kind, strict=False, dec_hook=_path_from)
    except msgspec.ValidationError as error:
        problems.append(_problem(error, key, root))
        return None


def _report(problems: Sequence[Problem], environment: dict[str, str]) -> ConfigError:
    lines = []
    for key, message in problems:
        where = ".".join(str(part) for part in key) or "config"
        variable = _variable_for(key, environment) if key else None
        if variable is not None:
            where += f" (from {variable})"
        lines.append(f"  {where}: {message}")
    return ConfigError("invalid configuration:\n" + "\n".join(lines), problems)


def checked(kind: type[S], values: Mapping[str, Any]) -> S:
    """One section or entry (an EgressAddress, a ProxyConfig...) from plain values, checked
    as the file's are; ConfigError, its problems located within it, when it cannot be used."""
    problems: list[Problem] = []
    section = _converted(dict(values), kind, (), kind, problems)
    if problems:
        raise _report(problems, {})
    assert isinstance(section, kind)
    return section


def _settings_from(data: dict[str, Any]) -> Settings:
    """Every top-level key converted on its own (each bad one reported), then the checks
    of the whole."""
    problems: list[Problem] = []
    kinds = _field_types(Settings)
    if isinstance(data.get("log_level"), str):
        data["log_level"] = data["log_level"].upper()  # "info" is INFO
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in kinds:
            problems.append(Problem((key,), _unknown_key((key,), Settings)))
        else:
            values[key] = _converted(value, kinds[key], (key,), Settings, problems)
    if not problems:
        if "plans" not in values:
            # The built-in plan authorizes the configured proxies, whichever they are.
            proxies = values["proxies"] if "proxies" in values else _default_proxies()
            values["plans"] = [PlanConfig(name="default",
                                          default_proxies=[p.name for p in proxies])]
        try:
            return Settings(**values)
        except ValueError as error:
            problems.append(Problem((), str(error)))
    raise _report(problems, _environment())


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if any), apply `overrides` and then the environment, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    data.update(overrides)
    _merge(data, _environment_values())
    settings = _settings_from(data)
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
