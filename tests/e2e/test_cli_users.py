"""`conveyor user|group|key|audit` on a home and on a database, with the server running or
not; `conveyor server` refusing to serve unauthenticated off loopback."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner, Result

from conveyor.auth.cipher import KEY_FILE
from conveyor.auth.identities import CACHE_SECONDS
from conveyor.cli.main import cli
from conveyor.config import Settings
from conveyor.server import CannotServe, refuse_unsafe, running
from tests.conftest import make_client, sqlite_only
from tests.e2e.serverproc import server_process
from tests.support.auth import signed_client


def conveyor(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def place(settings: Settings) -> list[str]:
    return ["--home", str(settings.home), "--database", settings.database]


def test_users_groups_and_keys_on_a_home(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "home")]
    made = conveyor("user", "create", "alice", "--managed", "AWSCodePipeline_ReadOnlyAccess", *home)
    assert made.exit_code == 0, made.output
    assert conveyor("group", "create", "ops", "--user", "alice", *home).exit_code == 0
    listed = json.loads(conveyor("user", "list", "--json", *home).output)
    assert [(u["Name"], u["Policies"], u["Groups"]) for u in listed] == [
        ("alice", ["AWSCodePipeline_ReadOnlyAccess (managed)"], ["ops"])
    ]
    key = json.loads(conveyor("key", "create", "alice", "--json", *home).output)
    assert set(key) == {"AccessKeyId", "SecretAccessKey"}
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    assert key["AccessKeyId"] in conveyor("key", "list", *home).output
    # The secret is kept sealed: neither the database nor the listing holds it.
    database = (tmp_path / "home" / "conveyor.db").read_bytes()
    assert key["SecretAccessKey"].encode() not in database
    assert key["SecretAccessKey"] not in conveyor("key", "list", *home).output
    assert ((tmp_path / "home" / KEY_FILE).stat().st_mode & 0o777) == 0o600
    assert conveyor("key", "delete", key["AccessKeyId"], *home).exit_code == 0
    assert conveyor("user", "delete", "alice", *home).exit_code == 0
    assert json.loads(conveyor("user", "list", "--json", *home).output) == []
    assert json.loads(conveyor("group", "list", "--json", *home).output)[0]["Users"] == []
    assert conveyor("user", "create", "bob", "--group", "ops", *home).exit_code == 0
    assert json.loads(conveyor("group", "list", "--json", *home).output)[0]["Users"] == ["bob"]
    assert (
        "group nope does not exist"
        in conveyor("user", "create", "carol", "--group", "nope", *home).output
    )
    assert [u["Name"] for u in json.loads(conveyor("user", "list", "--json", *home).output)] == [
        "bob"
    ]


def test_mistakes_are_refused_clearly(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "home")]
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Alow", "Action": "*", "Resource": "*"}],
            }
        )
    )
    refused = conveyor("user", "create", "alice", "--policy", str(bad), *home)
    assert refused.exit_code == 1
    assert "policy bad, statement 1: Effect must be Allow or Deny, not 'Alow'" in refused.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"Statement": [')
    assert (
        "not valid JSON" in conveyor("user", "create", "a", "--policy", str(broken), *home).output
    )
    unknown = conveyor("user", "create", "alice", "--managed", "AdministratorAccess", *home)
    assert (
        "'AdministratorAccess' is not a managed policy; there are AWSCodePipelineApproverAccess"
        in (unknown.output)
    )
    assert "does not exist" in conveyor("key", "create", "nobody", *home).output
    assert conveyor("user", "create", "alice", *home).exit_code == 0
    assert "already exists" in conveyor("user", "create", "alice", *home).output
    assert "user name 'bad name'" in conveyor("user", "create", "bad name", *home).output
    assert json.loads(conveyor("user", "list", "--json", *home).output)[0]["Name"] == "alice"


@sqlite_only
def test_keys_made_while_the_server_runs_work_and_deleted_ones_stop(settings: Settings) -> None:
    with running(replace(settings, auth="required")) as live:
        assert (
            conveyor(
                "user", "create", "bob", "--managed", "AWSCodePipeline_FullAccess", *place(settings)
            ).exit_code
            == 0
        )
        key = json.loads(conveyor("key", "create", "bob", "--json", *place(settings)).output)
        client = signed_client(live, (key["AccessKeyId"], key["SecretAccessKey"]))
        assert client.list_pipelines()["pipelines"] == []
        assert conveyor("key", "delete", key["AccessKeyId"], *place(settings)).exit_code == 0
        time.sleep(CACHE_SECONDS + 0.1)
        with pytest.raises(ClientError) as excinfo:
            client.list_pipelines()
        assert excinfo.value.response["Error"]["Code"] == "UnrecognizedClientException"
        live.application.access.audit.flush()
        shown = conveyor("audit", *place(settings))
        assert shown.exit_code == 0, shown.output
        lines = shown.output.splitlines()
        assert len(lines) == 2
        assert "ListPipelines" in lines[0] and "UnrecognizedClientException" in lines[0]
        [only] = conveyor("audit", "--user", "bob", *place(settings)).output.splitlines()
        assert only == lines[1]
        assert only.rstrip().endswith("ok")
        as_json = conveyor("audit", "--json", "--since", "10m", *place(settings)).output
        assert all(
            json.loads(line)["eventSource"] == "codepipeline.amazonaws.com"
            for line in as_json.splitlines()
        )
        assert (
            "neither a duration"
            in conveyor("audit", "--since", "yesterday", *place(settings)).output
        )


def test_a_server_off_loopback_without_auth_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("conveyor")),
            "server",
            "--host",
            "0.0.0.0",
            "--home",
            str(tmp_path / "home"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "refusing to serve on 0.0.0.0 without authentication" in done.stderr
    assert "conveyor server --auth" in done.stderr and "--insecure" in done.stderr
    assert not (tmp_path / "home" / "conveyor.db").exists()


def test_insecure_serves_off_loopback_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(CannotServe):
        refuse_unsafe(Settings(host="192.0.2.1"))
    refuse_unsafe(Settings(host="127.0.0.1"))
    refuse_unsafe(Settings(host="0.0.0.0", auth="required"))
    with caplog.at_level(logging.WARNING, "conveyor.server"):
        refuse_unsafe(Settings(host="0.0.0.0", insecure=True))
    assert "WITHOUT authentication (--insecure)" in caplog.text


def test_server_with_auth_serves_keys_made_by_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert (
        conveyor(
            "user",
            "create",
            "dev",
            "--managed",
            "AWSCodePipeline_ReadOnlyAccess",
            "--home",
            str(home),
        ).exit_code
        == 0
    )
    key = json.loads(conveyor("key", "create", "dev", "--json", "--home", str(home)).output)
    with server_process(home, args=["--auth"]) as (endpoint, _):
        signed = make_client(endpoint, access_key=key["AccessKeyId"])
        with pytest.raises(ClientError) as excinfo:
            signed.list_pipelines()  # the fixture client's secret is not this key's
        assert excinfo.value.response["Error"]["Code"] == "InvalidSignatureException"
        client = boto3.client(
            "codepipeline",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        assert client.list_pipelines()["pipelines"] == []


@sqlite_only
def test_client_commands_sign_with_the_users_key(settings: Settings) -> None:
    with running(replace(settings, auth="required")) as live:
        identities = live.application.access.identities
        identities.create("user", "dev", managed=["AWSCodePipeline_ReadOnlyAccess"])
        made = identities.create_key("dev")
        env = {
            "AWS_ACCESS_KEY_ID": made.access_key_id,
            "AWS_SECRET_ACCESS_KEY": made.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        listed = CliRunner(env=env).invoke(cli, ["list", "--endpoint", live.endpoint, "--json"])
        assert listed.exit_code == 0, listed.output
        refused = CliRunner(env={**env, "AWS_SECRET_ACCESS_KEY": "wrong"}).invoke(
            cli, ["list", "--endpoint", live.endpoint]
        )
        assert refused.exit_code != 0
        assert "InvalidSignatureException" in refused.output or "signature" in refused.output


def test_secret_seal_prints_a_value_the_homes_key_opens(tmp_path: Path) -> None:
    from conveyor.auth.cipher import load_cipher
    from conveyor.domain.declaration import SEALED

    home = tmp_path / "home"
    sealed = conveyor("secret", "seal", "hunter2", "--home", str(home))
    assert sealed.exit_code == 0, sealed.output
    text = sealed.output.strip()
    assert text.startswith(SEALED) and "hunter2" not in text
    assert load_cipher(home).open(text.removeprefix(SEALED)) == "hunter2"
    piped = CliRunner().invoke(cli, ["secret", "seal", "--home", str(home)], input="from-stdin\n")
    assert load_cipher(home).open(piped.output.strip().removeprefix(SEALED)) == "from-stdin"
    assert (
        "give the value to seal"
        in CliRunner().invoke(cli, ["secret", "seal", "--home", str(home)], input="").output
    )
