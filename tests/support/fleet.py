"""Homes for several servers on one database: their buckets one shared folder, as a fleet
with local buckets needs (`conveyor.engine.sharing`)."""

from __future__ import annotations

from pathlib import Path


def shared_buckets(shared: Path, *homes: Path) -> None:
    """Make each home's ``buckets`` a symbolic link to the folder ``shared``."""
    shared.mkdir(parents=True, exist_ok=True)
    for home in homes:
        home.mkdir(parents=True, exist_ok=True)
        (home / "buckets").symlink_to(shared, target_is_directory=True)
