"""Worker labels: what a worker declares it has (``conveyor worker --labels gpu,linux``, the
``worker_labels`` setting for a server's own workers) and what an action requires.

An action requires labels with the ``ConveyorLabels`` configuration property (a Conveyor
extension, taken by every action whose type Conveyor's workers run: owner AWS or ThirdParty),
a comma-separated list; its job goes only to a worker that has every one of them. A job
requiring none goes to any worker. A job keeps its required labels in one canonical text
(sorted, comma-joined), so a claim matches a worker against the canonical texts of the
subsets of its labels: a worker declares at most `MAX_LABELS`.
"""

from __future__ import annotations

import re
from itertools import combinations

LABELS_KEY = "ConveyorLabels"
MAX_LABELS = 8
_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,32}\Z")


class LabelError(ValueError):
    """Labels written wrong: the message says how."""


def parse_labels(text: str | None) -> frozenset[str]:
    """The labels of a comma-separated list (spaces around names ignored)."""
    names = [part.strip() for part in (text or "").split(",") if part.strip()]
    for name in names:
        if not _LABEL.match(name):
            raise LabelError(
                f"label {name!r}: at most 32 letters, digits or any of '_', '.', ':', '-'"
            )
    labels = frozenset(names)
    if len(labels) > MAX_LABELS:
        raise LabelError(f"at most {MAX_LABELS} labels, not {len(labels)}")
    return labels


def canonical(labels: frozenset[str]) -> str | None:
    """The text a job keeps for its required labels; None when it requires none."""
    return ",".join(sorted(labels)) if labels else None


def satisfiable(labels: frozenset[str]) -> tuple[str, ...]:
    """The canonical texts of every non-empty subset of a worker's labels: the required
    labels of the jobs it may take (besides those requiring none)."""
    ordered = sorted(labels)
    return tuple(
        ",".join(chosen)
        for size in range(1, len(ordered) + 1)
        for chosen in combinations(ordered, size)
    )
