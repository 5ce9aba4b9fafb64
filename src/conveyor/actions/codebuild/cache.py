"""The local build cache: ``cache.paths`` kept between builds of one project on this host.

A project's cache lives in ``<cache>/<ProjectName>/<slot>``, the slot being the evaluated
``cache.key`` (``default`` without one). Before INSTALL the slot (or, failing an exact key, the
newest slot starting with a ``fallback-keys`` prefix) is copied into the source folder without
replacing files the source already has; after the build the paths are saved into a new slot
by hard links, which then replaces the old one in one rename. Absolute and ``~`` paths are left
where they are: on a self-hosted runner they persist anyway. Cache trouble is logged, never
fails a build.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from conveyor.actions.codebuild.buildspec import CacheSpec
from conveyor.actions.codebuild.files import select, stage

__all__ = ["HASH_FILES", "restore", "save", "slot_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_DEFAULT = "default"

# The ``codebuild-hash-files`` helper: one SHA-256 over the files the globs match.
HASH_FILES = """#!/usr/bin/env bash
shopt -s globstar nullglob dotglob
files=()
for pattern in "$@"; do
  for file in $pattern; do [ -f "$file" ] && files+=("$file"); done
done
if [ "${#files[@]}" -eq 0 ]; then printf '' | sha256sum | cut -d' ' -f1; exit; fi
printf '%s\\0' "${files[@]}" | sort -zu | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
"""


def slot_name(key: str | None) -> str:
    if not key or not key.strip():
        return _DEFAULT
    return _UNSAFE.sub("_", key.strip())[:200] or _DEFAULT


def _relative(paths: tuple[str, ...]) -> tuple[list[str], list[str]]:
    local: list[str] = []
    elsewhere: list[str] = []
    for path in paths:
        (elsewhere if path.startswith(("/", "~", "$")) else local).append(path)
    return local, elsewhere


def _find(project: Path, key: str | None, fallbacks: tuple[str, ...]) -> Path | None:
    exact = project / slot_name(key)
    if exact.is_dir():
        return exact
    if not key:
        return None
    for prefix in (slot_name(f) for f in fallbacks if f.strip()):
        try:
            slots = [p for p in project.iterdir() if p.is_dir() and p.name.startswith(prefix)]
        except OSError:
            return None
        slots = [p for p in slots if not p.name.startswith(".")]
        if slots:
            return max(slots, key=lambda p: p.stat().st_mtime)
    return None


def restore(
    root: Path,
    project: str,
    spec: CacheSpec,
    key: str | None,
    source: Path,
    note: Callable[[str], None],
) -> None:
    if not spec.restore:
        return
    try:
        slot = _find(root / project, key, spec.fallback_keys)
        if slot is None:
            note(f"Cache: nothing saved yet for project {project} (key {slot_name(key)})")
            return
        entries = select(slot, ["**/*"], keep_links=True)
        count = stage(entries, source, hardlink=False)
        note(f"Cache: restored {count} entries from {slot.name}")
    except OSError as error:
        note(f"Cache: could not restore: {error}")


def save(
    root: Path,
    project: str,
    spec: CacheSpec,
    key: str | None,
    source: Path,
    note: Callable[[str], None],
) -> None:
    if not spec.save:
        return
    local, elsewhere = _relative(spec.paths)
    if elsewhere:
        note(f"Cache: {', '.join(elsewhere)} stay where they are on this host (not copied)")
    if not local:
        return
    folder = root / project
    slot = folder / slot_name(key)
    partial = folder / f".partial-{secrets.token_hex(6)}"
    try:
        entries = select(source, local, within=source.parent)
        if not entries:
            note(f"Cache: nothing matches {', '.join(local)}; nothing saved")
            return
        partial.mkdir(parents=True)
        count = stage(entries, partial)
        old = folder / f".old-{secrets.token_hex(6)}"
        if slot.exists():
            os.rename(slot, old)
        os.rename(partial, slot)
        shutil.rmtree(old, ignore_errors=True)
        note(f"Cache: saved {count} entries as {slot.name}")
    except OSError as error:
        note(f"Cache: could not save: {error}")
    finally:
        shutil.rmtree(partial, ignore_errors=True)
