"""Drawing API responses for people: status colours, aligned tables, times and durations.

Text is styled with ANSI colours through click, which leaves them out when the output is not a
terminal; widths are measured on the plain text so columns line up either way. ``as_json``
is the other way out, for scripts: the response as the API returned it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import click

from conveyor.cli.stagenotes import condition_notes, stage_notes

STATUS_COLOURS = {
    "Succeeded": "green",
    "Approved": "green",
    "Failed": "red",
    "Errored": "red",
    "Rejected": "red",
    "InProgress": "cyan",
    "Stopping": "yellow",
    "Stopped": "yellow",
    "Overridden": "yellow",
    "Superseded": "bright_black",
    "Cancelled": "bright_black",
    "Abandoned": "bright_black",
    "Skipped": "bright_black",
}
MARKS = {"Succeeded": "✓", "Failed": "✗", "InProgress": "…", "Stopped": "■", "Stopping": "■"}
NONE = "-"
Styler = Callable[[str], str]


def status(text: str | None) -> str:
    """A status in its colour; ``-`` for none."""
    if not text or text == NONE:
        return click.style(NONE, dim=True)
    return click.style(text, fg=STATUS_COLOURS.get(text), bold=True if text == "Failed" else None)


def dim(text: str) -> str:
    return click.style(text, dim=True)


def bold(text: str) -> str:
    return click.style(text, bold=True)


def when(value: Any) -> str:
    """A timestamp in local time to the second; ``-`` for none."""
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return NONE if value is None else str(value)


def duration(start: Any, end: Any) -> str:
    """``end - start`` as ``4.2s``, ``3m 05s`` or ``2h 07m``; ``-`` when either is missing."""
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return NONE
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def one_line(text: Any, limit: int = 60) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    if not text:
        return ""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def table(
    headers: Sequence[str] | None,
    rows: Iterable[Sequence[str]],
    styles: Mapping[int, Styler] | None = None,
    indent: str = "",
    widths: Sequence[int] | None = None,
) -> str:
    """Rows of plain cells as aligned columns (nothing without rows); ``styles`` colours
    cells of some columns.

    ``widths`` lines several tables up with each other (see `column_widths`).
    """
    body = [[str(cell) for cell in row] for row in rows]
    if not body:
        return ""
    every = ([list(headers)] if headers else []) + body
    widths = list(widths or column_widths(every))
    lines = []
    if headers:
        lines.append(indent + _line([bold(h) for h in headers], list(headers), widths))
    for row in body:
        styled = [(styles or {}).get(i, _plain)(cell) for i, cell in enumerate(row)]
        lines.append(indent + _line(styled, row, widths))
    return "\n".join(lines)


def column_widths(rows: Sequence[Sequence[str]]) -> list[int]:
    """The width of each column of ``rows``: its longest cell."""
    count = max((len(row) for row in rows), default=0)
    return [max((len(row[i]) for row in rows if i < len(row)), default=0) for i in range(count)]


def _plain(text: str) -> str:
    return text


def _line(styled: list[str], plain: list[str], widths: Sequence[int]) -> str:
    cells = [
        cell + " " * (width - len(raw))
        for cell, raw, width in zip(styled, plain, widths, strict=False)
    ]
    return "  ".join(cells).rstrip()


def as_json(value: Any) -> str:
    """``value`` as indented JSON, timestamps as ISO 8601 strings."""
    return json.dumps(value, indent=2, default=_encode, ensure_ascii=False)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def trigger_type(summary: Mapping[str, Any]) -> str:
    """An execution's trigger type; for a rollback (ManualRollback, AutomatedRollback), with
    the execution it rolled back to: ``ManualRollback to 1f0c2a9e``."""
    kind = str((summary.get("trigger") or {}).get("triggerType") or "")
    target = (summary.get("rollbackMetadata") or {}).get("rollbackTargetPipelineExecutionId")
    return f"{kind} to {str(target)[:8]}" if target else kind


def trigger(summary: Mapping[str, Any], width: int = 80) -> str:
    """An execution's trigger as one line: its type, then what started it."""
    kind, detail = trigger_type(summary), (summary.get("trigger") or {}).get("triggerDetail")
    return one_line(f"{kind}: {detail}" if detail else kind, width)


