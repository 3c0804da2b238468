"""`meshproxy client ...` (old spelling: `meshproxy api ...`): the ProxyMesh API from the
shell, over `meshproxy.client`. Imports nothing of the server.

Connection settings come from options, else the environment (MESHPROXY_API_URL,
MESHPROXY_API_USER, MESHPROXY_API_PASSWORD, MESHPROXY_API_CA_FILE, MESHPROXY_API_INSECURE),
else a TOML file (~/.config/meshproxy/client.toml, or --client-config / MESHPROXY_API_CONFIG).

Exit codes: 0 done; 1 aborted (a declined confirmation); 2 usage error (bad arguments,
missing credentials, unreadable config file); 3 the API refused (an error status, or an
answer the spec does not allow); 4 network error (connection, TLS, timeout).
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

import click

from meshproxy.cli.options import config_option, workers_option
from meshproxy.cli.output import emit_json, emit_record, emit_rows
from meshproxy.client import (
    ApiError,
    AuthenticationFailed,
    CertificateNotTrusted,
    Client,
    ClientError,
    FormError,
    MethodNotAllowed,
    NetworkError,
    NotFound,
    PlanUnavailable,
    RetryPolicy,
    SubAccount,
    Verify,
)
from meshproxy.client.connection import DEFAULT_TIMEOUT
from meshproxy.client.numbers import gb_text
from meshproxy.client.report import SORTS, UsageRow, to_csv, totals, usage_rows

EXIT_API = 3
EXIT_NETWORK = 4

CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "url": str,
    "user": str,
    "password": str,
    "ca_file": str,
    "verify": bool,
    "timeout": (int, float),
    "retries": int,
}
SUB_ACCOUNT_COLUMNS = (
    "username",
    "active",
    "monthly_bandwidth",
    "monthly_bandwidth_limit",
    "total_bandwidth",
    "total_bandwidth_limit",
    "email",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
username_option = click.option("--username", help="A sub-account (default: your own account).")


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "meshproxy" / "client.toml"


def read_config(path: Path, *, required: bool) -> dict[str, Any]:
    """The client config file's settings; a missing default file is just empty."""
    if not path.is_file():
        if required:
            raise click.UsageError(f"client config {path} does not exist")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise click.UsageError(f"client config {path}: {error}") from None
    for key, value in data.items():
        expected = CONFIG_KEYS.get(key)
        if expected is None:
            known = ", ".join(CONFIG_KEYS)
            raise click.UsageError(f"client config {path}: unknown key {key!r} (keys: {known})")
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            raise click.UsageError(f"client config {path}: {key} has the wrong type")
    if "ca_file" in data:  # relative to the file, like any path written in it
        data["ca_file"] = str(path.parent / Path(data["ca_file"]).expanduser())
    if "password" in data and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        click.echo(f"Warning: {path} holds a password and others may read it (chmod 600)", err=True)
    return data


def client_from(options: dict[str, Any], config: dict[str, Any]) -> Client:
    """Options (and the environment, which click folds into them) over the config file."""

    def pick(key: str) -> Any:
        return options[key] if options[key] is not None else config.get(key)

    url, user, password = pick("url"), pick("user"), pick("password")
    missing = [
        flag
        for flag, value in (("--api-url", url), ("--api-user", user), ("--api-password", password))
        if not value
    ]
    if missing:
        raise click.UsageError(
            f"missing {', '.join(missing)}: give options, MESHPROXY_API_URL/USER/PASSWORD, "
            f"or a client config file"
        )
    verify: Verify = False if options["insecure"] else pick("ca_file") or config.get("verify", True)
    timeout, retries = pick("timeout"), pick("retries")
    return Client(
        url,
        user,
        password,
        timeout=DEFAULT_TIMEOUT if timeout is None else float(timeout),
        verify=verify,
        retry=RetryPolicy() if retries is None else RetryPolicy(retries=int(retries)),
    )


