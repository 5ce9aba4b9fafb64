"""What a page shows of a value: durations, ages, status colours, a timeline's geometry and
the differences between two declarations. Pure functions of their arguments (time arrives
as ``now``), so the templates stay free of arithmetic and every rule is tested alone.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

# The colour family of each status a pipeline, stage or action execution can have.
_TONES = {
    "Succeeded": "ok",
    "Approved": "ok",
    "InProgress": "run",
    "Stopping": "run",
    "Failed": "bad",
    "Rejected": "bad",
    "Abandoned": "bad",
    "Stopped": "off",
    "Superseded": "off",
    "Cancelled": "off",
    "Skipped": "off",
    "Errored": "bad",
    "Overridden": "off",
}


def tone(status: str | None) -> str:
    """The CSS class of a status chip: ok, run, bad, off, or none (never ran)."""
    return _TONES.get(status or "", "none")


def duration(seconds: float | None) -> str:
    """``850 ms``, ``12.4 s``, ``3 min 05 s``, ``2 h 01 min``; empty when unknown."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def age(moment: float | None, now: float) -> str:
    """How long ago, in the largest whole unit: ``just now``, ``5 min ago``, ``3 d ago``."""
    if moment is None:
        return ""
    seconds = now - moment
    if seconds < 10:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def link(url: str | None) -> str | None:
    """``url`` if a browser may follow it from a page (http or https); None otherwise, so that
    a ``javascript:`` link in a pipeline's configuration is never made clickable."""
    if not url:
        return None
    scheme = url.split(":", 1)[0].strip().lower() if ":" in url else ""
    return url if scheme in ("http", "https") else None


def timestamp(moment: float | None) -> str:
    """An ISO 8601 time in UTC to the second, for ``<time datetime>`` and titles."""
    if moment is None:
        return ""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Bar:
    """One attempt of an action on an execution's timeline, in percent of the whole span."""

    stage: str
    action: str
    attempt: int
    status: str
    left: float
    width: float
    seconds: float
    action_execution_id: str
    # The part of the bar the action spent queued, before a worker claimed its job: percent
    # of the whole span, and seconds (None when not known: no job, or its job is gone).
    queued: float = 0.0
    queued_seconds: float | None = None


def timeline(
    attempts: Iterable[tuple[str, str, int, str, float, float, str]],
    start: float,
    end: float,
    claimed: Mapping[str, float] | None = None,
) -> list[Bar]:
    """Bars for ``(stage, action, attempt, status, started, ended, id)`` drawn to scale
    between ``start`` and ``end``; a bar is at least 0.5 % wide so that it stays visible.
    ``claimed`` gives, by id, when a worker claimed the attempt's job: the time before it is
    drawn as the attempt's time in the queue."""
    span = max(end - start, 1e-6)
    bars = []
    for stage, action, attempt, status, began, ended, ident in attempts:
        left = min(100.0, max(0.0, (began - start) / span * 100))
        width = max(0.5, min(100.0 - left, (ended - began) / span * 100))
        taken = (claimed or {}).get(ident)
        waited = None if taken is None else min(max(0.0, taken - began), ended - began)
        queued = 0.0 if waited is None else min(width, waited / span * 100)
        bars.append(
            Bar(
                stage,
                action,
                attempt,
                status,
                round(left, 2),
                round(width, 2),
                ended - began,
                ident,
                round(queued, 2),
                waited,
            )
        )
    return bars


def as_yaml(declaration: Mapping[str, Any]) -> str:
    return yaml.safe_dump(
        {"pipeline": dict(declaration)}, sort_keys=False, default_flow_style=False
    )


def as_json(declaration: Mapping[str, Any]) -> str:
    return json.dumps({"pipeline": declaration}, indent=2)


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: str  # "add", "del", "hunk" or "same"
    text: str


def diff(old: str, new: str, old_name: str, new_name: str) -> list[DiffLine]:
    """A unified diff of two texts as lines marked for colouring; empty when they agree."""
    lines = []
    for line in difflib.unified_diff(
        old.splitlines(), new.splitlines(), old_name, new_name, lineterm=""
    ):
        if line.startswith(("---", "+++")):
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        lines.append(DiffLine(kind, line))
    return lines


def run_order_groups(actions: Iterable[Mapping[str, Any]]) -> list[tuple[int, list[str]]]:
    """Action names of a declared stage grouped by runOrder, in run order."""
    groups: dict[int, list[str]] = {}
    for action in actions:
        groups.setdefault(int(action.get("runOrder") or 1), []).append(action["name"])
    return sorted(groups.items())


# How the pipeline page names each kind of stage condition, in the order a stage meets them.
CONDITION_KINDS = (
    ("BEFORE_ENTRY", "Before entry"),
    ("ON_SUCCESS", "On success"),
    ("ON_FAILURE", "On failure"),
)
