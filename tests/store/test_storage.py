"""What the store keeps of events, attempts and audit records, how it reads them back, and
retention's batched removals: on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.domain.events import ACTION, PIPELINE, STAGE, action_detail, envelope, stage_detail
from conveyor.store import AuditRecord, Store
from conveyor.store.audit import event_id_for
from conveyor.store.retention import prune_audit, prune_events, prune_jobs
from conveyor.store.tables import action_executions, audit_contexts, audit_events, events, jobs
from tests.store.records import job, running_action

SCOPE = Scope("us-east-1", "000000000000")
COMMANDS = ActionTypeId("Compute", "AWS", "Commands", "1")


def _envelope(kind: str, time: float, detail: dict[str, Any]) -> dict[str, Any]:
    return envelope(
        str(uuid.uuid4()),
        kind,
        time,
        SCOPE.account,
        SCOPE.region,
        [SCOPE.pipeline("app")],
        detail,
    )


def _action_events(execution_id: str, time: float) -> list[tuple[str, float, dict[str, Any]]]:
    artifacts = [
        {"name": "Src", "s3location": {"bucket": "artifacts", "key": "app/Src/0a1b2c3d4e5f6071"}}
    ]
    started = action_detail(
        "app",
        execution_id,
        "Build",
        "Make",
        "STARTED",
        1,
        "us-east-1",
        COMMANDS,
        **{"input-artifacts": artifacts},
    )
    done = action_detail(
        "app",
        execution_id,
        "Build",
        "Make",
        "SUCCEEDED",
        1,
        "us-east-1",
        COMMANDS,
        **{
            "output-artifacts": [
                {"name": "Out", "s3location": {"bucket": "artifacts", "key": "elsewhere/Out"}}
            ],
            "execution-result": {"external-execution-summary": "Ran 1 command"},
        },
    )
    entered = stage_detail("app", execution_id, "Build", "STARTED", 1)
    return [
        (STAGE, time, _envelope(STAGE, time, entered)),
        (ACTION, time, _envelope(ACTION, time, started)),
        (ACTION, time + 0.5, _envelope(ACTION, time + 0.5, done)),
    ]


def _stored_events(store: Store) -> list[tuple[str, Any]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.detail_type, events.c.body).order_by(events.c.seq))
        return [(kind, json.loads(body)) for kind, body in rows]


def test_events_are_stored_in_shorthand_and_read_back_exactly(store: Store) -> None:
    appended = _action_events(str(uuid.uuid4()), 1700000000.5)
    with store.write() as tx:
        for kind, time, body in appended:
            tx.events.append("app", time, kind, body)
    with store.read() as tx:
        read = tx.events.after(0)
    assert [(r.detail_type, r.body) for r in read] == [(k, b) for k, _, b in appended]
    # Every member in the order it was appended, at every depth.
    assert [json.dumps(r.body) for r in read] == [json.dumps(b) for _, _, b in appended]
    stored = _stored_events(store)
    assert [kind for kind, _ in stored] == ["S", "A", "A"]
    assert all(isinstance(body, list) for _, body in stored)
    started = stored[1][1][3]
    assert len(stored[1][1][0]) == 22 and len(started["e"]) == 22  # the ids, in 22 characters
    assert started["i"] == [["Src", "artifacts", "/0a1b2c3d4e5f6071"]]
    assert stored[2][1][3]["o"] == [["Out", "artifacts", "elsewhere/Out"]]
    for (_, _, body), (_, kept) in zip(appended, stored, strict=True):
        assert len(json.dumps(kept, separators=(",", ":"))) < len(json.dumps(body)) * 0.5


def test_events_that_shorthand_cannot_hold_are_kept_longer(store: Store) -> None:
    """An execution id that is no UUID stays as it is; a member named like a code keeps the
    object encoding; both read back exactly."""
    plain = _envelope(PIPELINE, 5.0, {"pipeline": "app", "execution-id": "e-1", "state": "X"})
    named = _envelope(PIPELINE, 5.0, {"pipeline": "app", "execution-id": "e-2", "e": 1})
    with store.write() as tx:
        tx.events.append("app", 5.0, PIPELINE, plain)
        tx.events.append("app", 5.0, PIPELINE, named)
    with store.read() as tx:
        assert [r.body for r in tx.events.after(0)] == [plain, named]
    stored = _stored_events(store)
    assert stored[0][1][3]["e"] == "e-1"
    assert isinstance(stored[1][1], dict) and stored[1][1]["detail"]["e"] == 1


def test_events_written_before_read_back_as_they_were(store: Store) -> None:
    """Rows with the whole detail-type and the earlier object encoding."""
    body = _envelope(ACTION, 3.0, _action_events("e-9", 3.0)[1][2]["detail"])
    earlier = {
        "id": body["id"],
        "account": SCOPE.account,
        "region": SCOPE.region,
        "detail": {**{k: v for k, v in body["detail"].items() if k not in ("pipeline", "region")}},
    }
    earlier["detail"]["type"] = "AWS/Compute/Commands/1"
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(events).values(
                pipeline_name="app", time=3.0, detail_type=ACTION, body=json.dumps(earlier)
            )
        )
    with store.read() as tx:
        [record] = tx.events.after(0)
    assert (record.detail_type, record.body) == (ACTION, body)


def test_pruning_events_goes_in_batches_and_keeps_the_rest_in_order(store: Store) -> None:
    with store.write() as tx:
        for n in range(23):
            body = _envelope(PIPELINE, float(n), {"pipeline": "app", "execution-id": f"e{n}"})
            tx.events.append("app", float(n), PIPELINE, body)
    with store.read() as tx:
        seqs = [r.seq for r in tx.events.after(0)]
    assert prune_events(store, 0.0, batch=5) == 0
    assert prune_events(store, 17.0, batch=5) == 17
    with store.read() as tx:
        left = tx.events.after(0)
    assert [r.seq for r in left] == seqs[17:]
    assert [r.body["detail"]["execution-id"] for r in left] == [f"e{n}" for n in range(17, 23)]
    with store.write() as tx:
        tx.events.append("app", 30.0, PIPELINE, _envelope(PIPELINE, 30.0, {"pipeline": "app"}))
    with store.read() as tx:
        assert tx.events.last_seq() > seqs[-1]  # numbers are never given again
    assert prune_events(store, 100.0, batch=5) == 7


def test_one_batch_of_events_is_one_transaction_of_at_most_that_many(store: Store) -> None:
    with store.write() as tx:
        for n in range(12):
            tx.events.append("app", float(n), PIPELINE, _envelope(PIPELINE, float(n), {}))
    with store.write() as tx:
        removed, following = tx.events.prune(100.0, 0, 5)
    assert removed == 5 and following is not None
    with store.write() as tx:
        assert tx.events.prune(100.0, following, 5)[0] == 5
    with store.read() as tx:
        assert len(tx.events.after(0)) == 2


def test_pruning_jobs_goes_in_batches_and_leaves_active_ones(store: Store) -> None:
    with store.write() as tx:
        _, attempt = running_action(tx)
        for n in range(12):
            record = job(attempt, created=float(n))
            tx.jobs.insert(record)
            if n < 9:
                tx.jobs.update(record.id, "Queued", status="Succeeded", updated=float(n))
    assert prune_jobs(store, 100.0, ["Succeeded"], batch=4) == 9
    with store.engine.connect() as conn:
        left = conn.execute(sa.select(jobs.c.status)).scalars().all()
    assert left == ["Queued"] * 3


def _audit(event_id: str, when: float, record: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        event_id=event_id,
        event_time=when,
        event_name=record["eventName"],
        event_source="codepipeline.amazonaws.com",
        username="alice",
        access_key="AKIA",
        read_only=True,
        resource_type="AWS::CodePipeline::Pipeline",
        resource_name="app",
        record=json.dumps(record, separators=(",", ":")),
    )


def _cloudtrail(request_id: str, event_id: str, name: str, when: str) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "userName": "alice", "accessKeyId": "AKIA"},
        "eventTime": when,
        "eventSource": "codepipeline.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "Boto3/1.0 and a long client description",
        "requestParameters": {"name": "app"},
        "responseElements": None,
        "requestID": request_id,
        "eventID": event_id,
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "000000000000",
        "eventCategory": "Management",
        "resources": [
            {"ARN": "arn:aws:codepipeline:us-east-1:000000000000:app", "accountId": "000000000000"}
        ],
    }


def test_audit_records_share_their_context_and_read_back_exactly(store: Store) -> None:
    request_ids = [str(uuid.uuid4()) for _ in range(3)]
    made = [
        _audit(
            event_id_for(r),
            1700000000.0 + n,
            _cloudtrail(r, event_id_for(r), "GetPipeline", f"2023-11-14T22:13:2{n}Z"),
        )
        for n, r in enumerate(request_ids)
    ]
    with store.write() as tx:
        tx.audit.append(made)
    with store.read() as tx:
        found = tx.audit.lookup({}, None, None, 10)
    assert [r.record for r in found] == [r.record for r in reversed(made)]
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_contexts)).scalar() == 1
        kept = conn.execute(sa.select(audit_events.c.record)).scalars().all()
    # What each keeps of its own: the request's parameters and the responses (none).
    assert sorted(json.loads(k) for k in kept) == [[{"name": "app"}, None]] * 3
    assert event_id_for(made[0].event_id) == request_ids[0]


def test_audit_records_that_cannot_be_rebuilt_are_kept_whole(store: Store) -> None:
    odd = _cloudtrail("not-a-uuid", "e-1", "GetPipeline", "not the row's time")
    old = _audit("e-1", 5.0, odd)
    earlier = _audit("e-0", 4.0, _cloudtrail("r", "e-0", "ListPipelines", "x"))
    with store.write() as tx:
        tx.audit.append([old])
    with store.engine.begin() as conn:  # as written before contexts existed
        conn.execute(
            sa.insert(audit_events).values(
                event_id="e-0",
                event_time=4.0,
                event_name="ListPipelines",
                event_source="codepipeline.amazonaws.com",
                read_only=True,
                record=earlier.record,
            )
        )
    with store.read() as tx:
        found = tx.audit.lookup({}, None, None, 10)
    assert [r.record for r in found] == [old.record, earlier.record]
    # The time in the text is not the row's, so it is kept; the shared part still is not.
    with store.engine.connect() as conn:
        kept = json.loads(
            conn.execute(sa.select(audit_events.c.record).where(audit_events.c.event_id == "e-1"))
            .scalars()
            .one()
        )
    assert "not the row's time" in kept and "not-a-uuid" in kept and "127.0.0.1" not in kept


def test_pruning_the_audit_trail_goes_in_batches(store: Store) -> None:
    made = [
        _audit(f"e-{n:02}", float(n), _cloudtrail("r", f"e-{n:02}", "GetPipeline", "x"))
        for n in range(11)
    ]
    with store.write() as tx:
        tx.audit.append(made)
    assert prune_audit(store, 8.0, batch=3) == 8
    with store.read() as tx:
        assert [r.event_id for r in tx.audit.lookup({}, None, None, 20)] == [
            "e-10",
            "e-09",
            "e-08",
        ]


def test_an_attempts_input_artifacts_and_log_url_are_stored_short_and_read_back(
    store: Store,
) -> None:
    given = {
        "actionTypeId": {
            "category": "Build",
            "owner": "AWS",
            "provider": "CodeBuild",
            "version": "1",
        },
        "configuration": {"ProjectName": "app"},
        "resolvedConfiguration": {"ProjectName": "app"},
        "region": "us-east-1",
        "inputArtifacts": [{"name": "Src", "s3location": {"bucket": "b", "key": "app/Src/k1"}}],
    }
    outputs = [{"name": "Out", "s3location": {"bucket": "b", "key": "app/Out/k2"}}]
    with store.write() as tx:
        _, first = running_action(tx)
        url = f"http://127.0.0.1:1/logs/{first.id}"
        attempt = replace(
            first, id=str(uuid.uuid4()), attempt=2, input=given, external_url="https://x/y "
        )
        tx.actions.insert(attempt)
        tx.actions.update(first.id, None, input=given, output_artifacts=outputs, external_url=url)
    with store.read() as tx:
        read = tx.actions.get(first.id)
        other = tx.actions.get(attempt.id)
    assert read is not None and other is not None
    assert json.dumps(read.input) == json.dumps(given)  # in the order given, too
    assert (read.output_artifacts, read.external_url) == (outputs, url)
    assert (other.input, other.external_url) == (given, "https://x/y ")
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(action_executions).where(action_executions.c.id == first.id)
        ).one()
    short = json.loads(row.input)[0]
    assert short["y"] == "Build/AWS/CodeBuild/1" and "rc" not in short
    assert json.loads(row.output_artifacts) == [["Out", "b", "app/Out/k2"]]
    assert row.external_url == "http://127.0.0.1:1/logs/ "


def test_attempts_written_before_read_back_as_they_were(store: Store) -> None:
    given = {"actionTypeId": {"category": "Build"}, "configuration": {}}
    with store.write() as tx:
        _, attempt = running_action(tx)
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(action_executions)
            .where(action_executions.c.id == attempt.id)
            .values(
                input=json.dumps(given),
                output_artifacts=json.dumps([{"name": "Out"}]),
                external_url="https://ci.example/run/7",
            )
        )
    with store.read() as tx:
        read = tx.actions.get(attempt.id)
    assert read is not None
    assert (read.input, read.output_artifacts, read.external_url) == (
        given,
        [{"name": "Out"}],
        "https://ci.example/run/7",
    )


def test_a_pipeline_resource_is_kept_without_its_type_and_found_by_it(store: Store) -> None:
    pipeline = _audit("e-1", 1.0, _cloudtrail("r", "e-1", "GetPipeline", "x"))
    hook = replace(
        _audit("e-2", 2.0, _cloudtrail("r", "e-2", "PutWebhook", "x")),
        resource_type="AWS::CodePipeline::Webhook",
        resource_name="hook",
    )
    nothing = replace(
        _audit("e-3", 3.0, _cloudtrail("r", "e-3", "ListPipelines", "x")),
        resource_type=None,
        resource_name=None,
    )
    with store.write() as tx:
        tx.audit.append([pipeline, hook, nothing])
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_events.c.event_id, audit_events.c.resource_type))
        types = {event_id: kind for event_id, kind in rows}
    assert types == {"e-1": None, "e-2": "AWS::CodePipeline::Webhook", "e-3": None}
    with store.read() as tx:
        found = tx.audit.lookup({}, None, None, 10)
        by_type = tx.audit.lookup({"ResourceType": "AWS::CodePipeline::Pipeline"}, None, None, 10)
        hooks = tx.audit.lookup({"ResourceType": "AWS::CodePipeline::Webhook"}, None, None, 10)
    assert [(r.event_id, r.resource_type) for r in found] == [
        ("e-3", None),
        ("e-2", "AWS::CodePipeline::Webhook"),
        ("e-1", "AWS::CodePipeline::Pipeline"),
    ]
    assert [r.event_id for r in by_type] == ["e-1"]
    assert [r.event_id for r in hooks] == ["e-2"]
    assert found[2].record == pipeline.record


def test_a_resolved_configuration_in_another_order_is_kept_as_it_came(store: Store) -> None:
    given = {
        "actionTypeId": {
            "category": "Build",
            "owner": "AWS",
            "provider": "CodeBuild",
            "version": "1",
        },
        "configuration": {"A": "1", "B": "2"},
        "resolvedConfiguration": {"B": "2", "A": "1"},
    }
    with store.write() as tx:
        _, attempt = running_action(tx)
        tx.actions.update(attempt.id, None, input=given)
    with store.read() as tx:
        read = tx.actions.get(attempt.id)
    assert read is not None
    assert json.dumps(read.input) == json.dumps(given)
