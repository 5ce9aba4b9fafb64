"""The buildspec runner's own cost: a CodeBuild build against bash running the same commands.

A small project (a few source files in a zip, as a pipeline hands it over) is built with a
buildspec whose four phases each run one cheap command, through the CodeBuild provider exactly
as a worker runs it (fresh workspace, input unpacked, one bash for the build, the output
artifact packed and stored). The floor is plain ``bash -c`` running the same four commands,
measured in the same run: builds and floors take turns, so that both meet the same load, and
the overhead is the median of the differences. That is what the runner adds to every build;
the aim is under 20 ms, against the minutes of queueing and provisioning CodeBuild users
report. On a loaded machine wall time mostly measures the wait for a core and the disk (the
runner creates a dozen files where the floor creates none), so the CPU time both spend (this
process and its children) is printed too.
"""

from __future__ import annotations

import io
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

from conveyor.actions.base import ArtifactLocation, JobContext, OutputArtifact, ProviderConfig
from conveyor.actions.codebuild import CodeBuild
from conveyor.artifacts.local import LocalBuckets

RUNS = 30
AIM_MS = 20.0
COMMANDS = ["echo installing", "test -f app.py", "wc -l app.py", "ls > listing.txt"]
BUILDSPEC = (
    "version: 0.2\nphases:\n"
    f"  install:\n    commands:\n      - {COMMANDS[0]}\n"
    f"  pre_build:\n    commands:\n      - {COMMANDS[1]}\n"
    f"  build:\n    commands:\n      - {COMMANDS[2]}\n"
    f"  post_build:\n    commands:\n      - {COMMANDS[3]}\n"
    "artifacts:\n  files:\n    - listing.txt\n    - app.py\n"
)


def source_zip() -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("buildspec.yml", BUILDSPEC)
        archive.writestr("app.py", "print('hello')\n")
        for i in range(10):
            archive.writestr(f"lib/module{i}.py", f"VALUE = {i}\n")
    return data.getvalue()


def build_once(provider: CodeBuild, buckets: LocalBuckets, root: Path) -> float:
    workspace = root / "work" / uuid.uuid4().hex
    workspace.mkdir(parents=True)
    context = JobContext(
        job_id=str(uuid.uuid4()),
        pipeline_name="bench",
        pipeline_execution_id=str(uuid.uuid4()),
        stage_name="Build",
        action_name="Build",
        action_execution_id=str(uuid.uuid4()),
        configuration={"ProjectName": "bench"},
        input_artifacts=(ArtifactLocation("Src", "artifacts", "src.zip", "abc123"),),
        output_artifacts=(OutputArtifact("Out", "artifacts", f"out/{uuid.uuid4().hex}.zip"),),
        artifacts=buckets,
        workspace=workspace,
        log=io.StringIO(),
        cancelled=threading.Event(),
    )
    started = time.perf_counter()
    result = provider.run(context)
    elapsed = (time.perf_counter() - started) * 1000
    if not result.succeeded:
        raise RuntimeError(f"the benchmark build failed: {result.message}")
    shutil.rmtree(workspace)
    return elapsed


def cpu_ms() -> float:
    """CPU time so far of this process and its children, in ms."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total * 1000


def floor_once(project: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["bash", "-c", "; ".join(COMMANDS)], cwd=project, check=True, capture_output=True
    )
    return (time.perf_counter() - started) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as scratch:
        root = Path(scratch)
        buckets = LocalBuckets(root / "buckets")
        (root / "src.zip").write_bytes(source_zip())
        buckets.put("artifacts", "src.zip", root / "src.zip")
        provider = CodeBuild(ProviderConfig(home=root, cache=root / "cache"))
        # The floor runs in the project folder so `test -f app.py` and `ls` behave the same.
        project = root / "project"
        project.mkdir()
        (project / "app.py").write_text("print('hello')\n")
        for _ in range(3):
            build_once(provider, buckets, root)
            floor_once(project)
        # Builds and floors take turns, so that both meet the same load on a busy machine.
        builds, floors, build_cpu, floor_cpu = [], [], 0.0, 0.0
        for _ in range(RUNS):
            before = cpu_ms()
            builds.append(build_once(provider, buckets, root))
            middle = cpu_ms()
            floors.append(floor_once(project))
            build_cpu += middle - before
            floor_cpu += cpu_ms() - middle
    build, floor = statistics.median(builds), statistics.median(floors)
    overhead = statistics.median(b - f for b, f in zip(builds, floors, strict=True))
    build_cpu, floor_cpu = build_cpu / RUNS, floor_cpu / RUNS
    print(f"buildspec build (4 phases, 12-file input, 1 output artifact), median of {RUNS}")
    print(f"  CodeBuild provider  {build:7.2f} ms")
    print(f"  plain bash          {floor:7.2f} ms   same commands, same run, taking turns")
    print(f"  runner overhead     {overhead:7.2f} ms per build (median of the differences)")
    print(f"CPU time per build (this process and its children), mean of {RUNS}")
    print(f"  CodeBuild provider  {build_cpu:7.2f} ms")
    print(f"  plain bash          {floor_cpu:7.2f} ms")
    print(f"  runner overhead     {build_cpu - floor_cpu:7.2f} ms per build")
    verdict = "PASS" if overhead < AIM_MS else "MISS"
    print(f"aim: under {AIM_MS:.0f} ms per build beyond the commands\n  {verdict}")


if __name__ == "__main__":
    main()
