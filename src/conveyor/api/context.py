"""What a handler gets besides its input: the engine's services and the request's facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.api.pagination import PageTokens
from conveyor.auth.gate import Access, Caller
from conveyor.domain.access import iam_action
from conveyor.engine.services import Services


@dataclass(frozen=True, slots=True)
class Context:
    services: Services
    tokens: PageTokens
    request_id: str
    # Who is calling, as an ARN (from the access key of the request's signature).
    caller: str
    # The caller's identity and the gate deciding what it may do (None: everything).
    who: Caller | None = None
    access: Access | None = None

    def authorize(self, operation: str, resource: str) -> None:
        """Refuse with ``AccessDeniedException`` unless the caller may run ``operation`` on
        ``resource``: for handlers whose resource only they can find (the job operations)."""
        if self.access is not None and self.who is not None:
            self.access.authorize(self.who, iam_action(operation), resource)

    def permits(self, operation: str, resource: str) -> bool:
        if self.access is None or self.who is None:
            return True
        return self.access.decide(self.who, iam_action(operation), resource) == "allowed"


Params = dict[str, Any]
Handler = Callable[[Context, Params], dict[str, Any] | None]
