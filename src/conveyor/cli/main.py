"""``conveyor``: the entry point and its commands.

Start-up is kept short, since ``conveyor --version``, ``--help`` and every shell-completion
answer run it: a command's module is imported only when the command runs (or all of them, to
list them), and the modules import the database, the engine, the server and boto3 only inside
the commands that need them.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from conveyor import __version__

# The habits of gh, docker and terraform: -h as well as --help, on every command.
CONTEXT = {"help_option_names": ["-h", "--help"]}
PROG = "conveyor"
COMPLETE_VAR = "_CONVEYOR_COMPLETE"  # what `conveyor completion` scripts set
# Each module's ``register(group)`` adds these commands (a test keeps the lists true).
MODULES: Mapping[str, Sequence[str]] = {
    "conveyor.cli.run": ("run",),
    "conveyor.cli.validate": ("validate",),
    "conveyor.cli.completion": ("completion",),
    "conveyor.cli.worker": ("worker",),
    "conveyor.cli.users": ("user", "group", "key", "audit", "secret"),
    "conveyor.cli.notifications": ("notifications",),
    "conveyor.cli.client": (
        "list",
        "show",
        "create",
        "update",
        "delete",
        "start",
        "stop",
        "retry",
        "approve",
        "reject",
        "enable",
        "disable",
        "executions",
        "history",
        "logs",
        "watch",
    ),
}


# How a long-running command (server, worker) writes its log.
LOG_FORMAT = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines for people, or one JSON object a line for log shippers.",
)


class Commands(click.Group):
    """A group whose command modules are imported when one of their commands is wanted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()

    def _load(self, module: str) -> None:
        if module not in self._loaded:
            self._loaded.add(module)
            importlib.import_module(module).register(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module, names in MODULES.items():
            if cmd_name in names:
                self._load(module)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in MODULES:
            self._load(module)
        return super().list_commands(ctx)


def no_color() -> bool:
    """Whether the user asked for no colours (https://no-color.org: set and not empty)."""
    return bool(os.environ.get("NO_COLOR"))


@click.group(cls=Commands, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="conveyor")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Conveyor: continuous delivery on the CodePipeline model, on your own machines."""
    if no_color():
        ctx.color = False  # every command's click.echo leaves the ANSI styles out


@cli.command()
@click.option("--host", help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [default: 8470].")
@click.option(
    "--home", help="Folder for state and artifacts [default: ./.conveyor, or $CONVEYOR_HOME]."
)
@click.option("--database", help="postgresql://… URL [default: SQLite under the home folder].")
@LOG_FORMAT
@click.option(
    "--auth", "auth", is_flag=True, default=None, help="Require signed requests (auth: required)."
)
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Serve without authentication on an address other than loopback.",
)
def server(
    host: str | None,
    port: int | None,
    home: str | None,
    database: str | None,
    log_format: str,
    auth: bool | None,
    insecure: bool | None,
) -> None:
    """Serve the CodePipeline API until interrupted (SIGINT or SIGTERM)."""
    from conveyor.config import SettingsError, load_settings
    from conveyor.home import HomeInUse
    from conveyor.logformat import configure_logging
    from conveyor.server import CannotServe, serve
    from conveyor.store import StoreUnavailable

    try:
        settings = load_settings(
            {
                "host": host,
                "port": port,
                "home": home,
                "database_url": database,
                "auth": "required" if auth else None,
                "insecure": insecure,
            }
        )
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(log_format)
    try:
        serve(settings, __version__)
    except (HomeInUse, CannotServe, StoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc


def main() -> None:
    sys.exit(cli(prog_name=PROG, complete_var=COMPLETE_VAR))
