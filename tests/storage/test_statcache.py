"""StatCache: unchanged (size, mtime, inode) skips hashing; racy and changed entries do not."""

from __future__ import annotations

import os
import time
from pathlib import Path

from datagit.storage.statcache import RACY_NS, StatCache


def _old_file(path: Path, data: bytes) -> os.stat_result:
    """A file whose mtime is safely older than now (not racily clean)."""
    path.write_bytes(data)
    past = time.time_ns() - 10 * RACY_NS
    os.utime(path, ns=(past, past))
    return path.stat()


def test_miss_then_hit_across_instances(tmp_path: Path) -> None:
    f = tmp_path / "a.png"
    st = _old_file(f, b"data")
    cache = StatCache(tmp_path / "index.sqlite")
    assert cache.lookup("a.png", st) is None
    cache.record("a.png", st, "k" * 32)
    cache.save()
    cache.close()
    again = StatCache(tmp_path / "index.sqlite")
    assert again.lookup("a.png", st) == "k" * 32


def test_racily_clean_entry_is_not_trusted(tmp_path: Path) -> None:
    f = tmp_path / "a.png"
    f.write_bytes(b"fresh")  # mtime ≈ now, i.e. within the racy window
    cache = StatCache(tmp_path / "index.sqlite")
    cache.record("a.png", f.stat(), "k" * 32)
    assert cache.lookup("a.png", f.stat()) is None


def test_any_stat_change_invalidates(tmp_path: Path) -> None:
    f = tmp_path / "a.png"
    st = _old_file(f, b"data")
    cache = StatCache(tmp_path / "index.sqlite")
    cache.record("a.png", st, "k" * 32)
    st2 = _old_file(f, b"data, longer")  # size
    assert cache.lookup("a.png", st2) is None
    st3 = _old_file(f, b"data")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # mtime only
    assert cache.lookup("a.png", f.stat()) is None
    g = tmp_path / "b.png"  # same size and mtime, other inode
    g.write_bytes(b"data")
    os.utime(g, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(g, f)
    assert f.stat().st_ino != st3.st_ino
    assert cache.lookup("a.png", f.stat()) is None


def test_tree_memo(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "index.sqlite")
    assert cache.tree_for("src") is None
    cache.remember_tree("src", "t" * 40)
    cache.close()
    assert StatCache(tmp_path / "index.sqlite").tree_for("src") == "t" * 40


def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    db.write_bytes(b"this is not a sqlite database" * 10)
    f = tmp_path / "a.png"
    st = _old_file(f, b"data")
    cache = StatCache(db)
    assert cache.lookup("a.png", st) is None
    cache.record("a.png", st, "k" * 32)
    cache.save()
    cache.close()
    assert StatCache(db).lookup("a.png", st) == "k" * 32
