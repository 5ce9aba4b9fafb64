"""Warm start: a `conveyor run` after the first is handed to the warm process the first left
behind, and behaves as a cold one does: its folder, environment, streams, exit status,
signals; a changed installation is never served stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.cli import warm
from conveyor.cli.run import rehearse
from tests.e2e.runs import (
    CONVEYOR,
    alive,
    at_terminal,
    environment,
    finish,
    gone,
    pipeline_file,
    running,
    said,
    shell,
    wait_running,
    warm_runtime,
)
from tests.support.engine import approval, make_repo


@pytest.fixture
def runtime() -> Iterator[Path]:
    with warm_runtime() as folder:
        yield folder


def _env(runtime: Path, **extra: str) -> dict[str, str]:
    return environment(CONVEYOR_WARM_START="1", XDG_RUNTIME_DIR=str(runtime), **extra)


def _host(runtime: Path, other_than: int | None = None) -> int:
    """The pid of the warm process listening in ``runtime``, once there is one."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        hosts = runtime / "conveyor"
        if hosts.is_dir() and list(hosts.glob("*.sock")):
            pids = [p for p in warm.host_pids(str(hosts)) if p != other_than and alive(p)]
            if pids:
                return pids[0]
        time.sleep(0.05)
    raise AssertionError("no warm process started")


def _run(folder: Path, env: dict[str, str], line: str = "") -> subprocess.CompletedProcess[str]:
    """`conveyor run pipeline.yaml` in ``folder``; ``line``: a bash line that sets up the
    process, then runs it as ``"$@"`` (``ulimit -n 64 && exec "$@"``)."""
    prefix = ["bash", "-c", line, "bash"] if line else []
    return subprocess.run(
        [*prefix, *CONVEYOR, "run", "pipeline.yaml"],
        cwd=folder,
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=60,
    )


def _parents(folder: Path) -> tuple[int, int]:
    """The process that ran the noted action, and its parent."""
    ran, parent = (folder / "parents").read_text().split()
    return int(ran), int(parent)


def _noting_pipeline(folder: Path, *also: str) -> Path:
    """A pipeline whose action notes the process that runs it (and that one's parent), an
    environment variable, its umask, then runs ``also``."""
    make_repo(folder / "repo")
    notes = [
        f"echo $PPID $(awk '/^PPid/ {{print $2}}' /proc/$PPID/status) > {folder / 'parents'}",
        f'echo "$TZ" > {folder / "value"}',
        f"umask > {folder / 'umask'}",
        f"echo $(nice) $(ulimit -n) > {folder / 'standing'}",
        *also,
    ]
    return pipeline_file(folder, ("Build", [shell("Note", *notes)]))


def test_the_second_run_is_served_warm_as_its_own_process(tmp_path: Path, runtime: Path) -> None:
    _noting_pipeline(tmp_path)
    first = _run(tmp_path, _env(runtime, TZ="XST+1"))
    assert first.returncode == 0, first.stdout + first.stderr
    cold_runner, _ = _parents(tmp_path)
    host = _host(runtime)

    second = _run(tmp_path, _env(runtime, TZ="YST+2"), 'ulimit -n 777 && exec nice -n 7 "$@"')

    assert second.returncode == 0, second.stdout + second.stderr
    runner, parent = _parents(tmp_path)
    assert parent == host  # a child of the warm process ran it ...
    assert runner != cold_runner
    assert (tmp_path / "value").read_text() == "YST+2\n"  # ... with this command's environment
    assert (tmp_path / "umask").read_text().strip() == f"{_umask():04o}"
    assert (tmp_path / "standing").read_text().split() == ["7", "777"]  # and its limits
    assert said(second.stdout, "Build/Note Succeeded")
    assert "Execution Succeeded in" in second.stdout


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_failing_run_served_warm_exits_1(tmp_path: Path, runtime: Path) -> None:
    _noting_pipeline(tmp_path, "exit 3")
    assert _run(tmp_path, _env(runtime)).returncode == 1
    host = _host(runtime)

    result = _run(tmp_path, _env(runtime))

    assert result.returncode == 1
    assert _parents(tmp_path)[1] == host
    assert said(result.stdout, "Build/Note Failed")


def _sleeping(folder: Path, marker: str) -> None:
    make_repo(folder / "repo")
    sleep = shell("Sleep", f"(exec -a {marker} sleep 30)")
    pipeline_file(folder, ("Build", [sleep]), ("After", [shell("Never", "echo never")]))


def _start(folder: Path, env: dict[str, str], **options: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CONVEYOR, "run", "pipeline.yaml"],
        cwd=folder,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        **options,
    )


def _warmed(folder: Path, runtime: Path) -> int:
    """A warm process for ``runtime``, left by a quick run in a folder beside ``folder``."""
    quick = folder / "quick"
    quick.mkdir()
    make_repo(quick / "repo")
    pipeline_file(quick, ("Build", [shell("Quick", "true")]))
    assert _run(quick, _env(runtime)).returncode == 0
    return _host(runtime)


