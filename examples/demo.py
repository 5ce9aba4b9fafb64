"""The demo behind ``make demo``: a real pipeline run on this machine with ``conveyor run``.

It makes a git repository of the sample hello-service in ``.conveyor-demo/hello-service``, then
runs the pipeline in it, ``pipeline.json`` (Source → Build with a buildspec, unit tests and a
JUnit report → a manual approval, which ``--approve`` answers → Deploy to a local bucket), with
the live view, and ends by showing where the deployed files are. The README's tour takes the
same pipeline further: ``--source``, ``--revision``, ``--var``, a server and the AWS CLI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / ".conveyor-demo"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Demo",
    "GIT_AUTHOR_EMAIL": "demo@conveyor.invalid",
    "GIT_COMMITTER_NAME": "Demo",
    "GIT_COMMITTER_EMAIL": "demo@conveyor.invalid",
}


def make_repository(folder: Path) -> None:
    """The sample application as a git repository with one commit on main."""
    shutil.copytree(HERE / "hello-service", folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "Greet people"]):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True)


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    repository = DEMO / "hello-service"
    make_repository(repository)
    home = DEMO / "home"
    pipeline = repository / "pipeline.json"
    command = [sys.executable, "-m", "conveyor", "run", str(pipeline), "--approve"]
    command += ["--home", str(home)]
    print(f"$ conveyor run {_shown(pipeline)} --approve --home {_shown(home)}")
    result = subprocess.run(command, check=False)
    site = home / "buckets" / "hello-site"
    if result.returncode == 0 and site.is_dir():
        print(f"\nThe deployed files are in {site}:")
        for path in sorted(site.rglob("*")):
            if path.is_file():
                print(f"  {path.relative_to(site)}: {path.read_text().strip()[:70]}")
    print("\nNext: the README's tour runs the same pipeline with your changes, an older commit,")
    print("a server, the AWS CLI and the conveyor client commands.")
    return result.returncode


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it is under it, as a person would type it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
