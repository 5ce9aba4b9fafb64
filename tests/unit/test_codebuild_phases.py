"""CodeBuild phases in the shell: retries, variables, early exits, sh, timeouts and stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from conveyor.actions.base import JobResult, ProviderConfig
from conveyor.actions.codebuild.environment import next_build_number
from tests.unit.test_codebuild import context, log_of, run, source
from tests.unit.test_commands import _group_alive, _live_members


def test_retry_count_retries_the_whole_build_then_fails(tmp_path: Path) -> None:
    """AWS (phases/*/on-failure): "RETRY-count - Retry the build for a specified number of
    times, as represented by count [...] Note that count must be between 0 and 100." """
    counter = tmp_path / "attempts"
    buildspec = f"""\
version: 0.2
phases:
  install:
    commands: [echo x >> {counter}]
  build:
    on-failure: RETRY-2
    commands: [test -f built-before || touch built-before, "false"]
"""
    job = context(tmp_path, buildspec)
    result = run(tmp_path, job)
    assert not result.succeeded
    assert counter.read_text() == "x\nx\nx\n"  # the first attempt and two retries
    log = log_of(job)
    assert "Retrying the build: attempt 3" in log and "attempt 4" not in log
    assert result.summary == "Build failed in phase BUILD: false exited with 1"


def test_retry_regex_retries_only_when_the_error_matches(tmp_path: Path) -> None:
    """AWS (phases/*/on-failure): "RETRY-regex - Retry the build up to 3 times and use regex
    to include a regular expression that matches the error message", and "RETRY-count-regex"
    for count retries."""
    counter = tmp_path / "attempts"
    flaky = f"""\
version: 0.2
phases:
  build:
    on-failure: RETRY-flaky-network
    commands:
      - echo x >> {counter}
      - "[ $(wc -l < {counter}) -ge 2 ] || ./flaky-network.sh"
"""
    files = {"flaky-network.sh": "exit 3\n"}
    job = context(tmp_path, flaky, files=files)
    assert run(tmp_path, job).succeeded  # failed once, matched, passed on the retry
    assert counter.read_text() == "x\nx\n"

    counter.unlink()
    other = flaky.replace("RETRY-flaky-network", "RETRY-5-timeout|refused")
    job = context(tmp_path, other, files=files, workspace="second")
    result = run(tmp_path, job)
    assert not result.succeeded
    assert counter.read_text() == "x\n"
    assert "does not match on-failure RETRY-5-timeout|refused: not retrying" in log_of(job)


def test_exported_variables_are_the_output_variables(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
env:
  exported-variables: [VERSION, IMAGE, NEVER_SET]
phases:
  pre_build:
    commands:
      - export VERSION=1.0
      - cd subdir
  build:
    commands:
      - export VERSION="$VERSION.$CODEBUILD_BUILD_NUMBER" IMAGE="repo:$(basename "$PWD")"
"""
    result = run(tmp_path, context(tmp_path, buildspec, files={"subdir/keep": ""}))
    assert result.succeeded, result.message
    assert result.output_variables == {"VERSION": "1.0.1", "IMAGE": "repo:subdir"}


