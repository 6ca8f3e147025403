"""`links.copy_many`: copies on one core or two, straight from the packs, their stats back."""

from __future__ import annotations

import errno
import os
import re
import signal
from array import array
from pathlib import Path

import pytest
from testkit import digits_pngs

from datagit.progress import Event, Reporter
from datagit.storage import links
from datagit.storage.content import ContentStore


@pytest.fixture
def store(tmp_path: Path) -> tuple[ContentStore, list[bytes], list[str]]:
    """300 digits packed, and one object (the first) also held as a loose file only."""
    store = ContentStore.init(tmp_path / "content")
    pngs = [png for png, _ in digits_pngs(300)]
    keys = store.put_many(pngs)
    return store, pngs, keys


def _stats_of(folder: Path, names: list[str]) -> bytes:
    nums = array("Q")
    for name in names:
        st = os.stat(folder / name)
        nums.extend((st.st_size, st.st_mtime_ns, st.st_ino))
    return nums.tobytes()


@pytest.mark.parametrize("helper", ["50", "100000"])
def test_copies_are_new_files_with_the_bytes_and_their_stats_come_back(
    store: tuple[ContentStore, list[bytes], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    helper: str,
) -> None:
    """On one core or two (the helper takes the folders past half the files), each file
    is a copy of its object; a stale file in the way is replaced whole; a loose object
    is copied from its file; the stats are those of the files left on disk."""
    monkeypatch.setenv("DATAGIT_PARALLEL_MIN", helper)
    content, pngs, keys = store
    root = tmp_path / "ws"
    (root / "a").mkdir(parents=True)
    (root / "a" / "0.png").write_bytes(b"stale")  # in the way: replaced by the copy
    big = os.urandom(3 << 19)  # 1.5 MiB: stored loose, not packed
    (big_key,) = content.put_many([big])
    assert big_key not in content.index
    names = [f"{i}.png" for i in range(200)]
    groups = {
        "a": (names, keys[:200]),
        "b/c": ([f"{i}.png" for i in range(100)] + ["big.bin"], [*keys[200:], big_key]),
    }
    events: list[Event] = []
    made = links.copy_many(content, groups, f"{root}/", Reporter(events.append, "checkout", 301))
    for i in range(200):
        assert (root / "a" / names[i]).read_bytes() == pngs[i]
        assert (root / "a" / names[i]).stat().st_nlink == 1
    assert (root / "b/c/big.bin").read_bytes() == big
    assert made == {
        "a": _stats_of(root / "a", names),
        "b/c": _stats_of(root / "b/c", groups["b/c"][0]),
    }
    assert events[-1].done == 301
    assert not list(root.rglob("*.datagit-tmp"))


def test_a_folder_it_cannot_open_fails_naming_it_and_writes_nothing_there(
    store: tuple[ContentStore, list[bytes], list[str]], tmp_path: Path
) -> None:
    content, _, keys = store
    root = tmp_path / "ws"
    root.mkdir()
    (root / "c").write_bytes(b"a file, not a folder")
    with pytest.raises(OSError, match=re.escape(str(root / "c"))):
        links.copy_many(content, {"c": (["y.png"], keys[:1])}, f"{root}/", Reporter(None, "x"))
    assert (root / "c").read_bytes() == b"a file, not a folder"


def test_without_copy_file_range_the_bytes_are_read_and_written(
    store: tuple[ContentStore, list[bytes], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another filesystem or an old kernel refusing `copy_file_range`: pread + write."""
    content, pngs, keys = store
    calls = []

    def refused(*args: object) -> int:
        calls.append(args)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refused)
    root = tmp_path / "ws"
    names = [f"{i}.png" for i in range(20)]
    made = links.copy_many(content, {"d": (names, keys[:20])}, f"{root}/", Reporter(None, "x"))
    assert [(root / "d" / n).read_bytes() for n in names] == pngs[:20]
    assert made == {"d": _stats_of(root / "d", names)} and len(calls) == 1  # tried once


def test_a_helper_killed_mid_way_has_its_half_copied_again_here(
    store: tuple[ContentStore, list[bytes], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The forked helper dies after some of its copies: the parent copies its whole half
    again (the files it made are in the way, so replaced), and the stats that come back
    are those of the files on disk, not of the dead helper's."""
    monkeypatch.setenv("DATAGIT_PARALLEL_MIN", "50")
    content, pngs, keys = store
    parent, real = os.getpid(), os.copy_file_range
    done = [0]

    def dies_in_the_helper(*args: int) -> int:
        if os.getpid() != parent:
            done[0] += 1
            if done[0] == 30:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args)

    monkeypatch.setattr(os, "copy_file_range", dies_in_the_helper)
    root = tmp_path / "ws"
    groups = {
        f"f{k}": ([f"{i}.png" for i in range(100)], keys[100 * k : 100 * k + 100]) for k in range(3)
    }
    made = links.copy_many(content, groups, f"{root}/", Reporter(None, "x"))
    for k in range(3):
        names = groups[f"f{k}"][0]
        assert [(root / f"f{k}" / n).read_bytes() for n in names] == pngs[100 * k : 100 * k + 100]
        assert made[f"f{k}"] == _stats_of(root / f"f{k}", names)
    assert not list(root.rglob("*.datagit-tmp"))
