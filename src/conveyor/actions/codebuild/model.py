"""The parsed buildspec: frozen dataclasses for its phases, env, artifacts, reports and cache.

`buildspec.parse` builds these from YAML; the rest of the provider reads them. `OnFailure`
holds a phase's ``on-failure`` (CodeBuild's default transitions, ABORT, CONTINUE, or RETRY with
a count and an optional regular expression), parsed by `parse_on_failure`. Each command keeps
the buildspec line its text starts on, so errors can point there; `BuildSpec.messages` are the
lines the build log opens with (CodeBuild's "possible syntax errors" warning for keys it does
not know, and the keys this runner accepts without acting on them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_RETRIES",
    "MAX_RETRIES",
    "PHASES",
    "VERSIONS",
    "ArtifactSpec",
    "BuildSpec",
    "CacheSpec",
    "Env",
    "OnFailure",
    "Phase",
    "ReportSpec",
    "parse_on_failure",
]

PHASES = ("install", "pre_build", "build", "post_build")
# 0.1 runs each command in a shell of its own; 0.2 runs the build's commands in one shell.
VERSIONS = ("0.1", "0.2")
DEFAULT_RETRIES = 3
MAX_RETRIES = 100


@dataclass(frozen=True, slots=True)
class OnFailure:
    """A phase's ``on-failure``: ``""`` (CodeBuild's default transitions), ABORT, CONTINUE or
    RETRY with how many retries and the regular expression the error must match (None: any)."""

    action: str = ""
    retries: int = 0
    pattern: str | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    commands: tuple[str, ...] = ()
    finally_commands: tuple[str, ...] = ()
    on_failure: OnFailure = OnFailure()
    # The buildspec line each command's text starts on (0: not known).
    command_lines: tuple[int, ...] = ()
    finally_lines: tuple[int, ...] = ()

    def line(self, index: int, in_finally: bool) -> int:
        lines = self.finally_lines if in_finally else self.command_lines
        return lines[index] if index < len(lines) else 0


@dataclass(frozen=True, slots=True)
class Env:
    shell: str = "bash"
    variables: tuple[tuple[str, str], ...] = ()
    parameter_store: tuple[tuple[str, str], ...] = ()
    secrets_manager: tuple[tuple[str, str], ...] = ()
    exported_variables: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ArtifactSpec:
    files: tuple[str, ...]
    base_directory: str | None = None
    discard_paths: bool = False
    exclude_paths: tuple[str, ...] = ()
    enable_symlinks: bool = False
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ReportSpec:
    group: str
    files: tuple[str, ...]
    base_directory: str | None = None
    discard_paths: bool = False
    file_format: str = "JUNITXML"


@dataclass(frozen=True, slots=True)
class CacheSpec:
    paths: tuple[str, ...]
    key: str | None = None
    fallback_keys: tuple[str, ...] = ()
    restore: bool = True
    save: bool = True


@dataclass(frozen=True, slots=True)
class BuildSpec:
    version: str
    phases: tuple[Phase, ...]
    env: Env = Env()
    artifacts: ArtifactSpec | None = None
    secondary_artifacts: Mapping[str, ArtifactSpec] = field(default_factory=dict)
    reports: tuple[ReportSpec, ...] = ()
    cache: CacheSpec | None = None
    ignored: tuple[str, ...] = ()
    # What the buildspec is called in messages: its path, or where an inline one was given.
    name: str = "buildspec.yml"
    # (section, keys it does not know) for CodeBuild's "possible syntax errors" warning.
    unknown: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def one_shell(self) -> bool:
        """Version 0.2 runs all commands in one shell; 0.1 gives each command its own."""
        return self.version != "0.1"

    def messages(self) -> tuple[str, ...]:
        """The lines the build log opens with, after the buildspec is read."""
        lines: list[str] = []
        if self.unknown:
            text = "Found possible syntax errors in buildspec: "
            for section, keys in self.unknown:
                text += f"\nIn the section {section}\n    The following keys cannot be identified:"
                text += "".join(f"\n        {key}" for key in keys)
            lines.append(text)
        lines += self.ignored
        return tuple(lines)


def parse_on_failure(text: str) -> OnFailure:
    """``ABORT``, ``CONTINUE``, ``RETRY``, ``RETRY-<count>``, ``RETRY-<regex>`` or
    ``RETRY-<count>-<regex>``; raises ValueError with the reason otherwise."""
    value = text.strip()
    if value in ("ABORT", "CONTINUE"):
        return OnFailure(value, text=value)
    if value == "RETRY":
        return OnFailure("RETRY", DEFAULT_RETRIES, text=value)
    if not value.startswith("RETRY-") or value == "RETRY-":
        raise ValueError(
            "must be ABORT, CONTINUE, RETRY, RETRY-<count>, RETRY-<regex> or RETRY-<count>-<regex>"
        )
    rest = value[len("RETRY-") :]
    counted = re.fullmatch(r"(\d+)(?:-(.*))?", rest, re.DOTALL)
    retries, pattern = (int(counted[1]), counted[2]) if counted else (DEFAULT_RETRIES, rest)
    if retries > MAX_RETRIES:
        raise ValueError(f"the retry count must be between 0 and {MAX_RETRIES}")
    if pattern:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {error}") from None
    return OnFailure("RETRY", retries, pattern or None, text=value)
