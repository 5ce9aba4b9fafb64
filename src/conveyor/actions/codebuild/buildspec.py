"""A buildspec (version 0.2 or 0.1) parsed and checked into frozen dataclasses.

`parse` takes the YAML text and answers a `model.BuildSpec` or raises `BuildspecError` naming the
first problem and its line. The version is checked first. Then what CodeBuild checks before a
build starts: the phase names and their ``commands`` (a list, or one command as a string),
``on-failure`` values (``ABORT``, ``CONTINUE``, ``RETRY``, ``RETRY-<count>``, ``RETRY-<regex>``,
``RETRY-<count>-<regex>``), variable names (none set may start with ``CODEBUILD_``; exporting one
is allowed), and the ``artifacts``, ``reports`` and ``cache`` sections. Keys a section does not
know, deprecated ones included (``artifacts.type``, 0.1's ``environment_variables`` in 0.2), are
not errors: they make CodeBuild's non-fatal "possible syntax errors" warning and the build runs.
``run-as``, ``proxy``, ``batch``, ``runtime-versions`` and ``env.git-credential-helper`` are
checked as documented and accepted; what they cannot change on this runner is said in
`BuildSpec.ignored`. `is_inline` tells a buildspec given inline from a path to one.
"""

from __future__ import annotations

import re

from yaml.nodes import Node

