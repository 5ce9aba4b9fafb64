"""CodeBuild, run locally: the provider of ``Build/AWS/CodeBuild/1`` and ``Test/AWS/CodeBuild/1``.

`buildspec` parses and checks a buildspec, `phases` turns its phases into one shell script,
`runner` runs one attempt of it, `environment` sets the variables (secrets included),
`sources` places the inputs, `outputs` zips the artifacts, `reports` counts test results,
`cache` keeps paths between builds, and `codebuild` holds the `CodeBuild` provider itself.
"""

from __future__ import annotations

from conveyor.actions.codebuild.codebuild import CodeBuild

__all__ = ["CodeBuild"]
