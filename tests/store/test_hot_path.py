"""The statements every action runs: a job result's rows read in one join, the next job taken
in one ``UPDATE … RETURNING``, a stage execution read with its attempts, and whether any
transition is disabled read with the pipeline's row."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.domain.events import ACTION, PIPELINE, action_detail, envelope
from conveyor.store import Store, StoreError, TransitionRecord, fast
from conveyor.store.tables import events
from tests.store.records import (
    DECLARATION,
    OTHER,
    ROLLOUT,
    action,
    execution,
    job,
    queued_jobs,
    running_action,
    stores,
)


def test_a_job_result_reads_its_pipeline_job_and_attempt_together(store: Store) -> None:
    with store.write() as tx:
        run, attempt = running_action(tx)
        made = job(attempt)
        tx.jobs.insert(made)
    with store.write() as tx:
        found = tx.results.lock_for(made.id)
        assert found is not None
        assert found.job == made
        assert found.action == attempt
        assert found.pipeline.id == run.pipeline_id
        assert found.pipeline.name == "app"
        assert found.pipeline.any_disabled is False
        assert tx.results.lock_for(str(uuid.uuid4())) is None


def test_the_pipeline_row_tells_whether_a_transition_is_disabled(store: Store) -> None:
    with store.write() as tx:
        run, attempt = running_action(tx)
        made = job(attempt)
        tx.jobs.insert(made)
        enabled = TransitionRecord(run.pipeline_id, "Deploy", "Inbound", True, None, None, 1.0)
        tx.transitions.put(enabled)
    with store.read() as tx:
        assert tx.pipelines.get("app") is not None
        assert tx.pipelines.get("app").any_disabled is False  # type: ignore[union-attr]
    with store.write() as tx:
        tx.transitions.put(
            TransitionRecord(run.pipeline_id, "Deploy", "Outbound", False, "no", None, 2.0)
        )
    with store.write() as tx:
        assert tx.pipelines.get("app", lock=True).any_disabled is True  # type: ignore[union-attr]
        assert tx.pipelines.get_by_id(run.pipeline_id).any_disabled is True  # type: ignore[union-attr]
        found = tx.results.lock_for(made.id)
        assert found is not None and found.pipeline.any_disabled is True


def test_take_next_claims_the_oldest_queued_job_of_the_types_asked(store: Store) -> None:
    with store.write() as tx:
        _, attempt = running_action(tx)
        newer = job(attempt, created=3.0)
        older = job(attempt, created=1.0)
        other = job(attempt, created=0.5, type_id=OTHER)
        for record in (newer, older, other):
            tx.jobs.insert(record)
    with store.write() as tx:
        taken = tx.jobs.take_next([ROLLOUT], "InProgress", "n1", "w1", 40.0, 10.0)
        assert taken is not None and taken.id == older.id
        assert (taken.status, taken.nonce, taken.owner, taken.lease_until, taken.updated) == (
            "InProgress",
            "n1",
            "w1",
            40.0,
            10.0,
        )
        assert tx.jobs.get(older.id) == taken
        second = tx.jobs.take_next([ROLLOUT], "InProgress", "n2", "w1", 40.0, 10.0)
        assert second is not None and second.id == newer.id
        assert tx.jobs.take_next([ROLLOUT], "InProgress", "n3", "w1", 40.0, 10.0) is None
        assert tx.jobs.take_next([], "InProgress", "n3", "w1", 40.0, 10.0) is None
        assert tx.jobs.claimable([OTHER], 5)[0].id == other.id


@pytest.mark.postgres
def test_two_takers_at_once_take_different_jobs(postgres_url: str) -> None:
    """The second taker skips the row the first holds instead of waiting for it."""
    opened = stores(postgres_url, 2)
    try:
        made = queued_jobs(opened[0], 2)
        meet = threading.Barrier(2, timeout=15)
        taken: dict[int, str | None] = {}
        failures: list[BaseException] = []

        def taker(index: int) -> None:
            try:
                with opened[index].write() as tx:
                    if index:
                        meet.wait()  # the first has taken its job and holds it
                    found = tx.jobs.take_next([ROLLOUT], "InProgress", "n", f"w{index}", 9.0, 1.0)
                    taken[index] = found.id if found else None
                    if not index:
                        meet.wait()
                        meet.wait()  # the second has taken its own
                    else:
                        meet.wait()
            except BaseException as exc:
                failures.append(exc)
                meet.abort()

        threads = [threading.Thread(target=taker, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert sorted(v for v in taken.values() if v) == sorted(r.id for r in made)
    finally:
        for store in opened:
            store.close()


def test_a_stage_execution_is_read_with_every_attempt_of_its_actions(store: Store) -> None:
    with store.write() as tx:
        run, first = running_action(tx)
        retried = action(run, status="Failed")
        retried = type(retried)(**{**_fields(retried), "attempt": 2, "error_message": "boom"})
        tx.actions.insert(retried)
        elsewhere = type(first)(**{**_fields(action(run)), "stage": "Other"})
        tx.actions.insert(elsewhere)
        tx.executions.enter_stage(run.id, run.pipeline_id, "Empty", 2.0)
    with store.read() as tx:
        found = tx.executions.stages_with_actions(
            [(run.id, "Deploy"), (run.id, "Empty"), (run.id, "Deploy"), (run.id, "Nowhere")]
        )
        stages = {stage.stage: briefs for stage, briefs in found}
        assert sorted(stages) == ["Deploy", "Empty"]
        assert stages["Empty"] == []
        assert [(b.id, b.attempt, b.status, b.error_message) for b in stages["Deploy"]] == [
            (first.id, 1, "InProgress", None),
            (retried.id, 2, "Failed", "boom"),
        ]
        assert stages["Deploy"] == tx.actions.briefs([(run.id, "Deploy")])
        assert tx.executions.stages_with_actions([]) == []
        # Past a few keys the pairs go in one IN query; the answer is the same.
        many = [(run.id, "Deploy")] + [(str(uuid.uuid4()), "Deploy") for _ in range(10)]
        assert tx.executions.stages_with_actions(many) == [
            (tx.executions.stage(run.id, "Deploy"), stages["Deploy"])
        ]


def _fields(record: object) -> dict[str, object]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}  # type: ignore[attr-defined]


def test_kept_writes_are_seen_by_the_next_statement_whichever_way_it_runs(store: Store) -> None:
    """On PostgreSQL inserts and required updates wait for the next statement; a read on the
    fast path or through SQLAlchemy, in the same transaction, sees them all the same."""
    with store.write() as tx:
        run, attempt = running_action(tx)
        tx.executions.require_update(run.id, "InProgress", summary="kept")
        tx.executions.require_stage_status(run.id, "Deploy", "InProgress", "Failed", 2.0)
        made = job(attempt)
        tx.jobs.insert(made)
        assert tx.jobs.get(made.id) == made  # fast path
        assert tx.jobs.active_for(attempt.id) == [made]  # through SQLAlchemy
        assert tx.executions.stage(run.id, "Deploy").status == "Failed"  # type: ignore[union-attr]
        tx.executions.require_update(run.id, None, summary="last")
    with store.read() as tx:
        assert tx.executions.get(run.id).summary == "last"  # type: ignore[union-attr]


def test_a_required_update_that_finds_the_row_changed_rolls_the_transaction_back(
    store: Store,
) -> None:
    with store.write() as tx:
        run, attempt = running_action(tx)
    with pytest.raises(StoreError, match="unexpected state"), store.write() as tx:
        tx.actions.update(attempt.id, "InProgress", status="Failed", updated=2.0)
        tx.executions.require_update(run.id, "Stopping", summary="never")
        tx.executions.require_update(str(uuid.uuid4()), None, summary="no such row")
    with store.read() as tx:
        assert tx.actions.get(attempt.id).status == "InProgress"  # type: ignore[union-attr]
        assert tx.executions.get(run.id).summary is None  # type: ignore[union-attr]
    # The connection goes back to the pool with nothing kept: the next transaction is clean.
    with store.write() as tx:
        tx.executions.require_update(run.id, "InProgress", summary="fine")
    with store.read() as tx:
        assert tx.executions.get(run.id).summary == "fine"  # type: ignore[union-attr]


def test_a_required_update_of_a_missing_row_fails_too(store: Store) -> None:
    with store.write() as tx:
        running_action(tx)
    with pytest.raises(StoreError), store.write() as tx:
        tx.executions.require_stage_status(str(uuid.uuid4()), "Deploy", "InProgress", "Failed", 1.0)


def _event(name: str, time: float, **detail: Any) -> dict[str, Any]:
    scope = Scope("us-east-1", "000000000000")
    body = {"pipeline": name, "execution-id": "e-1", "state": "STARTED", "version": 1, **detail}
    return envelope(
        str(uuid.uuid4()), PIPELINE, time, scope.account, scope.region, [scope.pipeline(name)], body
    )


def test_events_are_stored_without_what_their_row_says_and_read_back_whole(store: Store) -> None:
    usual = _event("app", 1700000000.25, extra={"a": [1, 2]})
    moved = _event("app", 1700000001.0)
    moved["resources"] = ["arn:aws-cn:codepipeline:cn-north-1:000000000000:app"]
    odd = {**_event("app", 1700000002.0), "source": "elsewhere"}
    with store.write() as tx:
        for time, body in ((1700000000.25, usual), (1700000001.0, moved), (1700000002.0, odd)):
            tx.events.append("app", time, PIPELINE, body)
    with store.read() as tx:
        assert [e.body for e in tx.events.after(0)] == [usual, moved, odd]
    with store.engine.connect() as conn:
        stored = [
            json.loads(b)
            for b in conn.execute(sa.select(events.c.body).order_by(events.c.seq)).scalars()
        ]
    # A member named like a shorthand code ("a"): the earlier, longer encoding.
    assert set(stored[0]) == {"id", "account", "region", "detail"}
    assert "pipeline" not in stored[0]["detail"]
    assert len(json.dumps(stored[0])) < len(json.dumps(usual)) * 0.7
    assert stored[1][4] == moved["resources"]
    assert len(json.dumps(stored[1])) < len(json.dumps(moved)) * 0.6
    assert stored[2] == odd


def test_events_stored_whole_read_back_as_they_are(store: Store) -> None:
    """Events written before the compact encoding are whole envelopes in the table."""
    body = _event("app", 1700000000.0)
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(events).values(
                pipeline_name="app", time=1.0, detail_type=PIPELINE, body=json.dumps(body)
            )
        )
    with store.read() as tx:
        assert [e.body for e in tx.events.after(0)] == [body]


def test_the_latest_attempt_of_each_action_and_execution_of_each_stage(store: Store) -> None:
    """What the pointers say is what looking each up on its index finds."""
    with store.write() as tx:
        run, first = running_action(tx)
        later = type(first)(**{**_fields(action(run)), "attempt": 2, "started": 5.0})
        tx.actions.insert(later)
        newer_run = type(run)(**{**_fields(run), "id": str(uuid.uuid4()), "seq": 2})
        tx.executions.insert(newer_run)
        tx.executions.enter_stage(newer_run.id, run.pipeline_id, "Deploy", 3.0)
        other = type(first)(**{**_fields(action(newer_run)), "action": "Check", "started": 6.0})
        tx.actions.insert(other)
    with store.read() as tx:
        found = tx.actions.latest_of_each(run.pipeline_id)
        assert found == {("Deploy", "Rollout"): later, ("Deploy", "Check"): other}
        for key in (("Deploy", "Rollout"), ("Deploy", "Check")):
            assert found[key] == tx.actions.latest_of_pipeline(run.pipeline_id, *key)
        stages = tx.executions.latest_in_stages(run.pipeline_id)
        assert stages == {"Deploy": tx.executions.latest_in_stage(run.pipeline_id, "Deploy")}
        assert stages["Deploy"].execution_id == newer_run.id
        assert tx.actions.latest_of_each(run.pipeline_id + 1) == {}
    # A retried stage was entered last: the pointer follows it.
    with store.write() as tx:
        tx.executions.set_stage_status(run.id, "Deploy", "InProgress", "Failed", 7.0)
        assert tx.executions.retry_stage(run.id, "Deploy", "Failed", 2, 2, 8.0)
    with store.read() as tx:
        assert tx.executions.latest_in_stages(run.pipeline_id)["Deploy"].execution_id == run.id
        assert tx.executions.latest_in_stage(run.pipeline_id, "Deploy").execution_id == run.id  # type: ignore[union-attr]
    # Deleting the pipeline takes its pointers with it.
    with store.write() as tx:
        assert tx.pipelines.delete("app")
    with store.read() as tx:
        assert tx.actions.latest_of_each(run.pipeline_id) == {}
        assert tx.executions.latest_in_stages(run.pipeline_id) == {}


class Missed(Exception):
    pass


def _missed() -> None:
    raise Missed


def test_finishing_a_job_moves_it_from_either_active_status(store: Store) -> None:
    with store.write() as tx:
        _, attempt = running_action(tx)
        dispatched = replace(job(attempt), status="Dispatched", lease_until=9.0, data={"a": 1})
        running = replace(job(attempt), status="InProgress", lease_until=9.0, data={"b": 2})
        for record in (dispatched, running):
            tx.jobs.insert(record)
    with store.write() as tx:
        tx.jobs.finish(dispatched.id, "Succeeded", 5.0, trim=True, missed=_missed)
        tx.jobs.finish(running.id, "Failed", 6.0, trim=False, missed=_missed)
    with store.read() as tx:
        done = tx.jobs.get(dispatched.id)
        assert done is not None
        assert (done.status, done.lease_until, done.updated, done.data) == (
            "Succeeded",
            None,
            5.0,
            {},
        )
        failed = tx.jobs.get(running.id)
        assert failed is not None
        assert (failed.status, failed.lease_until, failed.data) == ("Failed", None, {"b": 2})
    # A job no longer active is not moved: the caller's ``missed`` says so, by the next
    # statement at the latest, and the transaction rolls back.
    with pytest.raises(Missed), store.write() as tx:
        tx.jobs.finish(dispatched.id, "Failed", 7.0, trim=False, missed=_missed)
        tx.jobs.get(running.id)
    with store.read() as tx:
        assert tx.jobs.get(dispatched.id).status == "Succeeded"  # type: ignore[union-attr]


def test_an_action_event_is_stored_with_its_type_as_one_string(store: Store) -> None:
    scope = Scope("us-east-1", "000000000000")

    def action_event(region: str, provider: str) -> dict[str, Any]:
        detail = action_detail(
            "app",
            "e-1",
            "Build",
            "Make",
            "STARTED",
            1,
            region,
            ActionTypeId("Build", "Custom", provider, "1"),
            **{"input-artifacts": [{"name": "Src"}]},
        )
        return envelope(
            str(uuid.uuid4()),
            ACTION,
            5.0,
            scope.account,
            scope.region,
            [scope.pipeline("app")],
            detail,
        )

    usual, elsewhere, odd = (
        action_event("us-east-1", "Jenkins"),
        action_event("eu-west-1", "Jenkins"),
        action_event("us-east-1", "a/b"),
    )
    with store.write() as tx:
        for body in (usual, elsewhere, odd):
            tx.events.append("app", 5.0, ACTION, body)
    with store.read() as tx:
        read = [e.body for e in tx.events.after(0)]
    assert read == [usual, elsewhere, odd]
    assert list(read[0]["detail"]) == list(usual["detail"])  # in the order it was written
    with store.engine.connect() as conn:
        stored = [
            json.loads(b)
            for b in conn.execute(sa.select(events.c.body).order_by(events.c.seq)).scalars()
        ]
    # The detail in shorthand: "y" is the type, "r" the action's Region.
    assert stored[0][3]["y"] == "Custom/Build/Jenkins/1" and "r" not in stored[0][3]
    assert stored[1][3]["r"] == "eu-west-1"
    # A type that one string cannot hold: the earlier encoding, with the type as it came.
    assert stored[2]["detail"]["type"]["provider"] == "a/b"


def test_the_live_executions_are_read_with_the_stage_a_result_is_about(store: Store) -> None:
    """What `active` and `stages_with_actions` give, in one go; the stage's rows read ahead
    are not read again."""
    with store.write() as tx:
        run, attempt = running_action(tx)
        tx.executions.enter_stage(run.id, run.pipeline_id, "Empty", 2.0)
    with store.read() as tx:
        live, read = tx.executions.live_with_stage(run.pipeline_id, run.id, "Deploy")
        assert live == tx.executions.active(run.pipeline_id)
        assert list(read) == [(run.id, "Deploy")]
        pairs = [(run.id, "Deploy"), (run.id, "Empty")]
        assert tx.executions.stages_with_actions(pairs, read) == (
            tx.executions.stages_with_actions(pairs)
        )
        alone, _ = tx.executions.live_with_stage(run.pipeline_id, run.id, "Deploy", only=True)
        assert alone == [tx.executions.get(run.id)]
        nowhere, nothing = tx.executions.live_with_stage(run.pipeline_id, run.id, "Nowhere")
        assert (
            nowhere == live
            and tx.executions.stages_with_actions([(run.id, "Nowhere")], nothing) == []
        )
        assert attempt.stage == "Deploy"


def test_a_required_attempt_update_that_finds_it_changed_rolls_the_transaction_back(
    store: Store,
) -> None:
    with store.write() as tx:
        run, attempt = running_action(tx)
    with pytest.raises(StoreError, match="unexpected state"), store.write() as tx:
        tx.executions.require_update(run.id, "InProgress", summary="never")
        tx.actions.require_update(attempt.id, "Succeeded", status="Failed", updated=2.0)
        tx.executions.get(run.id)  # the next statement: on PostgreSQL the guard fails here
    with store.read() as tx:
        assert tx.actions.get(attempt.id).status == "InProgress"  # type: ignore[union-attr]
        assert tx.executions.get(run.id).summary is None  # type: ignore[union-attr]
    with store.write() as tx:
        tx.actions.require_update(attempt.id, "InProgress", status="Failed", updated=2.0)
    with store.read() as tx:
        assert tx.actions.get(attempt.id).status == "Failed"  # type: ignore[union-attr]


def test_a_fast_statement_names_its_columns_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drivers build a result's description afresh each time they are asked: the fast
    path reads it from the first cursor that ran a statement and keeps the names."""
    asked: list[str] = []
    cursor_of = fast._cursor

    class Cursor:
        def __init__(self, cursor: Any) -> None:
            self._cursor = cursor

        @property
        def description(self) -> Any:
            asked.append("description")
            return self._cursor.description

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cursor, name)

    with store.write() as tx:
        run, attempt = running_action(tx)
        made = job(attempt)
        tx.jobs.insert(made)
    monkeypatch.setattr(fast, "_names", {}, raising=False)
    monkeypatch.setattr(fast, "_cursor", lambda conn: Cursor(cursor_of(conn)))
    with store.read() as tx:
        assert tx.jobs.get(made.id) == made
        assert tx.executions.get(run.id) == run
        first = len(asked)
        for _ in range(3):
            assert tx.jobs.get(made.id) == made
            assert tx.executions.get(run.id) == run
            live, read = tx.executions.live_with_stage(run.pipeline_id, run.id, "Deploy")
            assert live == [run] and list(read) == [(run.id, "Deploy")]
    assert first == 2
    assert len(asked) == 4  # the two statements of live_with_stage, once


