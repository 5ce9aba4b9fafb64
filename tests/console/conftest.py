"""A live server with a pipeline to look at, and a browser-like HTTP session for its console."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.conftest import make_client
from tests.support.engine import approval, commands, declaration, make_repo, stage

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Console:
    """A cookie-keeping HTTP session on the console, as a browser without JavaScript is."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.http = requests.Session()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.endpoint + path, timeout=10, **kwargs)

    def csrf(self, path: str) -> str:
        found = CSRF.search(self.get(path).text)
        assert found, f"no CSRF field on {path}"
        return found[1]

    def post(self, path: str, data: dict[str, str], *, token: bool = True) -> requests.Response:
        """Submit a form of the pipeline page (with its CSRF token unless told otherwise)."""
        if token:
            data = {"csrf": self.csrf(path.rsplit("/", 1)[0]), **data}
        return self.http.post(self.endpoint + path, data=data, timeout=10, allow_redirects=False)

    def close(self) -> None:
        self.http.close()


def gated(repo: Path, name: str = "app", *build: str) -> dict[str, Any]:
    """A pipeline: a git source, a build that prints in colour, then a manual approval."""
    lines = build or ("printf '\\033[31mred\\033[0m <b>plain</b>\\n'", "echo done")
    return declaration(
        name,
        repo,
        stage("Build", commands("Make", *lines)),
        stage(
            "Gate",
            approval(
                "Approve", CustomData="Check the build", ExternalEntityLink="https://example.com/r"
            ),
        ),
        stage("Deploy", commands("Ship", "echo shipped")),
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    make_repo(path, {"README.md": "hello\n"}, "the first commit")
    return path


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Running]:
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    with running(settings) as server:
        yield server


@pytest.fixture
def api(live: Running) -> Any:
    return make_client(live.endpoint)


@pytest.fixture
def console(live: Running) -> Iterator[Console]:
    session = Console(live.endpoint)
    try:
        yield session
    finally:
        session.close()