from conveyor.actions.codebuild.model import (
    PHASES,
    VERSIONS,
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
    "is_inline",
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
# Version 0.1 named ``env`` ``environment_variables`` and its ``variables`` ``plaintext``.
_TOP_01 = _TOP | {"environment_variables"}
_ENV_01 = frozenset({"plaintext"})
_PROXY = frozenset({"upload-artifacts", "logs"})
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*\$?\Z")
_NO_EFFECT = "is accepted but has no effect on this runner"
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


def _variable_name(
    doc: Document, node: Node, name: str, where: str, *, reserved: bool = True
) -> str:
    if not _VARIABLE.match(name):
        raise BuildspecError(f"{doc.line(node)}{where}: {name!r} is not a valid variable name")
    if reserved and name.startswith("CODEBUILD_"):
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


def _run_as(doc: Document, node: Node, where: str, ignored: list[str]) -> None:
    """``run-as``: a Linux user name; the runner's commands run as the user it runs as."""
    user = doc.string(node, where).strip()
    if not _USER.match(user):
        raise BuildspecError(f"{doc.line(node)}{where}: {user!r} is not a Linux user name")
    ignored.append(
        f"Buildspec key {where} ({user}) is accepted; commands run as the user this runner runs as"
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
        exported = doc.strings(node, "env.exported-variables", single=True)
        for name in exported:
            # CodeBuild's own variables may be exported (AWS_ ones may not: see environment).
            _variable_name(doc, node, name, "env.exported-variables", reserved=False)
    if "git-credential-helper" in entries:
        helper = entries["git-credential-helper"]
        if doc.boolean(helper, "env.git-credential-helper"):
            ignored.append(
                "Buildspec key env.git-credential-helper is accepted; git in the build uses "
                "this host's own credential helpers"
            )
    return Env(
        shell=_SHELLS[shell],
        variables=_pairs(doc, entries.get("variables"), "env.variables"),
        parameter_store=_pairs(doc, entries.get("parameter-store"), "env.parameter-store"),
        secrets_manager=_pairs(doc, entries.get("secrets-manager"), "env.secrets-manager"),
        exported_variables=exported,
    )


def _env_01(doc: Document, node: Node) -> Env:
    """Version 0.1's ``environment_variables: {plaintext: {...}}``."""
    entries = doc.mapping(node, "environment_variables")
    doc.check_keys(entries, _ENV_01, "environment_variables")
    return Env(variables=_pairs(doc, entries.get("plaintext"), "environment_variables.plaintext"))


def _proxy(doc: Document, node: Node, ignored: list[str]) -> None:
    entries = doc.mapping(node, "proxy")
    doc.check_keys(entries, _PROXY, "proxy")
    for key in sorted(_PROXY & set(entries)):
        doc.boolean(entries[key], f"proxy.{key}")
    ignored.append(
        f"Buildspec key proxy {_NO_EFFECT} (artifacts and logs stay on this host, no proxy)"
    )


def _commands(
    doc: Document, node: Node | None, where: str
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if doc.is_null(node):
        return (), ()
    pairs = doc.lines(node, where, single=True)
    return tuple(text for text, _ in pairs), tuple(line for _, line in pairs)


def _phase(doc: Document, name: str, node: Node, ignored: list[str]) -> Phase:
    where = f"phases.{name}"
    if doc.is_null(node) and name == "install":
        return Phase(name=name)
    entries = doc.mapping(node, where)
    doc.check_keys(entries, _PHASE, name.upper())
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
    if "run-as" in entries:
        _run_as(doc, entries["run-as"], f"{where}.run-as", ignored)
    if "runtime-versions" in entries:
        runtimes = entries["runtime-versions"]
        if not doc.is_null(runtimes):
            doc.mapping(runtimes, f"{where}.runtime-versions")
        ignored.append(
            f"Buildspec key {where}.runtime-versions is accepted; the build uses the runtimes "
            "installed on this host"
        )
    commands, command_lines = _commands(doc, entries.get("commands"), f"{where}.commands")
    finals, finally_lines = _commands(doc, entries.get("finally"), f"{where}.finally")
    return Phase(
        name=name,
        commands=commands,
        finally_commands=finals,
        on_failure=on_failure,
        command_lines=command_lines,
        finally_lines=finally_lines,
    )


def _artifact(
    doc: Document, node: Node, where: str, secondary: bool, allowed: frozenset[str] = _ARTIFACT
) -> ArtifactSpec:
    entries = doc.mapping(node, where)
    doc.check_keys(entries, allowed - ({"secondary-artifacts"} if secondary else set()), where)
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


def _artifacts(
    doc: Document, node: Node, version: str
) -> tuple[ArtifactSpec | None, dict[str, ArtifactSpec]]:
    # ``type`` was a 0.1 key; 0.2 deprecates it, so there it is warned about.
    allowed = _ARTIFACT | {"type"} if version == "0.1" else _ARTIFACT
    entries = doc.mapping(node, "artifacts")
    secondary: dict[str, ArtifactSpec] = {}
    if not doc.is_null(entries.get("secondary-artifacts")):
        for key, at, value in doc.items(entries["secondary-artifacts"], "secondary-artifacts"):
            secondary[key] = _artifact(doc, value, f"artifacts.{at}", True, allowed)
    if "files" not in entries and secondary:
        doc.check_keys(entries, allowed, "artifacts")
        return None, secondary
    return _artifact(doc, node, "artifacts", False, allowed), secondary


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


def _version(doc: Document, top: dict[str, Node]) -> str:
    if "version" not in top:
        raise BuildspecError("version is missing (use version: 0.2)")
    version = doc.string(top["version"], "version").strip()
    if version not in VERSIONS:
        raise BuildspecError(
            f"{doc.line(top['version'])}version {version} is not supported; use 0.2 (or 0.1)"
        )
    return version


def parse(text: str, name: str = "buildspec.yml") -> BuildSpec:
    """The buildspec in ``text``, called ``name`` in messages; raises `BuildspecError` on the
    first problem found, the version being checked before anything else."""
    doc = Document(text)
    if doc.root is None:
        raise BuildspecError("the buildspec is empty")
    top = doc.mapping(doc.root, "the buildspec")
    version = _version(doc, top)
    doc.check_keys(top, _TOP_01 if version == "0.1" else _TOP, "root")
    if "phases" not in top:
        raise BuildspecError("phases is missing")
    ignored: list[str] = []
    if "run-as" in top:
        _run_as(doc, top["run-as"], "run-as", ignored)
    if not doc.is_null(top.get("proxy")):
        _proxy(doc, top["proxy"], ignored)
    if "batch" in top:
        ignored.append(f"Buildspec key batch {_NO_EFFECT} (batch builds are not run here)")
    phase_nodes = doc.mapping(top["phases"], "phases")
    doc.check_keys(phase_nodes, frozenset(PHASES), "phases")
    phases = tuple(
        _phase(doc, phase, phase_nodes[phase], ignored) for phase in PHASES if phase in phase_nodes
    )
    env = Env() if doc.is_null(top.get("env")) else _env(doc, top["env"], ignored)
    if version == "0.1" and not doc.is_null(top.get("environment_variables")):
        older = _env_01(doc, top["environment_variables"])
        env = Env(
            shell=env.shell,
            variables=older.variables + env.variables,
            parameter_store=env.parameter_store,
            secrets_manager=env.secrets_manager,
            exported_variables=env.exported_variables,
        )
    artifacts, secondary = (
        (None, {})
        if doc.is_null(top.get("artifacts"))
        else _artifacts(doc, top["artifacts"], version)
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
        name=name,
        unknown=tuple((section, tuple(keys)) for section, keys in doc.unknown.items()),
    )


_INLINE_START = re.compile(r"\s*(\{|['\"]?(version|phases)['\"]?\s*:)")


def is_inline(value: str) -> bool:
    """Whether a ``BuildSpec``/``buildspecOverride`` value is the buildspec itself rather than
    a path (or an S3 ARN) to one: a path is one line, so more than one line is inline YAML,
    and so is one line that opens a flow mapping or starts with ``version:``/``phases:``.
    Deciding by shape, not by parsing, keeps a broken inline buildspec a YAML error."""
    text = value.strip()
    return "\n" in text or _INLINE_START.match(text) is not None
