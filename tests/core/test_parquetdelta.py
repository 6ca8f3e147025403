"""A changed Parquet table costs what changed: only rows whose manifest line is new are
decoded, and the commit is the one the full read (and the JSON Lines twin) makes."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest
from xxhash import xxh3_64_intdigest

from datagit import Repo
from datagit.api import history
from datagit.core import parquetdelta, parquetlines, tablesnap
from datagit.core.config import DatasetConfig
from datagit.core.layouts import Hasher
from datagit.core.manifest import DatasetTree, write_dataset
from datagit.core.records import Record, encode_lines
from datagit.errors import InvalidInputError
from datagit.storage.tablecache import LINEMAP_MAGIC

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def digits_rows(n: int = 120) -> list[dict]:
    """scikit-learn's digits as rows: id, label, rater and 16 pixel columns."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rows = []
    for i in range(n):
        row = {"id": f"d{i:04d}", "label": int(d.target[i]), "rater": "ada" if i % 2 else "bob"}
        row.update({f"p{p}": float(d.data[i][p]) for p in range(16)})
        rows.append(row)
    return rows


def edited(rows: list[dict]) -> list[dict]:
    """Relabels, a deleted row, a new row, a new pixel, a new rater, a cleared rater (which
    keeps the old one: the label did not change), and two rows swapped in the file."""
    out = [dict(r) for r in rows if r["id"] != "d0010"]
    by_id = {r["id"]: r for r in out}
    by_id["d0005"]["label"] = 9
    by_id["d0007"].update(label=1, rater=None)
    by_id["d0020"]["p3"] = 99.0
    by_id["d0030"]["rater"] = "cyd"
    by_id["d0040"]["rater"] = None
    out[50], out[60] = out[60], out[50]
    out.append({**rows[3], "id": "d9999", "label": 4})
    return out


def write(repo: Repo, rows: list[dict], twin: bool = True) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf, row_group_size=32)
    (repo.workdir / "digits.parquet").write_bytes(buf.getvalue())
    if twin:
        (repo.workdir / "digits.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


@pytest.fixture
def twins(tmp_repo: Repo) -> Repo:
    write(tmp_repo, digits_rows())
    for name, path in [("pq", "digits.parquet"), ("jl", "digits.jsonl")]:
        tmp_repo.add_dataset(DatasetConfig(name=name, layout="table", path=path, annotator="rater"))
    tmp_repo.commit("twins", all=True)
    return tmp_repo


def stage_fast(repo: Repo, name: str) -> tuple[str, list] | None:
    cfg = repo.config.datasets[name]
    base = repo.datasets_at(":stage")[name]
    with repo.git.batch():
        hasher = Hasher(repo.workdir, repo.statcache)
        return tablesnap.stage_fast(repo.git, cfg, hasher, repo.tables, repo.snapshots, base)


def test_a_changed_parquet_table_commits_what_its_json_lines_twin_commits(twins: Repo) -> None:
    write(twins, edited(digits_rows()))
    twins.commit("edits", all=True)
    trees = twins.datasets_at("HEAD")
    assert trees["pq"] == trees["jl"]
    changes = twins.changes("HEAD~1", "HEAD")
    assert changes["pq"] == changes["jl"]
    assert sorted((c.id, c.kind) for c in changes["pq"]) == [
        ("d0005", "relabeled"),
        ("d0007", "relabeled"),
        ("d0010", "removed"),
        ("d0020", "modified"),
        ("d9999", "added"),
    ]
    assert twins.record("pq", "d0030").annotator == "cyd"  # type: ignore[union-attr]
    assert twins.record("pq", "d0040").annotator == "bob"  # type: ignore[union-attr]
    for ex in ("d0005", "d0030", "d0040"):
        pq_log = [(e.kind, e.commit) for e in history.example_log(twins, "pq", ex)]
        assert pq_log == [(e.kind, e.commit) for e in history.example_log(twins, "jl", ex)]
    assert twins.status().clean


def test_the_line_delta_stages_the_tree_the_full_read_stages(twins: Repo) -> None:
    write(twins, edited(digits_rows()))
    fast = stage_fast(twins, "pq")
    assert fast is not None  # the delta answered, with no full read
    tree, changes = fast
    state = twins.tables.load("pq")
    assert state is not None and state.tree == tree and not state.has_lines
    twins.tables.drop("pq")  # no snapshot: the full read decides
    got = twins.add()
    assert twins.datasets_at(":stage")["pq"] == tree
    assert [(c.id, c.kind, c.old, c.new) for c in got["pq"]] == [
        (c.id, c.kind, c.old, c.new) for c in changes
    ]
    write(twins, digits_rows())  # and back, from the map the full read saved
    back = stage_fast(twins, "pq")
    assert back is not None and back[0] == twins.datasets_at("HEAD")["pq"]


def test_status_of_a_changed_parquet_table_is_its_line_delta(twins: Repo) -> None:
    write(twins, edited(digits_rows()))
    cfg = twins.config.datasets["pq"]
    base = twins.datasets_at(":stage")["pq"]
    hasher = Hasher(twins.workdir, twins.statcache)
    fast = tablesnap.status_fast(twins.git, cfg, hasher, twins.tables, twins.snapshots, base)
    assert fast is not None  # answered by the map, with no full read
    unstaged = {d.name: d.unstaged for d in twins.status().datasets}
    assert fast == unstaged["pq"] == unstaged["jl"]
    assert len(fast) == 5


def test_other_columns_are_left_to_the_full_read(twins: Repo) -> None:
    # The same records, pixel columns reversed: every line's fields object is reordered.
    rows = [dict(reversed(r.items())) for r in digits_rows()]
    write(twins, rows)
    assert stage_fast(twins, "pq") is None
    assert not any(twins.add().values())  # the same records: nothing to stage
    assert twins.datasets_at(":stage") == twins.datasets_at("HEAD")
    assert twins.status().clean


def test_a_damaged_row_group_is_named_and_nothing_is_staged(twins: Repo) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(digits_rows()), buf, row_group_size=32)
    data = bytearray(buf.getvalue())
    data[200:260] = b"\xff" * 60  # inside the first row group's pages
    (twins.workdir / "digits.parquet").write_bytes(bytes(data))
    head, stage = twins.head(), twins.stage_tree()
    with pytest.raises(InvalidInputError, match=r"digits.parquet row group 0: unreadable"):
        twins.commit("broken", all=True)
    assert (twins.head(), twins.stage_tree()) == (head, stage)


