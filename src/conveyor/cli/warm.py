"""Warm start: ``conveyor run`` and ``conveyor build`` handed to a process that has Conveyor
loaded already.

Most of a cold ``conveyor run``'s wait before its first action is Python importing the
engine, its store and SQLAlchemy: about 300 ms on the machines we measure on, paid again
by every run. So the first such command that finds no warm process starts one in the
background when it ends (`conveyor.cli.warmhost`): it imports what those commands need, then
waits for the next. A later command connects to it over a Unix socket and sends its
arguments, environment, working folder, umask and standard streams (the file descriptors
themselves); the warm process forks a child that takes them on and runs the command exactly
as this process would have, its output going straight to this terminal. This process stays
as the command's stand-in: it passes on the signals it gets (Ctrl-C, SIGTERM, SIGHUP) and
exits with the child's status. If it dies, the child is sent SIGTERM.

A warm process serves one interpreter and one set of installed code: when a Conveyor module
or a folder on the import path has changed since it started, it says so, the command runs
cold and a fresh warm process replaces the stale one. It exits after `IDLE` seconds without
a command. Its socket is in a folder only this user can open (``$XDG_RUNTIME_DIR/conveyor``,
else ``$TMPDIR/conveyor-UID``), and it serves only its own user. ``CONVEYOR_WARM_START=0`` turns
all of this off.

This module is imported before anything else on those commands' way, so it keeps to a few
small standard modules (not even typing).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import zlib

import conveyor
from conveyor.cli.entry import COMMANDS

TYPE_CHECKING = False  # typing itself is not imported here: see above
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import FrameType

SWITCH = "CONVEYOR_WARM_START"  # "0" (or "off", "no", "false"): always start cold
IDLE = 900.0  # seconds a warm process waits for a command before it exits
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_HELD = (*FORWARDED, signal.SIGTSTP)
STREAMS = 3  # standard input, output and error
# One byte says what a message is: the warm process's answers to a command, and the
# stand-in's signals.
STALE, SERVING, GO, ENDED, SIGNAL = b"S", b"R", b"G", b"X", b"K"
HANDSHAKE = 3.0  # seconds to wait for a warm process's answer before running cold
LENGTH = 4  # bytes of a request's length, and of an exit status


def wanted(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether this command line is one to hand to a warm process."""
    if environ.get(SWITCH, "1").strip().lower() in ("0", "off", "no", "false"):
        return False
    if "_CONVEYOR_COMPLETE" in environ:  # a shell completion answer: keep it here
        return False
    return len(argv) > 1 and argv[1] in COMMANDS


def folder() -> str | None:
    """The folder for warm processes' sockets, made if need be; None when it is not this
    user's alone (then nothing is handed over)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        base = os.path.join(runtime, "conveyor")
    else:
        base = os.path.join(os.environ.get("TMPDIR") or "/tmp", f"conveyor-{os.getuid()}")
    try:
        os.mkdir(base, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    info = os.lstat(base)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not os.path.isdir(base):
        return None
    return base


def _identity() -> str:
    """What a warm process must share with this one: the interpreter, its flags (``-O``,
    ``-X dev``, ``PYTHONDONTWRITEBYTECODE``...) and the import path (but its first entry, the
    folder a command was started from)."""
    flags = f"{tuple(sys.flags)} {sorted(sys._xoptions.items())} {sys.warnoptions}"
    return "\n".join([sys.executable, flags, *map(os.path.abspath, sys.path[1:])])


def socket_path(base: str) -> str:
    """The socket of the warm process for this interpreter and import path."""
    return os.path.join(base, f"warm-{zlib.crc32(_identity().encode()):08x}.sock")


def _files(root: str) -> Iterator[os.DirEntry[str]]:
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    yield from _files(entry.path)
            else:
                yield entry


def fingerprint(package: str | None = None, path: Sequence[str] | None = None) -> str:
    """The identity, with every file of Conveyor's package (its size and modification time)
    and the modification time of each folder on the import path (installing or removing a
    package changes it): any change makes a warm process stale. ``package`` and ``path``:
    another package folder and import path than this process's."""
    marks = []
    root = package or os.path.dirname(conveyor.__file__)
    for entry in sorted(_files(root), key=lambda e: e.path):
        info = entry.stat(follow_symlinks=False)
        marks.append(f"{entry.path}:{info.st_size}:{info.st_mtime_ns}")
    for place in sys.path[1:] if path is None else path:
        try:
            marks.append(f"{place}:{os.stat(place).st_mtime_ns}")
        except OSError:
            marks.append(f"{place}:-")
    return f"{_identity()}\n{zlib.crc32(chr(10).join(marks).encode()):08x}"


