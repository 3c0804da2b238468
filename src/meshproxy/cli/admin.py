"""`meshproxy admin ...`: the operator's commands (parent accounts, plans, proxies, usage)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import make_url

from meshproxy.cli.audit import audit
from meshproxy.cli.bans import bans
from meshproxy.cli.egress import egress
from meshproxy.cli.logs import logs
from meshproxy.cli.options import config_option, settings_from, store_unreachable
from meshproxy.cli.output import emit_record, emit_rows
from meshproxy.config import Settings
from meshproxy.control import operator
from meshproxy.control.audit import acting_from, cli_origin
from meshproxy.domain.proxies import proxy_address
from meshproxy.store import Store, StoreUnavailable

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _require_database(settings: Settings) -> None:
    """An SQLite database that does not exist is a wrong directory or config, not a new
    install to create silently (an empty store would then answer "no account named ...")."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    database = Path(url.database)
    if not database.exists():
        raise click.ClickException(
            f"no database at {database} (data_dir: {settings.data_dir.absolute()}): run this "
            "where `meshproxy serve` runs, or name its configuration (--config, "
            "MESHPROXY_CONFIG) or data directory (MESHPROXY_DATA_DIR); "
            "`meshproxy db upgrade` creates a new, empty database"
        )


@contextmanager
def _opened(config_path: Path | None) -> Iterator[tuple[Settings, Store]]:
    """Settings and an open store; operator and store errors become clean CLI errors."""
    settings = settings_from(config_path)
    _require_database(settings)
    try:
        store = Store.open(settings.database_url)
    except StoreUnavailable as error:
        raise store_unreachable(error) from None
    try:
        with acting_from(cli_origin()):
            yield settings, store
    except operator.OperatorError as error:
        raise click.ClickException(str(error)) from None
    except StoreUnavailable as error:
        raise store_unreachable(error) from None
    finally:
        store.close()


@click.group()
def admin() -> None:
    """Operator commands: parent accounts, plans, proxies, usage, bans, the access log."""


admin.add_command(bans)
admin.add_command(egress)
admin.add_command(logs)
admin.add_command(audit)


