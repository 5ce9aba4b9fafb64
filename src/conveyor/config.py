"""Settings: every default in one place, read from the environment and an optional file.

Precedence, highest first: explicit arguments (command-line options), environment variables
(``CONVEYOR_*``), ``$CONVEYOR_HOME/settings.yaml``, the defaults below. The home is made
absolute once, here: actions run programs (git, builds) in folders of their own, where a home
given as ``./.conveyor`` would name another place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8470
DEFAULT_HOME = ".conveyor"
DEFAULT_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"


class SettingsError(ValueError):
    """A settings file or variable that cannot be used as it is."""


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path = Path(DEFAULT_HOME)
    # None means SQLite at $home/conveyor.db.
    database_url: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION
    # Quotas; None is unlimited. AWS allows 1,000 pipelines and 50 custom action types.
    max_pipelines: int | None = None
    max_custom_action_types: int | None = None
    # Tags per resource, as CodePipeline allows.
    max_tags: int = 50
    # In-process job workers: how many actions run at once on this server (0: none, the
    # actions wait for remote workers).
    workers: int = 4
    # Labels the in-process workers have (``gpu,linux``): they take the actions that require
    # none or some of them (``ConveyorLabels``); with none, only the actions requiring none.
    worker_labels: tuple[str, ...] = ()
    # Serve `conveyor worker` its jobs and artifacts (/_conveyor/worker, /_conveyor/s3):
    # built-in actions then also run on remote workers. Not with auth required, yet.
    remote_workers: bool = False
    # Seconds a worker holds a job without renewing its lease (it renews every third of it);
    # past it the action fails, naming the worker.
    job_lease_seconds: float = 30.0
    # CodeCommit repository names → git URLs or folders (default: $home/repositories/<name>).
    repositories: Mapping[str, str] = field(default_factory=dict)
    # CodeStar connection ARNs → base URLs or folders holding FullRepositoryId, or mappings
    # with ``url`` and, for a git host that sends webhooks, ``host`` (github, gitlab, gitea,
    # forgejo), ``secret`` and ``name`` (its delivery URL is /hooks/<name>).
    connections: Mapping[str, Any] = field(default_factory=dict)
    # Whether a server detects source changes and starts executions for them.
    detect_changes: bool = True
    # Seconds between two polls of a remote repository or an S3 source by change detection.
    poll_interval: float = 60.0
    # Parameter Store and Secrets Manager values for builds (default: $home/secrets.yaml).
    secrets_file: Path | None = None
    # An S3-compatible endpoint: when set, buckets are real buckets reached with boto3.
    s3_endpoint: str | None = None
    # AWS service name (cloudformation, ecs, lambda, ...) → endpoint URL, or ``aws`` for the
    # service's own endpoint in ``region``; the actions that call a service run only when it
    # is named here. Credentials come from the usual AWS chain.
    aws_endpoints: Mapping[str, str] = field(default_factory=dict)
    # Invoke/Lambda functions run here: FunctionName → {handler: "module:function", path:
    # folder holding the module (relative folders are under the home)}.
    lambda_functions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Built-in action types left to job workers that poll for them (``AWS/Deploy/ECS/1``):
    # a Conveyor extension for types with no executor here.
    worker_action_types: tuple[str, ...] = ()
    # The address people use to reach this server, for links such as action log URLs
    # (default: http://<host>:<port>).
    public_url: str | None = None
    # The largest an artifact may be, unpacked, in bytes.
    max_artifact_bytes: int | None = 5 * 1024**3
    # Days to keep events, and finished jobs with their data; None keeps them for ever.
    event_retention_days: float | None = None
    job_retention_days: float | None = None
    # "required": every API request must be signed (SigV4) with a key of the store's users
    # and is decided on their policies; "off": anything is accepted, on loopback only.
    auth: str = "off"
    # Serve without auth on an address other than loopback (warned about on every start).
    insecure: bool = False
    # The Fernet key sealing secrets at rest (default: $home/secret.key, made on first use);
    # servers sharing one database must share it.
    secret_key: str | None = None
    # Days to keep the audit trail; None keeps it for ever. CloudTrail keeps 90.
    audit_retention_days: float | None = 90.0
    # Notifications: hours a failed delivery is retried (with exponential back-off) before
    # it is kept as failed, and seconds one attempt may take.
    notification_retry_hours: float = 24.0
    notification_timeout: float = 10.0
    # With authentication on, a scraper sending ``Authorization: Bearer <this>`` may read
    # /metrics (signed callers who may ListPipelines may too).
    metrics_token: str | None = field(default=None, repr=False)

    @property
    def auth_required(self) -> bool:
        return self.auth == "required"

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'conveyor.db').resolve()}"


_ENV = {
    "home": "CONVEYOR_HOME",
    "database_url": "CONVEYOR_DATABASE_URL",
    "host": "CONVEYOR_HOST",
    "port": "CONVEYOR_PORT",
    "account": "CONVEYOR_ACCOUNT_ID",
    "region": "CONVEYOR_REGION",
    "max_pipelines": "CONVEYOR_MAX_PIPELINES",
    "max_custom_action_types": "CONVEYOR_MAX_CUSTOM_ACTION_TYPES",
    "max_tags": "CONVEYOR_MAX_TAGS",
    "workers": "CONVEYOR_WORKERS",
    "worker_labels": "CONVEYOR_WORKER_LABELS",
    "remote_workers": "CONVEYOR_REMOTE_WORKERS",
    "job_lease_seconds": "CONVEYOR_JOB_LEASE_SECONDS",
    "secrets_file": "CONVEYOR_SECRETS_FILE",
    "s3_endpoint": "CONVEYOR_S3_ENDPOINT",
    "worker_action_types": "CONVEYOR_WORKER_ACTION_TYPES",
    "public_url": "CONVEYOR_PUBLIC_URL",
    "max_artifact_bytes": "CONVEYOR_MAX_ARTIFACT_BYTES",
    "event_retention_days": "CONVEYOR_EVENT_RETENTION_DAYS",
    "job_retention_days": "CONVEYOR_JOB_RETENTION_DAYS",
    "poll_interval": "CONVEYOR_POLL_INTERVAL",
    "detect_changes": "CONVEYOR_DETECT_CHANGES",
    "auth": "CONVEYOR_AUTH",
    "insecure": "CONVEYOR_INSECURE",
    "secret_key": "CONVEYOR_SECRET_KEY",
    "audit_retention_days": "CONVEYOR_AUDIT_RETENTION_DAYS",
    "notification_retry_hours": "CONVEYOR_NOTIFICATION_RETRY_HOURS",
    "notification_timeout": "CONVEYOR_NOTIFICATION_TIMEOUT",
    "metrics_token": "CONVEYOR_METRICS_TOKEN",
}
_NULLABLE = frozenset(
    {
        "database_url",
        "max_pipelines",
        "max_custom_action_types",
        "secrets_file",
        "s3_endpoint",
        "public_url",
        "max_artifact_bytes",
        "event_retention_days",
        "job_retention_days",
        "secret_key",
        "audit_retention_days",
        "metrics_token",
    }
)
AUTH_MODES = ("off", "required")
_KINDS: dict[str, type] = {
    "home": Path,
    "database_url": str,
    "host": str,
    "port": int,
    "account": str,
    "region": str,
    "max_pipelines": int,
    "max_custom_action_types": int,
    "max_tags": int,
    "workers": int,
    "worker_labels": tuple,
    "repositories": dict,
    "connections": dict,
    "secrets_file": Path,
    "s3_endpoint": str,
    "aws_endpoints": dict,
    "lambda_functions": dict,
    "worker_action_types": tuple,
    "public_url": str,
    "max_artifact_bytes": int,
    "event_retention_days": float,
    "job_retention_days": float,
    "poll_interval": float,
    "job_lease_seconds": float,
    "detect_changes": bool,
    "auth": str,
    "insecure": bool,
    "remote_workers": bool,
    "secret_key": str,
    "audit_retention_days": float,
    "notification_retry_hours": float,
    "notification_timeout": float,
    "metrics_token": str,
}
_TRUE, _FALSE = frozenset({"true", "yes", "on", "1"}), frozenset({"false", "no", "off", "0"})


def _coerce(name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    kind = _KINDS[name]
    if kind is bool and not isinstance(value, bool):
        text = str(value).strip().lower()
        if text not in _TRUE | _FALSE:
            raise SettingsError(f"setting {name!r}: {value!r} is not true or false")
        return text in _TRUE
    if kind is tuple and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if name == "auth" and value not in AUTH_MODES:
        raise SettingsError(f"setting 'auth': {value!r} is not one of {', '.join(AUTH_MODES)}")
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name!r}: {value!r} is not a valid {kind.__name__}") from exc


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from defaults, then the settings file, then the environment, then overrides."""
    env = os.environ if environ is None else environ
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    home = Path(given.get("home") or env.get(_ENV["home"]) or DEFAULT_HOME).expanduser().absolute()
    values: dict[str, Any] = {}
    values.update(_read_file(home / "settings.yaml"))
    for name, var in _ENV.items():
        if env.get(var):
            values[name] = env[var]
    values.update(given)
    values["home"] = home
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(unknown)}")
    coerced = {name: _coerce(name, value) for name, value in values.items()}
    read_connections(coerced.get("connections") or {})  # refuse unusable entries now
    lease = coerced.get("job_lease_seconds")
    if lease is not None and not lease > 0:
        raise SettingsError(f"setting 'job_lease_seconds': more than 0 seconds, not {lease}")
    chosen = {k: v for k, v in coerced.items() if v is not None or k in _NULLABLE}
    return replace(Settings(), **chosen)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    import yaml  # here: most commands never read a settings file

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of setting names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