class Standing:
    """What the kernel keeps of a process beside its environment, which a command may have
    been started with (``nice``, ``taskset``, ``ulimit``): its niceness, the CPUs it may run
    on, its resource limits. On the wire: one field, ``NICE;CPU,CPU;LIMIT:SOFT:HARD,...``."""

    def __init__(self, nice: int, cpus: Sequence[int], limits: Sequence[tuple[int, int, int]]):
        self.nice = nice
        self.cpus = list(cpus)
        self.limits = list(limits)

    @classmethod
    def here(cls) -> Standing:
        import resource

        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        kinds = sorted({getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_")})
        limits = [(kind, *resource.getrlimit(kind)) for kind in kinds]
        return cls(os.getpriority(os.PRIO_PROCESS, 0), cpus, limits)

    def encode(self) -> str:
        limits = ",".join(f"{kind}:{soft}:{hard}" for kind, soft, hard in self.limits)
        return f"{self.nice};{','.join(map(str, self.cpus))};{limits}"

    @classmethod
    def decode(cls, text: str) -> Standing:
        nice, cpus, limits = text.split(";")
        triples = []
        for triple in filter(None, limits.split(",")):
            kind, soft, hard = map(int, triple.split(":"))  # ValueError if it is not one
            triples.append((kind, soft, hard))
        return cls(int(nice), [int(c) for c in cpus.split(",") if c], triples)


class Request:
    """What a child needs to become the command's process. On the wire: its fields as
    strings separated by NUL (which no argument or environment variable can hold), after
    their length; the standard streams go beside, as file descriptors."""

    def __init__(
        self,
        fingerprint: str,
        argv: Sequence[str],
        environ: Mapping[str, str],
        cwd: str,
        umask: int,
        path0: str,
        streams: Sequence[tuple[str, str]],
        standing: Standing,
    ) -> None:
        self.fingerprint = fingerprint
        self.argv = list(argv)
        self.environ = dict(environ)
        self.cwd = cwd
        self.umask = umask
        self.path0 = path0
        self.streams = list(streams)
        self.standing = standing

    @classmethod
    def here(cls, argv: Sequence[str]) -> Request:
        """This process's."""
        mask = os.umask(0o022)
        os.umask(mask)
        streams = [
            (getattr(s, "encoding", None) or "utf-8", getattr(s, "errors", None) or "strict")
            for s in (sys.stdin, sys.stdout, sys.stderr)
        ]
        here = os.getcwd(), mask, sys.path[0], streams, Standing.here()
        return cls(fingerprint(), argv, os.environ, *here)

    def encode(self) -> bytes:
        fields = [self.fingerprint, self.cwd, str(self.umask), self.path0, self.standing.encode()]
        fields += [part for stream in self.streams for part in stream]
        fields += [str(len(self.argv)), *self.argv]
        fields += [f"{name}={value}" for name, value in self.environ.items()]
        body = "\0".join(fields).encode("utf-8", "surrogateescape")
        return len(body).to_bytes(LENGTH, "big") + body

    @classmethod
    def decode(cls, body: bytes) -> Request:
        """The request in ``body`` (without its length); ValueError if it is not one."""
        fields = body.decode("utf-8", "surrogateescape").split("\0")
        try:
            fingerprint, cwd, umask, path0, standing = fields[:5]
            parts = fields[5 : 5 + 2 * STREAMS]
            streams = [(parts[i], parts[i + 1]) for i in range(0, len(parts), 2)]
            start = 5 + 2 * STREAMS + 1
            count = int(fields[start - 1])
            taken = Standing.decode(standing)
        except (ValueError, IndexError) as exc:
            raise ValueError("not a request") from exc
        argv = fields[start : start + count]
        pairs = [entry.partition("=") for entry in fields[start + count :]]
        environ = {name: value for name, _, value in pairs if name}
        if len(streams) != STREAMS or len(argv) != count or not argv:
            raise ValueError("not a request")
        return cls(fingerprint, argv, environ, cwd, int(umask), path0, streams, taken)


def serving(pid: int) -> bytes:
    return SERVING + pid.to_bytes(LENGTH, "big")


def ended(status: int) -> bytes:
    return ENDED + status.to_bytes(LENGTH, "big", signed=True)


def _receive_exactly(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def hand_over(argv: Sequence[str]) -> int | None:
    """Run this command in the warm process, if one is there and fresh: its exit status;
    None when the command must run here."""
    base = folder()
    if base is None:
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(HANDSHAKE)
    try:
        connection.connect(socket_path(base))
        fds = [stream.fileno() for stream in (sys.stdin, sys.stdout, sys.stderr)]
        data = Request.here(argv).encode()
        sent = socket.send_fds(connection, [data[:4096]], fds)
        connection.sendall(data[sent:])
        answer = _receive_exactly(connection, 1 + LENGTH)
        if answer is None or answer[:1] != SERVING:
            raise ConnectionError("not served")
        # From the go on, the signals are the child's: held back until they can be passed on.
        signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        # The child waits for this before it starts: a command that gave up waiting (and runs
        # here) never runs there too.
        connection.sendall(GO)
    except (OSError, ValueError, AttributeError):  # none there, or no usable standard streams
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
        connection.close()
        return None
    connection.settimeout(None)
    return _stand_in(connection, int.from_bytes(answer[1:], "big"))


def _stand_in(connection: socket.socket, child: int) -> int:
    """Pass this process's signals to the child until the warm process says how it ended.
    Ctrl-Z (SIGTSTP) stops the child with this process, and ``fg`` or ``bg`` continues both."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        try:  # noqa: SIM105 (contextlib is one more import on the way)
            connection.sendall(SIGNAL + bytes([signum]))
        except OSError:
            pass

    def suspend(_signum: int, _frame: FrameType | None) -> None:
        _signal(child, signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here until continued
        signal.signal(signal.SIGTSTP, suspend)
        _signal(child, signal.SIGCONT)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    signal.signal(signal.SIGTSTP, suspend)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)  # any that came meanwhile go on now
    try:
        answer = _receive_exactly(connection, 1 + LENGTH)
    finally:
        connection.close()
    if answer is None or answer[:1] != ENDED:
        print("conveyor: the warm process ended before the command did", file=sys.stderr)
        return 1
    return int.from_bytes(answer[1:], "big", signed=True)


def _signal(pid: int, signum: int) -> None:
    try:  # noqa: SIM105
        os.kill(pid, signum)
    except OSError:
        pass


def host_pids(base: str) -> list[int]:
    """The warm processes of ``base``, as their locks name them (one may have ended)."""
    pids = []
    for name in os.listdir(base):
        if name.endswith(".lock"):
            with open(os.path.join(base, name)) as lock:
                text = lock.read().strip()
            if text.isdigit():
                pids.append(int(text))
    return pids


def stop_hosts(base: str) -> None:
    """Ask the warm processes of ``base`` to end (SIGTERM): each stops taking commands and
    exits once its children have."""
    for pid in host_pids(base):
        _signal(pid, signal.SIGTERM)


def start_host() -> None:
    """Start a warm process in the background for the next command, unless one is there."""
    base = folder()
    if base is None:
        return
    import subprocess

    try:  # noqa: SIM105
        subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli.warmhost", socket_path(base)],
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        pass
