"""The Commands provider running real bash over real artifacts in a temporary workspace."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from conveyor.actions.base import (
    ArtifactLocation,
    Deferred,
    FailureType,
    JobContext,
    JobResult,
    OutputArtifact,
    ProviderConfig,
)
from conveyor.actions.commands import Commands
from conveyor.actions.git import GitSource
from conveyor.actions.registry import providers
from conveyor.artifacts.archive import pack, unpack
from conveyor.artifacts.local import LocalBuckets
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.pipeline import EnvironmentVariable


def _input(tmp_path: Path, name: str, files: dict[str, str]) -> ArtifactLocation:
    folder = tmp_path / "inputs" / name
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(content)
    LocalBuckets(tmp_path / "buckets").put("art", f"{name}.zip", _zip(folder, tmp_path, name))
    return ArtifactLocation(name, "art", f"{name}.zip", revision=f"rev-{name}")


def _zip(folder: Path, tmp_path: Path, name: str) -> Path:
    pack(folder, tmp_path / f"{name}.zip")
    return tmp_path / f"{name}.zip"


def _context(
    tmp_path: Path,
    commands: tuple[str, ...],
    inputs: tuple[ArtifactLocation, ...] = (),
    outputs: tuple[OutputArtifact, ...] = (),
    **extra: object,
) -> JobContext:
    workspace = tmp_path / "workspace"
    workspace.mkdir(parents=True)
    return JobContext(
        job_id="job-1",
        pipeline_name="pipe",
        pipeline_execution_id="exec-1",
        stage_name="Build",
        action_name="Run",
        action_execution_id="act-1",
        configuration={},
        input_artifacts=inputs or (_input(tmp_path, "Src", {"app.txt": "app\n"}),),
        output_artifacts=outputs,
        artifacts=extra.pop("artifacts", None) or LocalBuckets(tmp_path / "buckets"),  # type: ignore[arg-type]
        workspace=workspace,
        log=io.StringIO(),
        cancelled=threading.Event(),
        commands=commands,
        **extra,  # type: ignore[arg-type]
    )


def _log(context: JobContext) -> str:
    assert isinstance(context.log, io.StringIO)
    return context.log.getvalue()


def _ok(result: JobResult) -> JobResult:
    assert result.succeeded, result.message
    return result


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (init reaps those in its own time)."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat_file.parent.name))
    return members


def _group_alive(pgid: int) -> bool:
    deadline = time.monotonic() + 2  # SIGKILL is delivered asynchronously
    while _live_members(pgid):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.01)
    return False


def test_inputs_are_unpacked_and_their_folders_announced(tmp_path: Path) -> None:
    inputs = (
        _input(tmp_path, "Src", {"app.txt": "app\n"}),
        _input(tmp_path, "Config", {"conf/settings.ini": "x=1\n"}),
    )
    context = _context(
        tmp_path,
        (
            'cat app.txt "$CODEBUILD_SRC_DIR_Config/conf/settings.ini"',
            'echo "root=$CODEBUILD_SRC_DIR source=$CODEBUILD_RESOLVED_SOURCE_VERSION"',
        ),
        inputs,
    )
    _ok(Commands().run(context))
    log = _log(context)
    assert "app\nx=1\n" in log
    assert f"root={context.workspace} source=rev-Src" in log
    assert not list(context.workspace.glob("*.zip"))


def test_commands_share_one_shell_and_are_echoed(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        (
            "mkdir sub && cd sub",
            "export GREETING=hello",
            "echo $GREETING from $(basename $PWD)",
            "echo $$ > ../one",
            "echo $$ > ../two",
            "echo to stderr >&2",
        ),
    )
    _ok(Commands().run(context))
    log = _log(context)
    assert "+ export GREETING=hello\n" in log
    assert "hello from sub\n" in log
    assert "to stderr\n" in log
    assert (context.workspace / "one").read_text() == (context.workspace / "two").read_text()


def test_a_failing_command_stops_the_rest_and_is_named(tmp_path: Path) -> None:
    context = _context(tmp_path, ("echo before", "ls /nonexistent-path; exit 3", "touch after"))
    result = Commands().run(context)
    assert not result.succeeded
    assert result.failure_type == FailureType.JOB_FAILED
    assert result.message is not None
    assert result.message.startswith(
        "Command 2 of 3 (ls /nonexistent-path; exit 3) failed with exit status 3"
    )
    assert "nonexistent-path" in result.message.split("Last lines of output:")[1]
    assert not (context.workspace / "after").exists()


def test_a_false_command_fails_even_under_set_e(tmp_path: Path) -> None:
    result = Commands().run(_context(tmp_path, ("set -e", "false; echo not reached", "true")))
    assert result.message is not None
    assert result.message.startswith("Command 2 of 3 (false; echo not reached) failed")


def test_output_variables_are_read_from_the_shell(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        ("export VERSION=1.2.3", "PLAIN='two words'", "MULTI=$'a\\nb'"),
        output_variables=("VERSION", "PLAIN", "MULTI", "UNSET"),
    )
    result = _ok(Commands().run(context))
    assert result.output_variables == {"VERSION": "1.2.3", "PLAIN": "two words", "MULTI": "a\nb"}


def test_environment_variables_are_set_and_secrets_refused(tmp_path: Path) -> None:
    context = _context(
        tmp_path,
        ('test "$STAGE" = prod', 'test "$CODEBUILD_CI" = true'),
        environment_variables=(EnvironmentVariable("STAGE", "prod"),),
    )
    _ok(Commands().run(context))
    secret = EnvironmentVariable("TOKEN", "arn:secret", "SECRETS_MANAGER")
    other = tmp_path / "other"
    other.mkdir()
    result = Commands().run(_context(other, ("true",), environment_variables=(secret,)))
    assert (result.succeeded, result.failure_type) == (False, FailureType.CONFIGURATION_ERROR)
    assert result.message is not None and "SECRETS_MANAGER" in result.message


def test_output_artifact_keeps_matching_files_with_modes_and_links(tmp_path: Path) -> None:
    output = OutputArtifact("Built", "art", "built.zip", files=("dist/**/*",))
    context = _context(
        tmp_path,
        (
            "mkdir -p dist/bin && printf run > dist/bin/tool && chmod 755 dist/bin/tool",
            "ln -s bin/tool dist/current && echo junk > junk.txt",
        ),
        outputs=(output,),
    )
    _ok(Commands().run(context))
    out = tmp_path / "out"
    unpack(tmp_path / "buckets" / "art" / "built.zip", out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "dist",
        "dist/bin",
        "dist/bin/tool",
        "dist/current",
    ]
    assert stat.S_IMODE((out / "dist" / "bin" / "tool").stat().st_mode) == 0o755
    assert os.readlink(out / "dist" / "current") == "bin/tool"


def test_output_patterns_matching_nothing_fail(tmp_path: Path) -> None:
    output = OutputArtifact("Built", "art", "built.zip", files=("dist/**/*",))
    result = Commands().run(_context(tmp_path, ("true",), outputs=(output,)))
    assert not result.succeeded and result.message is not None
    assert "dist/**/*" in result.message


def _run_in_thread(context: JobContext) -> tuple[threading.Thread, list[JobResult]]:
    results: list[JobResult] = []
    thread = threading.Thread(target=lambda: results.append(Commands().run(context)))
    thread.start()
    return thread, results


def _wait_for(context: JobContext, line: str) -> None:
    deadline = time.monotonic() + 5
    while line not in _log(context):
        assert time.monotonic() < deadline, f"{line!r} never logged"
        time.sleep(0.01)


def test_cancelling_kills_the_whole_process_group(tmp_path: Path) -> None:
    context = _context(tmp_path, ("sleep 30 & echo $$ > shell.pid", "sleep 30"))
    thread, results = _run_in_thread(context)
    _wait_for(context, "+ sleep 30\n")
    pgid = int((context.workspace / "shell.pid").read_text())
    assert len(_live_members(pgid)) >= 2  # bash and its sleeps
    context.cancelled.set()
    thread.join(5)
    assert not thread.is_alive()
    assert not _group_alive(pgid)
    assert results[0].message is not None
    assert results[0].message.startswith("Stopped: the job was cancelled while running command 2")


def test_running_out_of_time_kills_the_group_and_says_so(tmp_path: Path) -> None:
    context = _context(tmp_path, ("echo $$ > shell.pid; sleep 30",), time_left=0.3)
    started = time.monotonic()
    result = Commands().run(context)
    assert time.monotonic() - started < 3
    assert result.message is not None and result.message.startswith("Timed out after")
    assert not _group_alive(int((context.workspace / "shell.pid").read_text()))


def test_background_processes_do_not_outlive_a_successful_job(tmp_path: Path) -> None:
    context = _context(tmp_path, ("sleep 30 & echo $$ > shell.pid",))
    started = time.monotonic()
    _ok(Commands().run(context))
    assert time.monotonic() - started < 3
    assert not _group_alive(int((context.workspace / "shell.pid").read_text()))


def test_no_commands_is_a_configuration_error(tmp_path: Path) -> None:
    result = Commands().run(_context(tmp_path, ()))
    assert (result.succeeded, result.failure_type) == (False, FailureType.CONFIGURATION_ERROR)


@pytest.mark.parametrize("command", ["echo 'unterminated", "exit 0", "trap - EXIT; exit 4"])
def test_odd_commands_still_report_properly(tmp_path: Path, command: str) -> None:
    result = Commands().run(_context(tmp_path, (command, "touch after")))
    expected_success = command == "exit 0"
    assert result.succeeded is expected_success
    if not expected_success:
        assert result.message is not None and result.message.startswith("Command 1 of 2")


def test_the_registry_maps_the_builtin_types() -> None:
    built = providers(ProviderConfig(home=Path("/nonexistent")))
    commands, git = (
        built[ActionTypeId("Compute", "AWS", "Commands", "1")],
        built[ActionTypeId("Source", "AWS", "Git", "1")],
    )
    assert isinstance(commands, Deferred) and isinstance(commands.provider(), Commands)
    assert isinstance(git, Deferred) and isinstance(git.provider(), GitSource)
    assert ActionTypeId("Approval", "AWS", "Manual", "1") not in built


def test_actions_sharing_an_unpacked_input_cannot_change_it_for_each_other(
    tmp_path: Path,
) -> None:
    built = providers(ProviderConfig(home=tmp_path / "home"))
    commands = built[ActionTypeId("Compute", "AWS", "Commands", "1")]
    source = _input(tmp_path, "Src", {"app.txt": "app\n", "bin/tool": "tool\n"})
    seen = []
    for name in ("first", "second"):
        context = _context(
            tmp_path / name,
            ("cat app.txt", "echo changed > app.txt", "chmod 700 bin/tool"),
            (source,),
            artifacts=LocalBuckets(tmp_path / "buckets"),
        )
        _ok(commands.run(context))
        seen.append(_log(context))
    assert seen[0].count("app\n") == seen[1].count("app\n") == 1
    assert list((tmp_path / "home" / "unpacked").glob("*/*"))


@pytest.mark.parametrize("shared", [True, False])
def test_the_workspace_is_made_by_the_provider_from_its_first_input(
    tmp_path: Path, shared: bool
) -> None:
    """The worker hands Commands a workspace not made yet (`makes_workspace`): the first
    input's copy is moved there whole, or, unpacking itself, the provider makes it first."""
    from conveyor.artifacts.unpacked import Unpacked

    assert Commands.makes_workspace
    context = _context(tmp_path, ("test -f app.txt", "test -d Other"))
    inputs = (*context.input_artifacts, _input(tmp_path, "Other", {"o.txt": "o\n"}))
    context = dataclasses.replace(context, input_artifacts=inputs)
    context.workspace.rmdir()
    provider = Commands(unpacked=Unpacked(tmp_path / "unpacked")) if shared else Commands()
    _ok(provider.run(context))
    for hand_back in context.when_done:
        hand_back()


def test_an_action_with_no_input_still_gets_a_workspace(tmp_path: Path) -> None:
    context = dataclasses.replace(_context(tmp_path, ("pwd",)), input_artifacts=())
    context.workspace.rmdir()
    _ok(Commands().run(context))
    assert str(context.workspace) in _log(context)
