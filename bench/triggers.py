"""Change detection: how soon a commit starts its execution, and what polling many remotes costs.

First, a server (SQLite, temporary home) follows a local repository: each of 20 commits is
timed from just before ``git commit`` until the execution it starts is InProgress with its
source action started, beside the floor, the time ``git commit`` itself takes; aim: a median
of at most 250 ms. Then 1,000 pipelines over 100 remote repositories (bare repositories
behind ``git daemon``, 10 pipelines each, no workers so nothing runs): every interval must read each
repository exactly once (100 ``git ls-remote``), and the detector's CPU per interval is printed
(its own threads; the git processes' CPU beside it). Between the two, signed GitHub push
deliveries to a connection's ``/hooks/<name>`` are timed until their 202 (execution started);
aim: at most 20 ms.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from conveyor.config import Settings
from conveyor.server import running
from conveyor.triggers.detector import Detector

COMMITS = 20
AIM_MS = 250.0
AIM_DELIVERY_MS = 20.0
REPOS = 100
PIPELINES = 1000
INTERVAL = 3.0
ROUNDS = 3
ROLE = "arn:aws:iam::000000000000:role/conveyor"
ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@conveyor.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@conveyor.invalid",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, env=ENV, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def first_commit(repo: Path) -> Path:
    """A new repository at ``repo`` with one commit on main."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "n").write_text("0")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "0")
    return repo


def wait(check: Callable[[], Any], timeout: float = 30.0, step: float = 0.002) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(step)
    return value


def declaration(name: str, url: str, build: bool = True) -> dict[str, Any]:
    source = {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "Git", "version": "1"},
        "configuration": {"RepositoryUrl": url, "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}],
    }
    approve = {
        "name": "Wait",
        "actionTypeId": {
            "category": "Approval",
            "owner": "AWS",
            "provider": "Manual",
            "version": "1",
        },
    }
    return {
        "name": name,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "executionMode": "PARALLEL",
        "stages": [
            {"name": "Source", "actions": [source]},
            {"name": "Hold", "actions": [approve]},
        ],
    }


def detector_of(live: Any) -> Detector:
    detector = live.application.engine.detector
    assert detector is not None
    return detector


def commit_latency(home: Path) -> None:
    repo = first_commit(home / "repo")
    settings = Settings(home=home / "server", detect_changes=True)
    with running(settings) as live:
        store = live.application.store
        detector = detector_of(live)
        client = _client(live.endpoint)
        client.create_pipeline(pipeline=declaration("bench", str(repo)))
        wait(lambda: detector.leading and detector.counters.local_scans > 0)
        floors, totals = [], []
        for n in range(1, COMMITS + 1):
            (repo / "n").write_text(str(n))
            git(repo, "add", "-A")
            began = time.perf_counter()
            git(repo, "commit", "-q", "-m", str(n))
            committed = time.perf_counter()
            sha = git(repo, "rev-parse", "HEAD")
            wait(lambda sha=sha: _source_started(store, "bench", sha))
            done = time.perf_counter()
            floors.append((committed - began) * 1000)
            totals.append((done - began) * 1000)
        floor, total = statistics.median(floors), statistics.median(totals)
        verdict = "ok" if total <= AIM_MS else "MISSED"
        print(
            f"commit -> InProgress, source started: median {total:.1f} ms over {COMMITS} "
            f"commits (floor, git commit itself: {floor:.1f} ms; aim <= {AIM_MS:.0f} ms) "
            f"{verdict}"
        )


def _source_started(store: Any, name: str, sha: str) -> bool:
    with store.read() as tx:
        pipeline = tx.pipelines.get(name)
        for record in tx.executions.page(pipeline.id, None, 5, None):
            if record.trigger_detail and sha in record.trigger_detail:
                if record.status != "InProgress":
                    return True
                return bool(tx.actions.of_execution(record.id))
    return False


def _client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "codepipeline",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}),
    )


