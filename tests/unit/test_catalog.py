from __future__ import annotations

import pytest

from conveyor.domain.actiontype import ActionType, ActionTypeId, ArtifactBounds
from conveyor.domain.catalog import (
    BUILTIN_ACTION_TYPES,
    WORKER_SETTING,
    builtin_action_type,
    cannot_run,
    how_it_runs,
)


def _aws(category: str, provider: str) -> ActionTypeId:
    return ActionTypeId(category=category, owner="AWS", provider=provider, version="1")


def _get(category: str, provider: str) -> ActionType:
    found = builtin_action_type(_aws(category, provider))
    assert found is not None
    return found


# Every type of the CodePipeline action structure reference, and Conveyor's own Source/Git.
REFERENCE = {
    ("AWS", "Approval", "Manual"),
    ("AWS", "Build", "CodeBuild"),
    ("AWS", "Build", "ECRBuildAndPublish"),
    ("AWS", "Compute", "Commands"),
    ("AWS", "Deploy", "AppConfig"),
    ("AWS", "Deploy", "CloudFormation"),
    ("AWS", "Deploy", "CloudFormationStackInstances"),
    ("AWS", "Deploy", "CloudFormationStackSet"),
    ("AWS", "Deploy", "CodeDeploy"),
    ("AWS", "Deploy", "CodeDeployToECS"),
    ("AWS", "Deploy", "EC2"),
    ("AWS", "Deploy", "ECS"),
    ("AWS", "Deploy", "EKS"),
    ("AWS", "Deploy", "ElasticBeanstalk"),
    ("AWS", "Deploy", "OpsWorks"),
    ("AWS", "Deploy", "S3"),
    ("AWS", "Deploy", "ServiceCatalog"),
    ("AWS", "Invoke", "InspectorScan"),
    ("AWS", "Invoke", "Lambda"),
    ("AWS", "Invoke", "StepFunctions"),
    ("AWS", "Source", "CodeCommit"),
    ("AWS", "Source", "CodeStarSourceConnection"),
    ("AWS", "Source", "ECR"),
    ("AWS", "Source", "Git"),
    ("AWS", "Source", "S3"),
    ("AWS", "Test", "CodeBuild"),
    ("AWS", "Test", "DeviceFarm"),
    ("ThirdParty", "Deploy", "AlexaSkillsKit"),
    ("ThirdParty", "Source", "GitHub"),
}


def test_catalog_holds_every_type_of_the_reference() -> None:
    assert {(t.id.owner, t.id.category, t.id.provider) for t in BUILTIN_ACTION_TYPES} == REFERENCE


def test_every_builtin_type_is_aws_or_third_party_version_1() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        assert action_type.id.owner in ("AWS", "ThirdParty")
        assert action_type.id.version == "1"


def test_builtin_types_are_ordered_by_owner_category_then_provider() -> None:
    keys = [(t.id.owner != "AWS", t.id.category, t.id.provider) for t in BUILTIN_ACTION_TYPES]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_builtin_action_type_finds_each_type() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        assert builtin_action_type(action_type.id) is action_type


def test_builtin_action_type_accepts_a_freshly_built_id() -> None:
    found = builtin_action_type(_aws("Source", "Git"))
    assert found is not None
    assert found.id.provider == "Git"


def test_builtin_action_type_unknown_is_none() -> None:
    assert builtin_action_type(_aws("Build", "Jenkins")) is None
    assert builtin_action_type(ActionTypeId("Source", "AWS", "GitHub", "1")) is None
    assert builtin_action_type(_aws("Deploy", "CodeBuild")) is None
    assert builtin_action_type(ActionTypeId("Build", "Custom", "CodeBuild", "1")) is None
    assert builtin_action_type(ActionTypeId("Build", "AWS", "CodeBuild", "2")) is None


def test_property_names_are_unique() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        names = [p.name for p in action_type.properties]
        assert len(names) == len(set(names)), action_type.id


def test_catalog_rules_name_properties_of_the_same_type() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        for prop in action_type.properties:
            assert not (prop.required and prop.required_when), (action_type.id, prop.name)
            for other, values in prop.required_when:
                found = action_type.find_property(other)
                assert found is not None, (action_type.id, prop.name, other)
                assert values
                assert not found.values or set(values) <= set(found.values)


def test_at_most_one_queryable_property_which_is_required_and_not_secret() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        queryable = [p for p in action_type.properties if p.queryable]
        assert len(queryable) <= 1, action_type.id
        for prop in queryable:
            assert prop.required
            assert not prop.secret


