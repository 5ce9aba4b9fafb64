"""Which provider does the work of each built-in action type.

`PROVIDERS` maps the type ids of the action types Conveyor runs itself to their provider;
`provider_for` answers ``None`` for any other type (custom types are served by job workers).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from conveyor.actions.base import Provider
from conveyor.actions.commands import Commands
from conveyor.actions.git import GitSource
from conveyor.domain.actiontype import ActionTypeId

__all__ = ["COMMANDS", "GIT_SOURCE", "PROVIDERS", "provider_for"]

GIT_SOURCE = ActionTypeId("Source", "AWS", "Git", "1")
COMMANDS = ActionTypeId("Compute", "AWS", "Commands", "1")

PROVIDERS: Mapping[ActionTypeId, Provider] = MappingProxyType(
    {GIT_SOURCE: GitSource(), COMMANDS: Commands()}
)


def provider_for(type_id: ActionTypeId) -> Provider | None:
    """The provider of the built-in action type ``type_id``, or ``None``."""
    return PROVIDERS.get(type_id)
