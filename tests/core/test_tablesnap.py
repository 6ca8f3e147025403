"""Table snapshots: an unchanged table is a stat, a changed one is parsed where it changed.

Every test compares the fast answer with what a full read gives on the same
files (a fresh `Repo` with the table snapshot dropped), and shows the fast path
was the one that answered.
"""

from __future__ import annotations

import dataclasses
import marshal
import os
import time
from pathlib import Path

import numpy as np
import pytest

from datagit import Repo
from datagit.api import workspace
from datagit.core import linematch, tablesnap
from datagit.core.changes import compare
from datagit.core.config import DatasetConfig
from datagit.core.layouts import Hasher
from datagit.core.linedelta import line_delta, match_lines
from datagit.core.manifest import DatasetTree
from datagit.errors import InvalidInputError
from datagit.storage.statcache import RACY_NS
from datagit.storage.tablecache import LineMap, PackedLineMap, encode_line_map, line_digests

PAST = 1_600_000_000 * 10**9  # 2020: far outside any racy window


def rows(n: int, relabel: set[int] = frozenset(), skip: set[int] = frozenset()) -> bytes:  # type: ignore[assignment]
    out = ["id,label,annotator,score"]
    for i in range(n):
        if i in skip:
            continue
        label = "dog" if (i % 3 == 0) != (i in relabel) else "cat"
        out.append(f"r{i:04d},{label},ann{i % 5},{i * 7 % 100}")
    return ("\n".join(out) + "\n").encode()


_ticks = iter(range(1, 1 << 30))


def write(repo: Repo, data: bytes, name: str = "labels.csv", when: int | None = None) -> None:
    """Write a file with an mtime long past (each write its own, as a real clock gives)."""
    path = repo.workdir / name
    path.write_bytes(data)
    when = when if when is not None else PAST + next(_ticks) * 10**9
    os.utime(path, ns=(when, when))


@pytest.fixture
def table_repo(tmp_repo: Repo) -> Repo:
    """tmp_repo plus a committed 200-row table dataset ``labels`` (written long ago)."""
    write(tmp_repo, rows(200))
    tmp_repo.add_dataset(
        DatasetConfig(name="labels", layout="table", path="labels.csv", annotator="annotator")
    )
    tmp_repo.commit("labels", all=True)
    return tmp_repo


def unstaged(repo: Repo, name: str = "labels") -> list[tuple[str, str]]:
    (ds,) = [d for d in repo.status().datasets if d.name == name]
    return sorted((c.id, c.kind) for c in ds.unstaged)


def truth(repo: Repo, name: str = "labels") -> list[tuple[str, str]]:
    """The same question answered by reading the table whole (the snapshot left as it is)."""
    cfg = repo.config.datasets[name]
    read = tablesnap.read_full(cfg, Hasher(repo.workdir, repo.statcache), repo.snapshots)
    staged = DatasetTree(repo.git, repo.datasets_at(":stage")[name]).by_id()
    return sorted((c.id, c.kind) for c in compare(staged, {r.id: r for r in read.records}))


def fast(repo: Repo, name: str = "labels") -> list[tuple[str, str]] | None:
    """The snapshot's answer alone (None: it could not answer)."""
    cfg = repo.config.datasets[name]
    stage = repo.datasets_at(":stage")[name]
    got = tablesnap.status_fast(
        repo.git, cfg, Hasher(repo.workdir, repo.statcache), repo.tables, repo.snapshots, stage
    )
    return None if got is None else sorted((c.id, c.kind) for c in got)


def test_an_unchanged_table_is_answered_by_its_stat_alone(table_repo: Repo) -> None:
    assert fast(table_repo) == [] == truth(table_repo)
    # Same size, same mtime, same inode, new bytes: like git, the stat is trusted
    # outside the racy window, which proves the file was not read.
    path = table_repo.workdir / "labels.csv"
    mtime = path.stat().st_mtime_ns
    with open(path, "r+b") as f:
        f.seek(20)
        f.write(b"X")
    os.utime(path, ns=(mtime, mtime))
    assert fast(table_repo) == []