def test_descriptions_are_present_and_short() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        # GetActionType's description: the type, then how it runs here.
        assert action_type.description
        assert len(action_type.description) <= 1024
        assert how_it_runs(action_type) in action_type.description
        for prop in action_type.properties:
            assert prop.description, (action_type.id, prop.name)
            assert len(prop.description) <= 160, (action_type.id, prop.name)
            assert prop.type is not None, (action_type.id, prop.name)


def test_artifact_bounds_are_sane() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        for bounds in (action_type.input_artifacts, action_type.output_artifacts):
            assert 0 <= bounds.minimum <= bounds.maximum <= 10, action_type.id


def test_source_types_take_no_inputs_and_exactly_one_output() -> None:
    sources = [t for t in BUILTIN_ACTION_TYPES if t.id.category == "Source"]
    assert len(sources) == 6
    for action_type in sources:
        assert action_type.input_artifacts == ArtifactBounds(0, 0)
        assert action_type.output_artifacts == ArtifactBounds(1, 1)


def test_every_type_has_a_positive_job_timeout() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        assert action_type.job_timeout is not None
        assert action_type.job_timeout > 0


def test_codebuild_requires_project_name_in_build_and_test() -> None:
    for category in ("Build", "Test"):
        codebuild = _get(category, "CodeBuild")
        project = codebuild.find_property("ProjectName")
        assert project is not None
        assert project.required
        assert project.key
        assert codebuild.input_artifacts == ArtifactBounds(1, 5)
        assert codebuild.output_artifacts == ArtifactBounds(0, 5)
        assert not codebuild.input_artifacts.admits(0)
        assert codebuild.input_artifacts.admits(5)
        assert not codebuild.input_artifacts.admits(6)


def test_codebuild_primary_source_and_buildspec_are_optional() -> None:
    codebuild = _get("Build", "CodeBuild")
    for name in ("PrimarySource", "BuildSpec", "BuildspecOverride", "EnvironmentVariables"):
        prop = codebuild.find_property(name)
        assert prop is not None, name
        assert not prop.required, name


def test_manual_approval_takes_no_artifacts_and_waits_seven_days() -> None:
    approval = _get("Approval", "Manual")
    assert approval.input_artifacts == ArtifactBounds(0, 0)
    assert approval.output_artifacts == ArtifactBounds(0, 0)
    assert approval.job_timeout == 7 * 24 * 60 * 60
    assert {p.name for p in approval.properties} == {
        "NotificationArn",
        "CustomData",
        "ExternalEntityLink",
    }
    assert not any(p.required for p in approval.properties)


def test_s3_deploy_needs_exactly_one_input_and_no_output() -> None:
    deploy = _get("Deploy", "S3")
    assert deploy.input_artifacts == ArtifactBounds(1, 1)
    assert deploy.output_artifacts == ArtifactBounds(0, 0)
    assert not deploy.input_artifacts.admits(0)
    assert not deploy.input_artifacts.admits(2)
    assert deploy.job_timeout == 90 * 60


def test_s3_deploy_object_key_is_only_conditionally_required() -> None:
    deploy = _get("Deploy", "S3")
    bucket = deploy.find_property("BucketName")
    extract = deploy.find_property("Extract")
    object_key = deploy.find_property("ObjectKey")
    assert bucket is not None and bucket.required
    assert extract is not None and extract.required
    assert object_key is not None and not object_key.required
    assert object_key.description is not None and "Extract" in object_key.description


def test_commands_takes_up_to_ten_inputs_and_one_output() -> None:
    commands = _get("Compute", "Commands")
    assert commands.input_artifacts == ArtifactBounds(1, 10)
    assert commands.output_artifacts == ArtifactBounds(0, 1)
    assert commands.job_timeout == 55 * 60
    assert not any(p.required for p in commands.properties)


def test_git_source_requires_only_repository_url() -> None:
    git = _get("Source", "Git")
    url = git.find_property("RepositoryUrl")
    branch = git.find_property("BranchName")
    assert url is not None and url.required and url.key
    assert branch is not None and not branch.required
    assert [p.name for p in git.properties if p.required] == ["RepositoryUrl"]


def test_aws_sources_require_their_documented_properties() -> None:
    expected = {
        "CodeCommit": {"RepositoryName", "BranchName"},
        "CodeStarSourceConnection": {"ConnectionArn", "FullRepositoryId", "BranchName"},
        "S3": {"S3Bucket", "S3ObjectKey"},
    }
    for provider, required in expected.items():
        source = _get("Source", provider)
        assert {p.name for p in source.properties if p.required} == required, provider


