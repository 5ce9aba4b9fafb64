"""What a remote worker sent lately, kept so that it never fetches it back: handed out only
while it is exactly what the server says the object is, within a bound."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conveyor.artifacts import ObjectInfo
from conveyor.worker.sent import Sent


def _sent(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _said(content: bytes) -> ObjectInfo:
    return ObjectInfo(len(content), hashlib.md5(content).hexdigest(), None, 0.0)


def test_what_was_sent_is_given_while_the_server_says_it_is_that(tmp_path: Path) -> None:
    sent = Sent(tmp_path / "sent")
    source = _sent(tmp_path / "out.zip", b"PK built")
    sent.keep("artifacts", "p/Build/1.zip", source)
    source.unlink()  # the action's workspace goes: the copy stays
    assert sent.give("artifacts", "p/Build/1.zip", _said(b"PK built"), tmp_path / "in.zip")
    assert (tmp_path / "in.zip").read_bytes() == b"PK built"
    # Stored again since by another (same size, other bytes), or never sent from here.
    assert not sent.give("artifacts", "p/Build/1.zip", _said(b"PK other"), tmp_path / "x.zip")
    assert not sent.give("artifacts", "p/Other/1.zip", _said(b"PK built"), tmp_path / "y.zip")
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "y.zip").exists()


def test_a_copy_changed_since_it_was_kept_is_not_given(tmp_path: Path) -> None:
    sent = Sent(tmp_path / "sent")
    source = _sent(tmp_path / "out.zip", b"PK built")
    sent.keep("artifacts", "k", source)
    source.write_bytes(b"PK later")  # the same file, written again in the workspace
    assert not sent.give("artifacts", "k", _said(b"PK built"), tmp_path / "in.zip")
    assert not (tmp_path / "in.zip").exists()


def test_storing_a_key_again_keeps_only_the_newest(tmp_path: Path) -> None:
    sent = Sent(tmp_path / "sent")
    sent.keep("artifacts", "k", _sent(tmp_path / "one", b"one"))
    sent.keep("artifacts", "k", _sent(tmp_path / "two", b"two"))
    assert len(list((tmp_path / "sent").iterdir())) == 1
    assert not sent.give("artifacts", "k", _said(b"one"), tmp_path / "a")
    assert sent.give("artifacts", "k", _said(b"two"), tmp_path / "b")


def test_large_objects_are_not_kept_and_the_oldest_go_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("conveyor.worker.sent.MAX_BYTES", 4)
    monkeypatch.setattr("conveyor.worker.sent.KEPT_BYTES", 8)
    sent = Sent(tmp_path / "sent")
    sent.keep("b", "large", _sent(tmp_path / "large", b"12345"))
    for name in ("one", "two", "six"):
        sent.keep("b", name, _sent(tmp_path / name, name.encode() + b"!"))
    assert len(list((tmp_path / "sent").iterdir())) == 2
    assert not sent.give("b", "large", _said(b"12345"), tmp_path / "l")
    assert not sent.give("b", "one", _said(b"one!"), tmp_path / "1")
    assert sent.give("b", "two", _said(b"two!"), tmp_path / "2")
    assert sent.give("b", "six", _said(b"six!"), tmp_path / "6")


def test_a_copy_that_cannot_be_kept_is_fetched_later(tmp_path: Path) -> None:
    (tmp_path / "sent").write_text("a file where the folder would go")
    sent = Sent(tmp_path / "sent")
    sent.keep("b", "k", _sent(tmp_path / "out", b"data"))
    assert not sent.give("b", "k", _said(b"data"), tmp_path / "in")
