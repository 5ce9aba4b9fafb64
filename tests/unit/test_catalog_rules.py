"""The catalog's rules at CreatePipeline: a mode that makes a property required, the values a
property takes, and the Region a source action may name (pure: no server)."""

from __future__ import annotations

from typing import Any

from conveyor.domain.catalog import builtin_action_type
from conveyor.domain.pipeline import parse_pipeline
from conveyor.domain.structure import check
from tests.support.declarations import build_action, pipeline, source_action


def _cloudformation(**configuration: str) -> dict[str, Any]:
    return {
        "name": "Deploy",
        "actionTypeId": {
            "category": "Deploy",
            "owner": "AWS",
            "provider": "CloudFormation",
            "version": "1",
        },
        "configuration": {"StackName": "app", **configuration},
        "inputArtifacts": [{"name": "SourceOutput"}],
    }


def _with(action: dict[str, Any]) -> dict[str, Any]:
    return pipeline(
        stages=[
            {"name": "Source", "actions": [source_action()]},
            {"name": "Deploy", "actions": [action]},
        ]
    )


def messages(declaration: dict[str, Any]) -> list[tuple[str, str]]:
    found = check(parse_pipeline(declaration), builtin_action_type, "us-east-1")
    return [(p.where, p.message) for p in found]


def test_a_change_set_mode_needs_a_change_set_name() -> None:
    [(where, message)] = messages(_with(_cloudformation(ActionMode="CHANGE_SET_EXECUTE")))
    assert where == "stages[1].actions[0].configuration"
    assert "'ChangeSetName', required when ActionMode is CHANGE_SET_EXECUTE" in message
    assert (
        messages(_with(_cloudformation(ActionMode="CHANGE_SET_EXECUTE", ChangeSetName="next")))
        == []
    )


def test_create_update_needs_a_template_and_delete_does_not() -> None:
    [(_, message)] = messages(_with(_cloudformation(ActionMode="CREATE_UPDATE")))
    assert "'TemplatePath', required when ActionMode is CREATE_UPDATE" in message
    assert messages(_with(_cloudformation(ActionMode="DELETE_ONLY"))) == []


def test_an_unknown_action_mode_is_refused_naming_the_ones_there_are() -> None:
    [(where, message)] = messages(_with(_cloudformation(ActionMode="UPSERT")))
    assert where == "stages[1].actions[0].configuration.ActionMode"
    assert "'ActionMode' is 'UPSERT'" in message
    assert "CREATE_UPDATE" in message and "DELETE_ONLY" in message


def test_a_value_still_holding_a_variable_is_judged_at_run_time() -> None:
    assert messages(_with(_cloudformation(ActionMode="#{Vars.Mode}", TemplatePath="a::b"))) == []


def test_s3_deploy_without_extract_needs_an_object_key() -> None:
    action = {
        "name": "Deploy",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"BucketName": "site", "Extract": "false"},
        "inputArtifacts": [{"name": "SourceOutput"}],
    }
    [(_, message)] = messages(_with(action))
    assert "'ObjectKey', required when Extract is false" in message


def test_a_source_action_may_name_the_pipeline_region_but_no_other() -> None:
    same = source_action()
    same["region"] = "us-east-1"
    declaration = pipeline(
        stages=[
            {"name": "Source", "actions": [same]},
            {"name": "Build", "actions": [build_action()]},
        ]
    )
    assert messages(declaration) == []
    declaration["stages"][0]["actions"][0]["region"] = "eu-west-1"
    found = messages(declaration)
    assert any("cannot run in another Region" in message for _, message in found)
