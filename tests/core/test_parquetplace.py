"""A changed Parquet file of the copy's shape is compared with the copy in place
(`parquetdelta.in_place`): it stages, reports and blames what the full read does."""

from __future__ import annotations

import io
import math

import orjson
import pytest

from datagit import Repo
from datagit.api import history
from datagit.core import parquetdelta, tablesnap
from datagit.core.config import DatasetConfig
from datagit.core.layouts import Hasher
from datagit.core.parquetlines import encode_rows

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def digits_rows(n: int = 120) -> list[dict]:
    """scikit-learn's digits as rows: id, label, rater and 8 pixel columns."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rows = []
    for i in range(n):
        row = {"id": f"d{i:04d}", "label": int(d.target[i]), "rater": "ada" if i % 2 else "bob"}
        row.update({f"p{p}": float(d.data[i][p]) for p in range(8)})
        rows.append(row)
    return rows


def relabeled(rows: list[dict]) -> list[dict]:
    """Edits in place: relabels (one clearing its rater, which keeps the old one), a new
    pixel, a new rater, a pixel made -0.0 (another line than 0.0), and two rows swapped
    in the file (no change)."""
    out = [dict(r) for r in rows]
    out[5]["label"] = 9
    out[7].update(label=1, rater=None)
    out[20]["p3"] = 99.0
    out[30]["rater"] = "cyd"
    out[0]["p0"] = -0.0  # was 0.0
    out[50], out[60] = out[60], out[50]
    return out


def write(repo: Repo, rows: list[dict]) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf, row_group_size=32)
    (repo.workdir / "digits.parquet").write_bytes(buf.getvalue())
    (repo.workdir / "digits.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


@pytest.fixture
def twins(tmp_repo: Repo) -> Repo:
    write(tmp_repo, digits_rows())
    for name, path in [("pq", "digits.parquet"), ("jl", "digits.jsonl")]:
        tmp_repo.add_dataset(DatasetConfig(name=name, layout="table", path=path, annotator="rater"))
    tmp_repo.commit("twins", all=True)
    return tmp_repo


def stage_fast(repo: Repo) -> tuple[str, list] | None:
    cfg = repo.config.datasets["pq"]
    base = repo.datasets_at(":stage")["pq"]
    with repo.git.batch():
        hasher = Hasher(repo.workdir, repo.statcache)
        return tablesnap.stage_fast(repo.git, cfg, hasher, repo.tables, repo.snapshots, base)


def full_read(repo: Repo) -> tuple[str, list]:
    """What the full read stages: no snapshot, so no copy and no map."""
    repo.tables.drop("pq")
    got = repo.add()["pq"]
    return repo.datasets_at(":stage")["pq"], [(c.id, c.kind, c.old, c.new) for c in got]


def in_place(repo: Repo) -> tuple[dict, list[str]] | None:
    cfg = repo.config.datasets["pq"]
    state = repo.tables.load("pq")
    assert state is not None
    copy = repo.tables.load_copy("pq", state.digest)
    assert copy is not None
    encoded = encode_rows(cfg, (repo.workdir / "digits.parquet").read_bytes())
    assert encoded is not None
    return parquetdelta.in_place(cfg, encoded, copy)


def test_an_edit_in_place_stages_what_the_full_read_stages(twins: Repo) -> None:
    write(twins, relabeled(digits_rows()))
    found = in_place(twins)
    assert found is not None  # compared in place, no map made
    upserts, gone = found
    assert sorted(upserts) == ["d0000", "d0005", "d0007", "d0020", "d0030", "d0050", "d0060"]
    assert gone == []
    fast = stage_fast(twins)
    assert fast is not None
    tree, changes = fast
    assert sorted((c.id, c.kind) for c in changes) == [
        ("d0000", "modified"),
        ("d0005", "relabeled"),
        ("d0007", "relabeled"),
        ("d0020", "modified"),
    ]  # a new rater alone, or a swap, changes no record's content or label
    state = twins.tables.load("pq")
    assert state is not None and state.tree == tree
    data = (twins.workdir / "digits.parquet").read_bytes()
    assert twins.tables.load_copy("pq", state.digest) == data  # the next copy, not a map
    assert twins.tables.load_lines("pq", state.digest) is None
    assert full_read(twins) == (tree, [(c.id, c.kind, c.old, c.new) for c in changes])


def test_commits_in_place_match_the_json_lines_twin_and_blame_alike(twins: Repo) -> None:
    rows = relabeled(digits_rows())
    write(twins, rows)
    twins.commit("first edits", all=True)
    rows[9]["label"] = 0  # a second edit in place: compared with the copy the last kept
    rows[0]["p0"] = 0.0
    write(twins, rows)
    assert in_place(twins) is not None
    twins.commit("second edits", all=True)
    for rev in ("HEAD~1", "HEAD"):
        trees = twins.datasets_at(rev)
        assert trees["pq"] == trees["jl"]
    for old, new in (("HEAD~2", "HEAD~1"), ("HEAD~1", "HEAD")):
        changes = twins.changes(old, new)
        assert changes["pq"] == changes["jl"] and changes["pq"]
    assert twins.record("pq", "d0030").annotator == "cyd"  # type: ignore[union-attr]
    for ex in ("d0000", "d0005", "d0007", "d0009", "d0030", "d0050"):
        pq_log = [(e.kind, e.commit) for e in history.example_log(twins, "pq", ex)]
        assert pq_log == [(e.kind, e.commit) for e in history.example_log(twins, "jl", ex)]
    assert twins.status().clean


def test_status_in_place_is_the_full_reads_and_keeps_the_copy(twins: Repo) -> None:
    write(twins, relabeled(digits_rows()))
    unstaged = {d.name: d.unstaged for d in twins.status().datasets}
    assert unstaged["pq"] == unstaged["jl"] and len(unstaged["pq"]) == 4
    state = twins.tables.load("pq")
    assert state is not None and twins.tables.load_lines("pq", state.digest) is None
    assert twins.tables.load_copy("pq", state.digest) is not None  # still there for the commit


def test_nulls_and_nans_are_compared_as_values(twins: Repo) -> None:
    rows = digits_rows()
    rows[3]["rater"] = None  # set → null: keeps the old rater (label unchanged)
    rows[4]["p1"] = math.nan  # a NaN is not equal to itself: compared by its bits
    rows[6]["p2"] = None
    write(twins, rows)
    found = in_place(twins)
    assert found is not None and sorted(found[0]) == ["d0003", "d0004", "d0006"]
    fast = stage_fast(twins)
    assert fast is not None
    assert full_read(twins) == (fast[0], [(c.id, c.kind, c.old, c.new) for c in fast[1]])
    write(twins, rows)  # the same again (NaN and nulls on both sides): nothing changed
    twins.commit("nulls", all=True)
    write(twins, [dict(r) for r in rows])
    assert in_place(twins) == ({}, [])


@pytest.mark.parametrize("shape", ["order", "type", "rows", "most"])
def test_another_shape_is_left_to_the_map(twins: Repo, shape: str) -> None:
    """Other column order or types, other row count, or most rows differing: the map
    (made from the copy) decides, and stages what the full read does."""
    rows = digits_rows()
    if shape == "order":
        rows = [dict(reversed(r.items())) for r in rows]
    elif shape == "type":  # the same values as float: other lines
        rows = [{**r, "label": float(r["label"])} for r in rows]
    elif shape == "rows":
        rows = rows[1:]  # a row deleted
    else:
        rows = [{**r, "label": (r["label"] + 1) % 10} for r in rows]
    write(twins, rows)
    assert in_place(twins) is None
    fast = stage_fast(twins)
    if fast is None:  # other lines everywhere: the full read itself decides
        return
    assert full_read(twins) == (fast[0], [(c.id, c.kind, c.old, c.new) for c in fast[1]])


def test_an_empty_file_of_the_same_columns_compares_in_place(tmp_repo: Repo) -> None:
    schema = pa.schema([("id", pa.string()), ("label", pa.int64()), ("p0", pa.float64())])
    path = tmp_repo.workdir / "digits.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "d0", "label": 1, "p0": 0.5}], schema), path)
    tmp_repo.add_dataset(DatasetConfig(name="pq", layout="table", path="digits.parquet"))
    tmp_repo.commit("one row", all=True)
    pq.write_table(pa.Table.from_pylist([{"id": "d0", "label": 1, "p0": -0.5}], schema), path)
    fast = stage_fast(tmp_repo)
    assert fast is not None and [(c.id, c.kind) for c in fast[1]] == [("d0", "modified")]
    tmp_repo.commit("negated", all=True)
    cfg = tmp_repo.config.datasets["pq"]
    buf = io.BytesIO()  # the same columns, no rows, against an empty copy
    pq.write_table(schema.empty_table(), buf)
    encoded = encode_rows(cfg, buf.getvalue())
    assert encoded is not None
    assert parquetdelta.in_place(cfg, encoded, buf.getvalue()) == ({}, [])
