"""What every provider that runs a shell shares: which bash, what it inherits, names it checks.

The Commands provider and the CodeBuild runner both run one bash per action, with a side
channel on a high file descriptor for what the shell reports back; they agree on these.
"""

from __future__ import annotations

import re
from functools import cache
from shutil import which

# The side channel's fd in bash: high, out of the way of user redirections.
SIDE_FD_MIN = 100
# The worker's environment variables a build may see; the rest (its secrets) stay out.
INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")


@cache
def bash() -> str:
    return which("bash") or "/bin/bash"


def shorten(command: str) -> str:
    """A command as a log line shows it: its first line, at most 200 characters."""
    first = command.strip().split("\n", 1)[0]
    return first if len(first) <= 200 and first == command.strip() else first[:200] + " ..."
