"""`meshproxy admin logs`: search the access log and its rotated files.

The abuse-report question, "who used egress 203.0.113.7 at 14:02?":

    meshproxy admin logs --egress 203.0.113.7 --at 2026-12-03T14:02:00Z
"""

from __future__ import annotations

from pathlib import Path

import click

from meshproxy.cli.options import config_option, settings_from
from meshproxy.cli.output import emit_rows

COLUMNS = [
    "time", "account", "parent", "client", "egress", "method", "target", "status",
    "bytes_in", "bytes_out", "duration_ms", "error",
]


def _moment(value: str | None, option: str) -> float | None:
    from meshproxy.accesslog.search import parse_time

    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise click.BadParameter(
            "give an ISO 8601 time (2026-12-03T14:02:00Z; no zone: UTC) or epoch seconds",
            param_hint=option,
        ) from None


@click.command("logs")
@click.option("--egress", help="Lines whose egress (source IP to the origin) is this address.")
@click.option("--account", help="An account's lines (a parent's: its sub-accounts' too).")
@click.option("--client", help="Lines from this client IP.")
@click.option("--since", help="From this time (ISO 8601, UTC without a zone, or epoch seconds).")
@click.option("--until", help="Up to this time.")
@click.option("--at", "at", help="Around this time: --since and --until at ± --window.")
@click.option("--window", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds either side of --at.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the last N lines found.")
@click.option("--file", "log_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The access log to read (default: [access_log] path, in data_dir).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@config_option
def logs(
    egress: str | None,
    account: str | None,
    client: str | None,
    since: str | None,
    until: str | None,
    at: str | None,
    window: float,
    limit: int | None,
    log_file: Path | None,
    as_json: bool,
    config_path: Path | None,
) -> None:
    """Search the access log (rotated files too) by egress, account, client and time.

    A line matches a time window when its request or tunnel was open during it."""
    from meshproxy.accesslog.search import Query, log_files, search
    from meshproxy.accesslog.writer import log_path

    start, end = _moment(since, "--since"), _moment(until, "--until")
    if at is not None:
        if start is not None or end is not None:
            raise click.UsageError("--at replaces --since and --until: give one or the other")
        moment = _moment(at, "--at")
        assert moment is not None
        start, end = moment - window, moment + window
    if log_file is None:
        settings = settings_from(config_path)
        if str(settings.access_log.path) == "-":
            raise click.ClickException("the access log goes to stdout ([access_log] path = "
                                       '"-"): give the file it is kept in with --file')
        log_file = log_path(settings)
    files = log_files(log_file)
    if not files:
        raise click.ClickException(f"no access log at {log_file}")
    query = Query(egress=egress, account=account, client=client, since=start, until=end)
    found = list(search(files, query))
    if limit is not None:
        found = found[-limit:]
    emit_rows(found, COLUMNS, as_json=as_json, title=f"Access log ({len(found)} lines)")
