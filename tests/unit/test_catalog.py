from __future__ import annotations

from conveyor.domain.actiontype import ActionType, ActionTypeId, ArtifactBounds
from conveyor.domain.catalog import BUILTIN_ACTION_TYPES, builtin_action_type


def _aws(category: str, provider: str) -> ActionTypeId:
    return ActionTypeId(category=category, owner="AWS", provider=provider, version="1")


def _get(category: str, provider: str) -> ActionType:
    found = builtin_action_type(_aws(category, provider))
    assert found is not None
    return found


def test_catalog_holds_the_expected_types() -> None:
    assert {(t.id.category, t.id.provider) for t in BUILTIN_ACTION_TYPES} == {
        ("Approval", "Manual"),
        ("Build", "CodeBuild"),
        ("Compute", "Commands"),
        ("Deploy", "S3"),
        ("Source", "CodeCommit"),
        ("Source", "CodeStarSourceConnection"),
        ("Source", "Git"),
        ("Source", "S3"),
        ("Test", "CodeBuild"),
    }


def test_every_builtin_type_is_aws_owned_version_1() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        assert action_type.id.owner == "AWS"
        assert action_type.id.version == "1"


def test_builtin_types_are_ordered_by_category_then_provider() -> None:
    keys = [(t.id.category, t.id.provider) for t in BUILTIN_ACTION_TYPES]
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
    assert builtin_action_type(_aws("Deploy", "CodeBuild")) is None
    assert builtin_action_type(ActionTypeId("Build", "Custom", "CodeBuild", "1")) is None
    assert builtin_action_type(ActionTypeId("Build", "AWS", "CodeBuild", "2")) is None


def test_property_names_are_unique_and_at_most_ten_per_type() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        names = [p.name for p in action_type.properties]
        assert len(names) == len(set(names)), action_type.id
        assert len(names) <= 10, action_type.id


def test_at_most_one_queryable_property_which_is_required_and_not_secret() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        queryable = [p for p in action_type.properties if p.queryable]
        assert len(queryable) <= 1, action_type.id
        for prop in queryable:
            assert prop.required
            assert not prop.secret


def test_descriptions_are_present_and_short() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        assert action_type.description
        assert len(action_type.description) <= 160
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
    assert len(sources) == 4
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


def test_builtin_types_have_no_secret_properties() -> None:
    for action_type in BUILTIN_ACTION_TYPES:
        assert action_type.secret_names == frozenset(), action_type.id
