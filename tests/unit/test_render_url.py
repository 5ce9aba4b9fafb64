"""URL templates of action types rendered with an action's values."""

from __future__ import annotations

from conveyor.domain.actiontype import render_url


def test_placeholders_are_replaced_and_encoded() -> None:
    assert (
        render_url(
            "https://ci/{Config:Job}/{ExternalExecutionId}?r={RevisionId}",
            {"Job": "a b/c"},
            external_id="7",
            revision_id="abc",
        )
        == "https://ci/a%20b%2Fc/7?r=abc"
    )


def test_a_missing_value_or_template_gives_no_url() -> None:
    assert render_url("https://ci/{Config:Job}", {}) is None
    assert render_url("https://ci/{ExternalExecutionId}", {"Job": "x"}) is None
    assert render_url(None, {"Job": "x"}) is None
    assert render_url("https://ci/static", {}) == "https://ci/static"
