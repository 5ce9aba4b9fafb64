"""Servers on one PostgreSQL database with local buckets: refused unless every home's buckets
are the same folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.auth.cipher import KEY_FILE
from conveyor.config import Settings
from conveyor.server import CannotServe, running
from tests.support.fleet import shared_buckets, shared_key

pytestmark = pytest.mark.postgres


def test_a_second_server_with_buckets_of_its_own_is_refused_naming_the_fixes(
    postgres_url: str, tmp_path: Path
) -> None:
    shared_key(tmp_path / "one", tmp_path / "two")
    first = Settings(home=tmp_path / "one", database_url=postgres_url, detect_changes=False)
    second = Settings(home=tmp_path / "two", database_url=postgres_url, detect_changes=False)
    with running(first), pytest.raises(CannotServe) as refused, running(second):
        pass
    message = str(refused.value)
    assert str(tmp_path / "two" / "buckets") in message
    assert str(tmp_path / "one") in message  # where the installation's artifacts are
    for fix in ("shared folder", "s3_endpoint", "conveyor worker"):
        assert fix in message
    # Refused before it touched anything: the second home has no workspaces, no node id.
    assert not (tmp_path / "two" / "node-id").exists()
    # The first server's record stands: it starts again on its own folder.
    with running(first):
        pass


def test_servers_whose_buckets_are_one_shared_folder_start(
    postgres_url: str, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    shared_buckets(tmp_path / "shared", one, two)
    first = Settings(home=one, database_url=postgres_url, detect_changes=False)
    second = Settings(home=two, database_url=postgres_url, detect_changes=False)
    with running(first) as a, running(second) as b:
        assert a.endpoint != b.endpoint


def test_servers_with_an_s3_endpoint_need_no_shared_folder(
    postgres_url: str, tmp_path: Path
) -> None:
    shared_key(tmp_path / "one", tmp_path / "two")
    first = Settings(home=tmp_path / "one", database_url=postgres_url, detect_changes=False)
    with running(first):
        pass
    # With an S3 store the homes' folders hold no artifacts, so they may differ.
    other = Settings(
        home=tmp_path / "two",
        database_url=postgres_url,
        detect_changes=False,
        s3_endpoint="http://127.0.0.1:9",
    )
    with running(other):
        pass


def test_a_second_server_with_a_key_of_its_own_is_refused_naming_the_fix(
    postgres_url: str, tmp_path: Path
) -> None:
    """Its key could open none of the secrets kept in the database, nor check the artifact
    credentials of jobs the first server handed out."""
    one, two = tmp_path / "one", tmp_path / "two"
    shared_buckets(tmp_path / "shared", one, two)
    (two / KEY_FILE).unlink()  # the second home makes a key of its own
    first = Settings(home=one, database_url=postgres_url, detect_changes=False)
    second = Settings(home=two, database_url=postgres_url, detect_changes=False)
    with running(first), pytest.raises(CannotServe) as refused, running(second):
        pass
    message = str(refused.value)
    assert "secret key" in message and "CONVEYOR_SECRET_KEY" in message
    assert str(one) in message  # the server whose key the database knows
    assert not (two / "node-id").exists()
