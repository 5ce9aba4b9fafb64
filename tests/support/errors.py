"""What a refused call said, as the tests compare it."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    """The AWS error code of the refusal ``excinfo`` caught."""
    value: str = excinfo.value.response["Error"]["Code"]
    return value
