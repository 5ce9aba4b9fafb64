"""A buildspec (version 0.2) parsed and checked into frozen dataclasses.

`parse` takes the YAML text and answers a `model.BuildSpec` or raises `BuildspecError` naming the
first problem and its line. It checks what CodeBuild checks before a build starts: the version,
the phase names and their ``commands`` lists, ``on-failure`` values (``ABORT``, ``CONTINUE``,
``RETRY``, ``RETRY-<count>``, ``RETRY-<regex>``, ``RETRY-<count>-<regex>``), variable names
(none may start with ``CODEBUILD_``), and the ``artifacts``, ``reports`` and ``cache`` sections.
Keys Conveyor accepts but does not act on (``run-as``, ``proxy``, ``batch``,
``runtime-versions``, ``git-credential-helper``) are listed in `BuildSpec.ignored`.
"""

from __future__ import annotations

import re

from yaml.nodes import Node

from conveyor.actions.codebuild.model import (
    PHASES,
    ArtifactSpec,
    BuildSpec,
    CacheSpec,
    Env,
    OnFailure,
    Phase,
    ReportSpec,
    parse_on_failure,
)
from conveyor.actions.codebuild.yamlread import BuildspecError, Document

__all__ = [
    "PHASES",
    "ArtifactSpec",
    "BuildSpec",
    "BuildspecError",
    "CacheSpec",
    "Env",
    "OnFailure",
    "Phase",
    "ReportSpec",
    "parse",
]

MAX_REPORT_GROUPS = 5
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SHELLS = {
    "bash": "bash",
    "/bin/bash": "bash",
    "/usr/bin/bash": "bash",
    "sh": "sh",
    "/bin/sh": "sh",
}
_TOP = frozenset(
    {"version", "run-as", "env", "proxy", "batch", "phases", "reports", "artifacts", "cache"}
)
_ENV = frozenset(
    {
        "shell",
        "variables",
        "parameter-store",
        "secrets-manager",
        "exported-variables",
        "git-credential-helper",
    }
)
_PHASE = frozenset({"run-as", "on-failure", "commands", "finally", "runtime-versions"})
_ARTIFACT = frozenset(
    {
        "files",
        "name",
        "discard-paths",
        "base-directory",
        "exclude-paths",
        "enable-symlinks",
        "s3-prefix",
        "secondary-artifacts",
    }
)
_REPORT = frozenset({"files", "base-directory", "discard-paths", "file-format"})
_CACHE = frozenset({"paths", "key", "fallback-keys", "action"})


def _variable_name(doc: Document, node: Node, name: str, where: str) -> str:
    if not _VARIABLE.match(name):
        raise BuildspecError(f"{doc.line(node)}{where}: {name!r} is not a valid variable name")
    if name.startswith("CODEBUILD_"):
        raise BuildspecError(
            f"{doc.line(node)}{where}: {name} starts with CODEBUILD_, which is reserved"
        )
    return name


def _pairs(doc: Document, node: Node | None, where: str) -> tuple[tuple[str, str], ...]:
    if doc.is_null(node):
        return ()
    return tuple(
        (_variable_name(doc, value, key, where), doc.string(value, at, null=""))
        for key, at, value in doc.items(node, where)
    )


def _env(doc: Document, node: Node, ignored: list[str]) -> Env:
    entries = doc.mapping(node, "env")
    doc.check_keys(entries, _ENV, "env")
    shell = doc.string(entries.get("shell"), "env.shell", null="bash")
    if shell not in _SHELLS:
        raise BuildspecError(
            f"{doc.line(entries.get('shell'))}env.shell must be bash or /bin/sh, not {shell!r}"
        )
    exported: tuple[str, ...] = ()
    if "exported-variables" in entries:
        node = entries["exported-variables"]
        exported = doc.strings(node, "env.exported-variables")
        for name in exported:
            _variable_name(doc, node, name, "env.exported-variables")
    if "git-credential-helper" in entries:
        ignored.append("env.git-credential-helper")
    return Env(
        shell=_SHELLS[shell],
        variables=_pairs(doc, entries.get("variables"), "env.variables"),
        parameter_store=_pairs(doc, entries.get("parameter-store"), "env.parameter-store"),
        secrets_manager=_pairs(doc, entries.get("secrets-manager"), "env.secrets-manager"),
        exported_variables=exported,
    )


def _phase(doc: Document, name: str, node: Node, ignored: list[str]) -> Phase:
    where = f"phases.{name}"
    entries = doc.mapping(node, where)
    doc.check_keys(entries, _PHASE, where)
    if "commands" not in entries and name != "install":
        raise BuildspecError(f"{doc.line(node)}{where}.commands is missing")
    on_failure = OnFailure()
    if "on-failure" in entries:
        text = doc.string(entries["on-failure"], f"{where}.on-failure")
        try:
            on_failure = parse_on_failure(text)
        except ValueError as error:
            line = doc.line(entries["on-failure"])
            raise BuildspecError(f"{line}{where}.on-failure {text!r}: {error}") from None
    for key in ("run-as", "runtime-versions"):
        if key in entries:
            ignored.append(f"{where}.{key}")
    commands = entries.get("commands")
    finally_node = entries.get("finally")
    return Phase(
        name=name,
        commands=() if doc.is_null(commands) else doc.strings(commands, f"{where}.commands"),
        finally_commands=(
            () if doc.is_null(finally_node) else doc.strings(finally_node, f"{where}.finally")
        ),
        on_failure=on_failure,
    )


