"""A warm process: Conveyor's engine loaded once, a child forked for each ``conveyor run`` or
``conveyor build`` handed to it (`conveyor.cli.warm` is the command's end, and says why).

``python -m conveyor.cli.warmhost SOCKET`` takes a lock beside the socket (a second one
exits at once), imports `PRELOAD`, rehearses a run's start (`conveyor.cli.run.rehearse`),
then listens. For each command it forks: the child takes
on the command's standard streams, folder, umask, environment and arguments, runs it as
``conveyor`` would, and exits with its status; the warm process reports that status to the
command's stand-in. It starts no thread (a fork copies only the thread that forks), and
exits after `warm.IDLE` seconds with no command and no child, on SIGTERM once its children
have ended, once a command finds it stale, or once its socket is gone (its folder removed).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import gc
import importlib
import io
import locale
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
from typing import TextIO

from conveyor.cli import warm

# What `conveyor run` and `conveyor build` import on their way to a first action.
PRELOAD = (
    "conveyor.cli.main",
    "conveyor.cli.run",
    "conveyor.cli.build",
    "conveyor.cli.documents",
    "conveyor.cli.localsource",
    "conveyor.cli.validate",
    "conveyor.cli.live",
    "conveyor.cli.prompt",
    "conveyor.store",
    "conveyor.worker.embedded",
    "conveyor.actions.registry",
    "conveyor.actions.git",
    "conveyor.actions.commands",
    "sqlite3",
)
_READ_TIMEOUT = 5.0  # seconds a command has to send what it is, once connected
_LOOK_EVERY = 5.0  # seconds between looks at whether the socket is still there


def _received(connection: socket.socket) -> tuple[warm.Request, list[int]] | None:
    """The request on a new connection, with its standard streams; None for one that is
    not a request."""
    connection.settimeout(_READ_TIMEOUT)
    fds: list[int] = []
    try:
        data, fds, _flags, _address = socket.recv_fds(connection, 65536, warm.STREAMS)
        while len(data) < warm.LENGTH:
            data += _chunk(connection)
        length = int.from_bytes(data[: warm.LENGTH], "big")
        while len(data) < warm.LENGTH + length:
            data += _chunk(connection)
        request = warm.Request.decode(data[warm.LENGTH : warm.LENGTH + length])
        if len(fds) != warm.STREAMS:
            raise ValueError("three standard streams are needed")
    except (OSError, ValueError, IndexError):
        _close_all(fds)
        return None
    connection.settimeout(None)
    return request, fds


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _chunk(connection: socket.socket) -> bytes:
    chunk = connection.recv(65536)
    if not chunk:
        raise ValueError("the command hung up")
    return chunk


def _same_user(connection: socket.socket) -> bool:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:  # no way to ask: the folder's permissions are the guard
        return True
    credentials = connection.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return bool(uid == os.getuid())


class Host:
    """The warm process's loop: accept, fork, reap, report."""

    def __init__(self, path: str, listener: socket.socket, lock: io.TextIOWrapper) -> None:
        self.path = path
        self.listener: socket.socket | None = listener
        self.lock: io.TextIOWrapper | None = lock
        self.fingerprint = warm.fingerprint()
        self.inode = os.stat(path).st_ino  # the socket's, to leave another's alone
        self.children: dict[int, socket.socket] = {}
        self.closing = False
        self.asked_to_stop = False  # SIGTERM: the loop closes, between two commands
        self.selector = selectors.DefaultSelector()
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "asked_to_stop", True))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if self.listener is not None:
            self.selector.register(self.listener, selectors.EVENT_READ)
        self.selector.register(self.wake_read, selectors.EVENT_READ)
        idle_since = time.monotonic()
        while True:
            if self.asked_to_stop or not self._reachable():
                self._close()
            if self.closing and not self.children:
                break
            timeout = _LOOK_EVERY
            if not self.children:
                idle = idle_since + warm.IDLE - time.monotonic()
                if idle <= 0:
                    break
                timeout = min(idle, timeout)
            for key, _events in self.selector.select(timeout):
                if self.listener is not None and key.fileobj is self.listener:
                    self._accept()
                else:
                    self._reap()
            if self.children:
                idle_since = time.monotonic()
        self._close()

    def _reachable(self) -> bool:
        """Whether commands can still find this process: its socket is where it was (a
        runtime folder removed, or a socket deleted, leaves it with nothing to do)."""
        if self.closing:
            return True  # nothing more to find out
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    def _close(self) -> None:
        """Take no more commands: the socket goes (if it is still ours), and the lock."""
        self.closing = True
        if self.listener is not None:
            self.selector.unregister(self.listener)
            try:
                if os.stat(self.path).st_ino == self.inode:
                    os.unlink(self.path)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def _accept(self) -> None:
        if self.listener is None:
            return
        try:
            connection, _address = self.listener.accept()
        except OSError:
            return
        try:
            self._take(connection)
        except Exception:  # one command's trouble is not every later command's
            connection.close()

    def _take(self, connection: socket.socket) -> None:
        received = _received(connection) if _same_user(connection) else None
        if received is None:
            connection.close()
            return
        request, fds = received
        if request.fingerprint != self.fingerprint:
            _close_all(fds)
            _send(connection, warm.STALE)
            connection.close()
            self._close()
            return
        pid = os.fork()
        if pid == 0:
            try:
                self._become(connection, request, fds)
            finally:  # whatever happens, a child never goes back to the warm process's loop
                traceback.print_exc()
                os._exit(1)
        _close_all(fds)
        self.children[pid] = connection
        # Gone already: the child, waiting for its go, finds the command gone too and ends.
        _send(connection, warm.serving(pid))

    def _reap(self) -> None:
        try:
            while os.read(self.wake_read, 512):
                pass
        except BlockingIOError:
            pass
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.children.pop(pid, None)
            if connection is not None:
                code = os.waitstatus_to_exitcode(status)
                _send(connection, warm.ended(code if code >= 0 else 128 - code))
                connection.close()

    def _become(self, connection: socket.socket, request: warm.Request, fds: list[int]) -> None:
        """In the child: leave the warm process's state, take on the command's, run it."""
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setpgid(0, 0)
        self.selector.close()
        os.close(self.wake_read)
        os.close(self.wake_write)
        if self.listener is not None:
            self.listener.close()
        if self.lock is not None:
            self.lock.close()
        for other in self.children.values():
            other.close()
        connection.settimeout(warm.HANDSHAKE)
        try:
            go = connection.recv(1)
        except OSError:
            go = b""
        if go != warm.GO:  # the command gave up waiting, and runs cold
            os._exit(0)
        connection.settimeout(None)
        _take_on(request, fds)
        threading.Thread(target=_passed_on, args=(connection,), daemon=True).start()
        os._exit(_run())


