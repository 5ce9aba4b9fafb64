"""The console's pure parts: ANSI colours, durations and ages, timelines, diffs, CSRF tokens,
which stages can be rolled back and to what."""

from __future__ import annotations

from dataclasses import replace

from conveyor.console.ansi import Ansi, to_html
from conveyor.console.csrf import Tokens
from conveyor.console.models import can_roll_back, rollback_targets
from conveyor.console.present import (
    age,
    diff,
    duration,
    link,
    run_order_groups,
    timeline,
    tone,
)
from conveyor.domain.status import conditions_status
from conveyor.engine.views import StateView
from conveyor.store import PipelineRecord
from tests.store.records import execution


def test_ansi_colours_become_classes_and_text_is_escaped() -> None:
    assert to_html("\x1b[1;31mfail\x1b[0m <ok> & done") == (
        '<span class="b fg1">fail</span> &lt;ok&gt; &amp; done'
    )
    assert to_html("\x1b[92mbright\x1b[39m plain") == '<span class="fg10">bright</span> plain'
    assert to_html("\x1b[2Kcleared\x1b]0;title\x07\x07") == "cleared"  # other controls dropped


def test_ansi_style_carries_over_chunks() -> None:
    ansi = Ansi()
    assert ansi.convert("\x1b[32mgreen ") == '<span class="fg2">green </span>'
    assert ansi.convert("still\x1b[0m no") == '<span class="fg2">still</span> no'


def test_durations_and_ages() -> None:
    assert duration(None) == ""
    assert duration(0.25) == "250 ms"
    assert duration(12.44) == "12.4 s"
    assert duration(185) == "3 min 05 s"
    assert duration(7260) == "2 h 01 min"
    assert age(100.0, 105.0) == "just now"
    assert age(100.0, 145.0) == "45 s ago"
    assert age(0.0, 3 * 86400 + 5) == "3 d ago"


def test_tones_of_statuses() -> None:
    assert [tone(s) for s in ("Succeeded", "InProgress", "Failed", "Stopped", None)] == [
        "ok",
        "run",
        "bad",
        "off",
        "none",
    ]


def test_timeline_is_drawn_to_scale() -> None:
    bars = timeline(
        [
            ("S", "a", 1, "Succeeded", 100.0, 101.0, "1"),
            ("S", "b", 1, "Failed", 101.0, 110.0, "2"),
            ("S", "b", 2, "Succeeded", 150.0, 150.0, "3"),
        ],
        100.0,
        200.0,
    )
    assert [(b.left, b.width) for b in bars] == [(0.0, 1.0), (1.0, 9.0), (50.0, 0.5)]
    assert bars[2].attempt == 2


def test_diff_marks_added_and_removed_lines() -> None:
    lines = diff("a\nb\n", "a\nc\n", "version 1", "version 2")
    kinds = [(line.kind, line.text) for line in lines]
    assert ("del", "-b") in kinds and ("add", "+c") in kinds
    assert diff("same\n", "same\n", "x", "y") == []


def test_run_order_groups() -> None:
    actions = [{"name": "b", "runOrder": 2}, {"name": "a"}, {"name": "c", "runOrder": 2}]
    assert run_order_groups(actions) == [(1, ["a"]), (2, ["b", "c"])]


def test_csrf_tokens_are_signed_by_the_key() -> None:
    tokens = Tokens(b"k" * 32)
    token = tokens.issue()
    assert tokens.valid(token) and tokens.accepts(token, token)
    assert not tokens.accepts(token, tokens.issue())  # another browser's token
    assert not tokens.accepts(token, None)
    assert not Tokens(b"x" * 32).valid(token)  # another installation's
    assert not tokens.valid("nonce.forged") and not tokens.valid(None)


def test_only_web_links_are_made_clickable() -> None:
    assert link("https://example.com/r") == "https://example.com/r"
    assert link("HTTP://example.com") == "HTTP://example.com"
    assert link("javascript:alert(1)") is None
    assert link(" JavaScript:alert(1)") is None
    assert link("data:text/html,x") is None
    assert link("/relative") is None and link(None) is None


def test_conditions_status_is_what_get_pipeline_state_reports() -> None:
    assert conditions_status([]) is None
    assert conditions_status([None, None]) is None
    assert conditions_status(["Succeeded", "Succeeded"]) == "Succeeded"
    assert conditions_status(["Succeeded", None]) == "InProgress"
    assert conditions_status(["Succeeded", "InProgress"]) == "InProgress"
    assert conditions_status(["Succeeded", "Failed", "InProgress"]) == "InProgress"
    assert conditions_status(["Succeeded", "Failed"]) == "Failed"
    assert conditions_status(["Overridden", None]) == "Overridden"
    assert tone("Overridden") == "off" and tone("Errored") == "bad"


def test_rollback_targets_are_standard_executions_of_the_current_version() -> None:
    current = replace(execution(1, 3, "Succeeded"), version=2)
    older = execution(1, 2, "Succeeded")  # version 1: PipelineExecutionOutdatedException
    rollback = replace(current, id="r", execution_type="ROLLBACK")
    assert rollback_targets([rollback, current, older], 2) == [current]
    assert rollback_targets([], 2) == []


def test_only_a_later_stage_of_a_v2_pipeline_not_in_parallel_mode_can_be_rolled_back() -> None:
    def state(pipeline_type: str, mode: str) -> StateView:
        return StateView(PipelineRecord(1, "app", 1, pipeline_type, mode, 1.0, 1.0), [])

    assert can_roll_back(state("V2", "SUPERSEDED"), 1)
    assert can_roll_back(state("V2", "QUEUED"), 2)
    assert not can_roll_back(state("V2", "SUPERSEDED"), 0)  # the source stage
    assert not can_roll_back(state("V2", "PARALLEL"), 1)
    assert not can_roll_back(state("V1", "SUPERSEDED"), 1)
