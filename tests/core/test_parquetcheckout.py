"""Checkout of a Parquet table patches the user's file (`parquetcheckout`): rows keep
their order, the schema and row groups stay, the file reads as the target's records,
and the checkout records it as the target's snapshot so `status` need not read it."""

from __future__ import annotations

import io

import pytest

from datagit import Repo
from datagit.api import workspace
from datagit.core import parquetcheckout
from datagit.core.changes import Change
from datagit.core.config import DatasetConfig
from datagit.core.layouts import Hasher
from datagit.core.tables import RowMaker

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

SCHEMA_ROWS = 120


def digits_table(n: int = SCHEMA_ROWS):  # type: ignore[no-untyped-def]
    """scikit-learn's digits as a typed table: id, label, rater, an int32 pixel sum and
    float32 pixels, in the order a user wrote them (not id order)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    order = list(range(n))[::-1]  # the file holds the rows backwards: order must survive
    return pa.table(
        {
            "id": [f"d{i:04d}" for i in order],
            "label": [str(int(d.target[i])) for i in order],
            "rater": ["ada" if i % 2 else "bob" for i in order],
            "ink": pa.array([int(d.data[i].sum()) for i in order], pa.int32()),
            "p3": pa.array([float(d.data[i][3]) for i in order], pa.float32()),
        }
    )


def write(repo: Repo, table) -> None:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=32, compression="zstd")
    (repo.workdir / "digits.parquet").write_bytes(buf.getvalue())


@pytest.fixture
def history(tmp_repo: Repo) -> tuple[Repo, str, str]:
    """Two commits: the second relabels, drops and adds rows."""
    table = digits_table()
    write(tmp_repo, table)
    tmp_repo.add_dataset(
        DatasetConfig(name="pq", layout="table", path="digits.parquet", annotator="rater")
    )
    first = tmp_repo.commit("first", all=True).id
    rows = table.to_pylist()
    rows[3]["label"] = "9"
    rows[10].update(label="1", rater="cyd")
    rows[40]["p3"] = 7.0
    del rows[50:53]
    rows.append({"id": "x0001", "label": "4", "rater": "dee", "ink": 300, "p3": 1.0})
    write(tmp_repo, pa.Table.from_pylist(rows, schema=table.schema))
    second = tmp_repo.commit("second", all=True).id
    return tmp_repo, first, second


def records(repo: Repo, rev: str) -> dict[str, dict]:
    return {r.id: r.to_dict() for r in repo.records("pq", rev)}


def read_back(repo: Repo) -> dict[str, dict]:
    """The workspace file read whole, as with no snapshot at all."""
    return {r.id: r.to_dict() for r in repo.scan("pq")}


def test_checkout_patches_the_file_in_place_both_ways(history) -> None:  # type: ignore[no-untyped-def]
    repo, first, second = history
    before = pq.ParquetFile(repo.workdir / "digits.parquet")
    workspace.checkout(repo, first)
    f = pq.ParquetFile(repo.workdir / "digits.parquet")
    assert read_back(repo) == records(repo, first)
    assert f.schema_arrow == before.schema_arrow  # int32 and float32 kept
    assert f.metadata.row_group(0).num_rows == 32
    assert str(f.metadata.row_group(0).column(0).compression).lower() == "zstd"
    ids = f.read().column("id").to_pylist()
    assert ids[:3] == ["d0119", "d0118", "d0117"]  # the user's row order, not id order
    assert repo.tables.load("pq").tree == repo.datasets_at("HEAD")["pq"]  # status: no read
    assert repo.status().clean
    workspace.checkout(repo, second)
    assert read_back(repo) == records(repo, second)
    ids = pq.read_table(repo.workdir / "digits.parquet").column("id").to_pylist()
    assert ids[-1] == "x0001" and ids[:3] == ["d0119", "d0118", "d0117"]
    assert repo.status().clean


def test_checkout_takes_the_changed_rows_from_the_commits_patches(history) -> None:  # type: ignore[no-untyped-def]
    """A clean checkout to a near first-parent commit reads the stored patches, not the
    shards: the same rows change, and the file reads back as the target's records."""
    from datagit.core import patch
    from datagit.core.changes import compare_trees

    repo, first, second = history
    by_patch = patch.changes_between_commits(repo.git, second, first, "pq")
    a, b = repo.datasets_at(second)["pq"], repo.datasets_at(first)["pq"]
    assert by_patch == compare_trees(repo.git, a, b)
    workspace.checkout(repo, first)
    assert read_back(repo) == records(repo, first)


def test_a_value_the_column_type_cannot_hold_refuses_the_patch(history) -> None:  # type: ignore[no-untyped-def]
    repo, _first, _second = history
    cfg = repo.config.datasets["pq"]
    data = (repo.workdir / "digits.parquet").read_bytes()
    old = repo.record("pq", "d0007")
    big = type(old)(old.id, old.label, old.content, old.size, old.annotator,
                    fields={**(old.fields or {}), "ink": 2**40})  # fmt: skip
    maker = RowMaker(cfg, Hasher(repo.workdir, repo.statcache))
    assert parquetcheckout.patch(cfg, data, [Change(old.id, "modified", old, big)], maker) is None


def test_a_new_column_renders_the_table_whole_and_reads_back(history) -> None:  # type: ignore[no-untyped-def]
    repo, _first, second = history
    table = pq.read_table(repo.workdir / "digits.parquet")
    rows = [{**r, "note": "checked"} for r in table.to_pylist()]
    rows[0]["ink"] = 2**40
    write(repo, pa.Table.from_pylist(rows))
    third = repo.commit("a new column", all=True).id
    workspace.checkout(repo, second)
    assert read_back(repo) == records(repo, second)
    workspace.checkout(repo, third)  # second's file has no "note" column: rendered whole
    assert read_back(repo) == records(repo, third)
    assert repo.status().clean


def test_an_edited_file_is_not_patched(history) -> None:  # type: ignore[no-untyped-def]
    repo, first, _second = history
    cfg = repo.config.datasets["pq"]
    table = pq.read_table(repo.workdir / "digits.parquet")
    write(repo, table.slice(1))  # a row gone: not the file the snapshot saw
    got = parquetcheckout.plan(
        repo.git,
        cfg,
        Hasher(repo.workdir, repo.statcache),
        repo.tables,
        repo.snapshots,
        repo.datasets_at("HEAD")["pq"],
        lambda: pytest.fail("the changes are not asked for a file the snapshot disowns"),
    )
    assert got is None
    workspace.checkout(repo, first, force=True)
    assert read_back(repo) == records(repo, first)


def test_a_record_the_file_lacks_refuses_the_patch(history) -> None:  # type: ignore[no-untyped-def]
    repo, _first, _second = history
    cfg = repo.config.datasets["pq"]
    data = (repo.workdir / "digits.parquet").read_bytes()
    ghost = next(iter(repo.records("pq", "HEAD")))
    ghost = type(ghost)("nobody", ghost.label, ghost.content, ghost.size, fields=ghost.fields)
    maker = RowMaker(cfg, Hasher(repo.workdir, repo.statcache))
    assert (
        parquetcheckout.patch(cfg, data, [Change("nobody", "removed", ghost, None)], maker) is None
    )
