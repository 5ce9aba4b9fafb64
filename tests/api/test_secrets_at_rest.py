"""Jobs and webhooks keep their secrets sealed at rest, on both databases: a job's secret
configuration values are opened only for the worker it is handed to, a webhook's secret token
only to check a delivery's signature; rows written in the clear before keep working."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.declaration import SEALED
from conveyor.domain.pipeline import MASK
from conveyor.server import Running
from conveyor.store.tables import jobs, webhooks
from tests.api.test_webhooks import PUSH, SECRET, deliver, executions, signed, webhook
from tests.support.engine import (
    VAULT,
    commands,
    declaration,
    make_repo,
    stage,
    vault_pipeline,
    wait_for,
)

VAULT_ID = ActionTypeId("Deploy", "Custom", "Vault", "1")
KEY = "abc-very-secret"


def _rows(server: Running, column: sa.Column[Any]) -> list[str]:
    with server.application.store.engine.connect() as conn:
        return list(conn.execute(sa.select(column)).scalars())


def _vault_jobs(server: Running) -> list[str]:
    """The data column of the Vault action's job rows."""
    query = sa.select(jobs.c.data).where(jobs.c.type_provider == "Vault")
    with server.application.store.engine.connect() as conn:
        return list(conn.execute(query).scalars())


def _vault_pipeline(server: Running, client: Any, tmp_path: Path) -> None:
    vault_pipeline(client, tmp_path / "repo", KEY)
    wait_for(lambda: _vault_jobs(server), what="the Vault action's job")


def _configuration(job: dict[str, Any]) -> dict[str, str]:
    config: dict[str, str] = job["data"]["actionConfiguration"]["configuration"]
    return config


def test_a_jobs_secret_values_are_sealed_and_opened_only_for_its_worker(
    server: Running, client: Any, tmp_path: Path
) -> None:
    _vault_pipeline(server, client, tmp_path)
    [text] = _vault_jobs(server)
    assert KEY not in text and SEALED in text and '"Target":"prod"' in text
    with server.application.store.read() as tx:
        [queued] = tx.jobs.claimable([VAULT_ID], 5)
    assert _configuration({"data": queued.data})["ApiKey"].startswith(SEALED)
    [job] = client.poll_for_jobs(actionTypeId=VAULT, maxBatchSize=5)["jobs"]
    assert _configuration(job) == {"Target": "prod", "ApiKey": KEY}
    assert "conveyor" not in job["data"]
    details = client.get_job_details(jobId=job["id"])["jobDetails"]
    assert _configuration(details) == {"Target": "prod", "ApiKey": KEY}
    # Handing the job out opened nothing in its row; reads other than the worker's mask it.
    [text] = _vault_jobs(server)
    assert KEY not in text
    [summary] = [
        s
        for s in client.list_action_executions(pipelineName="app")["actionExecutionDetails"]
        if s["actionName"] == "Push"
    ]
    assert summary["input"]["configuration"]["ApiKey"] == MASK
    assert summary["input"]["resolvedConfiguration"]["ApiKey"] == MASK
    # A continuation queues the next job with its secret still sealed.
    client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    client.put_job_success_result(jobId=job["id"], continuationToken="more")
    texts = _vault_jobs(server)
    assert len(texts) == 2 and all(KEY not in t for t in texts)
    # The in-process claim (workers in the server, and remote workers' routes) opens it too.
    claimed = server.application.services.jobs.claim([VAULT_ID], owner="test")
    assert claimed is not None
    assert claimed.data["actionConfiguration"]["configuration"]["ApiKey"] == KEY
    assert claimed.data["continuationToken"] == "more"
    # So does the claim a worker makes as it reports its result.
    following = server.application.services.jobs.succeed(
        claimed.id, continuation_token="again", next_for=([VAULT_ID], "test")
    )
    assert following is not None and following.data["continuationToken"] == "again"
    assert following.data["actionConfiguration"]["configuration"]["ApiKey"] == KEY
    assert all(KEY not in t for t in _vault_jobs(server))


