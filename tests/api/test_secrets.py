"""Secret configuration values of custom actions are sealed at rest with the home's key,
masked on every read, and handed in the clear only to the job worker of that action type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from conveyor.domain.pipeline import MASK
from conveyor.server import Running
from conveyor.store.tables import pipeline_versions
from tests.support.engine import VAULT, vault_pipeline, wait_for


def _stored(server: Running) -> list[str]:
    with server.application.store.engine.connect() as conn:
        return list(conn.execute(sa.select(pipeline_versions.c.declaration)).scalars())


def _config(pipeline: dict[str, Any]) -> dict[str, str]:
    config: dict[str, str] = pipeline["stages"][1]["actions"][0]["configuration"]
    return config


def test_secret_values_are_sealed_at_rest_and_clear_only_for_the_worker(
    server: Running, client: Any, tmp_path: Path
) -> None:
    created = vault_pipeline(client, tmp_path / "repo", "abc-very-secret")
    [text] = _stored(server)
    assert "abc-very-secret" not in text
    assert "conveyor:sealed:" in text and '"Target":"prod"' in text
    assert _config(created["pipeline"])["ApiKey"] == MASK
    assert _config(client.get_pipeline(name="app")["pipeline"]) == {
        "Target": "prod",
        "ApiKey": MASK,
    }
    [job] = wait_for(
        lambda: client.poll_for_jobs(actionTypeId=VAULT, maxBatchSize=5)["jobs"], what="a job"
    )
    assert job["data"]["actionConfiguration"]["configuration"]["ApiKey"] == "abc-very-secret"
    # The masked value sent back keeps the secret; the new version is sealed too.
    pipeline = client.get_pipeline(name="app")["pipeline"]
    _config(pipeline)["Target"] = "staging"
    client.update_pipeline(pipeline=pipeline)
    assert all("abc-very-secret" not in text for text in _stored(server))
    with server.application.store.read() as tx:
        record = tx.pipelines.get("app")
        assert record is not None
        second = tx.pipelines.declaration(record.id, 2)
    assert second is not None
    assert _config(second) == {"Target": "staging", "ApiKey": "abc-very-secret"}
