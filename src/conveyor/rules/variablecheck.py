"""The ``Rule/AWS/VariableCheck/1`` rule: compare a variable's value with an expected value.

The rule's ``Variable`` arrives already resolved (``#{SourceVariables.BranchName}`` is the
branch's name by the time the job runs), so the check is a comparison of two strings:
``EQ`` and ``NE`` compare them whole, ``CONTAINS`` looks for ``Value`` inside the variable,
``MATCHES`` reads ``Value`` as a Java regular expression that the whole variable must match,
as Java's ``String.matches`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from conveyor.actions.base import FailureType, JobContext, JobResult
from conveyor.rules.javaregex import JavaRegexError, compile_java

__all__ = ["Operator", "VariableCheck", "check"]


class Operator(StrEnum):
    EQ = "EQ"
    NE = "NE"
    CONTAINS = "CONTAINS"
    MATCHES = "MATCHES"


_VERBS: dict[Operator, tuple[str, str]] = {
    Operator.EQ: ("equals", "does not equal"),
    Operator.NE: ("does not equal", "equals"),
    Operator.CONTAINS: ("contains", "does not contain"),
    Operator.MATCHES: ("matches", "does not match"),
}


def _matches(variable: str, value: str) -> bool:
    return compile_java(value).fullmatch(variable) is not None


_TESTS: dict[Operator, Callable[[str, str], bool]] = {
    Operator.EQ: lambda variable, value: variable == value,
    Operator.NE: lambda variable, value: variable != value,
    Operator.CONTAINS: lambda variable, value: value in variable,
    Operator.MATCHES: _matches,
}


def check(operator: Operator, variable: str, value: str) -> bool:
    """Whether ``variable`` passes ``operator`` against ``value``; `JavaRegexError` for a
    MATCHES value that is no usable expression."""
    return _TESTS[operator](variable, value)


class VariableCheck:
    def run(self, context: JobContext) -> JobResult:
        configuration = context.configuration
        missing = [key for key in ("Operator", "Variable", "Value") if key not in configuration]
        if missing:
            return JobResult.failed(
                f"VariableCheck needs the configuration {', '.join(missing)}",
                FailureType.CONFIGURATION_ERROR,
            )
        try:
            operator = Operator(configuration["Operator"])
        except ValueError:
            return JobResult.failed(
                f"Operator {configuration['Operator']!r} is not one of "
                f"{', '.join(item.value for item in Operator)}",
                FailureType.CONFIGURATION_ERROR,
            )
        variable, value = configuration["Variable"], configuration["Value"]
        try:
            passed = check(operator, variable, value)
        except JavaRegexError as error:
            return JobResult.failed(
                f"Value {value!r} is not a usable regular expression: {error}",
                FailureType.CONFIGURATION_ERROR,
            )
        verb = _VERBS[operator][0 if passed else 1]
        text = f"Variable value {variable!r} {verb} {value!r}"
        print(f"{text} ({operator.value}): {'passed' if passed else 'failed'}", file=context.log)
        if passed:
            return JobResult(succeeded=True, summary=text)
        return JobResult(succeeded=False, summary=text, message=text)