def test_a_duplicate_id_in_a_changed_file_names_its_row_and_stages_nothing(twins: Repo) -> None:
    rows = digits_rows()
    rows[100]["id"] = "d0003"
    write(twins, rows, twin=False)
    head, stage = twins.head(), twins.stage_tree()
    with pytest.raises(InvalidInputError, match=r"digits.parquet row 101: duplicate id 'd0003'"):
        twins.commit("dup", all=True)
    assert (twins.head(), twins.stage_tree()) == (head, stage)


def test_digests_differ_exactly_where_records_differ() -> None:
    """Row groups do not matter; a label, a field, an annotator each do."""
    rows = digits_rows(300)
    cfg = DatasetConfig(name="t", layout="table", path="t.parquet", annotator="rater")

    def digests(rows: list[dict], groups: int) -> np.ndarray:
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), buf, row_group_size=groups)
        got = parquetlines.encode_rows(cfg, buf.getvalue(), slice_rows=7)
        assert got is not None
        return got.digests()

    before = digests(rows, 64)
    assert np.array_equal(before, digests(rows, 300))
    assert len(np.unique(before, axis=0)) == len(rows)
    rows[5]["label"] = 0 if rows[5]["label"] else 1
    rows[20]["p3"] = 99.0
    rows[30]["rater"] = "cyd"
    after = digests(rows, 64)
    assert np.flatnonzero((before != after).any(axis=1)).tolist() == [5, 20, 30]


def test_the_map_a_commit_saves_names_every_row(twins: Repo) -> None:
    write(twins, edited(digits_rows()))
    twins.commit("edits", all=True)
    state = twins.tables.load("pq")
    assert state is not None
    lm = twins.tables.load_lines("pq", state.digest)
    assert lm is not None and len(lm.hashes) == 120
    assert lm.id_list() == [r["id"].encode() for r in edited(digits_rows())]
    assert orjson.loads(lm.header) == ["id", "label", "rater", *(f"p{p}" for p in range(16))]


# -- A first commit saves no map; the next look makes it from a copy, or the tree -----


def map_path(repo: Repo, name: str = "pq") -> Path:
    return repo.tables.folder / f"table-{name}.linemap"


def copy_path(repo: Repo, name: str = "pq") -> Path:
    return repo.tables.folder / f"table-{name}.copy"


