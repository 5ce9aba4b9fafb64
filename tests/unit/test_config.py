"""Settings: defaults, file, environment and overrides, in that order of precedence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.config import (
    Connection,
    Settings,
    SettingsError,
    connection_urls,
    load_settings,
    read_connections,
)


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert replace(settings, home=Settings().home) == Settings()
    assert settings.home == Path.cwd() / ".conveyor"
    assert settings.database.startswith("sqlite:///")
    assert settings.database.endswith(".conveyor/conveyor.db")


def test_precedence(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text("port: 9000\nregion: eu-west-1\nmax-tags: 10\n")
    env = {"CONVEYOR_HOME": str(tmp_path), "CONVEYOR_PORT": "9100"}
    settings = load_settings({"region": "ap-south-1"}, environ=env)
    assert (settings.home, settings.port, settings.region, settings.max_tags) == (
        tmp_path,
        9100,
        "ap-south-1",
        10,
    )


@pytest.mark.parametrize("given", ["option", "environment"])
def test_a_relative_home_is_made_absolute_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if given == "option":
        settings = load_settings({"home": "state"}, environ={})
    else:
        settings = load_settings(environ={"CONVEYOR_HOME": "state"})
    monkeypatch.chdir("/")
    assert settings.home == tmp_path / "state"
    assert settings.database == f"sqlite:///{(tmp_path / 'state' / 'conveyor.db').resolve()}"


def test_database_url_from_environment() -> None:
    env = {"CONVEYOR_DATABASE_URL": "postgresql://db/x"}
    assert load_settings(environ=env).database == "postgresql://db/x"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("port: [1]\n", "port"),
        ("colour: red\n", "unknown settings: colour"),
        ("- a\n", "mapping"),
        ("a: [\n", "YAML"),
    ],
)
def test_bad_settings_files(tmp_path: Path, content: str, fragment: str) -> None:
    (tmp_path / "settings.yaml").write_text(content)
    with pytest.raises(SettingsError, match=fragment):
        load_settings(environ={"CONVEYOR_HOME": str(tmp_path)})


def test_connections_with_a_git_host() -> None:
    arn = "arn:aws:codestar-connections:us-east-1:000000000000:connection/abc"
    plain = {arn: "https://git.example.com/"}
    assert read_connections(plain)[arn] == Connection(arn, "https://git.example.com/", "abc")
    hosted = {arn: {"url": "/srv/git", "host": "gitea", "secret": "s", "name": "forge"}}
    found = read_connections(hosted)[arn]
    assert (found.name, found.host, found.secret) == ("forge", "gitea", "s")
    assert "s'" not in repr(found)
    assert connection_urls(hosted) == {arn: "/srv/git"}


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"host": "github"}, "a mapping with a url"),
        ({"url": "/x", "host": "bitbucket", "secret": "s"}, "is not one of"),
        ({"url": "/x", "host": "gitlab"}, "needs a webhook secret"),
        ({"url": "/x", "name": "no spaces"}, "may use letters"),
        (5, "a mapping with a url"),
    ],
)
def test_unusable_connections_are_refused_when_settings_load(
    tmp_path: Path, entry: object, says: str
) -> None:
    arn = "arn:aws:codestar-connections:us-east-1:000000000000:connection/abc"
    with pytest.raises(SettingsError, match=says):
        load_settings({"home": tmp_path, "connections": {arn: entry}}, environ={})


def test_detect_changes_is_a_boolean(tmp_path: Path) -> None:
    off = load_settings({"home": tmp_path}, environ={"CONVEYOR_DETECT_CHANGES": "false"})
    assert off.detect_changes is False
    assert load_settings({"home": tmp_path}, environ={}).detect_changes is True
    with pytest.raises(SettingsError, match="not true or false"):
        load_settings({"home": tmp_path}, environ={"CONVEYOR_DETECT_CHANGES": "maybe"})


def test_aws_endpoints_and_worker_types_from_the_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text(
        "aws_endpoints:\n  cloudformation: http://127.0.0.1:4566\n  ecs: aws\n"
        "worker_action_types: [AWS/Deploy/ECS/1]\n"
    )
    settings = load_settings({"home": str(tmp_path)}, environ={})
    assert settings.aws_endpoints == {"cloudformation": "http://127.0.0.1:4566", "ecs": "aws"}
    assert settings.worker_action_types == ("AWS/Deploy/ECS/1",)
    listed = load_settings(
        {"home": str(tmp_path)},
        environ={"CONVEYOR_WORKER_ACTION_TYPES": "AWS/Deploy/EKS/1, AWS/Deploy/EC2/1"},
    )
    assert listed.worker_action_types == ("AWS/Deploy/EKS/1", "AWS/Deploy/EC2/1")
    (tmp_path / "settings.yaml").write_text("aws_endpoints: http://127.0.0.1:4566\n")
    with pytest.raises(SettingsError, match="aws_endpoints"):
        load_settings({"home": str(tmp_path)}, environ={})


def test_remote_worker_settings_from_the_environment() -> None:
    env = {
        "CONVEYOR_WORKERS": "0",
        "CONVEYOR_REMOTE_WORKERS": "true",
        "CONVEYOR_JOB_LEASE_SECONDS": "2.5",
    }
    settings = load_settings(environ=env)
    assert (settings.workers, settings.remote_workers, settings.job_lease_seconds) == (0, True, 2.5)


@pytest.mark.parametrize("lease", ["0", "-1"])
def test_a_lease_of_no_time_is_refused(lease: str) -> None:
    with pytest.raises(SettingsError, match="job_lease_seconds': more than 0 seconds"):
        load_settings(environ={"CONVEYOR_JOB_LEASE_SECONDS": lease})
