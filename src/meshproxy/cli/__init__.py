"""The `meshproxy` command: one click group; each role or tool is a subcommand module,
imported only when that subcommand runs (a proxy node never loads the API, the dashboard
or the API client; `meshproxy client ...` never loads the server)."""

from __future__ import annotations

import importlib
from typing import Any

import click

from meshproxy import __version__

# name -> ("module:attribute", the line `meshproxy --help` shows, so that it imports none).
COMMANDS = {
    "admin": ("meshproxy.cli.admin:admin", "Operator commands: accounts, plans, bans, logs…"),
    "api": ("meshproxy.cli.api_client:api", "Old spelling of `api-node` and of `client`."),
    "api-node": ("meshproxy.cli.api_node:api_node", "Run an API node: the API and dashboard."),
    "client": ("meshproxy.cli.api_client:client_group", "The API client, as a parent account."),
    "db": ("meshproxy.cli.db:db", "Database migrations and usage folding."),
    "proxy": ("meshproxy.cli.proxy:proxy", "Run a proxy node: the proxy listeners only."),
    "serve": ("meshproxy.cli.serve:serve", "Run the API, the dashboard and the proxies."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's lazy-loading pattern)."""

    def __init__(
        self, *args: Any, lazy_commands: dict[str, tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        target = self.lazy_commands[cmd_name][0]
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, summary) for name, (_, summary) in sorted(self.lazy_commands.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(__version__, prog_name="meshproxy")
def cli() -> None:
    """meshproxy: a self-hosted rotating proxy service (ProxyMesh-compatible API)."""


def main() -> None:
    cli()