def slow_map(repo: Repo, tree: str) -> tuple[np.ndarray, list[bytes]]:
    """The map the decoder gives: every record decoded and its bare line written again."""
    recs = list(DatasetTree(repo.git, tree).records())
    lines = [parquetdelta.bare_line(r) for r in recs]
    hashes = np.array([(xxh3_64_intdigest(x), len(x)) for x in lines], dtype=np.uint64)
    return hashes.reshape(-1, 2), [r.id.encode() for r in recs]


def test_a_first_commit_saves_no_map_but_a_copy_of_the_file(twins: Repo) -> None:
    state = twins.tables.load("pq")
    assert state is not None and state.tree == twins.datasets_at("HEAD")["pq"]
    assert twins.tables.load_lines("pq", state.digest) is None
    assert not map_path(twins).exists()
    data = (twins.workdir / "digits.parquet").read_bytes()
    assert twins.tables.load_copy("pq", state.digest) == data
    assert twins.tables.load_copy("pq", "0" * 32) is None  # a copy of another file


def test_a_file_past_the_copy_limit_keeps_no_copy(
    tmp_repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big file is not doubled on disk: its next change makes the map from the tree."""
    monkeypatch.setattr(tablesnap, "COPY_LIMIT", 100)
    write(tmp_repo, digits_rows())
    tmp_repo.add_dataset(
        DatasetConfig(name="pq", layout="table", path="digits.parquet", annotator="rater")
    )
    tmp_repo.commit("big", all=True)
    assert not copy_path(tmp_repo).exists() and not map_path(tmp_repo).exists()
    assert tmp_repo.tables.load("pq") is not None  # the state is kept: status stays cheap
    assert tmp_repo.status().clean


def test_the_map_made_from_the_tree_is_the_decoders(twins: Repo) -> None:
    tree = twins.datasets_at("HEAD")["pq"]
    lm = parquetdelta.committed_map(twins.git, tree, "some-digest")
    assert lm is not None and lm.digest == "some-digest"
    assert lm.header == parquetdelta.LAZY_HEADER
    hashes, ids = slow_map(twins, tree)
    assert np.array_equal(lm.hashes, hashes)
    assert lm.id_list() == ids
    # And each bare line is the one the bulk read makes for the same row.
    cfg = twins.config.datasets["pq"]
    encoded = parquetlines.encode_rows(cfg, (twins.workdir / "digits.parquet").read_bytes())
    assert encoded is not None
    mine = {i: tuple(h) for i, h in zip(lm.id_list(), lm.hashes.tolist(), strict=True)}
    theirs = encoded.digests().tolist()
    assert [mine[i.encode()] for i in encoded.ids] == [tuple(h) for h in theirs]


def test_lines_of_another_shape_take_the_decoder(twins: Repo) -> None:
    """The pattern takes a line only up to its size: a label object (here holding a
    content-like key) or a label with a quote goes to the decoder; what follows the size
    (a source, text, an escaped annotator, a content-like field) is kept byte for byte.
    Both give the decoder's bare lines."""
    odd = [
        Record("a1", {"k": 1, "content": "0" * 32, "size": 3}, "1" * 32, 9, "ann"),
        Record("a2", 'say "hi"', "2" * 32, 5, None, fields={"x": 1}),
        Record("a3", "cat", "3" * 32, 12, None, source="a/b.png"),
        Record("a4", "dog", "4" * 32, 7, "bo\\b", text="words"),
        Record("a5", 3, "5" * 32, 0),
        Record("a6", None, "6" * 32, 2, "ann", fields={"content": "7" * 32, "size": 1}),
    ]
    lines = encode_lines(odd).splitlines(keepends=True)
    shaped = pa.compute.match_substring_regex(pa.array(lines, pa.string()), parquetdelta.LINE_SHAPE)
    assert shaped.to_pylist() == [False, False, True, True, True, True]
    tree = write_dataset(twins.git, odd)
    lm = parquetdelta.committed_map(twins.git, tree, "d")
    assert lm is not None
    hashes, ids = slow_map(twins, tree)
    assert np.array_equal(lm.hashes, hashes) and lm.id_list() == ids


@pytest.mark.parametrize("copy", ["kept", "gone", "damaged"])
def test_the_next_commit_makes_the_map_and_stages_what_the_full_read_does(
    twins: Repo, copy: str
) -> None:
    """From the copy the first commit kept or, without a good one, from the tree."""
    if copy == "gone":
        copy_path(twins).unlink()
    elif copy == "damaged":
        data = bytearray(copy_path(twins).read_bytes())
        data[-100] ^= 1
        copy_path(twins).write_bytes(bytes(data))
    write(twins, edited(digits_rows()), twin=False)
    fast = stage_fast(twins, "pq")
    assert fast is not None  # answered by a made map, not a full read
    tree, changes = fast
    lm = twins.tables.load_lines("pq", twins.tables.load("pq").digest)  # type: ignore[union-attr]
    assert lm is not None and lm.header != parquetdelta.LAZY_HEADER  # the new file's own map
    assert lm.id_list() == [r["id"].encode() for r in edited(digits_rows())]
    assert not copy_path(twins).exists()  # the map does what the copy was kept for
    twins.tables.drop("pq")
    full = twins.add()
    assert twins.datasets_at(":stage")["pq"] == tree
    assert not map_path(twins).exists()  # a full read saves no map, and leaves none behind
    assert [(c.id, c.kind, c.old, c.new) for c in full["pq"]] == [
        (c.id, c.kind, c.old, c.new) for c in changes
    ]


@pytest.mark.parametrize("copy", [True, False])
def test_blame_after_a_commit_from_a_made_map_is_the_twins(twins: Repo, copy: bool) -> None:
    if not copy:
        copy_path(twins).unlink()
    write(twins, edited(digits_rows()))
    twins.commit("edits", all=True)
    assert twins.datasets_at("HEAD")["pq"] == twins.datasets_at("HEAD")["jl"]
    assert twins.changes("HEAD~1", "HEAD")["pq"] == twins.changes("HEAD~1", "HEAD")["jl"]
    for ex in ("d0005", "d0007", "d0040", "d9999"):
        pq_log = [(e.kind, e.commit) for e in history.example_log(twins, "pq", ex)]
        assert pq_log == [(e.kind, e.commit) for e in history.example_log(twins, "jl", ex)]


@pytest.mark.parametrize("copy", [True, False])
def test_status_makes_the_map_once_and_keeps_it(twins: Repo, copy: bool) -> None:
    if not copy:
        copy_path(twins).unlink()
    write(twins, edited(digits_rows()), twin=False)
    unstaged = {d.name: d.unstaged for d in twins.status().datasets}["pq"]
    state = twins.tables.load("pq")
    assert state is not None
    lm = twins.tables.load_lines("pq", state.digest)
    assert lm is not None and len(lm.hashes) == 120
    assert (lm.header == parquetdelta.LAZY_HEADER) is not copy  # made from the tree, or not
    assert sorted(lm.id_list()) == [f"d{i:04d}".encode() for i in range(120)]
    assert len(unstaged) == 5
    cfg = twins.config.datasets["pq"]
    hasher = Hasher(twins.workdir, twins.statcache)
    base = twins.datasets_at(":stage")["pq"]
    again = tablesnap.status_fast(twins.git, cfg, hasher, twins.tables, twins.snapshots, base)
    assert again == unstaged


def test_other_columns_against_a_map_made_from_the_tree_go_to_the_full_read(twins: Repo) -> None:
    copy_path(twins).unlink()
    write(twins, [dict(reversed(r.items())) for r in digits_rows()], twin=False)
    assert stage_fast(twins, "pq") is None  # every line new: the full read decides
    assert not any(twins.add().values())
    assert twins.datasets_at(":stage") == twins.datasets_at("HEAD")


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b"datagit-linemap 1\n" + b[len(LINEMAP_MAGIC) :],  # an older format
        lambda b: b[:-7] + bytes([b[-7] ^ 1]) + b[-6:],  # a flipped bit in the ids
        lambda b: b[: len(b) // 2],  # truncated
    ],
)
def test_a_damaged_or_old_map_is_ignored(twins: Repo, damage: Callable[[bytes], bytes]) -> None:
    write(twins, edited(digits_rows()), twin=False)
    twins.commit("edits", all=True)  # saves the new file's map (and drops the copy)
    path = map_path(twins)
    path.write_bytes(damage(path.read_bytes()))
    write(twins, digits_rows(), twin=False)  # and back: made from the tree
    fast = stage_fast(twins, "pq")
    assert fast is not None and fast[0] == twins.datasets_at("HEAD~1")["pq"]
    assert sorted(c.id for c in fast[1]) == ["d0005", "d0007", "d0010", "d0020", "d9999"]
