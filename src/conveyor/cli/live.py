"""What `conveyor run` shows while an execution runs: a live table on a terminal, plain lines
elsewhere, and the same summary at the end.

Both displays are fed snapshots (`rows` of a `StateView` for one execution) as often as the
caller likes; they print what changed. The live view redraws a table of stages and actions with
their status, elapsed time and the last line each is logging; the plain printer writes one line
per status change (``Build/UnitTests  Succeeded  1.2s``). Either prints the tail of a failed
action's log as soon as it fails.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from conveyor.engine.views import StateView
from conveyor.store import ExecutionRecord

TAIL_LINES = 15
_READ_BYTES = 8192
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")
STYLES = {
    "InProgress": "bold cyan",
    "Stopping": "bold yellow",
    "Succeeded": "bold green",
    "Failed": "bold red",
    "Abandoned": "bold magenta",
    "Stopped": "bold magenta",
    "Cancelled": "magenta",
    "Superseded": "magenta",
}
NOT_RUN = "Not run"
PENDING = "Pending"


@dataclass(frozen=True, slots=True)
class Row:
    """One action of the execution being watched; ``status`` None: not started (yet)."""

    stage: str
    action: str
    status: str | None = None
    started: float | None = None
    updated: float | None = None
    log: Path | None = None
    summary: str | None = None
    error: str | None = None
    is_approval: bool = False
    token: str | None = None
    configuration: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.stage}/{self.action}"

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        end = now if self.status == "InProgress" or self.updated is None else self.updated
        return max(0.0, end - self.started)


def rows(state: StateView, execution_id: str, logs: Path) -> list[Row]:
    """The actions of ``state`` as the execution ``execution_id`` ran them (so far)."""
    result = []
    for stage in state.stages:
        for action in stage.actions:
            record = action.latest
            if record is None or record.execution_id != execution_id:
                result.append(Row(stage.name, action.name, is_approval=action.is_approval))
                continue
            resolved = record.input.get("resolvedConfiguration") or {}
            result.append(
                Row(
                    stage=stage.name,
                    action=action.name,
                    status=record.status,
                    started=record.started,
                    updated=record.updated,
                    log=None if action.is_approval else logs / f"{record.id}.log",
                    summary=record.summary,
                    error=record.error_message,
                    is_approval=action.is_approval,
                    token=record.token,
                    configuration={str(k): str(v) for k, v in resolved.items()},
                )
            )
    return result


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _clean(line: str) -> str:
    return _CONTROL.sub("", line.rsplit("\r", 1)[-1]).rstrip()


def log_tail(path: Path | None, count: int) -> list[str]:
    """The last ``count`` lines of the log at ``path`` (none when there is no such file)."""
    if path is None:
        return []
    try:
        with path.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - _READ_BYTES * max(1, count // 4)))
            data = log.read()
    except OSError:
        return []
    lines = [_clean(line) for line in data.decode("utf-8", "replace").splitlines()]
    return lines[-count:]


def last_line(path: Path | None) -> str:
    return next((line for line in reversed(log_tail(path, 5)) if line.strip()), "")


def first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def failure_report(row: Row) -> list[Text]:
    """What to show when ``row`` fails: why, and the end of its log."""
    reason = first_line(row.error) or "no reason given"
    lines = [Text.assemble((f"{row.name} failed", "bold red"), f": {reason}")]
    lines += [Text(f"  | {line}", style="dim") for line in log_tail(row.log, TAIL_LINES)]
    return lines


def summary(
    snapshot: Sequence[Row], execution: ExecutionRecord, notes: Sequence[str]
) -> list[Text]:
    """The closing report: each action's status and time, the total, and ``notes``."""
    width = max((len(row.name) for row in snapshot), default=0)
    lines = [Text("Summary", style="bold")]
    for row in snapshot:
        status = row.status or NOT_RUN
        line = Text(f"  {row.name:<{width}}  ")
        line.append(f"{status:<10}", style=STYLES.get(status, "dim"))
        line.append(f"  {duration(row.elapsed(time.time())):>7}")
        if row.status == "Failed" and row.error:
            line.append(f"  {first_line(row.error)}", style="red")
        elif row.summary:
            line.append(f"  {first_line(row.summary)}", style="dim")
        line.rstrip()
        lines.append(line)
    total = duration(max(0.0, execution.updated - execution.started))
    lines.append(
        Text.assemble(
            "Execution ",
            (execution.status, STYLES.get(execution.status, "")),
            f" in {total}",
            f": {first_line(execution.summary)}" if execution.summary else "",
            f" (id {execution.id})",
        )
    )
    lines += [Text(note) for note in notes]
    return lines


def artifact_notes(home: Path, kept: bool) -> list[str]:
    """Where the artifacts and deployed files (buckets) and logs of the run are."""
    buckets = home / "buckets"
    found = sorted(p for p in buckets.iterdir() if p.is_dir()) if buckets.is_dir() else []
    if not kept:
        if found:
            return ["Artifacts were in the temporary home, now removed (keep them with --keep)."]
        return []
    notes = [f"Artifacts and deployed files: {bucket}" for bucket in found]
    notes.append(f"Logs: {home / 'logs'}")
    return notes


