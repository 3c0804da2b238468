"""The `meshproxy` command: one click group; each role or tool is a subcommand module."""

from __future__ import annotations

import click

from meshproxy import __version__
from meshproxy.cli.admin import admin
from meshproxy.cli.api_client import api
from meshproxy.cli.db import db
from meshproxy.cli.proxy import proxy
from meshproxy.cli.serve import serve


@click.group()
@click.version_option(__version__, prog_name="meshproxy")
def cli() -> None:
    """meshproxy: a self-hosted rotating proxy service (ProxyMesh-compatible API)."""


cli.add_command(admin)
cli.add_command(api)
cli.add_command(db)
cli.add_command(proxy)
cli.add_command(serve)


def main() -> None:
    cli()