def test_only_tokens_and_client_secrets_are_secret() -> None:
    secrets = {t.id.provider: t.secret_names for t in BUILTIN_ACTION_TYPES if t.secret_names}
    assert secrets == {
        "AlexaSkillsKit": frozenset({"ClientSecret", "RefreshToken"}),
        "GitHub": frozenset({"OAuthToken"}),
    }


# Artifact counts of the user guide's "Valid input and output artifacts" table.
ARTIFACTS = {
    ("Deploy", "CloudFormation"): ((0, 10), (0, 1)),
    ("Deploy", "CodeDeploy"): ((1, 1), (0, 0)),
    ("Deploy", "ElasticBeanstalk"): ((1, 1), (0, 0)),
    ("Deploy", "OpsWorks"): ((1, 1), (0, 0)),
    ("Deploy", "ECS"): ((1, 1), (0, 0)),
    ("Deploy", "ServiceCatalog"): ((1, 1), (0, 0)),
    ("Deploy", "AlexaSkillsKit"): ((1, 2), (0, 0)),
    ("Invoke", "Lambda"): ((0, 5), (0, 5)),
    ("Test", "DeviceFarm"): ((1, 1), (0, 0)),
    ("Source", "ECR"): ((0, 0), (1, 1)),
}


@pytest.mark.parametrize(("kind", "counts"), ARTIFACTS.items(), ids=str)
def test_artifact_counts_follow_the_reference(
    kind: tuple[str, str], counts: tuple[tuple[int, int], tuple[int, int]]
) -> None:
    (found,) = [t for t in BUILTIN_ACTION_TYPES if (t.id.category, t.id.provider) == kind]
    assert found.input_artifacts == ArtifactBounds(*counts[0])
    assert found.output_artifacts == ArtifactBounds(*counts[1])


_DAY = 24 * 60 * 60


def test_default_timeouts_follow_the_quotas() -> None:
    timeouts = {(t.id.category, t.id.provider): t.job_timeout for t in BUILTIN_ACTION_TYPES}
    assert timeouts[("Deploy", "CloudFormation")] == 3 * _DAY
    assert timeouts[("Deploy", "CodeDeploy")] == 5 * _DAY
    assert timeouts[("Deploy", "CodeDeployToECS")] == 5 * _DAY
    assert timeouts[("Invoke", "Lambda")] == _DAY
    assert timeouts[("Invoke", "StepFunctions")] == 7 * _DAY
    assert timeouts[("Deploy", "ECS")] == 60 * 60
    assert timeouts[("Deploy", "ElasticBeanstalk")] == 60 * 60


def test_cloudformation_modes_and_what_they_require() -> None:
    cfn = _get("Deploy", "CloudFormation")
    assert [p.name for p in cfn.properties if p.required] == ["ActionMode", "StackName"]
    mode = cfn.find_property("ActionMode")
    assert mode is not None
    assert set(mode.values) == {
        "CREATE_UPDATE",
        "DELETE_ONLY",
        "REPLACE_ON_FAILURE",
        "CHANGE_SET_REPLACE",
        "CHANGE_SET_EXECUTE",
    }
    change_set = cfn.find_property("ChangeSetName")
    assert change_set is not None
    assert dict(change_set.required_when) == {
        "ActionMode": ("CHANGE_SET_REPLACE", "CHANGE_SET_EXECUTE")
    }


def test_how_it_runs_names_the_endpoint_setting_or_the_worker_extension() -> None:
    assert how_it_runs(_get("Source", "Git")) == "Runs in Conveyor."
    assert "aws_endpoints.cloudformation" in how_it_runs(_get("Deploy", "CloudFormation"))
    assert WORKER_SETTING in how_it_runs(_get("Deploy", "CodeDeploy"))
    assert "no executor" in how_it_runs(_get("Deploy", "CodeDeploy"))


def test_cannot_run_names_the_type_and_both_ways_to_run_it() -> None:
    message = cannot_run(_get("Deploy", "CloudFormation"))
    assert "AWS/Deploy/CloudFormation/1" in message
    assert "aws_endpoints.cloudformation" in message
    assert "job worker" in message and WORKER_SETTING in message
    other = cannot_run(_get("Deploy", "ElasticBeanstalk"))
    assert "AWS/Deploy/ElasticBeanstalk/1" in other
    assert "aws_endpoints" not in other
    assert "job worker" in other
