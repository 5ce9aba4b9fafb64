"""Buildspecs run as CodeBuild runs them: each rule of CodeBuild's buildspec reference (or, where
it is silent, of what CodeBuild does) is one test, with the AWS behaviour in its docstring."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from conveyor.actions.base import FailureType, OutputArtifact
from conveyor.actions.codebuild.buildspec import BuildspecError, is_inline, parse
from conveyor.actions.codebuild.runner import run_attempt
from tests.unit.test_codebuild import context, log_of, output, run, source, zipped


def test_version_0_1_runs_each_command_in_its_own_shell(tmp_path: Path) -> None:
    """AWS: "In buildspec version 0.1, CodeBuild runs each command in a separate instance of
    the default shell in the build environment. This means that each command runs in
    isolation from all other commands. Therefore, by default, you cannot run a single command
    that relies on the state of any previous commands (for example, changing directories or
    setting environment variables)." 0.1 named ``env`` ``environment_variables`` and its
    ``variables`` ``plaintext``."""
    buildspec = """\
version: 0.1
environment_variables:
  plaintext:
    GREETING: hello
phases:
  build:
    commands:
      - mkdir -p sub && cd sub && export INNER=set && touch in-sub
      - echo "greeting=$GREETING inner=${INNER:-unset} dir=$(basename "$PWD")" > state.txt
      - exit 0
      - echo still running >> state.txt
"""
    job = context(tmp_path, buildspec)
    result = run(tmp_path, job)
    assert result.succeeded, result.message
    src = job.workspace / "src"
    assert (src / "sub" / "in-sub").exists()
    assert (src / "state.txt").read_text() == "greeting=hello inner=unset dir=src\nstill running\n"


def test_version_0_2_runs_every_command_in_one_shell(tmp_path: Path) -> None:
    """AWS (buildspec versions): "In version 0.2, AWS CodeBuild runs all build commands in
    the same instance of the default shell in the build environment." """
    buildspec = """\
version: 0.2
phases:
  install:
    commands:
      - mkdir -p sub && cd sub
      - PLAIN=kept
  build:
    commands:
      - echo "plain=$PLAIN dir=$(basename "$PWD")" > state.txt
"""
    job = context(tmp_path, buildspec)
    assert run(tmp_path, job).succeeded
    assert (job.workspace / "src" / "sub" / "state.txt").read_text() == "plain=kept dir=sub\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("version: 0.3\nphases: [not, a, mapping]\n", "line 1: version 0.3 is not supported"),
        ("phases: {build: {finally: [x]}}\nartifacts: {}\n", "version is missing"),
        ("version: '1.0'\nphases: {}\nenv: {shell: pwsh}\n", "version 1.0 is not supported"),
    ],
)
def test_the_version_is_checked_first(text: str, problem: str) -> None:
    """AWS: "version: Required mapping. Represents the buildspec version. We recommend that you
    use 0.2." Which version a buildspec has decides how the rest reads, so a wrong one is the
    error reported, whatever else is wrong."""
    with pytest.raises(BuildspecError) as raised:
        parse(text)
    assert problem in str(raised.value)


def test_unknown_and_deprecated_keys_warn_and_the_build_runs(tmp_path: Path) -> None:
    """CodeBuild logs keys it does not know without failing the build, as in this CodeBuild
    log: "Found possible syntax errors in buildspec: In the section artifacts The following
    keys cannot be identified: type" (``artifacts.type`` is deprecated in 0.2; 0.2 renamed
    ``environment_variables`` to ``env``), and "In the section BUILD The following keys cannot
    be identified: env"."""
    buildspec = """\
version: 0.2
environment_variables:
  plaintext: {OLD: style}
phases:
  build:
    env: {variables: {A: b}}
    commands: [echo built > out.txt]
  postbuild:
    commands: [echo never]
artifacts:
  type: zip
  files: [out.txt]
"""
    job = context(tmp_path, buildspec, outputs=(output("Out"),))
    result = run(tmp_path, job)
    assert result.succeeded, result.message
    assert zipped(tmp_path, "Out") == {"out.txt": b"built\n"}
    log = log_of(job)
    assert (
        "Found possible syntax errors in buildspec: \n"
        "In the section root\n"
        "    The following keys cannot be identified:\n"
        "        environment_variables\n"
        "In the section phases\n"
        "    The following keys cannot be identified:\n"
        "        postbuild\n"
        "In the section BUILD\n"
        "    The following keys cannot be identified:\n"
        "        env\n"
        "In the section artifacts\n"
        "    The following keys cannot be identified:\n"
        "        type\n"
    ) in log
    assert "never" not in log


