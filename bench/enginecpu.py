"""Engine CPU per action: the server's own CPU time for each of the engine benchmark's 20
Commands actions, over a source of many files, where wall-clock figures swing with the load.

The pipeline is `engine`'s (a Git source, then 20 Commands actions running ``true`` one after
the other), over a source of 2,000 files by default (``--files N``). A server runs as a
subprocess on SQLite; after a warm-up execution, each measured execution's CPU time is read
from the server's ``/proc/<pid>/stat``: its own threads (``utime + stime``) and the children
it reaped (bash, git), divided by 20. These include the execution's Source action (its git
commands and zip), so they are an upper bound of what each action costs. The floor is the
CPU time of ``bash -c true`` measured in this process in the same run. ``--baseline SRC``
measures another source tree too (a worktree's ``src``), in turns with this one, so that two
commits compare under the same load: measured under load, compare figures of one run only.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from api import HOST, client, endpoint, free_port, subprocess_server
from engine import ACTIONS, LARGE_TIMEOUT, PIPELINE, _healthy, declaration, make_repo, wait_done

FILES = 2000
TURNS = 2  # servers started for each tree, alternating
EXECUTIONS = 2  # measured executions per server, after the warm-up
FLOOR_RUNS = 100
TICK = os.sysconf("SC_CLK_TCK")
SRC = str(Path(__file__).resolve().parent.parent / "src")


def _cpu(pid: int) -> tuple[float, float]:
    """The process's own and its reaped children's CPU seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    own, children = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
    return own / TICK, children / TICK


def _server_pid(port: int) -> int:
    """The server listening on ``port``: the process whose command line names it."""
    wanted = [b"--port", str(port).encode()]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except OSError:
            continue
        if b"server" in argv and any(argv[i : i + 2] == wanted for i in range(len(argv))):
            return int(entry)
    raise RuntimeError(f"no server process on port {port}")


@contextmanager
def _python_path(src: str) -> Iterator[None]:
    """Servers started meanwhile import Conveyor from ``src``."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = src
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def measure(src: str, folder: Path, repo: Path, turn: int) -> list[tuple[float, float]]:
    """Milliseconds of CPU per action (own, children) of each measured execution."""
    home = folder / f"home-{turn}-{abs(hash(src))}"
    home.mkdir()
    args = [sys.executable, "-m", "conveyor", "server", "--host", HOST]
    port = free_port()
    args += ["--port", str(port), "--home", str(home)]
    figures = []
    with (
        _python_path(src),
        subprocess_server("conveyor", args, port, home / "server.log", _healthy),
    ):
        pid = _server_pid(port)
        cp = client("codepipeline", endpoint(port))
        cp.create_pipeline(pipeline=declaration(repo))
        summaries = cp.list_pipeline_executions(pipelineName=PIPELINE)
        wait_done(cp, summaries["pipelineExecutionSummaries"][0]["pipelineExecutionId"], 600)
        for _ in range(EXECUTIONS):
            before = _cpu(pid)
            started = cp.start_pipeline_execution(name=PIPELINE)["pipelineExecutionId"]
            wait_done(cp, started, LARGE_TIMEOUT)
            after = _cpu(pid)
            figures.append(
                tuple(1000 * (b - a) / ACTIONS for a, b in zip(before, after, strict=True))
            )
    return figures  # type: ignore[return-value]


def floor_ms() -> float:
    """CPU milliseconds of ``bash -c true``, median over runs."""
    times = []
    for _ in range(FLOOR_RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(["bash", "-c", "true"], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        times.append(used * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="enginecpu")
    parser.add_argument("--files", type=int, default=FILES, help="files in the source")
    parser.add_argument("--baseline", metavar="SRC", help="another source tree to measure too")
    options = parser.parse_args(argv or [])
    trees = [SRC] + ([str(Path(options.baseline).resolve())] if options.baseline else [])
    results: dict[str, list[tuple[float, float]]] = {tree: [] for tree in trees}
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as scratch:
        folder = Path(scratch)
        repo = folder / "repo"
        make_repo(repo, options.files)
        for turn in range(TURNS):
            for tree in trees if turn % 2 == 0 else reversed(trees):
                results[tree] += measure(tree, folder, repo, turn)
    floor = floor_ms()
    print(
        f"{ACTIONS} Commands actions over a source of {options.files} files; server CPU per "
        f"action (Source included), medians of {TURNS * EXECUTIONS} executions, measured "
        "under load"
    )
    print(f"floor: bash -c true {floor:.2f} ms CPU, median of {FLOOR_RUNS}")
    for tree, figures in results.items():
        own = statistics.median(f[0] for f in figures)
        children = statistics.median(f[1] for f in figures)
        name = "this tree" if tree == SRC else f"baseline {tree}"
        print(
            f"  {name}: own {own:.1f} ms, children {children:.1f} ms, "
            f"above the floor {own + children - floor:.1f} ms"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
