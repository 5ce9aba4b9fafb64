"""The contract between a worker and a provider: what a job hands over, what comes back.

A provider gets everything it needs in a `JobContext` (resolved configuration, where its input
artifacts are and where its outputs go, a fresh workspace, a log, a cancel flag) and answers
with a `JobResult`. It never touches the database or the engine: the worker reports the result
through the job protocol (acknowledge, then success or failure), like any remote job worker.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TextIO

from conveyor.artifacts import ArtifactStore
from conveyor.domain.builds import BuildRecorder
from conveyor.domain.pipeline import EnvironmentVariable
from conveyor.domain.projects import BuildProject


class FailureType(StrEnum):
    """CodePipeline's ``FailureType``: why a job failed."""

    JOB_FAILED = "JobFailed"
    CONFIGURATION_ERROR = "ConfigurationError"
    PERMISSION_ERROR = "PermissionError"
    REVISION_OUT_OF_SYNC = "RevisionOutOfSync"
    REVISION_UNAVAILABLE = "RevisionUnavailable"
    SYSTEM_UNAVAILABLE = "SystemUnavailable"


@dataclass(frozen=True, slots=True)
class ArtifactLocation:
    """An artifact as a job sees it: its name, where its zip is, and its revision if known."""

    name: str
    bucket: str
    key: str
    revision: str | None = None


@dataclass(frozen=True, slots=True)
class OutputArtifact:
    """Where an output artifact's zip must be written; ``files`` are Commands output globs."""

    name: str
    bucket: str
    key: str
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JobContext:
    job_id: str
    pipeline_name: str
    pipeline_execution_id: str
    stage_name: str
    action_name: str
    action_execution_id: str
    # Configuration with every #{namespace.variable} already resolved.
    configuration: Mapping[str, str]
    input_artifacts: tuple[ArtifactLocation, ...]
    output_artifacts: tuple[OutputArtifact, ...]
    artifacts: ArtifactStore
    # An empty folder that belongs to this job alone; the worker removes it afterwards.
    workspace: Path
    # Where the action's output goes; kept as the action's log.
    log: TextIO
    # Set when the action is stopped (abandoned) or runs out of time: stop as soon as possible.
    cancelled: threading.Event
    # Compute/Commands fields of the action declaration, already resolved.
    commands: tuple[str, ...] = ()
    output_variables: tuple[str, ...] = ()
    environment_variables: tuple[EnvironmentVariable, ...] = ()
    # A source revision to fetch instead of the branch head (StartPipelineExecution
    # sourceRevisions, or a retry that must see the same revision again).
    source_revision: str | None = None
    # Output variables the change that started the execution adds (a pull request's).
    source_variables: Mapping[str, str] = field(default_factory=dict)
    # Seconds the job may still run; None when there is no limit.
    time_left: float | None = None
    # Told the process group id of every process the provider starts, so that a server that
    # dies mid-action can find and end them when it starts again.
    process_started: Callable[[int], None] | None = None
    # Called by the worker once the action is over, before the workspace is removed: each
    # hands back what the workspace borrowed (a copy of an unpacked artifact, say).
    when_done: list[Callable[[], None]] = field(default_factory=list)
    # The job's data as a job worker sees it (CodePipeline's JobData).
    job_data: Mapping[str, Any] = field(default_factory=dict)
    # The Region the action runs in (its own ``region``, or the pipeline's); None: unknown.
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Revision:
    """A source action's revision: shown as ``currentRevision`` and in ``artifactRevisions``."""

    revision_id: str
    change_identifier: str
    created: float | None = None
    summary: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class JobResult:
    succeeded: bool
    summary: str | None = None
    output_variables: Mapping[str, str] = field(default_factory=dict)
    revision: Revision | None = None
    external_execution_id: str | None = None
    # For failures: why, and the message shown in errorDetails.
    failure_type: FailureType = FailureType.JOB_FAILED
    message: str | None = None
    # The job was given its result through the job API by what the provider ran (a Lambda
    # function calling PutJobSuccessResult): the worker reports nothing more.
    reported: bool = False

    @classmethod
    def failed(cls, message: str, failure_type: FailureType = FailureType.JOB_FAILED) -> JobResult:
        return cls(succeeded=False, message=message, failure_type=failure_type)


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """What providers need to know about this installation, from its settings."""

    home: Path
    region: str = "us-east-1"
    account: str = "000000000000"
    # CodeCommit repository name → git URL or folder; unnamed ones are
    # ``home/repositories/<name>``.
    repositories: Mapping[str, str] = field(default_factory=dict)
    # CodeStar connection ARN → base URL (a git host) or folder under which
    # ``FullRepositoryId`` is found; without one, ``home/repositories/<FullRepositoryId>``.
    connections: Mapping[str, str] = field(default_factory=dict)
    # A YAML file with ``parameters`` (Parameter Store names → values) and ``secrets``
    # (Secrets Manager ids → strings, JSON text for keyed secrets); None: there are none.
    secrets: Path | None = None
    # Opens values of the secrets file sealed with the installation's key
    # (``conveyor secret seal``); None: sealed values cannot be read.
    open_sealed: Callable[[str], str] | None = None
    # Build caches kept between builds of the same project on this host.
    cache: Path | None = None
    # The largest an artifact may be, unpacked, in bytes; None: no limit.
    max_artifact_bytes: int | None = None
    # AWS service name → endpoint URL (``aws``: the service's own endpoint in ``region``).
    aws_endpoints: Mapping[str, str] = field(default_factory=dict)
    # Invoke/Lambda FunctionName → {handler: "module:function", path: folder}.
    lambda_functions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Where this server's API answers, for functions that report their job's result.
    api_url: str | None = None
    # The CodeBuild project of a name, as builds use it (None: there is none); None: this
    # installation keeps no projects, and builds run without them.
    projects: Callable[[str], BuildProject | None] | None = None
    # Where CodeBuild builds are recorded as they run, for the CodeBuild API (BatchGetBuilds);
    # None: they are not recorded.
    builds: BuildRecorder | None = None

    @property
    def repositories_folder(self) -> Path:
        return self.home / "repositories"


class Provider(Protocol):
    """Does the work of an action type. A provider whose class says ``makes_workspace =
    True`` is handed a workspace that does not exist yet, and makes it: its first input's
    copy is moved there whole (`conveyor.artifacts.unpacked`), which costs a fraction of
    making a folder, then replacing it, on a file system others keep busy."""

    def run(self, context: JobContext) -> JobResult:
        """Do the action's work; raise nothing for expected failures, return them."""
        ...


class Deferred:
    """A provider made by ``make`` when its first job runs, then kept: its module (say
    CodeBuild's, tens of milliseconds) is imported only by a process that runs such a job,
    so `conveyor run` reaches its first action without the providers its pipeline never uses."""

    def __init__(self, make: Callable[[], Provider]) -> None:
        self._make = make
        self._made: Provider | None = None
        self._lock = threading.Lock()

    def provider(self) -> Provider:
        made = self._made
        if made is None:
            with self._lock:  # two first jobs at once make one provider
                if self._made is None:
                    self._made = self._make()
                made = self._made
        return made

    def run(self, context: JobContext) -> JobResult:
        return self.provider().run(context)


def deferred(module: str, name: str, *args: object) -> Deferred:
    """The provider class ``name`` of ``module``, made with ``args`` when its first job runs."""

    def make() -> Provider:
        made: Provider = getattr(importlib.import_module(module), name)(*args)
        return made

    return Deferred(make)
