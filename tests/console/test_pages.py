"""The console's pages over HTTP, as a browser without JavaScript sees them, checked against
what the API answers for the same pipeline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from conveyor.console import pages
from tests.console.conftest import Console, gated
from tests.support.engine import (
    action_state,
    approval_token,
    commands,
    declaration,
    latest_execution_id,
    stage_state,
    wait_status,
)
from tests.support.engine import stage as declared_stage

OPEN = "This server is open to anyone who can reach it"


def waiting_for_approval(api: Any) -> str:
    execution_id = latest_execution_id(api, "app")
    approval_token(api, "app")
    return execution_id


def test_console_root_is_the_pipeline_list_and_the_api_still_answers_post(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    page = console.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert OPEN in page.text
    assert 'href="/pipelines/app"' in page.text
    # The API shares the root: a POST with X-Amz-Target is still CodePipeline.
    assert api.list_pipelines()["pipelines"][0]["name"] == "app"


def test_pipeline_page_shows_what_get_pipeline_state_says(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    execution_id = waiting_for_approval(api)
    page = console.get("/pipelines/app").text
    assert OPEN in page
    state = api.get_pipeline_state(name="app")
    for stage in state["stageStates"]:
        status = stage.get("latestExecution", {}).get("status", "Not run")
        header = re.search(
            rf'<h2>{stage["stageName"]}</h2> <span class="chip [a-z]+" title="{status}">', page
        )
        assert header, f"stage {stage['stageName']} is not shown as {status}"
        for action in stage["actionStates"]:
            shown = re.search(
                rf'id="action-{stage["stageName"]}-{action["actionName"]}">.*?class="chip [a-z]+" title="([A-Za-z ]+)"',
                page,
                re.S,
            )
            expected = action.get("latestExecution", {}).get("status", "Not run")
            assert shown and shown[1] == expected
    assert "Check the build" in page  # the approval's CustomData
    assert 'href="https://example.com/r"' in page
    assert f"/pipelines/app/executions/{execution_id}" in page
    assert "Commands" in page and "Git" in page  # provider labels
    assert "the first commit" in page  # the source revision's message


def test_pipelines_page_shows_the_stages_of_the_latest_execution(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    execution_id = waiting_for_approval(api)
    page = console.get("/").text
    chips = re.findall(
        r'<span class="chip [a-z]+" title="([A-Za-z ]+)">(\w+)<span class="sr">', page
    )
    assert chips == [
        ("Succeeded", "Source"),
        ("Succeeded", "Build"),
        ("InProgress", "Gate"),
        ("Not run", "Deploy"),
    ]
    assert f"/pipelines/app/executions/{execution_id}" in page
    assert "CreatePipeline" in page  # the trigger
    assert "the first commit" in page  # the source revision


def test_pipelines_page_filters_by_name_prefix_and_pages(
    console: Console, api: Any, repo: Path
) -> None:
    for name in ("alpha", "alpine", "beta"):
        api.create_pipeline(pipeline=gated(repo, name))
    page = console.get("/?q=alp").text
    assert "/pipelines/alpha" in page and "/pipelines/alpine" in page
    assert "/pipelines/beta" not in page
    assert "/pipelines/beta" in console.get("/?q=b").text
    assert "No pipeline whose name starts with" in console.get("/?q=zz").text


def test_history_lists_executions_and_filters_by_status(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    execution_id = waiting_for_approval(api)
    page = console.get("/pipelines/app/executions").text
    assert execution_id[:8] in page and "InProgress" in page
    assert execution_id[:8] not in console.get("/pipelines/app/executions?status=Succeeded").text
    refused = console.get("/pipelines/app/executions?status=Bogus")
    assert refused.status_code == 400 and "ValidationException" in refused.text


def test_execution_page_draws_every_attempt_on_a_timeline(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    execution_id = waiting_for_approval(api)
    page = console.get(f"/pipelines/app/executions/{execution_id}").text
    tracks = re.findall(r'<div class="track">(.*?)</div>', page)
    assert len(tracks) == 3  # Source, Make, Approve
    bars = [
        re.findall(r'class="bar ([a-z ]+)" style="margin-left: ([\d.]+)%; width: ([\d.]+)%"', t)
        for t in tracks
    ]
    lefts = [float(found[0][1]) for found in bars]
    assert lefts == sorted(lefts)  # drawn in the order they ran
    assert all(0 <= float(left) + float(width) <= 100.01 for b in bars for _, left, width in b)
    # Source and Make had jobs: their time in the queue is drawn before their time running;
    # an approval has no job, so no queue.
    assert [[kind for kind, _, _ in b] for b in bars] == [
        ["queued", "ok after"],
        ["queued", "ok after"],
        ["run"],
    ]
    assert ": queued " in tracks[0] and ", ran " in tracks[1]
    assert "the first commit" in page


def test_log_page_renders_colours_and_escapes_the_rest(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    waiting_for_approval(api)
    make = action_state(api, "app", "Build", "Make")["actionExecutionId"]
    page = console.get(f"/pipelines/app/logs/{make}")
    assert page.status_code == 200
    assert '<span class="fg1">red</span>' in page.text
    assert "&lt;b&gt;plain&lt;/b&gt;" in page.text
    assert f'href="/logs/{make}" download=' in page.text
    missing = console.get("/pipelines/app/logs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "ActionExecutionNotFoundException" in missing.text


def test_definition_shows_yaml_json_and_a_diff_between_versions(
    console: Console, api: Any, repo: Path
) -> None:
    declared = gated(repo)
    api.create_pipeline(pipeline=declared)
    declared["stages"][3]["actions"][0]["commands"] = ["echo shipped again"]
    api.update_pipeline(pipeline=declared)
    yaml_page = console.get("/pipelines/app/definition").text
    assert "version 2" in yaml_page and "echo shipped again" in yaml_page
    assert "&#34;pipeline&#34;" in console.get("/pipelines/app/definition?format=json").text
    diff = console.get("/pipelines/app/definition?version=2&compare=1").text
    assert re.search(r'<span class="del">-\s+- echo shipped</span>', diff)
    assert re.search(r'<span class="add">\+\s+- echo shipped again</span>', diff)
    missing = console.get("/pipelines/app/definition?version=9")
    assert missing.status_code == 404 and "PipelineVersionNotFoundException" in missing.text


def test_action_types_page_lists_the_catalog_with_properties(console: Console, api: Any) -> None:
    api.create_custom_action_type(
        category="Build",
        provider="Mine",
        version="1",
        configurationProperties=[
            {"name": "Flavour", "required": True, "key": True, "secret": False}
        ],
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
    )
    page = console.get("/action-types").text
    assert "<strong>Mine</strong>" in page and "<code>Flavour</code>" in page
    assert "<strong>Commands</strong>" in page  # a built-in one


def test_unknown_pipeline_is_a_404_page_naming_the_api_error(console: Console) -> None:
    page = console.get("/pipelines/nope")
    assert page.status_code == 404
    assert "PipelineNotFoundException" in page.text and OPEN in page.text


def test_static_files_are_served_from_the_package(console: Console) -> None:
    htmx = console.get("/console/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]
    assert console.get("/console/static/console.css").status_code == 200


def test_a_refresh_by_the_page_gets_only_its_live_part(
    console: Console, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=gated(repo))
    execution_id = waiting_for_approval(api)
    for path in (
        "/",
        "/pipelines/app",
        "/pipelines/app/executions",
        f"/pipelines/app/executions/{execution_id}",
    ):
        part = console.get(path, headers={"HX-Request": "true"})
        assert part.status_code == 200, path
        assert "<html" not in part.text and "app" in part.text, path
    assert (
        'id="action-Gate-Approve"'
        in console.get("/pipelines/app", headers={"HX-Request": "true"}).text
    )


def test_pipelines_and_history_are_paged(
    console: Console, api: Any, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "PAGE", 2)
    for name in ("a1", "a2", "a3", "b1"):
        api.create_pipeline(pipeline=gated(repo, name))
    first = console.get("/").text
    assert "/pipelines/a1" in first and "/pipelines/a2" in first and "/pipelines/a3" not in first
    following = re.search(r'rel="next" href="([^"]+)"', first)
    assert following
    second = console.get(following[1].replace("&amp;", "&")).text
    assert "/pipelines/a3" in second and "/pipelines/b1" in second
    assert 'rel="next"' not in second  # nothing after b1
    only_a = console.get("/?q=a&after=a2").text
    assert "/pipelines/a3" in only_a and "/pipelines/b1" not in only_a
    for _ in range(2):
        api.start_pipeline_execution(name="a1")
    ids = [
        e["pipelineExecutionId"]
        for e in api.list_pipeline_executions(pipelineName="a1")["pipelineExecutionSummaries"]
    ]
    newest = console.get("/pipelines/a1/executions").text
    assert ids[0][:8] in newest and ids[1][:8] in newest and ids[2][:8] not in newest
    older = re.search(r'rel="next" href="([^"]+)"', newest)
    assert older
    rest = console.get("/pipelines/a1/executions" + older[1].replace("&amp;", "&")).text
    assert ids[2][:8] in rest and 'rel="next"' not in rest


def test_a_script_link_in_an_approval_is_not_made_clickable_and_pages_refuse_framing(
    console: Console, api: Any, repo: Path
) -> None:
    declared = gated(repo)
    declared["stages"][2]["actions"][0]["configuration"]["ExternalEntityLink"] = (
        "javascript:alert(1)"
    )
    api.create_pipeline(pipeline=declared)
    waiting_for_approval(api)
    page = console.get("/pipelines/app")
    assert 'href="javascript:' not in page.text
    assert "<code>javascript:alert(1)</code>" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_a_long_log_shows_its_end_and_offers_the_whole(
    console: Console, api: Any, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "LOG_LIMIT", 100)
    api.create_pipeline(pipeline=gated(repo, "app", "seq 1 200"))
    waiting_for_approval(api)
    make = action_state(api, "app", "Build", "Make")["actionExecutionId"]
    page = console.get(f"/pipelines/app/logs/{make}").text
    shown = re.search(r'<pre class="log"[^>]*>(.*?)</pre>', page, re.S)
    assert shown
    lines = shown[1].splitlines()
    assert lines[-1] == "200" and "1" not in lines  # the end, from a whole line
    assert "are left out here" in page and "download the whole log" in page


def test_an_unexpected_error_is_a_500_page_without_a_traceback(
    console: Console, api: Any, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.create_pipeline(pipeline=gated(repo))

    def broken(*_: Any) -> None:
        raise RuntimeError("a secret detail")

    monkeypatch.setattr(pages, "pipeline_model", broken)
    page = console.get("/pipelines/app")
    assert page.status_code == 500
    assert "InternalFailure" in page.text and "a secret detail" not in page.text
    assert "Traceback" not in page.text


def test_pipeline_page_shows_a_stages_conditions_with_their_rules(
    console: Console, api: Any, repo: Path
) -> None:
    check = {
        "name": "GateOpen",
        "ruleTypeId": {
            "category": "Rule",
            "owner": "AWS",
            "provider": "VariableCheck",
            "version": "1",
        },
        "configuration": {"Variable": "#{variables.gate}", "Value": "open", "Operator": "EQ"},
    }
    build = declared_stage("Build", commands("Make", "echo built"))
    build["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": [check]}]}
    api.create_pipeline(
        pipeline=declaration(
            "app", repo, build, variables=[{"name": "gate", "defaultValue": "closed"}]
        )
    )
    execution_id = latest_execution_id(api, "app")
    wait_status(api, "app", execution_id, "Failed", timeout=60)
    state = stage_state(api, "app", "Build")["beforeEntryConditionState"]
    assert state["latestExecution"]["status"] == "Failed"
    page = console.get("/pipelines/app").text
    shown = re.search(
        r'<ul class="conditions" aria-label="Conditions of Build">(.*?)</ul>', page, re.S
    )
    assert shown, "the Build stage's conditions are not shown"
    line = shown[1]
    assert re.search(r'Before entry</span> <span class="chip bad" title="Failed">', line)
    assert re.search(r'GateOpen <span class="chip bad" title="Failed">', line)
    assert "On success" not in line and "On failure" not in line
    assert page.count('<ul class="conditions"') == 1  # the Source stage has none
