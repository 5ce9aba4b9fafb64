"""Start-up: how long `conveyor` takes before it does anything a person asked for.

Each figure is the median of several runs of a fresh process, against the floor of a bare
``python3 -c pass`` measured in the same run:

- ``conveyor --version``, ``conveyor --help`` and ``conveyor run --help``: what every
  shell-completion answer costs too. Aim: 300 ms at most.
- ``conveyor run`` to its first action's process: from starting the command to the moment the
  Git source action starts ``git`` (a shim first in ``PATH`` notes the time), and to the
  moment the first Commands action's bash runs its first command. This is what a person
  waits before anything happens: imports, a fresh home's database, the engine and its workers,
  the pipeline created and started. Aim: 150 ms at most to the first action. Measured as a
  person meets it from their second run on, handed to the warm process that the first run
  leaves behind, and cold (``CONVEYOR_WARM_START=0``), as every run was before there was one.

The warm process lives in a runtime folder of the benchmark's own, and is stopped at the end.
Every process runs as an installed one does, with its bytecode cached: the benchmark drops
``PYTHONDONTWRITEBYTECODE`` (set on some machines), and a warm-up run writes the cache.
The machine's load average is printed before and after: on a busy machine every figure grows,
the floor with them, so compare figures of one run only. ``--baseline SRC`` measures another
source tree too (say ``git archive <commit> src`` unpacked somewhere), each of its runs right
before the matching run of this one, so that both see the same machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import yaml

from conveyor.cli import warm

RUNS = 7
CONVEYOR = [sys.executable, "-m", "conveyor"]
AIM_HELP = 0.300
AIM_FIRST_ACTION = 0.150
T = TypeVar("T")


# A source tree to run Conveyor from (its ``src`` folder), or None: the one installed.
Tree = str | None


# Where warm processes listen during the benchmark (``XDG_RUNTIME_DIR``).
RUNTIME = tempfile.mkdtemp(prefix="conveyor-bench-runtime-")


def _environ(tree: Tree = None) -> dict[str, str]:
    """This environment, without settings that would point at other state or skip bytecode;
    with ``tree`` first on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CONVEYOR") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["XDG_RUNTIME_DIR"] = RUNTIME
    if tree is not None:
        env["PYTHONPATH"] = tree
    return env


def _wall(command: list[str], tree: Tree = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=_environ(tree))
    return time.perf_counter() - started


def _medians(trees: Sequence[Tree], measure: Callable[[Tree], T]) -> list[list[T]]:
    """``RUNS`` measures of each tree, taken in turns, after a warm-up of each (the page
    cache, the bytecode)."""
    for tree in trees:
        measure(tree)
    taken: list[list[T]] = [[] for _ in trees]
    for _ in range(RUNS):
        for index, tree in enumerate(trees):
            taken[index].append(measure(tree))
    return taken


def _repository(folder: Path) -> Path:
    repo = folder / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("hello\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.name=bench", "-c", "user.email=b@x", "commit", "-qm", "first"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def _pipeline(folder: Path, marks: Path) -> Path:
    source = {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "Git", "version": "1"},
        "configuration": {"RepositoryUrl": "repo", "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}],
    }
    build = {
        "name": "First",
        "actionTypeId": {
            "category": "Compute",
            "owner": "AWS",
            "provider": "Commands",
            "version": "1",
        },
        "inputArtifacts": [{"name": "Src"}],
        "commands": [f"echo $EPOCHREALTIME > {marks / 'commands'}"],
    }
    declaration = {
        "name": "bench-startup",
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [source]},
            {"name": "Build", "actions": [build]},
        ],
    }
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"pipeline": declaration}, sort_keys=False))
    return path


def _git_shim(folder: Path, marks: Path) -> Path:
    """A ``git`` that notes when it is first started, then runs the real one."""
    real = shutil.which("git")
    assert real is not None, "git is needed"
    shims = folder / "bin"
    shims.mkdir()
    shim = shims / "git"
    shim.write_text(
        "#!/bin/bash\n"
        f"[ -e {marks / 'git'} ] || echo $EPOCHREALTIME > {marks / 'git'}\n"
        f'exec {real} "$@"\n'
    )
    shim.chmod(0o755)
    return shims