EXITS = """\
version: 0.2
env:
  exported-variables: [STEP]
phases:
  build:
    commands:
      - mkdir -p out && cd out
      - export STEP=before-exit; LOCAL=kept; exit 3
      - echo skipped > skipped.txt
    finally:
      - echo "finally step=$STEP local=$LOCAL dir=$(basename "$PWD")" > ../finally.txt
  post_build:
    commands:
      - echo "post succeeding=$CODEBUILD_BUILD_SUCCEEDING dir=$(basename "$PWD")" > ../post.txt
artifacts:
  files: ['*.txt']
"""


def test_exit_fails_the_command_and_phase_and_the_build_goes_on(tmp_path: Path) -> None:
    """AWS: "The commands in a finally block are executed even if a command in the commands
    block fails. For example, if the commands block contains three commands and the first
    fails, CodeBuild skips the remaining two commands and runs any commands in the finally
    block. [...] If any command in a phase fails, the phase fails." and "The UPLOAD_ARTIFACTS
    phase is always attempted, even if the BUILD phase fails." A command that runs ``exit 3``
    is such a failing command: its shell's variables and working directory carry on into the
    ``finally`` block and POST_BUILD, which sees ``CODEBUILD_BUILD_SUCCEEDING=0``."""
    job = context(tmp_path, EXITS, outputs=(output("Out"),))
    result = run(tmp_path, job)
    assert not result.succeeded
    assert result.failure_type == FailureType.JOB_FAILED
    assert result.summary == (
        "Build failed in phase BUILD: export STEP=before-exit; LOCAL=kept; exit 3 exited with 3"
    )
    assert zipped(tmp_path, "Out") == {
        "finally.txt": b"finally step=before-exit local=kept dir=out\n",
        "post.txt": b"post succeeding=0 dir=out\n",
    }
    assert not (job.workspace / "src" / "out" / "skipped.txt").exists()
    log = log_of(job)
    assert "Command did not exit successfully export STEP=before-exit; LOCAL=kept; exit 3" in log
    assert "Phase complete: BUILD State: FAILED" in log
    assert "Phase complete: POST_BUILD State: SUCCEEDED" in log


@pytest.mark.parametrize("shell", ["bash", "/bin/sh"])
def test_exit_0_and_set_e_end_only_their_command(tmp_path: Path, shell: str) -> None:
    """AWS: "CodeBuild runs each command, one at a time, in the order listed, from beginning
    to end", each judged by its own exit status: ``exit 0`` is a command that succeeded, and a
    failure under ``set -e`` is a command that failed; neither ends the build's shell state."""
    buildspec = f"""\
version: 0.2
env:
  shell: {shell}
  exported-variables: [KEPT]
phases:
  install:
    commands:
      - cd sub; export KEPT=yes; exit 0
      - echo "install goes on in $(basename "$PWD")" > install.txt
  build:
    commands:
      - set -e; false; echo never
    finally:
      - echo "finally in $(basename "$PWD") kept=$KEPT" > finally.txt
"""
    job = context(tmp_path, buildspec, files={"sub/keep": ""})
    result = run(tmp_path, job)
    assert result.summary == "Build failed in phase BUILD: set -e; false; echo never exited with 1"
    sub = job.workspace / "src" / "sub"
    assert (sub / "install.txt").read_text() == "install goes on in sub\n"
    assert (sub / "finally.txt").read_text() == "finally in sub kept=yes\n"


def test_variables_expand_in_artifact_report_and_cache_paths(tmp_path: Path) -> None:
    """AWS (artifacts/name): "You can specify a name in the buildspec file that is calculated
    at build time. The name specified in a buildspec file uses the Shell command language",
    e.g. ``name: myname-$AWS_REGION``; CodeBuild evaluates ``artifacts.files``,
    ``base-directory``, ``reports.*.files`` and ``cache.paths`` the same way, with the values
    the build gave its variables."""
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - export DIST=dist-$CODEBUILD_BUILD_NUMBER KIND=txt
      - mkdir -p "$DIST/docs" deps && echo doc > "$DIST/docs/a.txt"
      - echo skip > "$DIST/docs/b.log" && echo dep > deps/d.txt
      - mkdir -p results/unit && echo '<testsuite><testcase name="t"/></testsuite>' > results/unit/a.xml
      - REPORTS=results SUITE=unit
