"""The ``Rule/AWS/CodeBuild/1`` rule: a CodeBuild build whose success is the rule's.

The build runs as the CodeBuild action runs it (`conveyor.actions.codebuild`): the project
``ProjectName`` names, its buildspec over the rule's input artifacts. A rule keeps no output
artifacts nor exported variables: it passes when the build succeeds.
"""

from __future__ import annotations

from dataclasses import replace

from conveyor.actions.base import JobContext, JobResult, ProviderConfig
from conveyor.actions.codebuild import CodeBuild
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["CodeBuildRule"]


class CodeBuildRule:
    def __init__(self, config: ProviderConfig, unpacked: Unpacked) -> None:
        self._build = CodeBuild(config, unpacked)

    def run(self, context: JobContext) -> JobResult:
        result = self._build.run(replace(context, output_artifacts=(), output_variables=()))
        if result.succeeded:
            return replace(result, output_variables={})
        return replace(result, summary=(result.message or "").split("\n", 1)[0])
