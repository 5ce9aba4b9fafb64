"""Builds with buildspecs inside real pipelines: a Python project with tests and a JUnit
report, two inputs with two secondary artifacts, and a failing build."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from conveyor.server import Running
from tests.support.declarations import ROLE
from tests.support.engine import (
    action_state,
    git_source,
    latest_execution_id,
    make_repo,
    wait_status,
)

APP = {
    "calc.py": "def add(a, b):\n    return a + b\n",
    "test_calc.py": (
        "import unittest\nfrom calc import add\n\n"
        "class AddTest(unittest.TestCase):\n"
        "    def test_adds(self):\n        self.assertEqual(add(2, 3), 5)\n"
        "    def test_negative(self):\n        self.assertEqual(add(-1, 1), 0)\n"
    ),
    "junit.py": (
        "import sys, unittest\n"
        "result = unittest.main(module=None, argv=['x', 'discover'], exit=False).result\n"
        "cases = result.testsRun\nfailed = len(result.failures) + len(result.errors)\n"
        "open('report.xml', 'w').write(f'<testsuite name=\"unit\" tests=\"{cases}\" "
        'failures="{failed}" errors="0">\' + \'\'.join(f\'<testcase name="t{i}"/>\' '
        "for i in range(cases)) + '</testsuite>')\n"
        "sys.exit(1 if failed else 0)\n"
    ),
    "buildspec.yml": (
        "version: 0.2\n"
        "env:\n  variables:\n    GREETING: hello\n  exported-variables:\n    - VERSION\n"
        "phases:\n"
        "  install:\n    commands:\n      - python3 --version\n"
        "  build:\n    commands:\n      - python3 junit.py\n      - export VERSION=1.0.$CODEBUILD_BUILD_NUMBER\n"
        "  post_build:\n    commands:\n      - mkdir -p dist && cp calc.py dist/\n"
        "reports:\n  unit-tests:\n    files:\n      - report.xml\n"
        "artifacts:\n  files:\n    - '**/*'\n  base-directory: dist\n"
    ),
}


def codebuild(
    name: str, inputs: list[str], outputs: list[str], **configuration: str
) -> dict[str, Any]:
    return {
        "name": name,
        "actionTypeId": {
            "category": "Build",
            "owner": "AWS",
            "provider": "CodeBuild",
            "version": "1",
        },
        "configuration": {"ProjectName": name.lower(), **configuration},
        "inputArtifacts": [{"name": n} for n in inputs],
        "outputArtifacts": [{"name": n} for n in outputs],
        "namespace": "BUILD",
    }


def deploy(bucket: str, artifact: str) -> dict[str, Any]:
    return {
        "name": f"Publish{artifact}",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"BucketName": bucket, "Extract": "true"},
        "inputArtifacts": [{"name": artifact}],
    }


def declaration(
    name: str, sources: list[dict[str, Any]], *stages: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [{"name": "Source", "actions": sources}, *stages],
    }


def test_a_python_project_is_built_tested_and_deployed(
    client: Any, server: Running, tmp_path: Path
) -> None:
    make_repo(tmp_path / "app", APP)
    client.create_pipeline(
        pipeline=declaration(
            "app",
            [git_source(tmp_path / "app")],
            {"name": "Build", "actions": [codebuild("Build", ["Src"], ["Dist"])]},
            {"name": "Deploy", "actions": [deploy("site", "Dist")]},
        )
    )
    execution_id = latest_execution_id(client, "app")
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    build = action_state(client, "app", "Build", "Build")
    assert "2 tests" in build["summary"]
    assert "2 passed" in build["summary"]
    details = client.list_action_executions(pipelineName="app")["actionExecutionDetails"]
    built = next(d for d in details if d["actionName"] == "Build")
    assert built["output"]["outputVariables"]["VERSION"].startswith("1.0.")
    home = server.application.engine.settings.home
    assert (home / "buckets" / "site" / "calc.py").read_text() == APP["calc.py"]


def test_two_inputs_and_two_secondary_artifacts(
    client: Any, server: Running, tmp_path: Path
) -> None:
    make_repo(tmp_path / "app", {"app.txt": "app\n"})
    make_repo(tmp_path / "docs", {"guide.md": "# guide\n"})
    spec = (
        "version: 0.2\n"
        "phases:\n  build:\n    commands:\n"
        "      - mkdir -p out/bin out/docs\n"
        "      - cp app.txt out/bin/\n"
        "      - cp $CODEBUILD_SRC_DIR_Docs/guide.md out/docs/\n"
        "artifacts:\n  files: ['**/*']\n"
        "  secondary-artifacts:\n"
        "    Binaries:\n      base-directory: out/bin\n      files: ['**/*']\n"
        "    Manual:\n      base-directory: out/docs\n      files: ['**/*']\n"
    )
    docs = git_source(tmp_path / "docs", output="Docs", namespace=None)
    docs["name"] = "DocsSource"
    client.create_pipeline(
        pipeline=declaration(
            "two",
            [git_source(tmp_path / "app"), docs],
            {
                "name": "Build",
                "actions": [
                    codebuild(
                        "Build",
                        ["Src", "Docs"],
                        ["Binaries", "Manual"],
                        PrimarySource="Src",
                        BuildSpec=spec,
                    )
                ],
            },
            {"name": "Deploy", "actions": [deploy("bin", "Binaries"), deploy("manual", "Manual")]},
        )
    )
    assert (
        wait_status(client, "two", latest_execution_id(client, "two"), "Succeeded", "Failed")
        == "Succeeded"
    )
    home = server.application.engine.settings.home
    assert (home / "buckets" / "bin" / "app.txt").read_text() == "app\n"
    assert (home / "buckets" / "manual" / "guide.md").read_text() == "# guide\n"
    details = client.list_action_executions(pipelineName="two")["actionExecutionDetails"]
    build = next(d for d in details if d["actionName"] == "Build")
    for artifact in build["output"]["outputArtifacts"]:
        location = artifact["s3location"]
        with zipfile.ZipFile(home / "buckets" / location["bucket"] / location["key"]) as archive:
            assert archive.namelist() in (["app.txt"], ["guide.md"])


def test_a_failing_build_runs_finally_and_post_build(
    client: Any, server: Running, tmp_path: Path
) -> None:
    spec = (
        "version: 0.2\n"
        "phases:\n"
        "  build:\n    commands:\n      - echo compiling\n      - test -f missing.o\n      - echo never\n"
        "    finally:\n      - echo cleaning up\n"
        "  post_build:\n    commands:\n      - echo succeeding=$CODEBUILD_BUILD_SUCCEEDING\n"
    )
    make_repo(tmp_path / "app", {"buildspec.yml": spec})
    client.create_pipeline(
        pipeline=declaration(
            "broken",
            [git_source(tmp_path / "app")],
            {"name": "Build", "actions": [codebuild("Build", ["Src"], [])]},
        )
    )
    assert (
        wait_status(client, "broken", latest_execution_id(client, "broken"), "Succeeded", "Failed")
        == "Failed"
    )
    build = action_state(client, "broken", "Build", "Build")
    assert "BUILD" in build["errorDetails"]["message"]
    from tests.api.test_logs import fetch

    status, log = fetch(build["externalExecutionUrl"])
    assert status == 200
    assert "cleaning up" in log
    assert "succeeding=0" in log
    assert "\nnever\n" not in log
