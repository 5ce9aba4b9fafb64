"""SIGKILL the server while a stage's entry condition runs a rule, restart it on the same home:
the rule ends as recovery decides and so does the execution; nothing stays InProgress.

The rule is a Commands rule that writes a line to a ledger outside its workspace, then ticks
on its output for a minute: the kill comes while it ticks. Its `bash` lives on as an orphan
until its next write to the dead server's pipes (a tick), which kills it by SIGPIPE. The
restarted server fails the job the dead one held (it cannot know the rule's result), so the
rule fails saying why, its condition (result FAIL) is not met, and the stage and the
execution fail; the stage's actions never run.
"""

from __future__ import annotations

import shlex
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_client
from tests.e2e.serverproc import free_port
from tests.e2e.test_crash import alive, conveyor, group_members, marker_processes
from tests.support.engine import commands, declaration, make_repo, stage, wait_for

PIPELINE = "guarded"
DEADLINE = 120.0  # generous: the machine may be slow
CRASHED = "Conveyor stopped while this action was running"
TERMINAL = {"Succeeded", "Failed", "Stopped", "Superseded", "Cancelled"}


def guarded_pipeline(repo: Path, ledger: Path, built: Path, marker: str) -> dict[str, Any]:
    """Source, then Build (touching ``built``) behind an entry condition whose one rule
    writes ``start`` to the ledger, ticks for a minute, then writes ``done``."""
    path = shlex.quote(str(ledger))
    rule = {
        "name": "Slow",
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": [
            f'echo "start {marker}" >> {path}; '
            "for i in $(seq 240); do echo tick; sleep 0.25; done; "
            f'echo "done {marker}" >> {path}'
        ],
        "inputArtifacts": [{"name": "Src"}],
    }
    build = stage("Build", commands("Make", f"touch {shlex.quote(str(built))}"))
    build["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": [rule]}]}
    return declaration(PIPELINE, repo, build)


def rule_runs(client: Any, execution_id: str) -> list[dict[str, Any]]:
    return list(
        client.list_rule_executions(
            pipelineName=PIPELINE, filter={"pipelineExecutionId": execution_id}
        )["ruleExecutionDetails"]
    )


def execution(client: Any, execution_id: str) -> dict[str, Any]:
    found = client.get_pipeline_execution(pipelineName=PIPELINE, pipelineExecutionId=execution_id)[
        "pipelineExecution"
    ]
    return dict(found)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_sigkill_while_an_entry_rule_runs_ends_the_execution(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    database = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    repo, home, log = tmp_path / "repo", tmp_path / "home", tmp_path / "server.log"
    ledger, built = tmp_path / "ledger", tmp_path / "built"
    marker = f"rule-{uuid.uuid4().hex}"
    make_repo(repo, {"README.md": "hello\n"}, "the first commit")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"

    with conveyor(home, port, database, log) as process:
        client = make_client(endpoint)
        client.create_pipeline(pipeline=guarded_pipeline(repo, ledger, built, marker))
        wait_for(
            lambda: ledger.exists() and "start" in ledger.read_text(),
            DEADLINE,
            "the rule to start",
        )
        (execution_id,) = [
            e["pipelineExecutionId"]
            for e in client.list_pipeline_executions(pipelineName=PIPELINE)[
                "pipelineExecutionSummaries"
            ]
        ]
        (running,) = rule_runs(client, execution_id)
        assert running["status"] == "InProgress"
        state = client.get_pipeline_state(name=PIPELINE)["stageStates"][1]
        assert state["beforeEntryConditionState"]["latestExecution"]["status"] == "InProgress"
        orphans = group_members(marker_processes(marker))
        assert orphans, "the rule's commands are not running"
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed = time.monotonic()

    # The orphaned commands die at their next tick, well before they would have ended.
    wait_for(lambda: not alive(orphans), DEADLINE, "the rule's orphaned commands to end")
    assert time.monotonic() - killed < 55

    with conveyor(home, port, database, log):
        client = make_client(endpoint)
        ended = wait_for(
            lambda: (found := execution(client, execution_id))["status"] in TERMINAL and found,
            DEADLINE,
            "the execution to end",
        )
        assert ended["status"] == "Failed", ended
        (rule,) = rule_runs(client, execution_id)
        assert rule["status"] == "Failed", rule
        message = rule["output"]["executionResult"].get("errorDetails", {}).get("message", "")
        assert CRASHED in message, rule
        state = client.get_pipeline_state(name=PIPELINE)["stageStates"][1]
        assert state["latestExecution"]["status"] == "Failed"
        entry = state["beforeEntryConditionState"]
        assert entry["latestExecution"]["status"] == "Failed"
        (condition,) = entry["conditionStates"]
        assert condition["latestExecution"]["status"] == "Failed"
        assert [r["latestExecution"]["status"] for r in condition["ruleStates"]] == ["Failed"]
        assert all(
            a.get("latestExecution", {}).get("status") != "InProgress"
            for a in state["actionStates"]
        )

    assert not built.exists(), "the stage ran its actions though its condition was not met"
    assert "done" not in ledger.read_text(), "the rule's commands ran to their end"
    assert "Traceback" not in log.read_text(errors="replace")
