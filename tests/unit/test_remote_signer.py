"""Which held job's credentials a remote worker signs an artifact request with: jobs of one
execution read the same inputs, and the server refuses a job's credentials once it ends."""

from __future__ import annotations

from typing import Any

from conveyor.domain.actiontype import ActionTypeId
from conveyor.store import JobRecord
from conveyor.worker.artifactaccess import signer

SOURCE = {"location": {"s3Location": {"bucketName": "artifacts", "objectKey": "p/Src/1"}}}


def job(job_id: str, *outputs: str) -> JobRecord:
    data: dict[str, Any] = {
        "inputArtifacts": [SOURCE],
        "outputArtifacts": [
            {"location": {"s3Location": {"bucketName": "artifacts", "objectKey": key}}}
            for key in outputs
        ],
        "artifactCredentials": {"accessKeyId": job_id},
    }
    return JobRecord(
        id=job_id,
        action_execution_id=f"a-{job_id}",
        pipeline_id=1,
        type_id=ActionTypeId("Build", "AWS", "Commands", "1"),
        status="InProgress",
        nonce="n",
        owner="remote/w",
        lease_until=0.0,
        query_value=None,
        data=data,
        created=0.0,
        updated=0.0,
    )


def used(held: list[tuple[JobRecord, bool]], key: str) -> str | None:
    found = signer(held, "artifacts", key)
    return None if found is None else found["accessKeyId"]


def test_a_job_whose_result_is_on_its_way_signs_only_when_no_other_may() -> None:
    first, second = job("one", "p/Out/1"), job("two")
    # The first reports: the server may end it before the worker forgets it.
    assert used([(first, True), (second, False)], "p/Src/1") == "two"
    assert used([(first, False), (second, True)], "p/Src/1") == "one"
    # Its own output is its alone, reporting or not.
    assert used([(first, True), (second, False)], "p/Out/1") == "one"


def test_the_newest_job_signs_and_none_reaches_what_no_job_names() -> None:
    first, second = job("one"), job("two")
    assert used([(first, False), (second, False)], "p/Src/1") == "two"
    assert used([(first, False), (second, False)], "") == "two"  # a listing of the bucket
    assert used([(first, False)], "p/Other/1") is None
    assert signer([(first, False)], "elsewhere", "p/Src/1") is None
