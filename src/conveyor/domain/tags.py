"""The rules for resource tags: reserved keys, duplicates, and how many a resource may carry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from conveyor.domain.errors import InvalidTagsException, TooManyTagsException

RESERVED_PREFIX = "aws:"


def check_keys(keys: Iterable[str]) -> None:
    reserved = sorted(k for k in keys if k.lower().startswith(RESERVED_PREFIX))
    if reserved:
        raise InvalidTagsException(
            f"Tag keys starting with '{RESERVED_PREFIX}' are reserved: {', '.join(reserved)}."
        )


def merged_tags(
    resource_arn: str,
    existing: Mapping[str, str],
    new: Sequence[tuple[str, str]],
    limit: int,
) -> dict[str, str]:
    """The tags to add, checked against the reserved prefix, duplicates and ``limit``."""
    check_keys(k for k, _ in new)
    repeated = sorted(k for k, n in Counter(k for k, _ in new).items() if n > 1)
    if repeated:
        raise InvalidTagsException(f"Tag keys are repeated: {', '.join(repeated)}.")
    additions = dict(new)
    total = len(existing.keys() | additions.keys())
    if total > limit:
        raise TooManyTagsException(
            f"Tag limit exceeded for resource [{resource_arn}]: it would have {total} tags, "
            f"and a resource may have at most {limit}."
        )
    return additions