@dataclass(frozen=True)
class ConnectionOptions:
    """The group's options, resolved only when a command calls the API (so that
    `meshproxy api sub --help` needs no credentials)."""

    options: dict[str, Any]
    config_path: Path | None

    def client(self) -> Client:
        path = self.config_path or default_config_path()
        return client_from(self.options, read_config(path, required=bool(self.config_path)))


@contextmanager
def _api() -> Iterator[Client]:
    options = click.get_current_context().find_object(ConnectionOptions)
    if options is None:  # only when a command is invoked outside the group
        raise click.UsageError("no API connection options")
    with options.client() as client:
        yield client


def _fail(error: ClientError) -> NoReturn:
    lines = [f"Error: {error}"]
    if isinstance(error, FormError):
        lines = ["Error: 400, the form is invalid:"]
        lines += [f"  {field}: {' '.join(msgs)}" for field, msgs in error.errors.items()]
    elif isinstance(error, AuthenticationFailed):
        lines.append("Check the API user and password (repeated failures ban your IP).")
    elif isinstance(error, PlanUnavailable) and error.retry_after is not None:
        lines.append(f"Try again in {error.retry_after:g} seconds.")
    elif isinstance(error, CertificateNotTrusted):
        lines.append(
            "The server's certificate is not trusted. For meshproxy's self-signed one, give "
            "its file: --ca-file data/tls/api-cert.pem (or MESHPROXY_API_CA_FILE)."
        )
    click.echo("\n".join(lines), err=True)
    raise click.exceptions.Exit(EXIT_NETWORK if isinstance(error, NetworkError) else EXIT_API)


class AliasedGroup(click.Group):
    """A group whose commands also answer to hidden aliases (`ip` for `ips`, ...)."""

    aliases: dict[str, str] = {}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))


class ApiGroup(AliasedGroup):
    """Every client error below this group ends the command with its exit code."""

    aliases = {"ip": "ips", "hostname": "hostnames", "proxy": "proxies"}

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClientError as error:
            _fail(error)