class Display:
    """Base of both displays: tracks status changes and reports failures once."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._seen: dict[str, str | None] = {}

    def feed(self, snapshot: Sequence[Row], execution: ExecutionRecord) -> None:
        for row in snapshot:
            if self._seen.get(row.name) != row.status:
                self._seen[row.name] = row.status
                self.changed(row)
        self.draw(snapshot, execution)

    def changed(self, row: Row) -> None:
        if row.status == "Failed":
            for line in failure_report(row):
                self.console.print(line)

    def draw(self, snapshot: Sequence[Row], execution: ExecutionRecord) -> None:
        """Show the whole snapshot (the live view) or nothing more (the plain printer)."""

    def message(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style))

    @contextmanager
    def paused(self) -> Iterator[Console]:
        """The console, free for a question at the terminal."""
        yield self.console

    def close(
        self, snapshot: Sequence[Row], execution: ExecutionRecord, notes: Sequence[str]
    ) -> None:
        self.feed(snapshot, execution)
        self.stop()
        for line in summary(snapshot, execution, notes):
            self.console.print(line)

    def stop(self) -> None:
        """Stop redrawing."""


class PlainPrinter(Display):
    """One line per status change, no colours, no redrawing: for pipes, logs and NO_COLOR."""

    def __init__(self, console: Console, names: Sequence[str]) -> None:
        super().__init__(console)
        self._width = max((len(name) for name in names), default=0)

    def changed(self, row: Row) -> None:
        if row.status is None:
            return
        text = f"{row.name:<{self._width}}  {row.status:<10}"
        if row.status != "InProgress":
            text += f"  {duration(row.elapsed(time.time()))}"
        elif row.is_approval:
            text += "  waiting for approval"
        self.console.print(Text(text.rstrip()))
        super().changed(row)


class LiveView(Display):
    """A table redrawn in place: stages, actions, coloured status, time, last log line."""

    def __init__(self, console: Console, title: str) -> None:
        super().__init__(console)
        self._title = title
        self._live = self._start()

    def _start(self) -> Live:
        # A new Live each time: a restarted one would move the cursor up over what was
        # printed while it was stopped.
        live = Live(console=self.console, refresh_per_second=10, transient=False)
        live.start()
        return live

    def draw(self, snapshot: Sequence[Row], execution: ExecutionRecord) -> None:
        self._live.update(self._render(snapshot, execution))

    def _render(self, snapshot: Sequence[Row], execution: ExecutionRecord) -> RenderableType:
        now = time.time()
        active = execution.status in ("InProgress", "Stopping")
        end = now if active else execution.updated
        header = Text.assemble(
            (self._title, "bold"),
            "  ",
            (execution.status, STYLES.get(execution.status, "")),
            f"  {duration(end - execution.started)}",
        )
        table = Table(box=None, pad_edge=False, header_style="dim", expand=True)
        table.add_column("Stage", style="bold", no_wrap=True)
        table.add_column("Action", no_wrap=True)
        table.add_column("Status", no_wrap=True)
        table.add_column("Time", justify="right", no_wrap=True)
        table.add_column("Output", overflow="ellipsis", no_wrap=True, ratio=1)
        previous = None
        for row in snapshot:
            if previous is not None and row.stage != previous:
                table.add_section()
            status = row.status or (PENDING if active else NOT_RUN)
            table.add_row(
                row.stage if row.stage != previous else "",
                row.action,
                Text(status, style=STYLES.get(status, "dim")),
                duration(row.elapsed(now)),
                self._output(row),
            )
            previous = row.stage
        return Group(header, table)

    @staticmethod
    def _output(row: Row) -> Text:
        if row.status == "Failed":
            return Text(first_line(row.error), style="red")
        if row.is_approval and row.status == "InProgress":
            return Text("waiting for approval", style="yellow")
        if row.is_approval:
            return Text(row.summary or "", style="dim")
        line = last_line(row.log) if row.status else ""
        return Text(line, style="" if row.status == "InProgress" else "dim")

    @contextmanager
    def paused(self) -> Iterator[Console]:
        self._live.stop()
        try:
            yield self.console
        finally:
            self._live = self._start()

    def stop(self) -> None:
        self._live.stop()


def choose_display(title: str, names: Sequence[str]) -> Display:
    """The live view on a terminal; plain lines on a pipe, a dumb terminal or with NO_COLOR."""
    console = Console(highlight=False)
    if console.is_terminal and not os.environ.get("NO_COLOR") and not console.is_dumb_terminal:
        return LiveView(console, title)
    plain = Console(color_system=None, highlight=False, soft_wrap=True, emoji=False)
    return PlainPrinter(plain, names)


def ask_approval(console: Console, row: Row) -> tuple[bool, str]:
    """Show the approval request ``row`` and ask for a decision: approved?, the comment."""
    console.print(Text(f"{row.name} waits for your approval.", style="bold yellow"))
    for key, label in (("CustomData", "Comments"), ("ExternalEntityLink", "Review")):
        if row.configuration.get(key):
            console.print(Text(f"  {label}: {row.configuration[key]}"))
    try:
        answer = console.input(Text("Approve? [y/N] ")).strip().lower()
        comment = console.input(Text("Comment (optional): ")).strip()
    except EOFError:
        console.print()
        return False, ""
    return answer in ("y", "yes"), comment
