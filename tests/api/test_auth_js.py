"""The AWS SDK for JavaScript (v3) works unchanged with a user's keys against a server with
authentication required: its signature is accepted, its caller's policies decide. Needs
`node` and `npm` and the npm registry; skipped, saying which is missing, without them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.conftest import sqlite_only
from tests.support.auth import make_user, signed_client
from tests.support.engine import approval, declaration, make_repo, stage

PACKAGE = "@aws-sdk/client-codepipeline"
QUIET = ["--no-audit", "--no-fund", "--loglevel=error", PACKAGE]
SCRIPT = """
const sdk = require("@aws-sdk/client-codepipeline");
const client = new sdk.CodePipelineClient({
  endpoint: process.env.ENDPOINT,
  region: "us-east-1",
  maxAttempts: 1,
  credentials: {
    accessKeyId: process.env.KEY_ID,
    secretAccessKey: process.env.SECRET,
  },
});
(async () => {
  const listed = await client.send(new sdk.ListPipelinesCommand({}));
  const out = { pipelines: listed.pipelines.map((p) => p.name) };
  try {
    await client.send(new sdk.DeletePipelineCommand({ name: "app" }));
  } catch (error) {
    out.refused = error.name;
    out.message = error.message;
  }
  console.log(JSON.stringify(out));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
"""


@pytest.fixture(scope="session")
def js_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the SDK's CodePipeline client installed, once per test session."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the JavaScript SDK test needs node and npm on PATH")
    folder = tmp_path_factory.mktemp("js-sdk")
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(folder), "--cache", str(folder / ".npm"), *QUIET],
            capture_output=True,
            check=False,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {PACKAGE} did not finish in 300 s")
    if done.returncode != 0:
        pytest.skip(f"npm install {PACKAGE} failed: {done.stderr.strip()[-500:]}")
    (folder / "calls.js").write_text(SCRIPT)
    return folder


@pytest.fixture
def secured(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, auth="required")) as live:
        yield live


@sqlite_only
def test_the_js_sdk_works_with_a_users_keys(js_sdk: Path, secured: Running, tmp_path: Path) -> None:
    admin = signed_client(
        secured, make_user(secured, "admin", managed=["AWSCodePipeline_FullAccess"])
    )
    repo = tmp_path / "repo"
    make_repo(repo)
    admin.create_pipeline(pipeline=declaration("app", repo, stage("Gate", approval())))
    key_id, secret = make_user(secured, "reader", managed=["AWSCodePipeline_ReadOnlyAccess"])
    node = shutil.which("node")
    assert node is not None  # the fixture skips without it
    done = subprocess.run(
        [node, str(js_sdk / "calls.js")],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        cwd=js_sdk,
        env={
            "PATH": str(Path(node).parent),
            "ENDPOINT": secured.endpoint,
            "KEY_ID": key_id,
            "SECRET": secret,
            # No shared AWS files or environment credentials of the machine's user.
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        },
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["pipelines"] == ["app"]
    assert out["refused"] == "AccessDeniedException"
    assert out["message"].startswith("User: arn:aws:iam::000000000000:user/reader is not")
    assert "codepipeline:DeletePipeline" in out["message"]