# -- connections -------------------------------------------------------------------------------
# An entry of ``connections`` is a base URL (or folder) as a string, or a mapping with ``url``
# and optionally ``host`` (github, gitlab, gitea or forgejo), ``secret`` and ``name`` (default:
# the resource id at the end of the ARN). A connection with a host is fed by that host's
# deliveries at ``/hooks/<name>`` and is not polled. With a ``token`` too, each execution posts
# its commit's status through the host's API, at ``api`` (default: from an http(s) ``url``).

HOSTS = frozenset({"github", "gitlab", "gitea", "forgejo"})
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")


@dataclass(frozen=True, slots=True)
class Connection:
    arn: str
    url: str
    name: str
    host: str | None = None
    secret: str | None = field(default=None, repr=False)
    # The host's API token and base URL: commit statuses are posted with them.
    token: str | None = field(default=None, repr=False)
    api: str | None = None


def _entry(arn: str, value: Any) -> Connection:
    default_name = arn.rsplit("/", 1)[-1]
    if isinstance(value, str):
        return Connection(arn, value, default_name)
    if not isinstance(value, Mapping) or not isinstance(value.get("url"), str):
        raise SettingsError(f"connection {arn!r}: give a URL, or a mapping with a url")
    host = value.get("host")
    if host is not None and host not in HOSTS:
        raise SettingsError(
            f"connection {arn!r}: host {host!r} is not one of {', '.join(sorted(HOSTS))}"
        )
    name = str(value.get("name") or default_name)
    if not _NAME.match(name):
        raise SettingsError(f"connection {arn!r}: name {name!r} may use letters, digits, . _ -")
    secret = value.get("secret")
    if host is not None and not secret:
        raise SettingsError(f"connection {arn!r}: a {host} connection needs a webhook secret")
    token, api = value.get("token"), value.get("api")
    if token is not None and host is None:
        raise SettingsError(f"connection {arn!r}: a token is for a connection with a host")
    if api is not None and not str(api).startswith(("http://", "https://")):
        raise SettingsError(f"connection {arn!r}: api {api!r} is not an http(s) URL")
    if token is not None and api is None and not value["url"].startswith(("http://", "https://")):
        raise SettingsError(
            f"connection {arn!r}: a token needs the host's api URL when the url is not http(s)"
        )
    return Connection(
        arn,
        value["url"],
        name,
        host,
        None if secret is None else str(secret),
        None if token is None else str(token),
        None if api is None else str(api).rstrip("/"),
    )


def read_connections(setting: Mapping[str, Any]) -> dict[str, Connection]:
    """Connections by ARN; raises `SettingsError` for an entry that cannot be used."""
    return {str(arn): _entry(str(arn), value) for arn, value in setting.items()}


def connection_urls(setting: Mapping[str, Any]) -> dict[str, str]:
    """ARN → base URL or folder, as the connection source takes it."""
    return {arn: c.url for arn, c in read_connections(setting).items()}
