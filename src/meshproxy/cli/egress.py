"""`meshproxy admin egress import`: a provider's proxy list as egress entries of a pool.

Providers hand resellers lists of `host:port:user:pass` lines (or `host:port` for
IP-authorized ones). The command turns them into `{ upstream = "...", name = "...",
country = "..." }` entries, checked with the configuration's own rules (against the
proxy's current pool too, so no name is taken twice), and PRINTS them, one inline
table a line, to paste into that proxy's `egress = [ ... ]` (docs/egress.md). It never
rewrites the configuration file: TOML written back by a program loses the operator's
comments and layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO
from urllib.parse import quote

import click

from meshproxy.cli.options import config_option, settings_from
from meshproxy.config import ConfigError, EgressAddress, ProxyConfig, checked, upstream_parts


class ListError(ValueError):
    """A line of the list that cannot be used; the message names it."""


def entries_from_lines(
    lines: list[str], *, scheme: str, country: str | None, name: str | None
) -> list[EgressAddress]:
    """One entry per `host:port[:user:pass]` line (blank lines and # comments skipped; a
    password may hold colons). `name`: entries are named NAME-1, NAME-2 ... in order;
    None: each is named host:port."""
    found: list[EgressAddress] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":", 3)
        if len(parts) not in (2, 4) or not all(parts[:2]):
            raise ListError(f"line {number}: expected host:port or host:port:user:pass, "
                            f"got {line!r}")
        host, port = parts[0], parts[1]
        auth = ""
        if len(parts) == 4:
            auth = f"{quote(parts[2], safe='')}:{quote(parts[3], safe='')}@"
        try:
            entry = checked(EgressAddress, {
                "upstream": f"{scheme}://{auth}{host}:{port}",
                "name": f"{name}-{len(found) + 1}" if name else None,
                "country": country,
            })
        except ConfigError as error:
            raise ListError(f"line {number}: {_reasons(error)}") from None
        found.append(entry)
    return found


def _reasons(error: ConfigError) -> str:
    return "; ".join(problem.message for problem in error.problems)


def toml_line(entry: EgressAddress) -> str:
    """An inline table; JSON strings are TOML basic strings."""
    fields = [("upstream", entry.upstream), ("name", entry.label), ("country", entry.country)]
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in fields if v) + " },"


def _address(entry: EgressAddress) -> str:
    assert entry.upstream is not None
    return upstream_parts(entry.upstream).default_name


@click.group()
def egress() -> None:
    """The proxies' egress pools."""


@egress.command("import")
@click.argument("list_file", type=click.File("r", encoding="utf-8"))
@click.option("--proxy", "proxy_name", required=True,
              help="The configured proxy whose pool the entries are for.")
@click.option("--scheme", type=click.Choice(["http", "https", "socks5"]), default="http",
              show_default=True, help="How the provider's proxies are spoken to.")
@click.option("--country", help="Two-letter country code for every entry.")
@click.option("--name", help="Name the entries NAME-1, NAME-2 ... (default: host:port).")
@config_option
def import_list(
    list_file: TextIO, proxy_name: str, scheme: str, country: str | None,
    name: str | None, config_path: Path | None,
) -> None:
    """Print a provider's host:port:user:pass list (LIST_FILE, - for stdin) as egress
    entries for PROXY's pool, to paste into its `egress = [ ... ]`."""
    settings = settings_from(config_path)
    proxy = next((p for p in settings.proxies if p.name == proxy_name), None)
    if proxy is None:
        known = ", ".join(p.name for p in settings.proxies)
        raise click.ClickException(f"no proxy named {proxy_name} (configured: {known})")
    try:
        entries = entries_from_lines(list_file.readlines(), scheme=scheme, country=country,
                                     name=name)
    except ListError as error:
        raise click.ClickException(str(error)) from None
    if not entries:
        raise click.ClickException("the list holds no proxy lines")
    present = {_address(e): e.label for e in proxy.egress if e.upstream is not None}
    for entry in entries:
        if _address(entry) in present:
            raise click.ClickException(f"{_address(entry)} is in proxy {proxy.name}'s pool "
                                       f"already (as {present[_address(entry)]})")
    try:  # the pool it joins: no name twice
        checked(ProxyConfig, {"name": proxy.name, "egress": [*proxy.egress, *entries]})
    except ConfigError as error:
        raise click.ClickException(f"proxy {proxy.name}: {_reasons(error)}") from None
    click.echo(f"# {len(entries)} entries for [[proxies]] name = {json.dumps(proxy.name)}: "
               "paste them into its egress = [ ... ]")
    for entry in entries:
        click.echo(toml_line(entry))
