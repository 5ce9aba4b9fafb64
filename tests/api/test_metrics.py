"""``/metrics`` in Prometheus' format: scraped before and after an execution, and who may
read it with authentication on."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from conveyor.config import Settings
from conveyor.metrics import Histogram, Recorder
from conveyor.server import Running, running
from tests.api.test_detection import detecting, follow, git_action, wait_count
from tests.api.test_remote_worker_routes import GIT, call, start
from tests.conftest import make_client
from tests.support.auth import allow, make_user
from tests.support.engine import (
    commands,
    commit,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(endpoint: str, headers: dict[str, str] | None = None) -> tuple[str, Samples]:
    request = urllib.request.Request(endpoint + "/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
        kind = response.headers["Content-Type"]
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return kind, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Running]:
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'conveyor.db'}",
        detect_changes=False,
    )
    with running(settings) as live:
        yield live


def test_metrics_before_and_after_an_execution(local: Running, tmp_path: Path) -> None:
    client = make_client(local.endpoint)
    kind, before = scrape(local.endpoint)
    assert kind.startswith("text/plain")
    assert value(before, "conveyor_pipeline_executions", pipeline="app", status="Succeeded") == 0
    assert value(before, "conveyor_workers", state="idle") >= 1
    repo = tmp_path / "repo"
    make_repo(repo, {"README": "x"})
    client.create_pipeline(pipeline=declaration("app", repo, stage("Build", commands("B", "true"))))
    execution = wait_for(lambda: latest_execution_id(client, "app"), what="an execution")
    wait_status(client, "app", execution, "Succeeded", timeout=60)
    with pytest.raises(ClientError):
        client.get_pipeline(name="ghost")

    def after() -> Samples | None:
        samples = scrape(local.endpoint)[1]
        done = value(
            samples,
            "conveyor_action_duration_seconds_count",
            provider="Commands",
            state="SUCCEEDED",
        )
        return samples if done else None

    # The action's end is counted when its transaction commits, just before the answer
    # that says the execution succeeded; the scrape may see it a moment later.
    samples = wait_for(after, what="the action's duration")
    assert value(samples, "conveyor_pipeline_executions", pipeline="app", status="Succeeded") == 1
    assert (
        value(
            samples,
            "conveyor_action_duration_seconds_count",
            provider="Commands",
            state="SUCCEEDED",
        )
        == 1
    )
    assert value(samples, "conveyor_jobs_queued") == 0
    service = "codepipeline"
    created = {"service": service, "operation": "CreatePipeline", "error_code": "none"}
    assert value(samples, "conveyor_api_requests_total", **created) == 1
    missing = {
        "service": service,
        "operation": "GetPipeline",
        "error_code": "PipelineNotFoundException",
    }
    assert value(samples, "conveyor_api_requests_total", **missing) == 1
    timed = {"service": service, "operation": "CreatePipeline"}
    assert value(samples, "conveyor_api_request_duration_seconds_count", **timed) == 1
    assert value(samples, "conveyor_notification_deliveries", status="PENDING") == 0


def test_a_detected_change_is_timed_to_its_execution(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    with detecting(settings) as (live, client, detector):
        follow(client, detector, "app", git_action(str(repo)))
        before = scrape(live.endpoint)[1]
        assert value(before, "conveyor_trigger_detection_lag_seconds_count") == 0
        commit(repo, {"a.txt": "1\n"}, "second")
        wait_count(client, "app", 2)
        after = scrape(live.endpoint)[1]
    assert value(after, "conveyor_trigger_detection_lag_seconds_count") == 1
    assert value(after, "conveyor_trigger_detection_lag_seconds_sum") > 0


def test_a_histogram_counts_cumulatively_into_its_buckets() -> None:
    histogram = Histogram((1.0, 5.0))
    for seconds in (0.5, 1.0, 3.0, 60.0):
        histogram.observe(("x",), seconds)
    (series,) = histogram.series()
    assert series.buckets == [(1.0, 2), (5.0, 3), (float("inf"), 4)]
    assert (series.count, series.total) == (4, 64.5)


def test_an_action_is_timed_from_its_start_to_its_end_as_committed() -> None:
    now = [100.0]
    recorder = Recorder(clock=lambda: now[0])

    def event(state: str) -> tuple[str, dict[str, Any]]:
        detail = {
            "execution-id": "x",
            "stage": "Build",
            "action": "B",
            "state": state,
            "type": {"provider": "CodeBuild"},
        }
        return "CodePipeline Action Execution State Change", {"detail": detail}

    recorder.committed([event("STARTED")])
    now[0] = 102.5
    recorder.committed([event("FAILED")])
    recorder.committed([event("SUCCEEDED")])  # no start seen: not timed
    (series,) = recorder.action_duration.series()
    assert series.labels == ("CodeBuild", "FAILED")
    assert (series.count, series.total) == (1, 2.5)


def _refused(endpoint: str, headers: dict[str, str] | None = None) -> str:
    """The error code of a refused scrape."""
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        scrape(endpoint, headers)
    with excinfo.value as error:
        assert error.code in (400, 403)
        found: str = json.loads(error.read())["__type"]
    return found


def _signed(live: Running, key: tuple[str, str]) -> dict[str, str]:
    request = AWSRequest(method="GET", url=live.endpoint + "/metrics")
    SigV4Auth(Credentials(*key), "codepipeline", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_with_authentication_metrics_need_the_token_or_a_caller_who_may_list(
    tmp_path: Path,
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'conveyor.db'}",
        detect_changes=False,
        auth="required",
        metrics_token="scrape-me",
    )
    with running(settings) as live:
        assert _refused(live.endpoint) == "MissingAuthenticationTokenException"
        assert (
            _refused(live.endpoint, {"Authorization": "Bearer wrong"})
            == "IncompleteSignatureException"
        )
        assert scrape(live.endpoint, {"Authorization": "Bearer scrape-me"})[1]
        lister = make_user(live, "lister", policies=[allow("codepipeline:ListPipelines")])
        assert scrape(live.endpoint, _signed(live, lister))[1]
        other = make_user(live, "other", policies=[allow("codepipeline:GetPipeline")])
        assert _refused(live.endpoint, _signed(live, other)) == "AccessDeniedException"
    with running(replace(settings, metrics_token=None)) as live:
        assert (
            _refused(live.endpoint, {"Authorization": "Bearer scrape-me"})
            == "IncompleteSignatureException"
        )


def test_remote_workers_are_counted_idle_while_they_poll_and_busy_with_a_job(
    settings: Settings, tmp_path: Path
) -> None:
    with running(replace(settings, workers=0, remote_workers=True)) as remote:
        before = scrape(remote.endpoint)[1]
        assert value(before, "conveyor_remote_workers", state="idle") == 0
        answers: list[Any] = []
        poll = {"types": [GIT], "owner": "w/1", "wait": 20}
        poller = threading.Thread(
            target=lambda: answers.append(call(remote.endpoint, "poll", poll))
        )
        poller.start()
        try:

            def idle() -> Samples | None:
                samples = scrape(remote.endpoint)[1]
                return samples if value(samples, "conveyor_remote_workers", state="idle") else None

            waiting = wait_for(idle, what="the poll counted as an idle worker")
            assert value(waiting, "conveyor_remote_workers", state="idle") == 1
            assert value(waiting, "conveyor_remote_workers", state="busy") == 0
            start(remote.endpoint, tmp_path)
        finally:
            poller.join(30)
        assert answers[0][1]["job"]["type"] == GIT
        held = scrape(remote.endpoint)[1]
    assert value(held, "conveyor_remote_workers", state="idle") == 0
    assert value(held, "conveyor_remote_workers", state="busy") == 1
