"""A table file keeps its user's format when checkout, switch or merge change its
records: column order, CRLF, row order and JSON Lines value types (#14)."""

from __future__ import annotations

import pytest

from datagit import Repo
from datagit.api import branches, history, workspace
from datagit.core.config import DatasetConfig


@pytest.fixture
def csv_repo(tmp_path) -> Repo:  # type: ignore[no-untyped-def]
    repo = Repo.init(tmp_path / "ws")
    table = (
        b"text,rater,rid,y,score\r\n"
        b"great,ann,r3,pos,5\r\n"
        b'"meh, really",bob,r1,neg,2\r\n'
        b"fine,ann,r2,pos,4\r\n"
    )
    (repo.workdir / "reviews.csv").write_bytes(table)
    repo.add_dataset(
        DatasetConfig(
            name="reviews",
            layout="table",
            path="reviews.csv",
            id="rid",
            label="y",
            content="text",
            annotator="rater",
        )
    )
    repo.commit("three reviews", all=True)
    yield repo
    repo.close()


def test_checkout_of_changed_records_keeps_columns_line_endings_and_row_order(
    csv_repo: Repo,
) -> None:
    """Regression (#14): the file came back in datagit's own layout (sorted, LF, its columns)."""
    ws = csv_repo.workdir
    first = (ws / "reviews.csv").read_bytes()
    edited = (
        first.replace(b"great,ann,r3,pos,5", b"great,cy,r3,neg,5").replace(
            b"fine,ann,r2,pos,4\r\n", b""
        )
        + b"new one,cy,r0,pos,3\r\n"
    )
    (ws / "reviews.csv").write_bytes(edited)
    csv_repo.commit("relabel r3, drop r2, add r0", all=True)
    workspace.checkout(csv_repo, "HEAD~1")
    assert (ws / "reviews.csv").read_bytes() == (
        b"text,rater,rid,y,score\r\n"
        b"great,ann,r3,pos,5\r\n"
        b'"meh, really",bob,r1,neg,2\r\n'
        b"fine,ann,r2,pos,4\r\n"
    )
    workspace.checkout(csv_repo, "main")
    assert (ws / "reviews.csv").read_bytes() == edited


def test_a_merge_writes_the_table_in_the_users_format(csv_repo: Repo) -> None:
    ws = csv_repo.workdir
    branches.create_branch(csv_repo, "side")
    table = (ws / "reviews.csv").read_bytes()
    (ws / "reviews.csv").write_bytes(table.replace(b"bob,r1,neg", b"bob,r1,pos"))
    csv_repo.commit("r1 is positive", all=True)
    workspace.switch(csv_repo, "side")
    assert (ws / "reviews.csv").read_bytes() == table
    (ws / "reviews.csv").write_bytes(table.replace(b"fine,ann,r2,pos,4", b"fine,ann,r2,neg,4"))
    csv_repo.commit("r2 is negative", all=True)
    history.merge(csv_repo, "main")
    assert (ws / "reviews.csv").read_bytes() == table.replace(b"bob,r1,neg", b"bob,r1,pos").replace(
        b"fine,ann,r2,pos,4", b"fine,ann,r2,neg,4"
    )


def test_jsonl_keeps_integer_ids_and_key_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    repo = Repo.init(tmp_path / "ws")
    rows = b'{"label": 1, "id": 7, "x": 0.5}\n{"label": 0, "id": 3, "x": 1.25}\n'
    (repo.workdir / "t.jsonl").write_bytes(rows)
    repo.add_dataset(DatasetConfig(name="t", layout="table", path="t.jsonl"))
    repo.commit("two rows", all=True)
    (repo.workdir / "t.jsonl").write_bytes(
        b'{"label": 0, "id": 7, "x": 0.5}\n{"label": 0, "id": 3, "x": 1.25}\n'
        b'{"label": 1, "id": 12, "x": 2.0}\n'
    )
    repo.commit("relabel 7, add 12", all=True)
    workspace.checkout(repo, "HEAD~1")
    assert (repo.workdir / "t.jsonl").read_bytes() == (
        b'{"label":1,"id":7,"x":0.5}\n{"label": 0, "id": 3, "x": 1.25}\n'
    )
    workspace.checkout(repo, "main")
    assert (repo.workdir / "t.jsonl").read_bytes() == (
        b'{"label":0,"id":7,"x":0.5}\n{"label": 0, "id": 3, "x": 1.25}\n'
        b'{"label":1,"id":12,"x":2.0}\n'
    )
    repo.close()
