"""The habits people bring from gh, docker and terraform: ``-h``, NO_COLOR, a quick
``--version``, shell completion."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.runs import CONVEYOR, at_terminal, environment

HEAVY = ("sqlalchemy", "alembic", "boto3", "botocore", "uvicorn", "starlette")
BIN = Path(sys.executable).parent


def conveyor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONVEYOR, *args],
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=environment(**env),
        timeout=60,
    )


@pytest.mark.parametrize("args", [["-h"], ["run", "-h"], ["validate", "-h"], ["show", "-h"]])
def test_dash_h_is_help(args: list[str]) -> None:
    short, long = conveyor(*args), conveyor(*args[:-1], "--help")

    assert short.returncode == 0, short.stderr
    assert short.stdout.startswith("Usage: conveyor")
    assert short.stdout == long.stdout


def imported(modules: str, among: tuple[str, ...]) -> list[str]:
    """Which of the top-level packages ``among`` importing ``modules`` loads."""
    code = (
        f"import json, sys, {modules}; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(among)!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    return list(json.loads(result.stdout))


def test_the_entry_point_imports_no_database_server_or_aws_library() -> None:
    assert imported("conveyor.cli.main", HEAVY) == []


def test_a_client_command_makes_its_client_without_boto3(tmp_path: Path) -> None:
    """botocore's client is the one boto3 hands out; boto3 and s3transfer cost a client
    command a third of its start for nothing."""
    code = (
        "import atexit, json, runpy, sys; "
        "atexit.register(lambda: print(json.dumps(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'boto3', 's3transfer', 'botocore'})), file=sys.stderr)); "
        "sys.argv = ['conveyor', 'list', '--endpoint', 'http://127.0.0.1:9']; "
        "runpy.run_module('conveyor', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert "cannot reach Conveyor at http://127.0.0.1:9" in result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1]) == ["botocore"]


def broken_pipeline(folder: Path) -> Path:
    path = folder / "broken.yaml"
    path.write_text(yaml.safe_dump({"pipeline": {"name": "broken", "stages": []}}))
    return path


@pytest.mark.parametrize(("no_color", "coloured"), [("1", False), ("", True)])
def test_validate_at_a_terminal_honours_no_color(
    tmp_path: Path, no_color: str, coloured: bool
) -> None:
    status, output = at_terminal(
        [broken_pipeline(tmp_path)], [], command="validate", NO_COLOR=no_color
    )

    assert status == 1, output
    assert "stages" in output
    assert ("\x1b[" in output) is coloured


def test_completion_scripts_for_each_shell() -> None:
    for shell, marker in (("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete")):
        result = conveyor("completion", shell)
        assert result.returncode == 0, result.stderr
        assert "_CONVEYOR_COMPLETE" in result.stdout and marker in result.stdout
    assert conveyor("completion", "powershell").returncode == 2


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_commands_and_options() -> None:
    script = (
        'eval "$(conveyor completion bash)"\n'
        "complete_words() { COMPREPLY=(); COMP_WORDS=($1); COMP_CWORD=$2; _conveyor_completion conveyor;"
        ' printf "%s\\n" "${COMPREPLY[@]}"; }\n'
        'complete_words "conveyor ru" 1\n'
        "echo --\n"
        'complete_words "conveyor run --ap" 2\n'
    )
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", script],
        check=False,
        capture_output=True,
        text=True,
        env=environment(**env),
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    commands, options = result.stdout.split("--\n")
    assert commands.split() == ["run"]
    assert options.split() == ["--approve"]


def test_a_local_run_loads_neither_the_http_stack_nor_alembic() -> None:
    modules = "conveyor.cli.run, conveyor.cli.live, conveyor.worker.embedded"
    assert imported(modules, ("alembic", "uvicorn", "starlette", "botocore")) == []