def _first_action(folder: Path, tree: Tree = None, *, cold: bool = False) -> tuple[float, float]:
    """Seconds from starting `conveyor run` to the source's git and to the first command;
    ``cold``: with warm start turned off."""
    marks = folder / "marks"
    shutil.rmtree(marks, ignore_errors=True)
    marks.mkdir()
    file = _pipeline(folder, marks)
    env = _environ(tree)
    env["PATH"] = f"{folder / 'bin'}{os.pathsep}{env['PATH']}"
    if cold:
        env["CONVEYOR_WARM_START"] = "0"
    started = time.time()
    subprocess.run(
        [*CONVEYOR, "run", str(file)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=folder,
    )
    git = float((marks / "git").read_text()) - started
    commands = float((marks / "commands").read_text()) - started
    return git, commands


def _warm_process_listening() -> None:
    """Wait (10 s at most) until a warm process listens in the benchmark's runtime folder."""
    deadline = time.monotonic() + 10
    while not list(Path(RUNTIME).glob("conveyor/*.sock")) and time.monotonic() < deadline:
        time.sleep(0.05)


def _stop_warm_processes() -> None:
    folder = Path(RUNTIME) / "conveyor"
    if folder.is_dir():
        warm.stop_hosts(str(folder))
    shutil.rmtree(RUNTIME, ignore_errors=True)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _row(name: str, seconds: Sequence[float], floor: float, aim: float | None) -> None:
    """This tree's figure against the floor and the aim, then the baseline's when measured."""
    mine = seconds[0]
    verdict = "" if aim is None else ("  ok" if mine <= aim else f"  MISSED (aim {aim:.3f} s)")
    line = f"{name:<44} {mine * 1000:8.1f} ms   {(mine - floor) * 1000:8.1f} ms"
    if len(seconds) > 1:
        line += f"   {seconds[1] * 1000:8.1f} ms"
    print(line + verdict)


def main(argv: list[str] | None = None) -> None:
    """``argv``: the options (None: none, as ``bench/run.py`` calls it; run as a script,
    the command line's)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", metavar="SRC", help="another source tree to measure too")
    baseline = parser.parse_args(argv or []).baseline
    trees: list[Tree] = [None] if baseline is None else [None, str(Path(baseline).resolve())]
    load = _load()

    def median_wall(*args: str) -> list[float]:
        command = [*CONVEYOR, *args]
        return [statistics.median(t) for t in _medians(trees, lambda tree: _wall(command, tree))]

    floor = statistics.median(
        _medians([None], lambda tree: _wall([sys.executable, "-c", "pass"]))[0]
    )
    version = median_wall("--version")
    helped = median_wall("--help")
    run_help = median_wall("run", "--help")
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-startup-") as name:
        folder = Path(name)
        _repository(folder)
        _git_shim(folder, folder / "marks")
        colds = _medians(trees, lambda tree: _first_action(folder, tree, cold=True))
        for tree in trees:  # the first run leaves a warm process behind: wait for it
            _first_action(folder, tree)
        _warm_process_listening()
        firsts = _medians(trees, lambda tree: _first_action(folder, tree))
    _stop_warm_processes()
    git = [statistics.median(first[0] for first in taken) for taken in firsts]
    commands = [statistics.median(first[1] for first in taken) for taken in firsts]
    cold_git = [statistics.median(first[0] for first in taken) for taken in colds]
    print(f"load average (1, 5, 15 min): {load} before, {_load()} after, on {os.cpu_count()} CPUs")
    columns = f"{'wall':>11}   {'- floor':>11}" + (f"   {'baseline':>11}" if baseline else "")
    print(f"{'median of ' + str(RUNS) + ' fresh processes':<44} {columns}")
    _row("floor: python3 -c pass", [floor], floor, None)
    _row("conveyor --version", version, floor, AIM_HELP)
    _row("conveyor --help", helped, floor, AIM_HELP)
    _row("conveyor run --help", run_help, floor, AIM_HELP)
    _row("conveyor run -> first action (git starts)", git, floor, AIM_FIRST_ACTION)
    _row("conveyor run -> first Commands action runs", commands, floor, None)
    _row("cold conveyor run -> first action", cold_git, floor, None)
    if baseline:
        print(f"baseline: {baseline}")


if __name__ == "__main__":
    main(sys.argv[1:])
