"""``conveyor completion bash|zsh|fish``: the script that teaches a shell to complete conveyor.

The script is click's own: it calls ``conveyor`` back with ``_CONVEYOR_COMPLETE`` set, and
click answers with the commands, options and files that fit the words typed so far. The
commands import their heavy parts only when they run, so each answer takes as long as
``conveyor --help``.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the script that completes conveyor's commands in SHELL (bash, zsh, fish).

    \b
    bash:  eval "$(conveyor completion bash)"    in ~/.bashrc
    zsh:   eval "$(conveyor completion zsh)"     in ~/.zshrc
    fish:  conveyor completion fish > ~/.config/fish/completions/conveyor.fish
    """
    from conveyor.cli.main import COMPLETE_VAR, PROG

    kind = get_completion_class(shell)
    assert kind is not None  # click ships one for each of SHELLS
    click.echo(kind(ctx.find_root().command, {}, PROG, COMPLETE_VAR).source())


def register(group: click.Group) -> None:
    """Add ``completion`` to ``group``."""
    group.add_command(completion)