@contextmanager
def served(base: Path) -> Iterator[str]:
    """The repositories under ``base`` behind ``git daemon`` on a free port: remote to git."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["git", "daemon", "--export-all", "--listen=127.0.0.1", f"--port={port}"]
    daemon = subprocess.Popen(
        [*argv, f"--base-path={base}", str(base)], env=ENV, stderr=subprocess.DEVNULL
    )
    try:
        wait(lambda: _listening(port), 10, 0.02)
        yield f"git://127.0.0.1:{port}"
    finally:
        daemon.terminate()
        daemon.wait(10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def many_remotes(home: Path) -> None:
    seed = first_commit(home / "seed")
    for r in range(REPOS):
        git(home, "clone", "-q", "--bare", str(seed), str(home / "remotes" / f"r{r}.git"))
    settings = Settings(home=home / "server", workers=0, detect_changes=True)
    settings = replace(settings, poll_interval=INTERVAL)
    with served(home / "remotes") as base, running(settings) as live:
        urls = [f"{base}/r{r}.git" for r in range(REPOS)]
        detector = detector_of(live)
        client = _client(live.endpoint)
        for p in range(PIPELINES):
            client.create_pipeline(pipeline=declaration(f"p{p}", urls[p % REPOS]))
        wait(lambda: sum(detector.counters.rounds) >= REPOS, 120, 0.05)
        rounds_before = len(detector.counters.rounds)
        cpu_before = detector.counters.cpu
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wait(lambda: len(detector.counters.rounds) >= rounds_before + ROUNDS, 120, 0.05)
        rounds = list(detector.counters.rounds)[rounds_before : rounds_before + ROUNDS]
        cpu = (detector.counters.cpu - cpu_before) / ROUNDS
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        git_cpu = (
            children.ru_utime
            + children.ru_stime
            - children_before.ru_utime
            - children_before.ru_stime
        ) / ROUNDS
        exact = all(count == REPOS for count in rounds)
        print(
            f"{PIPELINES} pipelines over {REPOS} remotes: git ls-remote per interval "
            f"{rounds} ({'exactly' if exact else 'NOT'} {REPOS} each); detector CPU per "
            f"{INTERVAL:.0f} s interval {cpu * 1000:.0f} ms (git processes {git_cpu * 1000:.0f} ms)"
        )


def delivery_latency(home: Path) -> None:
    """Signed GitHub push deliveries, each a new commit: the time until 202 (execution
    started), over one keep-alive connection."""
    arn = "arn:aws:codestar-connections:us-east-1:000000000000:connection/bench"
    secret = "bench-secret"
    hooked = {arn: {"url": str(home / "hosted"), "host": "github", "secret": secret}}
    settings = Settings(home=home / "server", workers=0, connections=hooked)
    with running(settings) as live:
        pipeline = declaration("hooked", "unused")
        pipeline["stages"][0]["actions"][0] = {
            "name": "Source",
            "actionTypeId": {
                "category": "Source",
                "owner": "AWS",
                "provider": "CodeStarSourceConnection",
                "version": "1",
            },
            "configuration": {
                "ConnectionArn": arn,
                "FullRepositoryId": "team/app",
                "BranchName": "main",
            },
            "outputArtifacts": [{"name": "Src"}],
        }
        _client(live.endpoint).create_pipeline(pipeline=pipeline)
        host, port = live.endpoint.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port))
        times = []
        for n in range(COMMITS + 5):
            body = json.dumps(
                {
                    "ref": "refs/heads/main",
                    "after": hashlib.sha1(str(n).encode()).hexdigest(),
                    "repository": {"full_name": "team/app"},
                    "commits": [],
                }
            ).encode()
            signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {
                "content-type": "application/json",
                "x-github-event": "push",
                "x-hub-signature-256": f"sha256={signature}",
            }
            began = time.perf_counter()
            conn.request("POST", "/hooks/bench", body, headers)
            response = conn.getresponse()
            response.read()
            if response.status != 202:
                raise RuntimeError(f"delivery answered {response.status}")
            if n >= 5:  # the first ones warm up
                times.append((time.perf_counter() - began) * 1000)
        conn.close()
        median = statistics.median(times)
        verdict = "ok" if median <= AIM_DELIVERY_MS else "MISSED"
        print(
            f"signed push delivery -> execution started (202): median {median:.1f} ms over "
            f"{len(times)} deliveries, round trip included (aim <= {AIM_DELIVERY_MS:.0f} ms) "
            f"{verdict}"
        )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as folder:
        commit_latency(Path(folder) / "latency")
        delivery_latency(Path(folder) / "delivery")
        many_remotes(Path(folder) / "remotes")


if __name__ == "__main__":
    main()