def _connection_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """How to reach the API: options, else the environment, else the client config file."""
    options = [
        click.option("--api-url", "url", envvar="MESHPROXY_API_URL", help="Base URL of the API."),
        click.option(
            "--api-user", "user", envvar="MESHPROXY_API_USER", help="Parent account username."
        ),
        click.option(
            "--api-password",
            "password",
            envvar="MESHPROXY_API_PASSWORD",
            help="Parent account password.",
        ),
        click.option(
            "--ca-file",
            envvar="MESHPROXY_API_CA_FILE",
            type=click.Path(exists=True, dir_okay=False),
            help="CA certificate(s) to trust, e.g. meshproxy's generated data/tls/api-cert.pem.",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            envvar="MESHPROXY_API_INSECURE",
            help="Skip TLS verification.",
        ),
        click.option(
            "--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds [30]."
        ),
        click.option("--retries", type=click.IntRange(min=0), help="Retries of reads [2]."),
        click.option(
            "--client-config",
            "client_config",
            envvar="MESHPROXY_API_CONFIG",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Client config TOML [~/.config/meshproxy/client.toml].",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.group("client", cls=ApiGroup)
@_connection_options
@click.pass_context
def client_group(ctx: click.Context, /, client_config: Path | None, **options: Any) -> None:
    """Call a ProxyMesh-compatible API as a parent account.

    Connection options, or MESHPROXY_API_URL/USER/PASSWORD, or a client config file
    (--client-config). Exit codes: 2 usage error, 3 API error, 4 network error.
    """
    ctx.obj = ConnectionOptions(options, client_config)


# --- sub-accounts -----------------------------------------------------------------------


@client_group.group()
def sub() -> None:
    """Sub-accounts: create, edit, get, list, activate, deactivate, delete, stats."""


def _sub_account_fields(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--password", help="The sub-account's password."),
        click.option("--first-name"),
        click.option("--last-name"),
        click.option("--email"),
        click.option("--monthly-limit", type=click.IntRange(min=0), help="GB a month, 0 = none."),
        click.option("--total-limit", type=click.IntRange(min=0), help="GB in all, 0 = none."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _details(account: SubAccount, as_json: bool) -> None:
    emit_record(account.to_json(), as_json=as_json)


@sub.command("create")
@click.argument("username")
@_sub_account_fields
@json_option
def sub_create(username: str, as_json: bool, **fields: Any) -> None:
    """Create a sub-account."""
    with _api() as client:
        _details(client.create_sub_account(username, **fields), as_json)


@sub.command("edit")
@click.argument("username")
@_sub_account_fields
@json_option
def sub_edit(username: str, as_json: bool, **fields: Any) -> None:
    """Edit a sub-account: only the options given change; "" clears a name or the email."""
    with _api() as client:
        _details(client.edit_sub_account(username, **fields), as_json)


def _by_username(name: str, call: Callable[[Client, str], SubAccount], summary: str) -> None:
    @sub.command(name, help=summary)
    @click.argument("username")
    @json_option
    def command(username: str, as_json: bool) -> None:
        with _api() as client:
            _details(call(client, username), as_json)


_by_username("get", lambda c, u: c.get_sub_account(u), "Show a sub-account's usage and limits.")
_by_username("activate", lambda c, u: c.activate(u), "Activate a deactivated sub-account.")
_by_username(
    "deactivate", lambda c, u: c.deactivate(u), "Deactivate a sub-account (its proxy use: 402)."
)


@sub.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def sub_delete(username: str, yes: bool, as_json: bool) -> None:
    """Delete a sub-account and all its data, for good."""
    if not yes:
        click.confirm(f"Delete {username} and all its data for good?", abort=True)
    with _api() as client:
        client.delete_sub_account(username)
    _done({"username": username, "deleted": True}, as_json)


@sub.command("list")
@click.option("--offset", type=click.IntRange(min=0), help="First row of one page.")
@click.option("--limit", type=click.IntRange(1, 1000), help="Rows of one page.")
@json_option
def sub_list(offset: int | None, limit: int | None, as_json: bool) -> None:
    """List your sub-accounts by username (all, or one page; meshproxy extension)."""
    with _api() as client:
        if offset is None and limit is None:
            accounts = client.all_sub_accounts()
        else:
            accounts = client.list_sub_accounts(offset=offset or 0, limit=limit or 100).sub_accounts
    emit_rows([a.to_json() for a in accounts], SUB_ACCOUNT_COLUMNS, as_json=as_json)


STATS_COLUMNS = (
    "day", "requests", "origin_2xx", "origin_3xx", "origin_4xx", "origin_5xx",
    "proxy_4xx", "proxy_5xx", "tunnels", "aborted", "bytes", "top_host",
)  # fmt: skip


@sub.command("stats")
@click.argument("username", required=False)
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True)
@json_option
def sub_stats(username: str | None, days: int, as_json: bool) -> None:
    """Request statistics per day: requests, outcomes, bytes and top hosts of your account,
    or of a sub-account (meshproxy extension)."""
    with _api() as client:
        stats = client.account_stats(username, days=days)
    if as_json:
        emit_json([day.to_json() for day in stats])
        return
    rows = [
        {**day.counters, "day": day.day, "top_host": day.hosts[0][0] if day.hosts else ""}
        for day in stats
    ]
    emit_rows(rows, STATS_COLUMNS, as_json=False)


# --- authenticated IPs and hostnames ----------------------------------------------------


def _done(record: dict[str, Any], as_json: bool) -> None:
    emit_record(record, as_json=as_json)


def _authenticated_group(
    name: str,
    item: str,
    items: str,
    what: str,
    add: Callable[[Client, str, str | None], str],
    delete: Callable[[Client, str, str | None], None],
    listing: Callable[[Client, str | None], list[str]],
) -> None:
    """list/add/delete commands for authenticated IPs or hostnames (the same shape)."""
    group = click.Group(name, help=f"Authenticated {what}s: list, add, delete.")
    client_group.add_command(group)

    @group.command("list", help=f"List authenticated {what}s.")
    @username_option
    @json_option
    def list_command(username: str | None, as_json: bool) -> None:
        with _api() as client:
            values = listing(client, username)
        if as_json:
            emit_json({items: values})
        else:
            emit_rows([{item: value} for value in values], [item], as_json=False)

    @group.command("add", help=f"Authenticate an {what} (400 if any account has it).")
    @click.argument("value", metavar=item.upper())
    @username_option
    @json_option
    def add_command(value: str, username: str | None, as_json: bool) -> None:
        with _api() as client:
            _done({item: add(client, value, username)}, as_json)

    @group.command("delete", help=f"Remove an authenticated {what}.")
    @click.argument("value", metavar=item.upper())
    @username_option
    @json_option
    def delete_command(value: str, username: str | None, as_json: bool) -> None:
        with _api() as client:
            delete(client, value, username)
        _done({item: value, "deleted": True}, as_json)


_authenticated_group(
    "ips",
    "ip",
    "ips",
    "IP",
    add=lambda c, ip, username: c.add_ip(ip, username=username),
    delete=lambda c, ip, username: c.delete_ip(ip, username=username),
    listing=lambda c, username: c.list_ips(username=username),
)
_authenticated_group(
    "hostnames",
    "domain",
    "domains",
    "hostname",
    add=lambda c, domain, username: c.add_hostname(domain, username=username),
    delete=lambda c, domain, username: c.delete_hostname(domain, username=username),
    listing=lambda c, username: c.list_hostnames(username=username),
)


# --- proxies and geo --------------------------------------------------------------------


@client_group.group()
def proxies() -> None:
    """Proxies your account may use: list, add, delete."""


@proxies.command("list")
@json_option
def proxies_list(as_json: bool) -> None:
    """List your authorized proxies as domain:port."""
    with _api() as client:
        names = client.proxies()
    if as_json:
        emit_json({"proxies": names})
    else:
        emit_rows([{"proxy": name} for name in names], ["proxy"], as_json=False)


@proxies.command("add")
@click.argument("proxy")
@json_option
def proxies_add(proxy: str, as_json: bool) -> None:
    """Authorize a proxy: host, host.domain or host.domain:port (402 over the plan)."""
    with _api() as client:
        _done({"proxy": client.add_proxy(proxy)}, as_json)


@proxies.command("delete")
@click.argument("proxy")
@json_option
def proxies_delete(proxy: str, as_json: bool) -> None:
    """Remove a proxy authorization."""
    with _api() as client:
        client.delete_proxy(proxy)
    _done({"proxy": proxy, "deleted": True}, as_json)


@client_group.command("geoips")
@click.argument("proxy", default="open")
@json_option
def geoips(proxy: str, as_json: bool) -> None:
    """Egress IP counts by country code of a geo proxy (open, world)."""
    with _api() as client:
        counts = client.geoips(proxy)
    if as_json:
        emit_json(counts)
        return
    rows = [{"country": c, "ips": n} for c, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    emit_rows(rows, ["country", "ips"], as_json=False)


@client_group.command("request")
@click.argument("method", type=click.Choice(["GET", "POST"], case_sensitive=False))
@click.argument("path")
@click.option("-f", "--field", "fields", multiple=True, metavar="KEY=VALUE", help="Repeatable.")
def raw_request(method: str, path: str, fields: Sequence[str]) -> None:
    """Any API call, low level: prints the JSON answer (null when empty)."""
    data: dict[str, str] = {}
    for pair in fields:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--field")
        data[key] = value
    with _api() as client:
        emit_json(client.request(method, path, data))


# --- the billing run --------------------------------------------------------------------


def _usernames(arguments: Sequence[str], files: Sequence[IO[str]]) -> list[str]:
    names = list(arguments)
    for handle in files:
        for line in handle:
            name = line.split("#", 1)[0].strip()
            if name:
                names.append(name)
    return list(dict.fromkeys(names))  # once each, first order kept


def _report_accounts(
    client: Client, names: list[str], page_size: int
) -> tuple[list[SubAccount], int]:
    """The accounts to report on, and how many named ones could not be read."""
    if not names:
        try:
            return client.all_sub_accounts(page_size=page_size), 0
        except (NotFound, MethodNotAllowed) as error:
            raise click.UsageError(
                f"this API has no sub-account list (GET /api/sub/list/ answered "
                f"{error.status}): name the sub-accounts as arguments or in --usernames-file"
            ) from None
    found: list[SubAccount] = []
    for name in names:
        try:
            found.append(client.get_sub_account(name))
        except ApiError as error:
            if error.status not in (403, 404):
                raise
            click.echo(f"Warning: {name}: {error}", err=True)
    return found, len(names) - len(found)


TABLE_COLUMNS = (
    "username",
    "active",
    "monthly GB",
    "monthly limit",
    "monthly %",
    "total GB",
    "total limit",
    "total %",
    "over limit",
)


def _table_cells(row: UsageRow) -> dict[str, Any]:
    def limit(value: int) -> str:
        return str(value) if value else "-"

    def percent(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}%"

    return {
        "username": row.username,
        "active": "yes" if row.active else "no",
        "monthly GB": gb_text(row.monthly_gb),
        "monthly limit": limit(row.monthly_limit_gb),
        "monthly %": percent(row.monthly_percent),
        "total GB": gb_text(row.total_gb),
        "total limit": limit(row.total_limit_gb),
        "total %": percent(row.total_percent),
        "over limit": "OVER" if row.over_limit else "",
    }


@client_group.command("usage-report")
@click.argument("usernames", nargs=-1)
@click.option(
    "--usernames-file",
    type=click.File("r"),
    multiple=True,
    help="One username a line ('-' for stdin, '#' comments); for APIs without sub/list.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--sort", type=click.Choice(list(SORTS)), default="monthly", show_default=True)
@click.option("--page-size", type=click.IntRange(1, 1000), default=100, show_default=True)
def usage_report(
    usernames: tuple[str, ...],
    usernames_file: tuple[IO[str], ...],
    fmt: str,
    as_json: bool,
    sort: str,
    page_size: int,
) -> None:
    """Every sub-account's monthly and total usage against its limits (the billing run).

    Without usernames it lists all sub-accounts (meshproxy's GET /api/sub/list/); names
    that cannot be read are warned about and make the exit code 3 after the report.
    """
    with _api() as client:
        names = _usernames(usernames, usernames_file)
        accounts, unreadable = _report_accounts(client, names, page_size)
    rows = usage_rows(accounts, sort)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        emit_json([row.as_dict() for row in rows])
    elif fmt == "csv":
        click.echo(to_csv(rows), nl=False)
    else:
        sums = totals(rows)
        title = (
            f"{sums['sub_accounts']} sub-accounts: {gb_text(sums['monthly_gb'])} GB this period, "
            f"{gb_text(sums['total_gb'])} GB in all, {sums['over_limit']} over a limit"
        )
        cells = [_table_cells(row) for row in rows]
        emit_rows(cells, TABLE_COLUMNS, as_json=False, title=title)
    if unreadable:
        raise click.exceptions.Exit(EXIT_API)


# --- the old spelling -------------------------------------------------------------------


@click.group(cls=ApiGroup, invoke_without_command=True)
@config_option
@workers_option
@_connection_options
@click.pass_context
def api(
    ctx: click.Context,
    /,
    config_path: Path | None,
    workers: int,
    client_config: Path | None,
    **options: Any,
) -> None:
    """Old spelling of `api-node` (no subcommand) and of `client` (a subcommand).

    \b
    meshproxy api [--config FILE] [--workers N]
        the same as `meshproxy api-node`: run an API node (the API and the dashboard,
        no proxies) until SIGTERM/SIGINT.
    meshproxy api [connection options] SUBCOMMAND ...
        the same as `meshproxy client ...`: the API client.
    """
    if ctx.invoked_subcommand is None:
        from meshproxy.cli.api_node import run_api_node  # the server, only when serving

        run_api_node(config_path, workers)
        return
    ctx.obj = ConnectionOptions(options, client_config)


api.commands = client_group.commands  # one set of client commands under both names
