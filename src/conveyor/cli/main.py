"""``conveyor``: the entry point and its commands."""

from __future__ import annotations

import sys

import click

from conveyor import __version__
from conveyor.cli import client, run, validate
from conveyor.config import SettingsError, load_settings


@click.group()
@click.version_option(__version__, prog_name="conveyor")
def cli() -> None:
    """Conveyor: continuous delivery on the CodePipeline model, on your own machines."""


@cli.command()
@click.option("--host", help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [default: 8470].")
@click.option(
    "--home", help="Folder for state and artifacts [default: ./.conveyor, or $CONVEYOR_HOME]."
)
@click.option("--database", help="postgresql://… URL [default: SQLite under the home folder].")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines for people, or one JSON object a line for log shippers.",
)
def server(
    host: str | None, port: int | None, home: str | None, database: str | None, log_format: str
) -> None:
    """Serve the CodePipeline API until interrupted (SIGINT or SIGTERM)."""
    from conveyor.home import HomeInUse
    from conveyor.logformat import configure_logging
    from conveyor.server import CannotServe, serve
    from conveyor.store import StoreUnavailable

    try:
        settings = load_settings(
            {"host": host, "port": port, "home": home, "database_url": database}
        )
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(log_format)
    try:
        serve(settings, __version__)
    except (HomeInUse, CannotServe, StoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc


client.register(cli)
validate.register(cli)
run.register(cli)


def main() -> None:
    sys.exit(cli())
