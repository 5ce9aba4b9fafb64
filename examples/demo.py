"""The demo behind ``make demo``: a real pipeline run on this machine with ``conveyor run``.

It makes a git repository of the sample hello-service, then runs ``examples/pipeline.yaml``
(Source → Build with a buildspec, unit tests and a JUnit report → a manual approval, which
``--approve`` answers → Deploy to a local bucket) with the live view, and ends by showing
where the deployed files are and how to look at the same pipeline through a server with the
AWS CLI.
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
    make_repository(DEMO / "hello-service")
    home = DEMO / "home"
    command = [
        sys.executable,
        "-m",
        "conveyor",
        "run",
        str(HERE / "pipeline.yaml"),
        "--approve",
        "--home",
        str(home),
    ]
    print(f"$ conveyor run examples/pipeline.yaml --approve --home {home.relative_to(Path.cwd())}")
    result = subprocess.run(command, check=False)
    site = home / "buckets" / "hello-site"
    if result.returncode == 0 and site.is_dir():
        print(f"\nThe deployed files are in {site}:")
        for path in sorted(site.rglob("*")):
            if path.is_file():
                print(f"  {path.relative_to(site)}: {path.read_text().strip()[:70]}")
    conveyor = Path(sys.executable).with_name("conveyor")
    print(
        "\nLook at the same pipeline through a server and the AWS CLI:\n"
        f"  {conveyor} server --home {home} &\n"
        "  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 \\\n"
        "    aws codepipeline get-pipeline-state --name hello-service "
        "--endpoint-url http://127.0.0.1:8470\n"
        f"  {conveyor} show hello-service"
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