def test_a_racy_table_is_hashed_and_a_same_size_edit_found(table_repo: Repo) -> None:
    data = rows(200)
    edited = data.replace(b"r0001,cat", b"r0001,dog")
    assert len(edited) == len(data)
    soon = table_repo.tables.load("labels").taken  # type: ignore[union-attr]
    write(table_repo, edited, when=soon)  # within the racy window of the snapshot
    assert fast(table_repo) == [("r0001", "relabeled")] == truth(table_repo)
    write(table_repo, data, when=soon)  # the same bytes again: clean, and the stat refreshed
    assert fast(table_repo) == []
    state = table_repo.tables.load("labels")
    assert state is not None and state.taken > soon


def test_edits_are_parsed_where_they_changed_and_agree_with_a_full_read(
    table_repo: Repo,
) -> None:
    edited = rows(203, relabel={5, 50}, skip={7, 150})
    edited = edited.replace(b"r0100,cat,ann0,0", b"r0100,cat,ann0,99")  # a field changes
    lines = edited.split(b"\n")
    lines[3], lines[60] = lines[60], lines[3]  # rows moved about: not a change
    write(table_repo, b"\n".join(lines))
    expected = [
        ("r0005", "relabeled"),
        ("r0007", "removed"),
        ("r0050", "relabeled"),
        ("r0100", "modified"),
        ("r0150", "removed"),
        ("r0200", "added"),
        ("r0201", "added"),
        ("r0202", "added"),
    ]
    assert fast(table_repo) == expected == truth(table_repo)


def test_commit_by_line_delta_writes_the_tree_a_full_read_writes(table_repo: Repo) -> None:
    write(table_repo, rows(201, relabel={9}, skip={3}))
    before = table_repo.tables.load("labels")
    table_repo.commit("relabel", all=True)
    after = table_repo.tables.load("labels")
    assert before is not None and after is not None and after.tree != before.tree
    tree = table_repo.datasets_at("HEAD")["labels"]
    assert after.tree == tree  # the snapshot followed the commit
    plain = Repo.open(table_repo.workdir)
    plain.tables.drop("labels")
    plain.add(["labels"])  # the full read of the same file
    assert plain.datasets_at(":stage")["labels"] == tree
    assert unstaged(table_repo) == []


def test_a_new_header_or_a_quoted_newline_falls_back_to_the_full_read(table_repo: Repo) -> None:
    write(table_repo, rows(200).replace(b"id,label,annotator,score", b"id,label,annotator,points"))
    assert fast(table_repo) is None
    assert len(truth(table_repo)) == 200  # every row's fields changed
    quoted = rows(200) + b'r9999,cat,ann1,"two\nlines"\n'
    write(table_repo, quoted)
    assert fast(table_repo) is None
    assert truth(table_repo) == [("r9999", "added")] == unstaged(table_repo)


def test_a_bad_row_on_the_fast_path_names_its_line_and_changes_nothing(table_repo: Repo) -> None:
    stage = table_repo.stage_tree()
    data = rows(200)
    write(table_repo, data + b"r0004,cat,ann1,1\n")  # a duplicate of an unchanged row's id
    with pytest.raises(InvalidInputError, match=r"labels.csv line 202: duplicate id 'r0004'"):
        table_repo.add(["labels"])
    write(table_repo, data + b"r9999,cat\n")
    with pytest.raises(InvalidInputError, match=r"labels.csv line 202: expected 4 fields"):
        table_repo.add(["labels"])
    write(table_repo, data + b"../up,cat,ann1,1\n")
    with pytest.raises(InvalidInputError, match=r"labels.csv line 202: id '../up'"):
        table_repo.add(["labels"])
    assert table_repo.stage_tree() == stage


def test_blank_lines_are_skipped_as_the_full_read_skips_them(table_repo: Repo) -> None:
    data = rows(200)
    write(table_repo, data.replace(b"\nr0005", b"\n\nr0005") + b"\n")
    assert fast(table_repo) == [] == truth(table_repo)
    write(table_repo, data + b"   \n")  # not empty: a row of one field, refused
    with pytest.raises(InvalidInputError, match=r"labels.csv line 202: expected 4 fields"):
        table_repo.add(["labels"])


