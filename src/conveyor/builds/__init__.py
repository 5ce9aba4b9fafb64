"""CodeBuild builds run in the server: StartBuild's builds, on a bounded pool of threads.

`sources` fetches a project's source (a folder or git URL, a CodeCommit repository of the
installation, a connection's repository, an S3 object, or none), `run` runs one build with the
CodeBuild provider pipelines use, and `pool` runs builds a few at a time and stops them.
"""

from __future__ import annotations

from conveyor.builds.pool import BuildPool

__all__ = ["BuildPool"]
