"""``conveyor worker --endpoint URL``: run the built-in providers for a server, on this machine.

The worker claims the jobs of built-in actions from the server over HTTP only (the server
needs ``remote_workers: true``), runs them here and reports their results and logs
(`conveyor.worker.remote`). Its home (``--home``, default ``./.conveyor-worker``) holds its
workspaces and its settings (repositories, connections, AWS endpoints, secrets), never the
server's state. SIGTERM or Ctrl-C lets the actions it holds finish and takes nothing new; a
second one stops them.
"""

from __future__ import annotations

import os

import click

from conveyor.cli.main import LOG_FORMAT

DEFAULT_HOME = ".conveyor-worker"


@click.command()
@click.option("--endpoint", required=True, help="The server's URL, such as http://ci:8470.")
@click.option("--concurrency", type=int, default=2, show_default=True, help="Actions run at once.")
@click.option(
    "--providers",
    "wanted",
    multiple=True,
    help="Providers to run (Commands, CodeBuild, or a type such as AWS/Build/CodeBuild/1);"
    " repeat or separate with commas [default: every one this machine can run].",
)
@click.option("--home", help=f"The worker's folder [default: ./{DEFAULT_HOME}, or $CONVEYOR_HOME].")
@LOG_FORMAT
def worker(
    endpoint: str, concurrency: int, wanted: tuple[str, ...], home: str | None, log_format: str
) -> None:
    """Run built-in actions for the server at ENDPOINT until interrupted."""
    from conveyor.config import SettingsError, load_settings
    from conveyor.home import HomeInUse
    from conveyor.logformat import configure_logging
    from conveyor.worker.remote import serve

    if not endpoint.startswith(("http://", "https://")):
        raise click.BadParameter("an http(s) URL is required", param_hint="--endpoint")
    names = [name.strip() for value in wanted for name in value.split(",") if name.strip()]
    try:
        settings = load_settings({"home": home or os.environ.get("CONVEYOR_HOME") or DEFAULT_HOME})
        configure_logging(log_format)
        serve(settings, endpoint, concurrency, names)
    except (SettingsError, HomeInUse) as exc:
        raise click.ClickException(str(exc)) from exc


def register(group: click.Group) -> None:
    """Add ``worker`` to ``group``."""
    group.add_command(worker)
