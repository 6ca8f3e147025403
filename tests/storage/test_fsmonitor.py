"""The inotify watcher on its own: tokens, what it reports, and when it cannot vouch.

(Its use by status and commit, through a real daemon, is tested in tests/api/test_monitor.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from datagit.storage import fsmonitor

pytestmark = pytest.mark.skipif(not fsmonitor.supported(), reason="inotify is Linux-only")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace with a dataset's class folders and a .datagit folder (not watched)."""
    root = tmp_path / "ws"
    for label in ("0", "1"):
        (root / "train" / label).mkdir(parents=True)
        (root / "train" / label / f"a{label}.png").write_bytes(b"png " + label.encode())
    (root / ".datagit").mkdir()
    return root


def test_changes_inside_the_hidden_repository_folder_are_not_reported(ws: Path) -> None:
    w = fsmonitor.Watcher(ws, ws / ".datagit")
    try:
        token = w.answer(None)["token"]
        (ws / ".datagit" / "packs").mkdir()
        (ws / ".datagit" / "packs" / "x").write_bytes(b"x")
        (ws / "train" / "1" / "a1.png").write_bytes(b"changed")
        assert w.answer(token)["paths"] == ["train/1/a1.png"]
    finally:
        os.close(w.fd)


def test_tokens_of_another_instance_or_after_an_overflow_mean_everything(ws: Path) -> None:
    w = fsmonitor.Watcher(ws, ws / ".datagit")
    try:
        first = w.answer(None)
        assert first["paths"] is None  # no token: the caller must scan everything
        (ws / "train" / "0" / "new.png").write_bytes(b"n")
        got = w.answer(first["token"])
        assert got["paths"] == ["train/0/new.png"]
        assert w.answer("someoneelse:3")["paths"] is None
        w._event(-1, fsmonitor.IN_Q_OVERFLOW, "")  # the kernel dropped events
        assert w.answer(got["token"])["paths"] is None
    finally:
        os.close(w.fd)


def test_a_folder_it_could_not_watch_makes_every_answer_everything(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctypes
    import errno

    w = fsmonitor.Watcher(ws, ws / ".datagit")
    try:
        token = w.answer(None)["token"]
        monkeypatch.setattr(w, "_add", lambda *_a: -1)  # inotify_add_watch fails…
        monkeypatch.setattr(ctypes, "get_errno", lambda: errno.ENOSPC)  # …out of watches
        (ws / "train" / "0" / "sub").mkdir()
        w.sync()
        assert w.blind and w.answer(token)["paths"] is None
    finally:
        os.close(w.fd)


def test_symlinks_are_always_reported(ws: Path) -> None:
    train = ws / "train"
    target = sorted((train / "0").iterdir())[0]
    (train / "1" / "link.png").symlink_to(target)
    w = fsmonitor.Watcher(ws, ws / ".datagit")
    try:
        token = w.answer(None)["token"]
        assert w.answer(token)["paths"] == ["train/1/link.png"]
    finally:
        os.close(w.fd)


def test_a_monitor_whose_workspace_was_moved_away_never_answers_for_its_successor(
    ws: Path, tmp_path: Path
) -> None:
    """`mv proj proj-old` then a new repository at `proj`: the old watcher sees the old
    tree, so it must not answer (and it exits)."""
    import time

    assert fsmonitor.start(ws, ws / ".datagit")
    try:
        token = fsmonitor.query(ws / ".datagit", None)
        assert token is not None
        os.rename(ws, tmp_path / "moved")
        (ws / ".datagit").mkdir(parents=True)  # a new repository where the old one was
        got = fsmonitor.query(ws / ".datagit", token.token)
        assert got is None or got.paths is None
        deadline = time.monotonic() + 5
        while fsmonitor.status(ws / ".datagit") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fsmonitor.status(ws / ".datagit") is None
    finally:
        fsmonitor.stop(ws / ".datagit")
        fsmonitor.stop(tmp_path / "moved" / ".datagit")
