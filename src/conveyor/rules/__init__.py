"""Stage-condition rules: each rule type's provider, run as a job like an action.

A rule's type is ``ActionTypeId("Rule", "AWS", provider, "1")``; its provider gets the rule's
resolved configuration, commands and input artifacts in a `JobContext` and answers whether the
rule passed (`JobResult.succeeded`), with a ``summary`` for ListRuleExecutions and a
``message`` saying why it failed. A rule that has to wait (outside a deployment window, while
an alarm is watched) waits inside its job, honouring ``cancelled`` and ``time_left``.
"""

from __future__ import annotations

from conveyor.actions.base import Provider, ProviderConfig
from conveyor.artifacts.unpacked import Unpacked
from conveyor.domain.actiontype import ActionTypeId
from conveyor.rules.variablecheck import VariableCheck

__all__ = ["RULE_CATEGORY", "VARIABLE_CHECK", "providers", "rule_type"]

RULE_CATEGORY = "Rule"


def rule_type(provider: str) -> ActionTypeId:
    """The type id a rule of ``provider`` runs under."""
    return ActionTypeId(RULE_CATEGORY, "AWS", provider, "1")


VARIABLE_CHECK = rule_type("VariableCheck")


def providers(config: ProviderConfig, unpacked: Unpacked) -> dict[ActionTypeId, Provider]:
    """The provider of each rule type this installation runs."""
    del config, unpacked  # not needed by the rules so far
    return {VARIABLE_CHECK: VariableCheck()}
