"""``conveyor``: the entry point and its commands.

Start-up is kept short, since ``conveyor --version``, ``--help`` and every shell-completion
answer run it: a command's module is imported only when that command runs or shows its own
help. ``conveyor --help`` and the completion of command names list the commands from
`SUMMARIES` without importing any of them, and the modules import the database, the engine,
the server and boto3 only inside the commands that need them.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from conveyor import __version__

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

# The habits of gh, docker and terraform: -h as well as --help, on every command.
CONTEXT = {"help_option_names": ["-h", "--help"]}
PROG = "conveyor"
COMPLETE_VAR = "_CONVEYOR_COMPLETE"  # what `conveyor completion` scripts set
# Each module's ``register(group)`` adds these commands (a test keeps the lists true).
MODULES: Mapping[str, Sequence[str]] = {
    "conveyor.cli.run": ("run",),
    "conveyor.cli.build": ("build",),
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
# The first paragraph of each command's help, which is what `conveyor --help` shows of it, so
# that listing the commands imports none of their modules (a test keeps it true). A command
# missing here is still listed: its module is then imported to ask it.
SUMMARIES: Mapping[str, str] = {
    "run": "Run one execution of the pipeline in FILE here, with no server; exit 0 if it "
    "succeeded.",
    "build": "Run one CodeBuild build of PATH here, as CodeBuild would run its buildspec.",
    "validate": "Check a pipeline file as a server would; every problem with its line, column "
    "and path.",
    "completion": "Print the script that completes conveyor's commands in SHELL (bash, zsh, fish).",
    "worker": "Run built-in actions for the server at ENDPOINT until interrupted.",
    "user": "Users: who may call the API, with their policies.",
    "group": "Groups: policies shared by their users.",
    "key": "Access keys that sign requests as a user.",
    "audit": "The audit trail: API calls, newest first, allowed or refused.",
    "secret": "Secrets at rest, sealed with the home's key.",
    "notifications": "Notifications that could not be delivered.",
    "list": "List the pipelines.",
    "show": "Show a pipeline's state: stages, actions, transitions, approvals, errors.",
    "create": "Create a pipeline from FILE (JSON or YAML, as get-pipeline prints it).",
    "update": "Update a pipeline from FILE; executions under way finish on the old version.",
    "delete": "Delete a pipeline with its executions (no error when there is none).",
    "start": "Start an execution of a pipeline; prints its id.",
    "stop": "Stop an execution (default: the latest one in progress).",
    "retry": "Retry a stage of an execution (default: the stage's latest execution).",
    "approve": "Approve a manual approval action that is waiting.",
    "reject": "Reject a manual approval action that is waiting.",
    "enable": "Enable the transition into (or out of) a stage.",
    "disable": "Disable the transition into (or out of) a stage; executions wait in front of it.",
    "executions": "List a pipeline's executions, newest first.",
    "history": "List the action executions of an execution (default: the latest).",
    "logs": "Print the log of an action's latest execution.",
    "watch": "Follow an execution (the latest by default) until it ends; exit 0 if it succeeded.",
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
    """A group whose command modules are imported when one of their commands is wanted;
    listing the commands (help, completion of their names) imports none of them."""

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
        lazy = (name for names in MODULES.values() for name in names)
        return sorted({*self.commands, *lazy})

    def listed(self, ctx: click.Context, name: str) -> click.Command | None:
        """The command ``name`` as a listing shows it: the command itself once its module is
        loaded, else a stand-in with its summary."""
        summary = SUMMARIES.get(name)
        if name in self.commands or summary is None:
            return self.get_command(ctx, name)
        return click.Command(name, help=summary)

    def _visible(self, ctx: click.Context, prefix: str = "") -> list[tuple[str, click.Command]]:
        found = []
        for name in self.list_commands(ctx):
            command = self.listed(ctx, name) if name.startswith(prefix) else None
            if command is not None and not command.hidden:
                found.append((name, command))
        return found

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = self._visible(ctx)
        if commands:
            # As click lays it out: each summary cut to what fits beside the longest name.
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            rows = [(name, command.get_short_help_str(limit)) for name, command in commands]
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        from click.shell_completion import CompletionItem

        results = [
            CompletionItem(name, help=command.get_short_help_str())
            for name, command in self._visible(ctx, incomplete)
        ]
        # The group's own options (what click.Command adds), without its listing of commands.
        return results + click.Command.shell_complete(self, ctx, incomplete)


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