def test_a_lone_carriage_return_gets_no_line_map(tmp_repo: Repo) -> None:
    write(tmp_repo, b"id,label\ra,x\rb,y\r")
    tmp_repo.add_dataset(DatasetConfig(name="t", layout="table", path="labels.csv"))
    tmp_repo.commit("t", all=True)
    state = tmp_repo.tables.load("t")
    assert state is not None and not state.has_lines
    assert fast(tmp_repo, "t") == []
    write(tmp_repo, b"id,label\ra,x\rb,z\r")
    assert fast(tmp_repo, "t") is None  # read whole
    assert truth(tmp_repo, "t") == [("b", "relabeled")] == unstaged(tmp_repo, "t")


def test_changed_settings_make_the_snapshot_useless(table_repo: Repo) -> None:
    cfg = table_repo.config
    cfg.datasets["labels"] = dataclasses.replace(cfg.datasets["labels"], label="annotator")
    (table_repo.workdir / "datagit.toml").write_bytes(cfg.dumps())
    assert fast(table_repo) is None


def test_jsonl_tables_take_the_same_path(tmp_repo: Repo) -> None:
    lines = [b'{"id": "a%d", "label": "x", "v": %d}' % (i, i) for i in range(50)]
    write(tmp_repo, b"\n".join(lines) + b"\n", "t.jsonl")
    tmp_repo.add_dataset(DatasetConfig(name="t", layout="table", path="t.jsonl"))
    tmp_repo.commit("t", all=True)
    assert fast(tmp_repo, "t") == []
    lines[4] = b'{"id": "a4", "label": "y", "v": 4}'
    write(tmp_repo, b"\n".join(lines[:-1]) + b"\n", "t.jsonl")
    assert fast(tmp_repo, "t") == [("a4", "relabeled"), ("a49", "removed")] == truth(tmp_repo, "t")


def test_a_file_the_table_names_is_watched_too(tmp_repo: Repo) -> None:
    (tmp_repo.workdir / "docs").mkdir()
    for i in range(3):
        write(tmp_repo, b"text %d" % i, f"docs/{i}.txt")
    body = b"".join(b"d%d,x,docs/%d.txt\n" % (i, i) for i in range(3))
    write(tmp_repo, b"id,label,path\n" + body)
    tmp_repo.add_dataset(DatasetConfig(name="docs", layout="table", path="labels.csv", file="path"))
    tmp_repo.commit("docs", all=True)
    assert fast(tmp_repo, "docs") == []
    write(tmp_repo, b"new text", "docs/1.txt")
    assert fast(tmp_repo, "docs") is None  # the stat cache re-hashes it in the full read
    assert truth(tmp_repo, "docs") == [("d1", "modified")] == unstaged(tmp_repo, "docs")


def test_checkout_rewrites_only_the_rows_that_changed(tmp_repo: Repo) -> None:
    ws = tmp_repo.workdir
    # The user's own style: CRLF, a column order and a row order of their choosing.
    lines = rows(200).rstrip(b"\n").split(b"\n")
    styled = b"\r\n".join([lines[0], *reversed(lines[1:])]) + b"\r\n"
    write(tmp_repo, styled)
    tmp_repo.add_dataset(
        DatasetConfig(name="labels", layout="table", path="labels.csv", annotator="annotator")
    )
    first = tmp_repo.commit("labels", all=True).id
    edited = styled.replace(b"r0010,cat", b"r0010,dog").replace(b"r0020,cat,ann0,40\r\n", b"")
    write(tmp_repo, edited + b"r0999,cat,ann1,5\r\n")
    tmp_repo.commit("relabel, drop and add", all=True)
    workspace.checkout(tmp_repo, first)
    dropped = b"r0020,cat,ann0,40\r\n"
    # Every row kept where the user had it; the one the other commit lacked is appended.
    assert (ws / "labels.csv").read_bytes() == styled.replace(dropped, b"") + dropped
    assert unstaged(tmp_repo) == [] == truth(tmp_repo)
    assert fast(tmp_repo) == []  # the checkout left a snapshot of what it wrote
    workspace.checkout(tmp_repo, "main")
    body = (ws / "labels.csv").read_bytes()
    assert body.startswith(styled.split(b"\r\n", 1)[0] + b"\r\nr0199,")
    assert b"r0010,dog,ann0,70\r\n" in body and b"r0020," not in body
    assert body.endswith(b"r0999,cat,ann1,5\r\n")
    assert unstaged(tmp_repo) == [] == truth(tmp_repo)