def test_a_job_written_in_the_clear_is_handed_out_as_it_is(
    server: Running, client: Any, tmp_path: Path
) -> None:
    _vault_pipeline(server, client, tmp_path)
    store = server.application.store
    with store.write() as tx:
        [queued] = tx.jobs.claimable([VAULT_ID], 5)
        clear = dict(queued.data)
        clear["actionConfiguration"] = {"configuration": {"Target": "prod", "ApiKey": KEY}}
        clear["conveyor"] = {k: v for k, v in clear["conveyor"].items() if k != "sealed"}
        assert tx.jobs.update(queued.id, "Queued", data=clear)
    [job] = client.poll_for_jobs(actionTypeId=VAULT, maxBatchSize=5)["jobs"]
    assert _configuration(job) == {"Target": "prod", "ApiKey": KEY}
    details = client.get_job_details(jobId=job["id"])["jobDetails"]
    assert _configuration(details)["ApiKey"] == KEY


def _webhook_app(client: Any, tmp_path: Path) -> str:
    make_repo(tmp_path / "repo")
    client.create_pipeline(
        pipeline=declaration("app", tmp_path / "repo", stage("Build", commands("Make", "true")))
    )
    url: str = client.put_webhook(webhook=webhook())["webhook"]["url"]
    return url


def _deliver_signed(url: str) -> tuple[int, Any]:
    body = json.dumps(PUSH).encode()
    return deliver(url, body, **signed(body))


def test_a_webhooks_secret_token_is_sealed_and_still_checks_deliveries(
    server: Running, client: Any, tmp_path: Path
) -> None:
    url = _webhook_app(client, tmp_path)
    [text] = _rows(server, webhooks.c.definition)
    assert SECRET not in text and SEALED in text
    with server.application.store.read() as tx:
        record = tx.webhooks.get("hook")
    assert record is not None
    assert record.definition["authenticationConfiguration"]["SecretToken"].startswith(SEALED)
    status, answer = _deliver_signed(url)
    assert status == 200 and answer["started"] is True
    # A delivery signed with the sealed text itself is refused.
    body = json.dumps(PUSH).encode()
    sealed = record.definition["authenticationConfiguration"]["SecretToken"]
    assert deliver(url, body, **signed(body, secret=sealed))[0] == 401
    # The mask sent back keeps the token: sealed once, not sealed again.
    item = client.put_webhook(webhook=webhook(configuration={"SecretToken": MASK}))["webhook"]
    assert item["definition"]["authenticationConfiguration"] == {"SecretToken": MASK}
    [text] = _rows(server, webhooks.c.definition)
    assert SECRET not in text and text.count(SEALED) == 1
    status, answer = _deliver_signed(url)
    assert status == 200 and answer["started"] is True
    [listed] = client.list_webhooks()["webhooks"]
    assert listed["definition"]["authenticationConfiguration"] == {"SecretToken": MASK}
    assert len(executions(client)) == 2


def test_a_webhook_written_in_the_clear_still_checks_deliveries(
    server: Running, client: Any, tmp_path: Path
) -> None:
    url = _webhook_app(client, tmp_path)
    with server.application.store.engine.begin() as conn:
        conn.execute(
            sa.update(webhooks)
            .where(webhooks.c.name == "hook")
            .values(definition=json.dumps(webhook()))
        )
    assert SECRET in _rows(server, webhooks.c.definition)[0]
    status, answer = _deliver_signed(url)
    assert status == 200 and answer["started"] is True
    body = json.dumps(PUSH).encode()
    assert deliver(url, body, **signed(body, secret="wrong"))[0] == 401
    [listed] = client.list_webhooks()["webhooks"]
    assert listed["definition"]["authenticationConfiguration"] == {"SecretToken": MASK}
