"""What a handler gets besides its input: the engine's services and the request's facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.api.pagination import PageTokens
from conveyor.engine.services import Services


@dataclass(frozen=True, slots=True)
class Context:
    services: Services
    tokens: PageTokens
    request_id: str
    # Who is calling, as an ARN (from the access key of the request's signature).
    caller: str


Params = dict[str, Any]
Handler = Callable[[Context, Params], dict[str, Any] | None]