def _artifact(doc: Document, node: Node, where: str, secondary: bool) -> ArtifactSpec:
    entries = doc.mapping(node, where)
    doc.check_keys(entries, _ARTIFACT - ({"secondary-artifacts"} if secondary else set()), where)
    if "files" not in entries:
        raise BuildspecError(f"{doc.line(node)}{where}.files is missing")
    base = entries.get("base-directory")
    name = entries.get("name")
    return ArtifactSpec(
        files=doc.strings(entries["files"], f"{where}.files", single=True),
        base_directory=None if doc.is_null(base) else doc.string(base, f"{where}.base-directory"),
        discard_paths=doc.boolean(entries.get("discard-paths"), f"{where}.discard-paths"),
        exclude_paths=(
            doc.strings(entries["exclude-paths"], f"{where}.exclude-paths", single=True)
            if not doc.is_null(entries.get("exclude-paths"))
            else ()
        ),
        enable_symlinks=doc.boolean(entries.get("enable-symlinks"), f"{where}.enable-symlinks"),
        name=None if doc.is_null(name) else doc.string(name, f"{where}.name"),
    )


def _artifacts(doc: Document, node: Node) -> tuple[ArtifactSpec | None, dict[str, ArtifactSpec]]:
    entries = doc.mapping(node, "artifacts")
    secondary: dict[str, ArtifactSpec] = {}
    if not doc.is_null(entries.get("secondary-artifacts")):
        for key, at, value in doc.items(entries["secondary-artifacts"], "secondary-artifacts"):
            secondary[key] = _artifact(doc, value, f"artifacts.{at}", True)
    if "files" not in entries and secondary:
        doc.check_keys(entries, _ARTIFACT, "artifacts")
        return None, secondary
    return _artifact(doc, node, "artifacts", False), secondary


def _reports(doc: Document, node: Node) -> tuple[ReportSpec, ...]:
    reports = []
    for group, where, value in doc.items(node, "reports"):
        entries = doc.mapping(value, where)
        doc.check_keys(entries, _REPORT, where)
        if "files" not in entries:
            raise BuildspecError(f"{doc.line(value)}{where}.files is missing")
        base = entries.get("base-directory")
        reports.append(
            ReportSpec(
                group=group,
                files=doc.strings(entries["files"], f"{where}.files", single=True),
                base_directory=(
                    None if doc.is_null(base) else doc.string(base, f"{where}.base-directory")
                ),
                discard_paths=doc.boolean(entries.get("discard-paths"), f"{where}.discard-paths"),
                file_format=doc.string(
                    entries.get("file-format"), f"{where}.file-format", null="JUNITXML"
                ).upper(),
            )
        )
    if len(reports) > MAX_REPORT_GROUPS:
        raise BuildspecError(f"reports: at most {MAX_REPORT_GROUPS} report groups are allowed")
    return tuple(reports)


def _cache(doc: Document, node: Node) -> CacheSpec:
    entries = doc.mapping(node, "cache")
    doc.check_keys(entries, _CACHE, "cache")
    if "paths" not in entries:
        raise BuildspecError(f"{doc.line(node)}cache.paths is missing")
    action = doc.string(entries.get("action"), "cache.action", null="").strip().lower()
    if action not in ("", "restore", "save"):
        raise BuildspecError(f"{doc.line(entries['action'])}cache.action must be restore or save")
    key = entries.get("key")
    fallback = entries.get("fallback-keys")
    return CacheSpec(
        paths=doc.strings(entries["paths"], "cache.paths", single=True),
        key=None if doc.is_null(key) else doc.string(key, "cache.key"),
        fallback_keys=(
            () if doc.is_null(fallback) else doc.strings(fallback, "cache.fallback-keys")
        ),
        restore=action != "save",
        save=action != "restore",
    )


def parse(text: str) -> BuildSpec:
    """The buildspec in ``text``; raises `BuildspecError` on the first problem found."""
    doc = Document(text)
    if doc.root is None:
        raise BuildspecError("the buildspec is empty")
    top = doc.mapping(doc.root, "the buildspec")
    doc.check_keys(top, _TOP, "the buildspec")
    if "version" not in top:
        raise BuildspecError("version is missing (use version: 0.2)")
    version = doc.string(top["version"], "version").strip()
    if version != "0.2":
        raise BuildspecError(
            f"{doc.line(top['version'])}version {version} is not supported; use 0.2"
        )
    if "phases" not in top:
        raise BuildspecError("phases is missing")
    ignored: list[str] = [key for key in ("run-as", "proxy", "batch") if key in top]
    phase_nodes = doc.mapping(top["phases"], "phases")
    doc.check_keys(phase_nodes, frozenset(PHASES), "phases")
    phases = tuple(
        _phase(doc, name, phase_nodes[name], ignored) for name in PHASES if name in phase_nodes
    )
    env = Env() if doc.is_null(top.get("env")) else _env(doc, top["env"], ignored)
    artifacts, secondary = (
        (None, {}) if doc.is_null(top.get("artifacts")) else _artifacts(doc, top["artifacts"])
    )
    reports = () if doc.is_null(top.get("reports")) else _reports(doc, top["reports"])
    cache = None if doc.is_null(top.get("cache")) else _cache(doc, top["cache"])
    return BuildSpec(
        version=version,
        phases=phases,
        env=env,
        artifacts=artifacts,
        secondary_artifacts=secondary,
        reports=reports,
        cache=cache,
        ignored=tuple(ignored),
    )