@pytest.mark.parametrize("mode", ["SUPERSEDED", "PARALLEL"])
def test_a_job_result_reads_the_live_executions_and_its_stage_with_the_lock(
    store: Store, mode: str
) -> None:
    """What the result's snapshot reads first travels with the locking join, keyed on the
    job: the pipeline's live executions (in PARALLEL mode, the job's own alone), and the
    stage its attempt is in, as `live_with_stage` reads them."""
    with store.write() as tx:
        pipeline = tx.pipelines.insert(
            "app", {**DECLARATION, "executionMode": mode}, "V2", mode, 1.0
        )
        other = tx.pipelines.insert("elsewhere", DECLARATION, "V2", "SUPERSEDED", 1.0)
        run = execution(pipeline.id)
        beside = [execution(pipeline.id, 2), execution(pipeline.id, 3, status="Stopping")]
        for record in [run, *beside, execution(pipeline.id, 4, "Succeeded"), execution(other.id)]:
            tx.executions.insert(record)
        tx.executions.enter_stage(run.id, pipeline.id, "Deploy", 1.0)
        attempt = action(run)
        tx.actions.insert(attempt)
        tx.actions.insert(replace(action(run), action="Other", status="Succeeded"))
        made = job(attempt)
        tx.jobs.insert(made)
    with store.write() as tx:
        found = tx.results.lock_for(made.id)
        assert found is not None
        live, read = tx.executions.live_with_stage(
            pipeline.id, run.id, "Deploy", only=mode == "PARALLEL"
        )
        expected = [run] if mode == "PARALLEL" else [run, *beside]
        assert sorted(found.live.executions, key=lambda r: r.seq) == expected
        assert sorted(live, key=lambda r: r.seq) == expected
        assert found.live.stages == read
        assert len(read[(run.id, "Deploy")]) == 2