def test_checkout_between_commits_that_keep_the_table_leaves_it_alone(
    table_repo: Repo,
) -> None:
    path = table_repo.workdir / "labels.csv"
    (table_repo.workdir / "train" / "cat").mkdir(parents=True)
    (table_repo.workdir / "train" / "cat" / "1.png").write_bytes(b"png")
    table_repo.commit("an image", all=True)
    before = path.stat()
    workspace.checkout(table_repo, "HEAD~1")
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_table_first_seen_by_status_gets_a_snapshot(table_repo: Repo) -> None:
    table_repo.tables.drop("labels")
    assert fast(table_repo) is None
    assert unstaged(table_repo) == []  # read whole once…
    assert fast(table_repo) == []  # …then a stat
    write(table_repo, rows(200, relabel={1}), when=time.time_ns() - 10 * RACY_NS)
    table_repo.tables.drop("labels")
    assert unstaged(table_repo) == [("r0001", "relabeled")]
    assert fast(table_repo) is None  # not equal to the stage: no snapshot to save


def test_commit_with_annotator_keeps_the_snapshot(tmp_repo: Repo) -> None:
    write(tmp_repo, b"id,label\na,x\nb,y\n")
    tmp_repo.add_dataset(DatasetConfig(name="t", layout="table", path="labels.csv"))
    tmp_repo.commit("t", all=True, annotator="ada")
    assert fast(tmp_repo, "t") == []
    write(tmp_repo, b"id,label\na,x\nb,z\n")
    tmp_repo.commit("relabel b", all=True, annotator="bob")
    assert fast(tmp_repo, "t") == []
    recs = {r.id: r.annotator for r in tmp_repo.records("t")}
    assert recs == {"a": "ada", "b": "bob"}


def test_the_line_map_lives_beside_the_state(table_repo: Repo) -> None:
    state = table_repo.tables.load("labels")
    assert state is not None and state.has_lines
    lines = table_repo.tables.load_lines("labels", state.digest)
    assert lines is not None and len(lines.id_list()) == len(lines.hashes) == 201
    assert table_repo.tables.load_lines("labels", "0" * 32) is None  # another file's map
    assert isinstance(Path(table_repo.tables.folder).stat().st_size, int)


# -- line deltas: matched by position, then digest; the new map equals a full read's
def digests(*lines: bytes) -> np.ndarray:
    return line_digests(list(lines))


def test_lines_match_in_place_then_by_digest() -> None:
    old = digests(b"a", b"b", b"c", b"d")
    assert match_lines(digests(b"a", b"x", b"c", b"d"), old).tolist() == [0, -1, 2, 3]
    assert match_lines(digests(b"new", b"a", b"b", b"c", b"d"), old).tolist() == [-1, 0, 1, 2, 3]
    assert match_lines(digests(b"a", b"c", b"d"), old).tolist() == [0, 2, 3]  # b removed
    assert match_lines(digests(b"d", b"b", b"c", b"a"), old).tolist() == [3, 1, 2, 0]  # moved
    assert match_lines(digests(b"a", b"b", b"x", b"c", b"y"), old).tolist() == [0, 1, -1, 2, -1]
    # A copied line matches its old line once: the copy is parsed (and refused as a duplicate).
    assert match_lines(digests(b"a", b"b", b"c", b"d", b"a"), old).tolist() == [0, 1, 2, 3, -1]
    assert match_lines(digests(b"z", b"a", b"a"), old).tolist() == [-1, 0, -1]
    assert match_lines(digests(), old).tolist() == []
    assert match_lines(digests(b"a"), digests()).tolist() == [-1]


def full_map(repo: Repo) -> LineMap:
    cfg = repo.config.datasets["labels"]
    read = tablesnap.read_full(cfg, Hasher(repo.workdir, repo.statcache), repo.snapshots)
    assert read.lines is not None
    return read.lines