artifacts:
  base-directory: $DIST
  files: ['**/*.${KIND}']
reports:
  unit:
    base-directory: $REPORTS
    files: ['$SUITE/*.xml']
cache:
  paths: ['${CACHED:-deps}/**/*']
"""
    job = context(tmp_path, buildspec, outputs=(output("Out"),))
    result = run(tmp_path, job, cache=tmp_path / "cache")
    assert result.succeeded, result.message
    assert zipped(tmp_path, "Out") == {"docs/a.txt": b"doc\n"}
    assert result.summary == "1 test: 1 passed, 0 failed (report group unit)"
    assert (tmp_path / "cache" / "app" / "default" / "deps" / "d.txt").read_text() == "dep\n"


def test_an_artifact_name_is_evaluated_at_build_time(tmp_path: Path) -> None:
    """AWS: "This is an example of an artifact name that uses a CodeBuild environment variable
    with the artifact's creation date appended to it": ``name: $AWS_REGION-$(date +%Y-%m-%d)``.
    Globs are not expanded against the files, and words are not split."""
    spec = parse(
        "version: 0.2\n"
        "phases:\n  build:\n    commands: ['export TAG=\"v 1\"']\n"
        "artifacts:\n  files: ['*']\n  name: $AWS_REGION-$(printf %s 2026)-$TAG-*\n"
    )
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    attempt = run_attempt(
        spec,
        attempt=0,
        cwd=tmp_path,
        scratch=scratch,
        env={"PATH": "/usr/bin:/bin", "AWS_REGION": "eu-west-1"},
        log=io.StringIO(),
        cancelled=threading.Event(),
        deadline=None,
        started=None,
        exported=(),
    )
    out = OutputArtifact("Out", "art", "out.zip")
    expanded, plan = attempt.expanded(spec, [(out, spec.artifacts)])  # type: ignore[list-item]
    assert expanded.artifacts is not None
    assert expanded.artifacts.name == "eu-west-1-2026-v 1-*"
    assert plan == [(out, expanded.artifacts)]
    assert spec.artifacts is not None and spec.artifacts.name != expanded.artifacts.name


def test_a_scalar_commands_string_is_one_command(tmp_path: Path) -> None:
    """CodeBuild takes ``commands: <string>`` (and ``finally: <string>``) as a list of one
    command, as it runs a buildspec written ``commands: echo hi``."""
    buildspec = """\
version: 0.2
phases:
  build:
    commands: echo one > one.txt; echo two >> one.txt
    finally: echo finally > finally.txt
"""
    job = context(tmp_path, buildspec)
    assert run(tmp_path, job).succeeded
    src = job.workspace / "src"
    assert (src / "one.txt").read_text() == "one\ntwo\n"
    assert (src / "finally.txt").read_text() == "finally\n"
    assert log_of(job).count("Running command ") == 2


def test_codebuild_variables_may_be_exported_but_not_set(tmp_path: Path) -> None:
    """AWS (env/exported-variables): "The variable you want to export must be available in your
    container during the build. The variable you export can be an environment variable. [...]
    The following cannot be exported: [...] Environment variables that start with AWS_." and
    (env/variables): "Do not set any environment variable with a name that starts with
    CODEBUILD_. This prefix is reserved for internal use." """
    buildspec = """\
version: 0.2
env:
  exported-variables: [CODEBUILD_BUILD_NUMBER, CODEBUILD_BUILD_SUCCEEDING]
phases:
  build:
    commands: ["true"]
"""
    result = run(tmp_path, context(tmp_path, buildspec))
    assert result.succeeded, result.message
    assert result.output_variables == {
        "CODEBUILD_BUILD_NUMBER": "1",
        "CODEBUILD_BUILD_SUCCEEDING": "1",
    }
    with pytest.raises(BuildspecError, match="CODEBUILD_MINE starts with CODEBUILD_"):
        parse("version: 0.2\nenv:\n  variables: {CODEBUILD_MINE: x}\nphases: {}\n")


