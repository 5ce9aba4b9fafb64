"""What `conveyor run` shows while an execution runs: a live table on a terminal, plain lines
elsewhere, and the same summary at the end.

Both displays are fed snapshots (`rows` of a `StateView` for one execution) whenever the
engine reports a change; they print what changed. The live view draws a table of stages and
actions with their status, elapsed time and what each is saying (`rows.last_line`, or a
build's test summary once done); it redraws itself ten times a second from the last
snapshot, so its clocks run between changes and while an approval is being asked. The plain
printer writes one line per status change (``Build/UnitTests  Succeeded  1.2s``). Either
prints the tail of a failed action's log as soon as it fails.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from conveyor.cli.prompt import Question
from conveyor.cli.rows import Row, duration, first_line, last_line, log_tail, reported_tests

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported only once a run starts
    from conveyor.store import ExecutionRecord

TAIL_LINES = 15
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

    # Whether the question is typed a key at a time (and drawn here), or a line at a time.
    keys = False

    def __init__(self, console: Console) -> None:
        self.console = console
        self.question: Question | None = None
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

    def ask(self, question: Question | None) -> None:
        """Show ``question`` (its request, then its prompt), or that none is asked now."""
        if question is not None and question is not self.question:
            for line in question.request():
                self.message(line, "bold yellow" if not line.startswith(" ") else "")
        self.question = question
        self.prompted()

    def prompted(self) -> None:
        """The question's prompt or typed text changed."""

    def close(
        self, snapshot: Sequence[Row], execution: ExecutionRecord, notes: Sequence[str]
    ) -> None:
        self.question = None
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
        self._prompt: str | None = None

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

    def prompted(self) -> None:
        """Print each prompt once; the terminal echoes what is typed after it."""
        prompt = self.question.prompt if self.question else None
        if prompt is not None and prompt != self._prompt:
            self.console.print(Text(prompt), end="")
            self.console.file.flush()
        self._prompt = prompt


class LiveView(Display):
    """A table redrawn in place: stages, actions, coloured status, time, what each says."""

    keys = True

    def __init__(self, console: Console, title: str) -> None:
        super().__init__(console)
        self._title = title
        self._snapshot: tuple[Sequence[Row], ExecutionRecord] | None = None
        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=10,
            transient=False,
        )
        self._live.start()

    def draw(self, snapshot: Sequence[Row], execution: ExecutionRecord) -> None:
        self._snapshot = (snapshot, execution)
        self._live.refresh()

    def prompted(self) -> None:
        self._live.refresh()

    def _render(self) -> RenderableType:
        if self._snapshot is None:
            return Text(self._title, style="bold")
        snapshot, execution = self._snapshot
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
                output(row),
            )
            previous = row.stage
        question = self.question
        if question is None:
            return Group(header, table)
        asked = Text.assemble(
            (f"{question.row.name}: ", "bold yellow"), question.prompt, question.line.text, "▌"
        )
        return Group(header, table, Text(), asked)

    def stop(self) -> None:
        self._live.stop()


def output(row: Row) -> Text:
    """The live view's last column for ``row``: its error, its tests, or its last log line."""
    if row.status == "Failed":
        return Text(first_line(row.error), style="red")
    if row.is_approval and row.status == "InProgress":
        return Text("waiting for approval", style="yellow")
    if row.is_approval:
        return Text(row.summary or "", style="dim")
    if row.status is None:
        return Text("")
    if row.status != "InProgress" and (tests := reported_tests(row)):
        return Text(tests)
    return Text(last_line(row.log), style="" if row.status == "InProgress" else "dim")


def choose_display(title: str, names: Sequence[str]) -> Display:
    """The live view on a terminal; plain lines on a pipe, a dumb terminal or with NO_COLOR."""
    console = Console(highlight=False)
    if console.is_terminal and not os.environ.get("NO_COLOR") and not console.is_dumb_terminal:
        return LiveView(console, title)
    plain = Console(color_system=None, highlight=False, soft_wrap=True, emoji=False)
    return PlainPrinter(plain, names)
