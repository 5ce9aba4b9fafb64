"""The CodeBuild provider running real buildspecs over real artifacts in a temporary workspace."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path

from conveyor.actions.base import (
    ArtifactLocation,
    FailureType,
    JobContext,
    JobResult,
    OutputArtifact,
    ProviderConfig,
)
from conveyor.actions.codebuild import CodeBuild
from conveyor.artifacts.archive import pack
from conveyor.artifacts.local import LocalBuckets

RUN_TESTS = """\
import sys, unittest
from xml.sax.saxutils import quoteattr

class Result(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cases = []
    def addSuccess(self, test):
        super().addSuccess(test); self.cases.append((test.id(), ""))
    def addFailure(self, test, err):
        super().addFailure(test, err); self.cases.append((test.id(), "<failure/>"))
    def addError(self, test, err):
        super().addError(test, err); self.cases.append((test.id(), "<error/>"))
    def addSkip(self, test, reason):
        super().addSkip(test, reason); self.cases.append((test.id(), "<skipped/>"))

suite = unittest.defaultTestLoader.discover("tests")
result = unittest.TextTestRunner(resultclass=Result, verbosity=2).run(suite)
with open(sys.argv[1], "w") as out:
    out.write('<testsuite name="unit" tests="%d">' % len(result.cases))
    for name, body in result.cases:
        out.write("<testcase name=%s>%s</testcase>" % (quoteattr(name), body))
    out.write("</testsuite>")
sys.exit(0)
"""


def source(
    tmp_path: Path, name: str, files: Mapping[str, str], revision: str | None = None
) -> ArtifactLocation:
    """An input artifact holding ``files``, stored in the test's buckets."""
    folder = tmp_path / "inputs" / name
    for rel, content in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(content)
    folder.mkdir(parents=True, exist_ok=True)
    archive = tmp_path / f"{name}.zip"
    pack(folder, archive)
    LocalBuckets(tmp_path / "buckets").put("art", f"in/{name}.zip", archive)
    return ArtifactLocation(name, "art", f"in/{name}.zip", revision=revision or f"rev-{name}")


def output(name: str) -> OutputArtifact:
    return OutputArtifact(name, "art", f"out/{name}.zip")


def context(
    tmp_path: Path,
    buildspec: str | None = None,
    *,
    files: Mapping[str, str] | None = None,
    inputs: tuple[ArtifactLocation, ...] = (),
    outputs: tuple[OutputArtifact, ...] = (),
    configuration: Mapping[str, str] | None = None,
    workspace: str = "workspace",
    **extra: object,
) -> JobContext:
    """A job for project ``app`` over one input ``Src`` (``files`` plus ``buildspec.yml``)."""
    if not inputs:
        content = dict(files or {})
        if buildspec is not None:
            content["buildspec.yml"] = buildspec
        inputs = (source(tmp_path, "Src", content),)
    folder = tmp_path / workspace
    folder.mkdir()
    return JobContext(
        job_id="job-1",
        pipeline_name="pipe",
        pipeline_execution_id="exec-1",
        stage_name="Build",
        action_name="Build",
        action_execution_id="5c8f0d1e-aaaa-bbbb-cccc-0123456789ab",
        configuration={"ProjectName": "app", **(configuration or {})},
        input_artifacts=inputs,
        output_artifacts=outputs,
        artifacts=LocalBuckets(tmp_path / "buckets"),
        workspace=folder,
        log=io.StringIO(),
        cancelled=threading.Event(),
        **extra,  # type: ignore[arg-type]
    )


def run(tmp_path: Path, job: JobContext, **settings: object) -> JobResult:
    config = ProviderConfig(home=tmp_path / "home", **settings)  # type: ignore[arg-type]
    return CodeBuild(config).run(job)


def log_of(job: JobContext) -> str:
    assert isinstance(job.log, io.StringIO)
    return job.log.getvalue()


def zipped(tmp_path: Path, name: str) -> dict[str, bytes]:
    path = LocalBuckets(tmp_path / "buckets").path("art", f"out/{name}.zip")
    with zipfile.ZipFile(path) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}