def pipeline_state(state: Mapping[str, Any], triggers: Mapping[str, str] | None = None) -> str:
    """``GetPipelineState`` as a tree: each stage, its transition, its actions and their state;
    ``triggers`` (execution id → what started it) is shown beside each stage's execution."""
    name = str(state.get("pipelineName", "?"))
    lines = [
        f"{bold(name)}  version {state.get('pipelineVersion', '?')}"
        + dim(f"  updated {when(state.get('updated'))}")
    ]
    stages = [(stage, *_actions(name, stage)) for stage in state.get("stageStates") or ()]
    widths = column_widths([row for _, rows, _ in stages for row in rows])
    for stage, rows, notes in stages:
        lines += _transition(stage)
        latest = stage.get("latestExecution") or {}
        header = f"{bold(stage.get('stageName', '?'))}  {status(latest.get('status'))}"
        if latest.get("pipelineExecutionId"):
            header += dim(f"  execution {latest['pipelineExecutionId']}")
            started_by = (triggers or {}).get(latest["pipelineExecutionId"])
            if started_by:
                header += dim(f"  ({started_by})")
        header += dim(stage_notes(stage))
        lines.append(header)
        lines += _conditions(stage)
        lines.append(table(None, rows, {0: _mark, 2: status}, indent="  ", widths=widths))
        lines += notes
    return "\n".join(line for line in lines if line)


def _mark(text: str) -> str:
    colour = {"✓": "green", "✗": "red", "…": "cyan", "■": "yellow"}.get(text.strip())
    return click.style(text, fg=colour) if colour else text


def _conditions(stage: Mapping[str, Any]) -> list[str]:
    """A line per kind of condition the stage has: its status, then each rule's."""
    lines = []
    for note in condition_notes(stage):
        rules = []
        for rule in note.rules:
            text = f"{rule.name} {status(rule.status)}"
            if rule.summary:
                text += click.style(f" ({one_line(rule.summary, 80)})", fg="red")
            rules.append(text)
        line = dim(f"  ◇ {note.kind} ") + status(note.status)
        lines.append(line + (dim(": ") + ", ".join(rules) if rules else ""))
    return lines


def _transition(stage: Mapping[str, Any]) -> list[str]:
    lines = []
    transition = stage.get("inboundTransitionState")
    if transition and not transition.get("enabled", True):
        reason = transition.get("disabledReason") or "no reason given"
        by = transition.get("lastChangedBy")
        lines.append(
            click.style("  ⏸ transition disabled", fg="yellow")
            + f": {reason}"
            + dim(f"  (by {by or '?'} at {when(transition.get('lastChangedAt'))})")
        )
    for inbound in stage.get("inboundExecutions") or ():
        lines.append(
            dim("  ↓ inbound ")
            + f"{inbound.get('pipelineExecutionId')} {status(inbound.get('status'))}"
        )
    return lines


def _actions(pipeline: str, stage: Mapping[str, Any]) -> tuple[list[list[str]], list[str]]:
    rows: list[list[str]] = []
    notes: list[str] = []
    for action in stage.get("actionStates") or ():
        name = action.get("actionName", "?")
        latest = action.get("latestExecution") or {}
        revision = (action.get("currentRevision") or {}).get("revisionId") or ""
        detail = one_line(latest.get("summary"))
        if revision:
            detail = f"{revision[:12]}  {detail}".rstrip()
        rows.append(
            [
                MARKS.get(latest.get("status", ""), " "),
                name,
                latest.get("status") or NONE,
                when(latest.get("lastStatusChange")),
                detail,
            ]
        )
        error = latest.get("errorDetails")
        if error:
            notes.append(
                click.style(f"      error {error.get('code')}: ", fg="red")
                + one_line(error.get("message"), 200)
            )
        detection = action.get("changeDetection") or {}
        if detection.get("message"):
            notes.append(
                click.style("      change detection failing: ", fg="yellow")
                + one_line(detection["message"], 200)
            )
        if latest.get("token"):
            command = f"conveyor approve {pipeline} {stage.get('stageName')} {name}"
            notes.append(
                click.style("      waiting for approval: ", fg="cyan")
                + command
                + dim(f"  (token {latest['token']})")
            )
    return rows, notes