def _take_on(request: warm.Request, fds: list[int]) -> None:
    """This process becomes the command's: streams, folder, umask, environment, arguments."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        if fd > 2:
            os.close(fd)
    os.chdir(request.cwd)
    os.umask(request.umask)
    _take_standing(request.standing)
    os.environ.clear()
    os.environ.update(request.environ)
    time.tzset()
    with contextlib.suppress(locale.Error):
        locale.setlocale(locale.LC_CTYPE, "")
    tempfile.tempdir = None  # found again from this environment
    sys.argv = request.argv
    sys.path[0] = request.path0
    unbuffered = bool(request.environ.get("PYTHONUNBUFFERED"))
    streams = [
        _stream(fd, encoding, errors, unbuffered)
        for fd, (encoding, errors) in enumerate(request.streams)
    ]
    sys.stdin, sys.stdout, sys.stderr = streams


def _take_standing(standing: warm.Standing) -> None:
    """The command's niceness, CPUs and limits, as far as the kernel lets this process take
    them (it may raise a limit only up to the warm process's hard one)."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, standing.nice)
    if standing.cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, standing.cpus)
    for kind, soft, hard in standing.limits:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(kind, (soft, hard))


def _stream(fd: int, encoding: str, errors: str, unbuffered: bool) -> TextIO:
    """A standard stream over ``fd`` as Python would have made it for the command."""
    if fd == 0:
        return open(fd, encoding=encoding, errors=errors, closefd=False)
    if unbuffered:
        raw = open(fd, "wb", buffering=0, closefd=False)  # noqa: SIM115 (returned, in use)
        return io.TextIOWrapper(raw, encoding=encoding, errors=errors, write_through=True)
    line = fd == 2 or os.isatty(fd)
    return open(
        fd, "w", buffering=1 if line else -1, encoding=encoding, errors=errors, closefd=False
    )


def _passed_on(connection: socket.socket) -> None:
    """The stand-in's signals, raised here; its end (it was killed) is a SIGTERM."""
    pending = b""
    while True:
        try:
            data = connection.recv(64)
        except OSError:
            data = b""
        if not data:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        pending += data
        while len(pending) >= 2:
            kind, signum, pending = pending[:1], pending[1], pending[2:]
            if kind == warm.SIGNAL and signum in warm.FORWARDED:
                os.kill(os.getpid(), signum)


def _run() -> int:
    """Run the command as ``conveyor`` would; its exit status, once the process has done
    what an interpreter does at exit."""
    from conveyor.cli.main import main

    status = 0
    try:
        main()
    except SystemExit as exc:
        status = _status(exc.code)
    except BaseException:
        traceback.print_exc()
        status = 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return status


def _status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _send(connection: socket.socket, data: bytes) -> bool:
    try:
        connection.sendall(data)
    except OSError:
        return False
    return True


def main(argv: list[str]) -> None:
    path = argv[0]
    lock = open(path.removesuffix(".sock") + ".lock", "a+")  # noqa: SIM115 (held while serving)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another one is there, or starting
    # Named from the start, so that it can be stopped while it starts (SIGTERM ends it then).
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    for name in PRELOAD:
        importlib.import_module(name)
    from conveyor.cli.run import rehearse  # imported by now

    rehearse()
    if threading.active_count() > 1:
        return  # a fork copies only the thread that forks: it would be unsafe
    gc.collect()
    gc.freeze()  # what the children share stays out of their collections (and unwritten)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(16)
    Host(path, listener, lock).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