def test_a_python_project_reports_its_unit_tests(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  install:
    commands:
      - python3 --version
  build:
    commands:
      - mkdir -p reports dist
      - python3 run_tests.py reports/unit.xml
      - cp calc.py dist/
reports:
  unit-tests:
    files: ['*.xml']
    base-directory: reports
artifacts:
  files: ['**/*']
  base-directory: dist
"""
    tests = """\
import unittest
from calc import add

class AddTest(unittest.TestCase):
    def test_small(self): self.assertEqual(add(1, 2), 3)
    def test_zero(self): self.assertEqual(add(0, 0), 0)
    def test_negative(self): self.assertEqual(add(-1, 1), 0)
"""
    files = {
        "calc.py": "def add(a, b):\n    return a + b\n",
        "tests/__init__.py": "",
        "tests/test_calc.py": tests,
        "run_tests.py": RUN_TESTS,
    }
    job = context(tmp_path, buildspec, files=files, outputs=(output("BuildOutput"),))
    result = run(tmp_path, job)
    assert result.succeeded, result.message
    assert result.summary == "3 tests: 3 passed, 0 failed (report group unit-tests)"
    assert result.external_execution_id == "app:5c8f0d1e-aaaa-bbbb-cccc-0123456789ab"
    assert zipped(tmp_path, "BuildOutput") == {"calc.py": b"def add(a, b):\n    return a + b\n"}
    log = log_of(job)
    for phase in ("INSTALL", "BUILD", "UPLOAD_ARTIFACTS", "FINALIZING"):
        assert f"Entering phase {phase}\n" in log
    assert "Running command python3 run_tests.py reports/unit.xml\n" in log
    assert "test_small" in log and "... ok" in log


def test_failing_tests_do_not_fail_the_build_but_the_summary_says_so(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - |
        cat > report.xml <<'XML'
        <testsuites><testsuite name="s">
          <testcase name="a"/><testcase name="b"><failure message="no"/></testcase>
          <testcase name="c"><skipped/></testcase>
        </testsuite></testsuites>
        XML
reports:
  checks:
    files: report.xml
"""
    result = run(tmp_path, context(tmp_path, buildspec))
    assert result.succeeded
    assert result.summary == "3 tests: 1 passed, 1 failed, 1 skipped (report group checks)"


def test_two_inputs_and_two_secondary_artifacts(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - mkdir -p out/app out/docs
      - cp main.txt out/app/ && cp "$CODEBUILD_SRC_DIR_Docs/guide.md" out/docs/
      - echo "$CODEBUILD_SRC_DIR|$CODEBUILD_RESOLVED_SOURCE_VERSION" > out/app/where.txt
artifacts:
  files: ['**/*']
  secondary-artifacts:
    AppZip:
      base-directory: out/app
      files: ['**/*']
    DocsZip:
      files: [out/docs/*.md]
      discard-paths: yes
"""
    inputs = (
        source(tmp_path, "Docs", {"guide.md": "# guide\n"}),
        source(tmp_path, "Code", {"main.txt": "main\n", "buildspec.yml": buildspec}, "c0ffee"),
    )
    job = context(
        tmp_path,
        inputs=inputs,
        outputs=(output("AppZip"), output("DocsZip")),
        configuration={"PrimarySource": "Code"},
    )
    result = run(tmp_path, job)
    assert result.succeeded, result.message
    app = zipped(tmp_path, "AppZip")
    assert app["main.txt"] == b"main\n"
    assert app["where.txt"] == f"{job.workspace / 'src'}|c0ffee\n".encode()
    assert zipped(tmp_path, "DocsZip") == {"guide.md": b"# guide\n"}


def test_more_than_one_input_needs_a_primary_source(tmp_path: Path) -> None:
    inputs = (source(tmp_path, "A", {"x": "1"}), source(tmp_path, "B", {"y": "2"}))
    result = run(tmp_path, context(tmp_path, inputs=inputs))
    assert result.failure_type == FailureType.CONFIGURATION_ERROR
    assert result.message is not None and "PrimarySource is required" in result.message


def test_output_artifacts_must_match_secondary_artifacts(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands: [touch a]
artifacts:
  files: [a]
  secondary-artifacts:
    One:
      files: [a]
"""
    job = context(tmp_path, buildspec, outputs=(output("One"), output("Two")))
    result = run(tmp_path, job)
    assert result.failure_type == FailureType.CONFIGURATION_ERROR
    assert result.message is not None and "missing: Two" in result.message
    assert "Running command" not in log_of(job)


def test_a_failed_build_still_runs_finally_post_build_and_uploads(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - echo compiling > build.log
      - sh -c 'echo "error, it broke"; exit 2'
      - echo never
    finally:
      - echo finally ran >> build.log
  post_build:
    commands:
      - echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING" >> build.log
artifacts:
  files: [build.log]
"""
    job = context(tmp_path, buildspec, outputs=(output("Out"),))
    result = run(tmp_path, job)
    assert not result.succeeded
    assert result.failure_type == FailureType.JOB_FAILED
    assert (
        result.summary
        == "Build failed in phase BUILD: sh -c 'echo \"error, it broke\"; exit 2' exited with 2"
    )
    assert result.message is not None
    assert result.message.startswith(
        result.summary
        + " (the command at buildspec.yml line 6, phase build)\nLast lines of output:\n"
    )
    assert "error, it broke" in result.message
    assert zipped(tmp_path, "Out") == {"build.log": b"compiling\nfinally ran\nsucceeding=0\n"}
    assert "never" not in log_of(job).replace("Running command echo never", "")


def test_an_install_failure_skips_the_later_phases_and_the_upload(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  install:
    commands:
      - "exit_code_7() { return 7; }"
      - exit_code_7
    finally: [echo cleanup]
  pre_build:
    commands: [echo pre]
  build:
    commands: [echo build]
  post_build:
    commands: [echo post]
artifacts:
  files: ['**/*']
"""
    job = context(tmp_path, buildspec, outputs=(output("Out"),))
    result = run(tmp_path, job)
    assert result.summary == "Build failed in phase INSTALL: exit_code_7 exited with 7"
    log = log_of(job)
    assert "cleanup\n" in log
    for skipped in ("PRE_BUILD", "BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS"):
        assert f"Entering phase {skipped}\n" not in log
    assert not LocalBuckets(tmp_path / "buckets").exists("art", "out/Out.zip")


def test_on_failure_continue_goes_on_but_the_build_fails(tmp_path: Path) -> None:
    """AWS (phases/*/on-failure): "Specifies the action to take if a failure occurs during the
    phase. [...] CONTINUE - Continue to the next phase." The failed phase still fails the
    build."""
    buildspec = """\
version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands: ["false"]
  build:
    commands: [echo built]
"""
    job = context(tmp_path, buildspec)
    result = run(tmp_path, job)
    assert not result.succeeded
    assert result.summary == "Build failed in phase INSTALL: false exited with 1"
    assert "built\n" in log_of(job)


def test_on_failure_abort_skips_post_build(tmp_path: Path) -> None:
    """AWS (phases/*/on-failure): "ABORT - Abort the build." Even after BUILD, which without
    on-failure goes on to POST_BUILD."""
    buildspec = """\
version: 0.2
phases:
  build:
    on-failure: ABORT
    commands: ["false"]
  post_build:
    commands: [echo post]
"""
    job = context(tmp_path, buildspec)
    assert not run(tmp_path, job).succeeded
    assert "Entering phase POST_BUILD" not in log_of(job)