def test_codebuild_variables_are_set(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - env | grep -E '^(CODEBUILD|AWS)_' | sort > vars.txt
      - cp vars.txt "$CODEBUILD_SRC_DIR_Other/../vars.txt"
"""
    inputs = (
        source(tmp_path, "Main", {"buildspec.yml": buildspec}, "abc123"),
        source(tmp_path, "Other", {}),
    )
    job = context(tmp_path, inputs=inputs, configuration={"PrimarySource": "Main"})
    assert run(tmp_path, job).succeeded
    seen = dict(
        line.split("=", 1) for line in (job.workspace / "vars.txt").read_text().splitlines()
    )
    build_id = "app:5c8f0d1e-aaaa-bbbb-cccc-0123456789ab"
    assert seen["CODEBUILD_BUILD_ID"] == build_id
    assert (
        seen["CODEBUILD_BUILD_ARN"] == f"arn:aws:codebuild:us-east-1:000000000000:build/{build_id}"
    )
    assert seen["CODEBUILD_INITIATOR"] == "codepipeline/pipe"
    assert seen["CODEBUILD_RESOLVED_SOURCE_VERSION"] == "abc123"
    assert seen["CODEBUILD_SOURCE_VERSION"] == "arn:aws:s3:::art/in/Main.zip"
    assert seen["CODEBUILD_SRC_DIR"] == str(job.workspace / "src")
    assert seen["CODEBUILD_SRC_DIR_Other"] == str(job.workspace / "src_Other")
    assert seen["CODEBUILD_BUILD_SUCCEEDING"] == "1"
    assert seen["CODEBUILD_CI"] == "true"
    assert seen["CODEBUILD_BUILD_NUMBER"] == "1"
    assert abs(int(seen["CODEBUILD_START_TIME"]) / 1000 - time.time()) < 60
    assert seen["AWS_REGION"] == seen["AWS_DEFAULT_REGION"] == "us-east-1"
    assert seen["CODEBUILD_LOG_PATH"]


def test_a_command_that_removes_the_exit_trap_and_exits_ends_the_build(tmp_path: Path) -> None:
    command = "trap - EXIT; exit 4"
    buildspec = f"""\
version: 0.2
phases:
  build:
    commands: ["{command}", touch after]
  post_build:
    commands: [touch post]
"""
    job = context(tmp_path, buildspec)
    result = run(tmp_path, job)
    assert not result.succeeded
    assert result.summary == f"Build failed in phase BUILD: {command} exited with 4"
    assert result.message is not None and "the rest of the build did not run" in result.message
    assert not (job.workspace / "src" / "after").exists()
    assert not (job.workspace / "src" / "post").exists()


def test_plain_sh_runs_the_phases_in_one_shell(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
env:
  shell: /bin/sh
  exported-variables: [SHELL_KIND]
phases:
  install:
    commands: [cd sub, export SHELL_KIND=$(readlink /proc/$$/exe)]
  build:
    commands: [pwd > where.txt, "false"]
  post_build:
    commands: [echo "post $CODEBUILD_BUILD_SUCCEEDING"]
"""
    job = context(tmp_path, buildspec, files={"sub/x": ""})
    result = run(tmp_path, job)
    assert result.summary == "Build failed in phase BUILD: false exited with 1"
    assert (job.workspace / "src" / "sub" / "where.txt").exists()
    assert "post 0\n" in log_of(job)


def _in_thread(job_run: Callable[[], JobResult]) -> tuple[threading.Thread, list[JobResult]]:
    results: list[JobResult] = []
    thread = threading.Thread(target=lambda: results.append(job_run()))
    thread.start()
    return thread, results


def test_running_out_of_time_kills_the_process_group(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands: [echo $$ > shell.pid, sleep 30 & sleep 30]
"""
    job = context(tmp_path, buildspec, time_left=1.0)
    started = time.monotonic()
    result = run(tmp_path, job)
    assert time.monotonic() - started < 5
    assert result.message is not None
    assert result.message.startswith(
        "Build timed out after 1 s in phase BUILD while running sleep 30 & sleep 30"
    )
    assert not _group_alive(int((job.workspace / "src" / "shell.pid").read_text()))


def test_stopping_the_job_kills_the_process_group(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  install:
    commands: [echo $$ > shell.pid, sleep 30]
"""
    job = context(tmp_path, buildspec)
    thread, results = _in_thread(lambda: run(tmp_path, job))
    pid_file = job.workspace / "src" / "shell.pid"
    deadline = time.monotonic() + 5
    while "Running command sleep 30" not in log_of(job):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pgid = int(pid_file.read_text())
    assert _live_members(pgid)
    job.cancelled.set()
    thread.join(5)
    assert not thread.is_alive()
    assert not _group_alive(pgid)
    assert results[0].message is not None
    assert results[0].message.startswith(
        "Build stopped: the job was cancelled in phase INSTALL while running sleep 30"
    )


def test_build_numbers_count_up_per_project(tmp_path: Path) -> None:
    """AWS: CODEBUILD_BUILD_NUMBER is "The current build number for the project"; it goes on
    counting past a change of digits, and from a counter file written by hand."""
    config = ProviderConfig(home=tmp_path)
    assert [next_build_number(config, "app") for _ in range(11)] == list(range(1, 12))
    assert next_build_number(config, "other") == 1
    counter = tmp_path / "codebuild" / "app" / "build-number"
    counter.write_text("0099\n")
    assert [next_build_number(config, "app") for _ in range(2)] == [100, 101]
    assert counter.read_text().strip() == "101"


def test_a_build_too_long_for_one_argument_runs_from_its_script_file(tmp_path: Path) -> None:
    """bash is handed the build as its -c string up to a bound (an argument is at most
    128 KiB on Linux); a longer one runs from the script file, an ``exit`` resumed as well."""
    filler = "x" * 60_000
    buildspec = f"""\
version: 0.2
phases:
  build:
    commands:
      - export KEPT=yes; exit 3
      - echo never > never.txt
    finally:
      - ': {filler}'
      - ': {filler}'
      - echo "kept=$KEPT" > finally.txt
"""
    job = context(tmp_path, buildspec)
    result = run(tmp_path, job)
    assert result.summary == "Build failed in phase BUILD: export KEPT=yes; exit 3 exited with 3"
    source = job.workspace / "src"
    assert (source / "finally.txt").read_text() == "kept=yes\n"
    assert not (source / "never.txt").exists()
    assert (job.workspace / ".conveyor" / "build-1.sh").stat().st_size > 100_000
