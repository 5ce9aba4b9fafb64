"""`conveyor run` pauses Python's cycle collector while it starts, and always resumes it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from conveyor.cli.run import _CollectorPaused, execute


@pytest.fixture(autouse=True)
def _collecting() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_paused_until_resumed_once() -> None:
    paused = _CollectorPaused()
    assert not gc.isenabled()
    paused.resume()
    assert gc.isenabled()
    gc.disable()
    paused.resume()  # resumed already: it leaves the collector as it is
    assert not gc.isenabled()


def test_a_collector_paused_before_stays_paused() -> None:
    gc.disable()
    _CollectorPaused().resume()
    assert not gc.isenabled()


def test_a_run_that_cannot_start_resumes_the_collector(tmp_path: Path) -> None:
    file = tmp_path / "pipeline.yaml"
    file.write_text("pipeline: [unclosed\n")
    with pytest.raises(click.ClickException, match="not valid YAML"):
        execute(file, variables=[], sources=[], revisions=[], approve=True, home=None, keep=False)
    assert gc.isenabled()