def test_run_as_git_credential_helper_and_proxy_are_accepted_as_documented(
    tmp_path: Path,
) -> None:
    """AWS: "run-as: Optional sequence. Available to Linux users only. Specifies a Linux user
    that runs commands in this buildspec file"; "git-credential-helper: [...] yes if it is
    used. Otherwise, no or not specified"; "proxy/upload-artifacts: Optional mapping. Set to
    yes if you want your build in an explicit proxy server to upload artifacts. The default is
    no." The build runs, saying what each setting does here."""
    buildspec = """\
version: 0.2
run-as: builder
env:
  git-credential-helper: yes
proxy:
  upload-artifacts: no
  logs: yes
phases:
  build:
    run-as: tester
    commands: [echo ran]
"""
    job = context(tmp_path, buildspec)
    assert run(tmp_path, job).succeeded
    log = log_of(job)
    assert "Buildspec key run-as (builder) is accepted; commands run as the user" in log
    assert "Buildspec key phases.build.run-as (tester) is accepted" in log
    assert "env.git-credential-helper is accepted; git in the build uses this host's" in log
    assert "Buildspec key proxy is accepted but has no effect on this runner" in log
    assert "ran\n" in log
    for bad, problem in [
        ("proxy:\n  logs: maybe\n", "proxy.logs must be yes or no"),
        ("env:\n  git-credential-helper: sometimes\n", "env.git-credential-helper must be yes"),
        ("run-as: 'two words'\n", "run-as: 'two words' is not a Linux user name"),
    ]:
        with pytest.raises(BuildspecError, match=problem):
            parse(f"version: 0.2\n{bad}phases: {{}}\n")


def test_a_missing_tool_is_named_with_its_buildspec_line_and_phase(tmp_path: Path) -> None:
    """CodeBuild names the failing command in the phase context ("Error while executing
    command: ... Reason: exit status 127"); the shell's own message names the buildspec's line
    and phase here, never the generated script (``build-1.sh: line 52``)."""
    buildspec = """\
version: 0.2
phases:
  install:
    commands:
      - echo installing
      - yum install -y jq
  build:
    commands:
      - |
        echo compiling
        cd no-such-folder
"""
    job = context(tmp_path, buildspec)
    result = run(tmp_path, job)
    log = log_of(job)
    assert "command not found: yum (buildspec.yml line 6, phase install)\n" in log
    assert "build-1.sh" not in log
    assert result.summary == "Build failed in phase INSTALL: yum install -y jq exited with 127"
    assert result.message is not None
    assert "(the command at buildspec.yml line 6, phase install)" in result.message
    assert "command not found: yum (buildspec.yml line 6, phase install)" in result.message

    job = context(tmp_path, buildspec.replace("yum install -y jq", "true"), workspace="second")
    run(tmp_path, job)
    assert (
        "buildspec.yml line 11, phase build: cd: no-such-folder: No such file or directory"
    ) in log_of(job)


def test_the_summary_names_the_first_failing_command(tmp_path: Path) -> None:
    """CodeBuild's phase context names the command that failed its phase ("Error while
    executing command: <command>"); when BUILD fails and POST_BUILD fails after it, the
    action's summary names BUILD's command, not what POST_BUILD printed."""
    buildspec = """\
version: 0.2
phases:
  build:
    commands: [sh compile.sh]
  post_build:
    commands: [echo cleanup failed; exit 9]
"""
    job = context(tmp_path, buildspec, files={"compile.sh": "echo compile error; exit 2\n"})
    result = run(tmp_path, job)
    assert result.summary == "Build failed in phase BUILD: sh compile.sh exited with 2"
    assert "Command did not exit successfully echo cleanup failed; exit 9" in log_of(job)


