"""What `conveyor` imports before it does what it was asked: help and the completion of
command names load no command module, and no command's help loads the database, the server
or botocore; `conveyor run` loads neither botocore nor Alembic nor what only servers use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from conveyor.cli.main import MODULES, SUMMARIES, Commands, cli
from tests.e2e.runs import environment, pipeline_file, shell
from tests.support.engine import make_repo

# Never for help; the store and the engine neither.
HEAVY = ("sqlalchemy", "alembic", "botocore", "boto3", "uvicorn", "starlette", "psycopg")
# What `conveyor run` has no use for, from start to end.
NOT_FOR_RUN = (
    "botocore",
    "boto3",
    "alembic",
    "uvicorn",
    "starlette",
    "psycopg",
    "sqlalchemy.dialects.postgresql",
    "watchfiles",
    "jsonpath_ng",
    "conveyor.store.audit",
    "conveyor.store.identities",
    "conveyor.store.notifications",
)
# What a run of a pipeline that uses neither CodeBuild nor trigger filters has no use for.
NOT_FOR_THIS_RUN = ("conveyor.actions.codebuild", "conveyor.rules.cron", "wcmatch", "xml.etree")
COMMANDS = sorted(name for names in MODULES.values() for name in names)
# The command line's modules: the first step (which imports nothing more) and the group.
FIRST = ["conveyor.cli.entry", "conveyor.cli.main"]


def imported(
    folder: Path, *args: str, cwd: Path | None = None, **env: str
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `conveyor` with ``args``; how it went and the modules it had imported at exit."""
    out = folder / "modules.json"
    code = (
        "import atexit, json, runpy, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(list(sys.modules))))\n"
        f"sys.argv = ['conveyor', *{list(args)!r}]\n"
        "runpy.run_module('conveyor', run_name='__main__')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=environment(**env),
        cwd=cwd,
        timeout=120,
    )
    return result, set(json.loads(out.read_text()))


def among(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (packages or modules) ``modules`` holds."""
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_imports_no_command_module(tmp_path: Path, flag: str) -> None:
    result, modules = imported(tmp_path, flag)

    assert result.returncode == 0, result.stderr
    assert "Commands:" in result.stdout
    assert among(modules, HEAVY) == []
    assert sorted(m for m in modules if m.startswith("conveyor.cli.")) == FIRST


def test_completing_command_names_imports_no_command_module(tmp_path: Path) -> None:
    result, modules = imported(
        tmp_path, _CONVEYOR_COMPLETE="zsh_complete", COMP_WORDS="conveyor e", COMP_CWORD="1"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[1::3] == ["enable", "executions"]
    assert sorted(m for m in modules if m.startswith("conveyor.cli.")) == FIRST


@pytest.mark.parametrize("command", [*COMMANDS, "server"])
def test_no_command_help_imports_the_database_the_server_or_botocore(
    tmp_path: Path, command: str
) -> None:
    result, modules = imported(tmp_path, command, "-h")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: conveyor {command}")
    assert among(modules, HEAVY) == []


def _group() -> Commands:
    """A fresh `conveyor` group: only the commands of `conveyor.cli.main` itself are in it."""
    group = Commands(name="conveyor", commands={"server": cli.commands["server"]}, help=cli.help)
    group.params = list(cli.params)
    return group


def _loaded_group() -> Commands:
    """A `conveyor` group with every command module loaded, so that a listing asks the
    commands themselves."""
    group = _group()
    for names in MODULES.values():
        group.get_command(click.Context(group), names[0])
    assert set(COMMANDS) <= set(group.commands)
    return group


def test_every_command_has_the_summary_its_help_gives() -> None:
    group = _loaded_group()
    context = click.Context(group)
    for name in COMMANDS:
        command = group.get_command(context, name)
        assert command is not None, name
        assert name in SUMMARIES, f"add {name!r} to conveyor.cli.main.SUMMARIES"
        stand_in = click.Command(name, help=SUMMARIES[name])
        for limit in (20, 45, 70, 200):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), name
    assert set(SUMMARIES) == set(COMMANDS)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_listing_is_the_one_the_commands_give(width: int) -> None:
    lazy = _group()

    def listing(group: click.Group) -> str:
        context = click.Context(group, info_name="conveyor", terminal_width=width)
        return group.get_help(context)

    shown = listing(lazy)
    assert set(lazy.commands) == {"server"}  # it listed the others from their summaries
    assert shown == listing(_loaded_group())
    assert all(f"  {name} " in shown for name in COMMANDS)


def test_a_local_run_imports_no_aws_server_or_migration_library(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    file = pipeline_file(tmp_path, ("Build", [shell("Check", "grep -q hello README.md")]))

    result, modules = imported(tmp_path, "run", str(file), cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Execution Succeeded" in result.stdout
    assert among(modules, NOT_FOR_RUN) == []
    assert among(modules, NOT_FOR_THIS_RUN) == []


def test_a_second_run_on_a_kept_home_imports_no_alembic(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    file = pipeline_file(tmp_path, ("Build", [shell("Check", "grep -q hello README.md")]))
    home = tmp_path / "home"
    for _ in range(2):
        result, modules = imported(tmp_path, "run", str(file), "--home", str(home), cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert among(modules, NOT_FOR_RUN) == []
