"""A structural problem of a pipeline: where in the declaration, which error, what message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conveyor.domain.actiontype import ActionType, ActionTypeId
from conveyor.domain.errors import ConveyorError

Path = tuple[str | int, ...]
Resolver = Callable[[ActionTypeId], ActionType | None]


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    error: type[ConveyorError]
    message: str

    @property
    def where(self) -> str:
        return format_path(self.path)


def format_path(path: Path) -> str:
    """``("stages", 1, "actions", 0)`` as ``stages[1].actions[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