def same_map(a: LineMap | PackedLineMap, b: LineMap | PackedLineMap) -> bool:
    """The same map: the same file once saved (a delta's map is bytes, a full read's arrays)."""
    return b"".join(encode_line_map(a)) == b"".join(encode_line_map(b))


@pytest.mark.parametrize(
    "edit",
    [
        lambda data: rows(200, relabel={1, 2, 199}),  # in place: the old ids are kept
        lambda data: b"id,label,annotator,score\nr9999,cat,ann1,1\n" + data.split(b"\n", 1)[1],
        lambda data: rows(200, skip={0, 100}) + b"r0300,cat,ann0,5\n",
        lambda data: data.replace(b"r0010,", b"r0010x,"),  # the same line, another id
        lambda data: b"\n".join(reversed(data.rstrip(b"\n").split(b"\n")[1:])) + b"\n",
    ],
    ids=["relabel", "insert-at-top", "remove-and-append", "rename", "reversed"],
)
@pytest.mark.parametrize("join_limit", [linematch.JOIN_LIMIT, 0], ids=["bytes", "numpy"])
def test_the_new_map_is_the_one_a_full_read_builds(  # type: ignore[no-untyped-def]
    table_repo: Repo, edit, join_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By the numpy-free matcher and by numpy's (all lines to join past the limit)."""
    monkeypatch.setattr(linematch, "JOIN_LIMIT", join_limit)
    old = table_repo.tables.load_lines("labels", table_repo.tables.load("labels").digest)  # type: ignore[union-attr]
    assert old is not None
    data = edit(rows(200))
    if not data.startswith(b"id,"):
        data = b"id,label,annotator,score\n" + data
    write(table_repo, data)
    cfg = table_repo.config.datasets["labels"]
    delta = line_delta(cfg, Hasher(table_repo.workdir, table_repo.statcache), old, data)
    assert delta is not None
    assert same_map(delta.lines, full_map(table_repo))
    assert fast(table_repo) == truth(table_repo)
    table_repo.commit("edit", all=True, allow_empty=True)  # by the delta; then from its map
    write(table_repo, rows(200, relabel={3}))
    assert fast(table_repo) == truth(table_repo)


def test_a_copied_line_or_a_reused_id_goes_to_the_full_read(table_repo: Repo) -> None:
    data = rows(200)
    write(table_repo, data + data.split(b"\n")[5] + b"\n")  # the same bytes twice
    assert fast(table_repo) is None
    write(table_repo, data + b"r0004,dog,ann4,99\n")  # an unchanged row's id, other bytes
    assert fast(table_repo) is None
    moved = data.replace(b"r0004,", b"r0004b,") + b"r0004,cat,ann9,1\n"  # its old line gone
    write(table_repo, moved)
    assert fast(table_repo) == truth(table_repo) == [("r0004", "modified"), ("r0004b", "added")]


def test_an_old_or_damaged_line_map_is_rebuilt_by_a_full_read(table_repo: Repo) -> None:
    folder = table_repo.tables.folder
    new = folder / "table-labels.linemap"
    good = new.read_bytes()
    for damaged in (good[:-7], good[:40] + bytes([good[40] ^ 1]) + good[41:], b""):
        new.write_bytes(damaged)
        write(table_repo, rows(200, relabel={8}))
        assert fast(table_repo) is None  # no usable map: the full read answers
        assert unstaged(table_repo) == [("r0008", "relabeled")]
    # Version 1 kept a marshalled dict beside the state; it is never read, and goes.
    new.unlink()
    (folder / "table-labels.lines").write_bytes(marshal.dumps(("0" * 32, b"", {})))
    write(table_repo, rows(200, relabel={9}))
    table_repo.commit("relabel", all=True)
    assert not (folder / "table-labels.lines").exists()
    state = table_repo.tables.load("labels")
    assert state is not None and state.has_lines
    lm = table_repo.tables.load_lines("labels", state.digest)
    assert lm is not None and same_map(lm, full_map(table_repo))
    write(table_repo, rows(200, relabel={9, 10}))
    assert fast(table_repo) == [("r0010", "relabeled")] == truth(table_repo)
