"""The deliverer: the process that runs a server's outbox (`conveyor.notify.outbox`), started
and watched by the server (`conveyor.notify.supervisor`), so that the CPU of fanning out,
signing and posting notifications never holds the engine's interpreter.

``python -m conveyor.notify.deliverer`` reads what it needs from its standard input: first one
line of JSON (`Setup`), then a byte each time the server's events committed that may make a
delivery (a pass comes at once). The end of its input is the request to stop (the server
stopping, or gone): the senders finish the request under way, what they delivered is
recorded, the cursor written. Once ready, and then every half second, it writes one line of
JSON to its standard output with what the server's ``/metrics`` counts in memory (the
deliveries' lag and failures, by kind, since the last line) and whether a rule is enabled;
its log goes to standard error, the server's.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.metrics import Recorder

REPORT_EVERY = 0.5

log = logging.getLogger("conveyor.notify")


@dataclass(frozen=True, slots=True)
class Setup:
    """What the deliverer is told as it starts: the server's settings that delivery uses."""

    database: str
    home: str
    secret_key: str | None
    console: str
    region: str
    timeout: float
    retry_for: float
    aws_endpoints: dict[str, str] = field(default_factory=dict)
    connections: dict[str, Any] = field(default_factory=dict)
    log_format: str = "text"

    def encoded(self) -> bytes:
        return json.dumps(asdict(self)).encode() + b"\n"

    @classmethod
    def decoded(cls, line: bytes) -> Setup:
        try:
            read = json.loads(line)
            return cls(**read)
        except (ValueError, TypeError) as exc:
            raise SystemExit(f"conveyor deliverer: not a setup line on its input: {exc}") from None


def report(recorder: Recorder, any_rule: bool, held: int = 0) -> bytes:
    """One line for the server: the lag and failures observed since the last, by kind, and
    how many notifications are held in memory."""
    lags = {k: [counts, total] for (k,), (counts, total) in recorder.delivery_lag.take().items()}
    failed = {k: count for (k,), count in recorder.delivery_failures.take().items()}
    said = {"rules": any_rule, "lag": lags, "failed": failed, "held": held}
    return json.dumps(said).encode() + b"\n"


def main() -> None:
    # A terminal's Ctrl-C reaches the whole process group: the server stops this process
    # itself, by closing its input, once its own requests are over.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    source = sys.stdin.buffer
    setup = Setup.decoded(source.readline())

    from conveyor.logformat import configure_logging

    configure_logging(setup.log_format)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from conveyor.store import StoreUnavailable

    try:
        run(setup, source, sys.stdout.buffer, stop)
    except StoreUnavailable as exc:
        raise SystemExit(f"conveyor deliverer: {exc}") from None


def run(setup: Setup, source: IO[bytes], out: IO[bytes], stop: threading.Event) -> None:
    """Deliver until ``source`` ends or ``stop`` is set."""
    from conveyor.auth.cipher import LazyCipher
    from conveyor.config import read_connections
    from conveyor.engine.clock import SystemClock
    from conveyor.metrics import Recorder
    from conveyor.notify.outbox import Outbox
    from conveyor.notify.statuses import status_hosts
    from conveyor.notify.targets import Sender
    from conveyor.store import Store

    store = Store.open(setup.database)
    store.box = LazyCipher(Path(setup.home), setup.secret_key)
    recorder = Recorder()
    sender = Sender(setup.console, setup.aws_endpoints, setup.region, setup.timeout)
    outbox = Outbox(
        store,
        SystemClock(),
        sender,
        setup.retry_for,
        console=setup.console,
        hosts=status_hosts(read_connections(setup.connections)),
        recorder=recorder,
    )

    def listen() -> None:
        descriptor = source.fileno()
        while os.read(descriptor, 4096):
            outbox.wake()
        stop.set()
        outbox.wake()

    def told() -> bool:
        """Write a report; False once the server is gone (its end closes the input too,
        and delivery stops): what is left is dropped, not raised at the exit."""
        try:
            out.write(report(recorder, outbox.any_rule, outbox.held()))
            out.flush()
        except OSError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
            return False
        return True

    def tell() -> None:
        while not stop.wait(REPORT_EVERY) and told():
            pass

    # The first line says the deliverer is ready: nothing was sent before it.
    told()
    threading.Thread(target=listen, name="conveyor-deliverer-input", daemon=True).start()
    teller = threading.Thread(target=tell, name="conveyor-deliverer-report", daemon=True)
    teller.start()
    try:
        outbox.run(stop)
    finally:
        stop.set()
        teller.join()
        told()
        store.close()


if __name__ == "__main__":
    main()
