"""The ``conveyor`` command's first step: a command that loads the engine goes to a warm
process when there is one (`conveyor.cli.warm`); everything else, and that command when
there is none, runs here (`conveyor.cli.main`)."""

from __future__ import annotations

import os
import sys

COMMANDS = ("run", "build")  # the commands worth handing over: the ones that load the engine


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        return _here()  # with no more imports than `conveyor.cli.main` makes
    from conveyor.cli import warm

    if not warm.wanted(sys.argv, os.environ):
        return _here()
    try:
        status = warm.hand_over(sys.argv)
    except KeyboardInterrupt:  # Ctrl-C before the run began, here or there
        sys.exit(130)
    if status is not None:
        sys.exit(status)
    try:
        _here()
    finally:
        warm.start_host()  # for the next one


def _here() -> None:
    from conveyor.cli.main import main as here

    here()