def _warm_run_asleep(folder: Path, runtime: Path) -> tuple[subprocess.Popen[str], str]:
    """A run served warm, once its action sleeps; and the sleeping process's marker."""
    _warmed(folder, runtime)
    marker = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    _sleeping(folder, marker)
    process = _start(folder, _env(runtime))
    wait_running(process, marker)
    return process, marker


def test_sigterm_to_a_warm_run_stops_it_and_its_processes(tmp_path: Path, runtime: Path) -> None:
    process, marker = _warm_run_asleep(tmp_path, runtime)

    process.send_signal(signal.SIGTERM)
    output = finish(process, timeout=15)

    assert process.returncode == 143, output
    assert not running(marker)
    assert said(output, "Build/Sleep Abandoned")


def test_a_killed_stand_in_takes_its_run_with_it(tmp_path: Path, runtime: Path) -> None:
    process, marker = _warm_run_asleep(tmp_path, runtime)

    process.kill()
    finish(process, timeout=5)

    deadline = time.monotonic() + 15
    while running(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(marker)


def test_a_changed_installation_runs_cold_and_replaces_the_warm_process(
    tmp_path: Path, runtime: Path
) -> None:
    extra = tmp_path / "site"
    extra.mkdir()
    path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(extra)) if p)
    env = _env(runtime, PYTHONPATH=path)
    _noting_pipeline(tmp_path)
    assert _run(tmp_path, env).returncode == 0
    stale = _host(runtime)
    (extra / "installed.py").write_text("")  # a package installed on the import path

    process = _start(tmp_path, env)
    output = finish(process, timeout=60)

    assert process.returncode == 0, output
    assert _parents(tmp_path)[0] == process.pid  # it ran here, cold
    assert gone([stale])
    assert _host(runtime, other_than=stale) != stale  # and left a fresh one


def test_a_warm_run_asks_its_approval_at_the_terminal(tmp_path: Path, runtime: Path) -> None:
    _warmed(tmp_path, runtime)
    make_repo(tmp_path / "repo")
    gate = approval("Gate", CustomData="Ship it?")
    file = pipeline_file(tmp_path, ("Release", [gate, shell("Ship", "echo shipped", run_order=2)]))

    status, output = at_terminal(
        [file],
        [(b"Approve? [y/N]", b"y\r"), (b"Comment (optional):", b"warm and fine\r")],
        CONVEYOR_WARM_START="1",
        XDG_RUNTIME_DIR=str(runtime),
    )

    assert status == 0, output
    assert "\x1b[" in output  # the live view, in colour: it knew its terminal
    assert "warm and fine" in output


def test_which_commands_go_warm() -> None:
    assert warm.wanted(["conveyor", "run", "p.yaml"], {})
    assert warm.wanted(["conveyor", "build", "."], {"CONVEYOR_WARM_START": "1"})
    assert not warm.wanted(["conveyor", "list"], {})
    assert not warm.wanted(["conveyor"], {})
    for off in ("0", "off", "No", "false"):
        assert not warm.wanted(["conveyor", "run", "p.yaml"], {"CONVEYOR_WARM_START": off})
    assert not warm.wanted(["conveyor", "run"], {"_CONVEYOR_COMPLETE": "bash_complete"})


def test_a_request_survives_the_wire() -> None:
    request = warm.Request(
        "fingerprint\nwith lines",
        ["conveyor", "run", "a file.yaml", "--var", "x=a=b", "é"],
        {"ONE": "1", "WITH_EQUALS": "a=b=c", "EMPTY": "", "BYTES": "\udcff"},
        "/some/where",
        0o027,
        "/bin",
        [("utf-8", "strict"), ("ascii", "replace"), ("utf-8", "backslashreplace")],
        warm.Standing(7, [0, 1], [(7, 512, 1024), (0, -1, -1)]),
    )

    encoded = request.encode()
    decoded = warm.Request.decode(encoded[warm.LENGTH :])

    assert int.from_bytes(encoded[: warm.LENGTH], "big") == len(encoded) - warm.LENGTH
    assert {**vars(decoded), "standing": vars(decoded.standing)} == {
        **vars(request),
        "standing": vars(request.standing),
    }
    with pytest.raises(ValueError):
        warm.Request.decode(b"just\0a\0few\0fields")


def test_any_change_to_the_package_changes_the_fingerprint(tmp_path: Path) -> None:
    package = tmp_path / "conveyor"
    (package / "sub" / "__pycache__").mkdir(parents=True)
    module = package / "sub" / "module.py"
    module.write_text("A = 1\n")
    before = warm.fingerprint(str(package), [])

    (package / "sub" / "__pycache__" / "module.pyc").write_bytes(b"compiled")
    assert warm.fingerprint(str(package), []) == before  # bytecode is not code
    module.write_text("A = 2\n")
    os.utime(module, ns=(1, 1))
    assert warm.fingerprint(str(package), []) != before


GIVE_UP = """
import socket, sys
from conveyor.cli import warm
from conveyor.cli.run import rehearse
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect(warm.socket_path(warm.folder()))
socket.send_fds(connection, [warm.Request.here(sys.argv[1:]).encode()], [0, 1, 2])
print(connection.recv(1).decode())
"""


