"""Which provider does the work of each built-in action type.

`providers` builds, from the installation's settings, the provider of every action type
Conveyor runs itself; other types (custom, third-party) are served by job workers.
"""

from __future__ import annotations

from conveyor.actions.base import Provider, ProviderConfig
from conveyor.actions.commands import Commands
from conveyor.actions.git import GitSource
from conveyor.domain.actiontype import ActionTypeId

__all__ = ["COMMANDS", "GIT_SOURCE", "providers"]

GIT_SOURCE = ActionTypeId("Source", "AWS", "Git", "1")
COMMANDS = ActionTypeId("Compute", "AWS", "Commands", "1")


def providers(config: ProviderConfig) -> dict[ActionTypeId, Provider]:
    """The provider of each built-in action type this installation runs."""
    return {GIT_SOURCE: GitSource(), COMMANDS: Commands()}
