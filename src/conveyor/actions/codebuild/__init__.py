"""CodeBuild, run locally: the provider of ``Build/AWS/CodeBuild/1`` and ``Test/AWS/CodeBuild/1``.

`buildspec` parses and checks a buildspec (`yamlread` reads its YAML, `model` holds it),
`phases` turns its phases into a shell script, `runner` runs one attempt of it, `logs` tells
the shell's errors by the buildspec's lines, `expand` evaluates the variables in its paths,
`environment` sets the variables (secrets included), `sources` places the inputs, `outputs`
zips the artifacts, `reports` counts test results, `cache` keeps paths between builds, and
`codebuild` holds the `CodeBuild` provider itself.
"""

from __future__ import annotations

from conveyor.actions.codebuild.codebuild import CodeBuild

__all__ = ["CodeBuild"]
