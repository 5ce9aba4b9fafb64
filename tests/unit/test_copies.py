"""Whether a process still works in a copy handed back: only processes made since the copy
was lent are looked at, unless process ids may have gone all the way round meanwhile."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from conveyor.artifacts.copies import Processes, in_use, made_since, processes


@contextmanager
def _working_in(folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session whose working directory is ``folder``."""
    lingering = subprocess.Popen(["sleep", "60"], cwd=folder, start_new_session=True)
    try:
        yield lingering
    finally:
        lingering.kill()
        lingering.wait()


def test_ids_made_since_are_those_after_the_newest_then_up_to_the_newest_now() -> None:
    then, now = Processes(100, 5000, 32768), Processes(140, 5040, 32768)
    assert made_since(120, then, now)
    assert made_since(140, then, now)
    assert not made_since(100, then, now)
    assert not made_since(141, then, now)
    assert not made_since(7, then, now)


def test_ids_that_went_past_the_largest_start_again_from_the_smallest() -> None:
    then, now = Processes(32700, 5000, 32768), Processes(350, 5400, 32768)
    assert made_since(32760, then, now)
    assert made_since(300, then, now)
    assert not made_since(32700, then, now)
    assert not made_since(351, then, now)
    assert not made_since(20000, then, now)


def test_once_ids_may_have_gone_all_the_way_round_any_process_may_be_new() -> None:
    then, now = Processes(100, 5000, 32768), Processes(140, 5000 + 32768, 32768)
    assert made_since(20000, then, now)
    assert made_since(100, then, now)


def test_now_tells_where_process_creation_stands() -> None:
    before = processes()
    assert before is not None
    subprocess.run(["true"], check=True)
    after = processes()
    assert after is not None
    assert after.created > before.created
    assert 0 < after.newest <= after.pid_max


def test_a_process_made_after_the_copy_was_lent_is_seen(tmp_path: Path) -> None:
    lent_at = processes()
    assert lent_at is not None
    with _working_in(tmp_path):
        assert in_use(str(tmp_path), lent_at)  # each id made since tried, typically
        assert in_use(str(tmp_path))
        # Many ids handed out since: the processes are listed, those made since looked at.
        many = replace(lent_at, newest=max(1, lent_at.newest - 1000))
        assert in_use(str(tmp_path), many)


def test_a_process_older_than_the_lend_is_not_looked_at(tmp_path: Path) -> None:
    with _working_in(tmp_path):
        lent_at = processes()
        assert lent_at is not None
        assert in_use(str(tmp_path))  # every process looked at
        assert not in_use(str(tmp_path), lent_at)
        # Ids may have gone round since: every process is looked at again.
        long_ago = replace(lent_at, created=lent_at.created - lent_at.pid_max)
        assert in_use(str(tmp_path), long_ago)


def test_no_process_in_the_folder_is_no_use(tmp_path: Path) -> None:
    lent_at = processes()
    with _working_in(tmp_path.parent):
        assert not in_use(str(tmp_path), lent_at)
        assert not in_use(str(tmp_path))
