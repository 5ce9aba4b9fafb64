"""Worker labels: how they are written and which required labels a worker satisfies."""

from __future__ import annotations

import pytest

from conveyor.domain.labels import MAX_LABELS, LabelError, canonical, parse_labels, satisfiable


def test_parse_labels_trims_and_drops_empty_names() -> None:
    assert parse_labels(" gpu, linux ,,") == frozenset({"gpu", "linux"})
    assert parse_labels("") == frozenset()
    assert parse_labels(None) == frozenset()


@pytest.mark.parametrize("text", ["with space", "a/b", "x" * 33, "é"])
def test_parse_labels_refuses_a_bad_name(text: str) -> None:
    with pytest.raises(LabelError, match="at most 32 letters"):
        parse_labels(text)


def test_parse_labels_refuses_too_many() -> None:
    with pytest.raises(LabelError, match=f"at most {MAX_LABELS} labels"):
        parse_labels(",".join(f"l{i}" for i in range(MAX_LABELS + 1)))


def test_canonical_is_sorted_and_none_for_no_labels() -> None:
    assert canonical(frozenset({"linux", "gpu"})) == "gpu,linux"
    assert canonical(frozenset()) is None


def test_satisfiable_lists_every_subset_a_job_may_require() -> None:
    found = satisfiable(frozenset({"linux", "gpu", "arm"}))
    assert len(found) == 7
    assert {"arm", "gpu", "linux", "arm,gpu", "arm,linux", "gpu,linux", "arm,gpu,linux"} == set(
        found
    )
    assert satisfiable(frozenset()) == ()
    # A job's labels are satisfied exactly when its canonical text is among them.
    assert canonical(frozenset({"linux", "arm"})) in found
    assert canonical(frozenset({"linux", "x86"})) not in found
