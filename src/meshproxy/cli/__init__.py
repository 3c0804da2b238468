"""The `meshproxy` command: one click group; each role or tool is a subcommand module,
imported only when that subcommand runs (a proxy node never loads the API, the dashboard
or the API client; `meshproxy client ...` never loads the server)."""

from __future__ import annotations

import importlib
from typing import Any

import click

from meshproxy import __version__

# name -> "module:attribute"; `api` is the old spelling of both `api-node` and `client`.
COMMANDS = {
    "admin": "meshproxy.cli.admin:admin",
    "api": "meshproxy.cli.api_client:api",
    "api-node": "meshproxy.cli.api_node:api_node",
    "client": "meshproxy.cli.api_client:client_group",
    "db": "meshproxy.cli.db:db",
    "proxy": "meshproxy.cli.proxy:proxy",
    "serve": "meshproxy.cli.serve:serve",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's lazy-loading pattern)."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(__version__, prog_name="meshproxy")
def cli() -> None:
    """meshproxy: a self-hosted rotating proxy service (ProxyMesh-compatible API)."""


def main() -> None:
    cli()
