"""``conveyor worker --endpoint URL``: run the built-in providers for a server, on this machine.

The worker claims the jobs of built-in actions from the server over HTTP only (the server
needs ``remote_workers: true``), runs them here and reports their results and logs
(`conveyor.worker.remote`). Its home (``--home``, default ``./.conveyor-worker``) holds its
workspaces and its settings (repositories, connections, AWS endpoints, secrets), never the
server's state. SIGTERM or Ctrl-C lets the actions it holds finish and takes nothing new; a
second one stops them.

A server with auth required wants the worker's calls signed with an access key of its own
(`conveyor key create`), whose policies allow ``conveyor:RunBuiltInJobs``: ``--access-key``
with its secret in ``$CONVEYOR_SECRET_ACCESS_KEY``, else the usual AWS credential chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws``, ``AWS_PROFILE``). With no key
found, calls go unsigned, as a server without auth takes them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from conveyor.cli.main import LOG_FORMAT

if TYPE_CHECKING:
    from conveyor.worker.remote import Key

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
@click.option(
    "--labels",
    "labelled",
    multiple=True,
    help="Labels this machine has (such as gpu or linux), for the actions that require some"
    " with ConveyorLabels; repeat or separate with commas [default: none].",
)
@click.option("--home", help=f"The worker's folder [default: ./{DEFAULT_HOME}, or $CONVEYOR_HOME].")
@click.option(
    "--access-key",
    envvar="CONVEYOR_ACCESS_KEY_ID",
    help="The access key that signs the worker's calls, its secret in"
    " $CONVEYOR_SECRET_ACCESS_KEY [default: the AWS credential chain].",
)
@LOG_FORMAT
def worker(
    endpoint: str,
    concurrency: int,
    wanted: tuple[str, ...],
    labelled: tuple[str, ...],
    home: str | None,
    access_key: str | None,
    log_format: str,
) -> None:
    """Run built-in actions for the server at ENDPOINT until interrupted."""
    from conveyor.config import SettingsError, load_settings
    from conveyor.home import HomeInUse
    from conveyor.logformat import configure_logging
    from conveyor.worker.remote import serve

    if not endpoint.startswith(("http://", "https://")):
        raise click.BadParameter("an http(s) URL is required", param_hint="--endpoint")
    from conveyor.domain.labels import LabelError, parse_labels

    names = [name.strip() for value in wanted for name in value.split(",") if name.strip()]
    try:
        labels = parse_labels(",".join(labelled))
    except LabelError as exc:
        raise click.BadParameter(str(exc), param_hint="--labels") from exc
    try:
        settings = load_settings({"home": home or os.environ.get("CONVEYOR_HOME") or DEFAULT_HOME})
        configure_logging(log_format)
        serve(settings, endpoint, concurrency, names, worker_key(access_key), labels)
    except (SettingsError, HomeInUse) as exc:
        raise click.ClickException(str(exc)) from exc


def worker_key(access_key: str | None) -> Key | None:
    """The key given, else the one the AWS credential chain finds, else none."""
    from conveyor.worker.remote import Key

    if access_key:
        secret = os.environ.get("CONVEYOR_SECRET_ACCESS_KEY")
        if not secret:
            raise click.BadParameter(
                "the key's secret is read from $CONVEYOR_SECRET_ACCESS_KEY, which is not set",
                param_hint="--access-key",
            )
        return Key(access_key, secret)
    import boto3

    found = boto3.session.Session().get_credentials()
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    return Key(str(frozen.access_key), str(frozen.secret_key), frozen.token)


def register(group: click.Group) -> None:
    """Add ``worker`` to ``group``."""
    group.add_command(worker)