def _by_hand(script: str, folder: Path, runtime: Path) -> subprocess.CompletedProcess[str]:
    """``script`` run in ``folder`` as `conveyor run pipeline.yaml` would be: it speaks to
    the warm process itself."""
    return subprocess.run(
        [sys.executable, "-c", script, "conveyor", "run", "pipeline.yaml"],
        cwd=folder,
        env=_env(runtime),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )


def test_a_command_that_gives_up_before_the_go_is_not_run(tmp_path: Path, runtime: Path) -> None:
    host = _warmed(tmp_path, runtime)
    make_repo(tmp_path / "repo")
    pipeline_file(tmp_path, ("Build", [shell("Mark", f"touch {tmp_path / 'ran'}")]))

    answered = _by_hand(GIVE_UP, tmp_path, runtime)

    assert answered.stdout.strip() == warm.SERVING.decode()  # it was served, then hung up
    time.sleep(1)
    assert not (tmp_path / "ran").exists()
    assert alive(host)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _reaches(pid: int, states: str) -> bool:
    deadline = time.monotonic() + 10
    while _state(pid) not in states:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_ctrl_z_stops_a_warm_run_with_its_stand_in_and_fg_goes_on(
    tmp_path: Path, runtime: Path
) -> None:
    _warmed(tmp_path, runtime)
    marker = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    _noting_pipeline(tmp_path, f"(exec -a {marker} sleep 30)")
    # A process group of its own, as a shell gives each job: the kernel ignores Ctrl-Z in an
    # orphaned group (one whose parent is outside the session), as test runners' may be.
    process = _start(tmp_path, _env(runtime), process_group=0)
    try:
        wait_running(process, marker)
        child, _ = _parents(tmp_path)

        process.send_signal(signal.SIGTSTP)
        assert _reaches(process.pid, "T") and _reaches(child, "T")
        process.send_signal(signal.SIGCONT)
        assert _reaches(process.pid, "SR") and _reaches(child, "SR")

        process.send_signal(signal.SIGTERM)
    finally:
        output = finish(process, timeout=15)
    assert process.returncode == 143, output


def test_a_rehearsal_leaves_no_thread_and_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    threads = threading.active_count()

    rehearse()

    assert threading.active_count() == threads  # a warm process may fork after it
    assert list(tmp_path.iterdir()) == []


def test_a_command_with_other_interpreter_flags_is_not_served_by_that_warm_process(
    tmp_path: Path, runtime: Path
) -> None:
    _warmed(tmp_path, runtime)
    _noting_pipeline(tmp_path)

    process = _start(tmp_path, _env(runtime, PYTHONDEVMODE="1"))  # -X dev

    assert finish(process, timeout=60) and process.returncode == 0
    assert _parents(tmp_path)[0] == process.pid  # it ran here, cold


def test_a_warm_process_asked_to_stop_ends_once_its_runs_have(
    tmp_path: Path, runtime: Path
) -> None:
    process, marker = _warm_run_asleep(tmp_path, runtime)
    host = _host(runtime)
    try:
        warm.stop_hosts(str(runtime / "conveyor"))

        deadline = time.monotonic() + 10
        while list((runtime / "conveyor").glob("*.sock")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not list((runtime / "conveyor").glob("*.sock"))  # it takes no more commands
        assert alive(host) and running(marker)  # but the run goes on
        process.send_signal(signal.SIGTERM)
    finally:
        finish(process, timeout=15)
    assert process.returncode == 143
    assert gone([host])


ELSEWHERE = """
import socket, sys
from conveyor.cli import warm
connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect(warm.socket_path(warm.folder()))
request = warm.Request.here(sys.argv[1:])
request.cwd = "/no/such/folder"
socket.send_fds(connection, [request.encode()], [0, 1, 2])
assert connection.recv(1 + warm.LENGTH)[:1] == warm.SERVING
connection.sendall(warm.GO)
print(int.from_bytes(connection.recv(1 + warm.LENGTH)[1:], "big", signed=True))
"""


def test_a_child_that_cannot_take_its_command_on_fails_it_and_the_host_goes_on(
    tmp_path: Path, runtime: Path
) -> None:
    host = _warmed(tmp_path, runtime)
    _noting_pipeline(tmp_path)

    answered = _by_hand(ELSEWHERE, tmp_path, runtime)

    assert answered.stdout.strip() == "1"
    assert "/no/such/folder" in answered.stderr  # it said why
    pattern = f"warmhost {runtime}"
    hosts = subprocess.run(["pgrep", "-f", pattern], check=False, capture_output=True, text=True)
    assert hosts.stdout.split() == [str(host)]  # the child did not carry on as a host
    assert _run(tmp_path, _env(runtime)).returncode == 0
    assert _parents(tmp_path)[1] == host


def test_a_warm_process_whose_socket_is_gone_ends(tmp_path: Path, runtime: Path) -> None:
    host = _warmed(tmp_path, runtime)

    for socket_file in (runtime / "conveyor").glob("*.sock"):
        socket_file.unlink()  # as a cleaner of temporary files would

    assert gone([host], timeout=20)
