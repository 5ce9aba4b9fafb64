"""The VariableCheck rule through its provider, and Java regular expressions in Python's re."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.actions.base import Deferred, FailureType, ProviderConfig
from conveyor.actions.registry import providers
from conveyor.rules import VARIABLE_CHECK
from conveyor.rules.javaregex import JavaRegexError, compile_java
from conveyor.rules.variablecheck import VariableCheck
from tests.support.rulejobs import log_of, rule_context


@pytest.mark.parametrize(
    ("operator", "variable", "value", "passed"),
    [
        ("EQ", "main", "main", True),
        ("EQ", "main", "Main", False),
        ("NE", "main", "release", True),
        ("NE", "main", "main", False),
        ("CONTAINS", "fix: update deps", "update", True),
        ("CONTAINS", "fix: deps", "update", False),
        ("MATCHES", "release/1.2", "release/\\d+\\.\\d+", True),
        ("MATCHES", "release/1.2-rc", "release/\\d+\\.\\d+", False),  # the whole value
        ("MATCHES", "MyDemoRepo", "(?i)mydemo.*", True),
    ],
)
def test_variable_check_operators(
    tmp_path: Path, operator: str, variable: str, value: str, passed: bool
) -> None:
    context = rule_context(tmp_path, {"Operator": operator, "Variable": variable, "Value": value})
    result = VariableCheck().run(context)
    assert result.succeeded is passed
    assert result.summary and repr(variable) in result.summary
    if not passed:
        assert result.message == result.summary
        assert result.failure_type is FailureType.JOB_FAILED
    assert ("passed" if passed else "failed") in log_of(context)


@pytest.mark.parametrize(
    ("configuration", "named"),
    [
        ({"Variable": "a", "Value": "a"}, "Operator"),
        ({"Operator": "EQ", "Value": "a"}, "Variable"),
        ({"Operator": "GT", "Variable": "a", "Value": "a"}, "'GT'"),
        ({"Operator": "MATCHES", "Variable": "a", "Value": "(unclosed"}, "(unclosed"),
        ({"Operator": "MATCHES", "Variable": "a", "Value": "[a-z&&[^b]]"}, "intersection"),
    ],
)
def test_variable_check_misconfigured(
    tmp_path: Path, configuration: dict[str, str], named: str
) -> None:
    result = VariableCheck().run(rule_context(tmp_path, configuration))
    assert not result.succeeded
    assert result.failure_type is FailureType.CONFIGURATION_ERROR
    assert result.message and named in result.message


def test_the_registry_runs_variable_check(tmp_path: Path) -> None:
    built = providers(ProviderConfig(home=tmp_path))[VARIABLE_CHECK]
    assert isinstance(built, Deferred) and isinstance(built.provider(), VariableCheck)


@pytest.mark.parametrize(
    ("pattern", "text", "matched"),
    [
        ("(?<year>\\d{4})-\\k<year>", "2024-2024", True),
        ("(?<year>\\d{4})-\\k<year>", "2024-2025", False),
        ("(?<=v)\\d+", "1", False),  # look-behind is left alone
        ("\\Qa.b*\\E", "a.b*", True),
        ("\\Qa.b*\\E", "axbb", False),
        ("\\p{Alpha}+\\P{Digit}", "abc-", True),
        ("[\\p{Digit}x]+", "1x2", True),
        ("\\p{IsAlpha}+", "abc", True),
        ("\\d+", "\u0663", False),  # Java's \d is ASCII-only
        ("\\w+", "\u00e9", False),
        ("(?i)abc", "ABC", True),
        ("a\\z", "a", True),
        ("\\h+", " \t", True),
        ("a\\Rb", "a\r\nb", True),
        ("\\x{41}", "A", True),
        ("\\cA", "\x01", True),
        ("a*+a", "aaa", False),  # possessive
        ("[]a]+", "]a", True),
        ("\\0101", "A", True),  # Java's octal: \0 then up to three digits
        ("\\0101", "\x081", False),
    ],
)
def test_java_regex(pattern: str, text: str, matched: bool) -> None:
    assert (compile_java(pattern).fullmatch(text) is not None) is matched


@pytest.mark.parametrize(
    "pattern", ["\\p{L}", "(?U)\\w", "[a&&b]", "a\\", "\\k<1>", "[\\P{Digit}]", "\\G"]
)
def test_java_regex_refuses_what_re_cannot_match_alike(pattern: str) -> None:
    with pytest.raises(JavaRegexError):
        compile_java(pattern)