@admin.command("create")
@click.argument("username")
@click.option("--password", help="Password (default: a random one, printed once).")
@click.option("--plan", help="Plan name (default: the configured default plan).")
@click.option("--billing-day", type=int, help="Day of month (1-28) the billing period starts.")
@click.option("--email")
@config_option
@json_option
def create(
    username: str,
    password: str | None,
    plan: str | None,
    billing_day: int | None,
    email: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Create a parent account."""
    with _opened(config_path) as (settings, store):
        new = operator.create_parent(
            settings,
            store,
            username,
            password=password,
            plan=plan,
            billing_day=billing_day,
            email=email,
        )
        summary = operator.account_summary(store, new.account, datetime.now(UTC))
        # A password the operator chose is not echoed (terminals and CI logs keep output).
        emit_record(
            {**summary, "password": new.password} if new.generated else summary,
            as_json=as_json,
        )


@admin.command("list")
@config_option
@json_option
def list_parents(config_path: Path | None, as_json: bool) -> None:
    """List parent accounts."""
    with _opened(config_path) as (_settings, store):
        now = datetime.now(UTC)
        rows = [
            operator.account_summary(store, account, now)
            for account in store.accounts.list(parents=True)
        ]
        columns = ["username", "active", "plan", "billing_day", "sub_accounts"]
        columns += ["monthly_bandwidth", "monthly_bandwidth_limit"]
        columns += ["total_bandwidth", "total_bandwidth_limit"]
        emit_rows(rows, columns, as_json=as_json, title="Parent accounts")


@admin.command("show")
@click.argument("username")
@config_option
@json_option
def show(username: str, config_path: Path | None, as_json: bool) -> None:
    """Show a parent account."""
    with _opened(config_path) as (_settings, store):
        account = operator.get_parent(store, username)
        emit_record(operator.account_summary(store, account, datetime.now(UTC)), as_json=as_json)


@admin.command("usage")
@click.argument("username")
@config_option
@json_option
def usage(username: str, config_path: Path | None, as_json: bool) -> None:
    """Show any account's usage (parent or sub-account)."""
    with _opened(config_path) as (_settings, store):
        account = store.accounts.get(username)
        if account is None:
            raise operator.OperatorError(f"no account named {username!r}")
        emit_record(operator.account_summary(store, account, datetime.now(UTC)), as_json=as_json)


@admin.command("set")
@click.argument("username")
@click.option("--plan")
@click.option("--billing-day", type=int)
@click.option("--monthly-limit", type=int, help="GB per billing period; 0 = no limit.")
@click.option("--total-limit", type=int, help="GB over all time; 0 = no limit.")
@click.option("--password")
@config_option
@json_option
def set_parent(
    username: str,
    plan: str | None,
    billing_day: int | None,
    monthly_limit: int | None,
    total_limit: int | None,
    password: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Change a parent's plan, billing day, own limits or password."""
    with _opened(config_path) as (settings, store):
        account = operator.update_parent(
            settings,
            store,
            username,
            plan=plan,
            billing_day=billing_day,
            monthly_limit=monthly_limit,
            total_limit=total_limit,
            password=password,
        )
        emit_record(operator.account_summary(store, account, datetime.now(UTC)), as_json=as_json)


def _set_active(username: str, config_path: Path | None, as_json: bool, active: bool) -> None:
    with _opened(config_path) as (settings, store):
        account = operator.update_parent(settings, store, username, active=active)
        emit_record(operator.account_summary(store, account, datetime.now(UTC)), as_json=as_json)


@admin.command("deactivate")
@click.argument("username")
@config_option
@json_option
def deactivate(username: str, config_path: Path | None, as_json: bool) -> None:
    """Deactivate a parent account (its proxies answer 402 to it and its sub-accounts)."""
    _set_active(username, config_path, as_json, active=False)


@admin.command("activate")
@click.argument("username")
@config_option
@json_option
def activate(username: str, config_path: Path | None, as_json: bool) -> None:
    """Re-activate a parent account."""
    _set_active(username, config_path, as_json, active=True)


@admin.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
def delete(username: str, yes: bool, config_path: Path | None) -> None:
    """Delete a parent account with all its sub-accounts and data, for good."""
    with _opened(config_path) as (_settings, store):
        operator.get_parent(store, username)
        if not yes:
            click.confirm(
                f"Delete {username} and all its sub-accounts for good?", abort=True, err=True
            )
        operator.delete_parent(store, username)
        click.echo(f"deleted {username}")


@admin.command("plans")
@config_option
@json_option
def plans(config_path: Path | None, as_json: bool) -> None:
    """List the configured plans."""
    settings = settings_from(config_path)
    rows = [plan.model_dump() for plan in settings.plans]
    columns = ["name", "max_sub_accounts", "max_proxies", "default_proxies"]
    emit_rows(rows, columns, as_json=as_json, title="Plans")


@admin.command("proxies")
@config_option
@json_option
def proxies(config_path: Path | None, as_json: bool) -> None:
    """List the configured proxies; `health`: their upstream egresses as the proxy node
    on this host sees them ([admin] listener; "unknown" when none answers)."""
    from meshproxy.control.egress_health import read_egress_health, summary

    settings = settings_from(config_path)
    report = read_egress_health(settings)
    rows = [
        {
            "name": proxy.name,
            "address": proxy_address(proxy),
            "listen": f"{proxy.listen}:{proxy.bind_port}",
            "geo": proxy.geo,
            "egress": [egress.label for egress in proxy.egress],  # never an upstream's password
            "health": summary(proxy, report),
        }
        for proxy in settings.proxies
    ]
    emit_rows(
        rows, ["name", "address", "listen", "geo", "egress", "health"], as_json=as_json,
        title="Proxies",
    )


@admin.command("unban")
@click.argument("ip")
@config_option
def unban(ip: str, config_path: Path | None) -> None:
    """Lift an authentication-failure ban on a client IP."""
    with _opened(config_path) as (_settings, store):
        operator.lift_ban(store, ip)
        click.echo(f"unbanned {ip}")