def test_an_inline_buildspec_is_told_apart_from_a_path(tmp_path: Path) -> None:
    """AWS: buildspecOverride is "a path to an alternate buildspec file relative to the value
    of the built-in CODEBUILD_SRC_DIR environment variable" or "the buildspec file
    declaration", and the buildspec may be in an S3 bucket ("arn:aws:s3:::my-codebuild-sample2
    /buildspec.yml"). A declaration in YAML (several lines, or one that opens a mapping, as
    ``{"version": "0.2", ...}`` from a CDK-made project) is never read as a path, so a broken
    one is reported as broken YAML, with its line and column."""
    assert is_inline("version: 0.2\nphases:\n  build:\n    commands: [x]\n")
    assert is_inline('{"version": "0.2", "phases": {"build": {"commands": ["x"]}}}')
    assert is_inline("version: 0.2")
    assert not is_inline("ci/buildspec-test.yml")
    assert not is_inline("arn:aws:s3:::my-codebuild-sample2/buildspec.yml")
    assert not is_inline("config/version:2.yml")

    broken = "version: 0.2\nphases:\n  build:\n    commands: [echo a, echo b\n"
    job = context(tmp_path, "version: 0.2\nphases: {}\n", configuration={"BuildSpec": broken})
    result = run(tmp_path, job)
    assert result.failure_type == FailureType.CONFIGURATION_ERROR
    assert result.message == (
        "Invalid buildspec (BuildSpec (inline)): not valid YAML: line 5, column 1: did not find "
        "expected ',' or ']' (while parsing a flow sequence at line 4, column 15)"
    )


def test_a_path_buildspec_with_a_colon_is_still_a_path(tmp_path: Path) -> None:
    """A one-line value that is not a YAML declaration is a path in the primary source."""
    inputs = (
        source(
            tmp_path,
            "Src",
            {"ci/build:main.yml": "version: 0.2\nphases:\n  build:\n    commands: [echo colon]\n"},
        ),
    )
    job = context(tmp_path, inputs=inputs, configuration={"BuildSpec": "ci/build:main.yml"})
    assert run(tmp_path, job).succeeded
    assert "colon\n" in log_of(job)


def test_after_an_exit_the_shell_keeps_what_the_command_defined(tmp_path: Path) -> None:
    """AWS: in 0.2 "CodeBuild runs all build commands in the same instance of the default
    shell"; so after a command's ``exit`` the next ones still see what it defined before
    exiting: plain and array variables, functions, shell options, even an unusual IFS."""
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - "greet() { echo \\"hello $1\\"; }; LIST=(a 'b c'); set -o pipefail; IFS=:; exit 5"
    finally:
      - echo "$(greet you) ${LIST[1]} $(set -o | grep -c 'pipefail.*on') [$IFS]" > kept.txt
"""
    job = context(tmp_path, buildspec)
    assert not run(tmp_path, job).succeeded
    assert (job.workspace / "src" / "kept.txt").read_text() == "hello you b c 1 [:]\n"


def test_the_state_a_shell_leaves_after_an_exit_is_not_kept_on_disk(tmp_path: Path) -> None:
    """AWS: strings from Parameter Store and Secrets Manager are hidden in CodeBuild's logs;
    the state saved to carry a shell past a command's ``exit`` holds them, so it is emptied
    once read and removed with the attempt."""
    (tmp_path / "secrets.yml").write_text("parameters:\n  /app/pw: hunter2-value\n")
    buildspec = """\
version: 0.2
env:
  parameter-store: {PW: /app/pw}
phases:
  build:
    commands:
      - COPY=$PW; exit 1
    finally:
      - test "$COPY" = "$PW" && echo same
"""
    job = context(tmp_path, buildspec)
    assert not run(tmp_path, job, secrets=tmp_path / "secrets.yml").succeeded
    assert "same\n" in log_of(job)
    scratch = job.workspace / ".conveyor"
    assert not list(scratch.glob("*.state"))
    for path in job.workspace.rglob("*"):
        assert not path.is_file() or b"hunter2-value" not in path.read_bytes(), path


def test_with_bin_sh_a_missing_tool_is_named_with_its_buildspec_line_too(tmp_path: Path) -> None:
    """AWS (env/shell): "For Linux operating systems, supported shell tags are: bash, /bin/sh".
    /bin/sh numbers its errors within the command, so the runner follows which command runs."""
    buildspec = """\
version: 0.2
env:
  shell: /bin/sh
phases:
  build:
    commands:
      - echo first
      - |
        echo second
        yum install -y jq
"""
    job = context(tmp_path, buildspec)
    result = run(tmp_path, job)
    assert result.summary == "Build failed in phase BUILD: echo second ... exited with 127"
    log = log_of(job)
    assert "command not found: yum (buildspec.yml line 10, phase build)\n" in log
    assert "build-1.sh" not in log
