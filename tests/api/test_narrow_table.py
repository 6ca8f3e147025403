"""`bisect narrow --apply` on a table dataset: label cells set back, added rows removed."""

from __future__ import annotations

from pathlib import Path

from datagit import Repo
from datagit.api import narrow
from datagit.core.config import DatasetConfig


def test_apply_reverts_a_tables_harmful_relabels_and_additions(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "ws")
    table = repo.workdir / "wine.csv"
    table.write_bytes(b"id,label,x\r\na,0,1.5\r\nb,1,2.5\r\nc,2,3.5\r\n")
    repo.add_dataset(DatasetConfig(name="wine", layout="table", path="wine.csv"))
    parent = repo.commit("three rows", all=True).id
    table.write_bytes(b"id,label,x\r\na,2,1.5\r\nb,0,2.5\r\nc,2,3.5\r\nd,1,9.0\r\n")
    culprit = repo.commit("relabel a and b, add d", all=True).id
    harmful = [{"id": "a"}, {"id": "d"}]  # b's relabel was harmless: it stays
    result = narrow.Narrowing(
        culprit, parent, "wine", "accuracy", 0.9, 0.8, 3, [], harmful, harmful
    )
    assert narrow.apply(repo, result) == {"reverted": 2, "kept_changed": []}
    assert table.read_bytes() == b"id,label,x\r\na,0,1.5\r\nb,0,2.5\r\nc,2,3.5\r\n"
    staged = {r.id: r.label for r in repo.records("wine", ":stage")}
    assert staged == {"a": "0", "b": "0", "c": "2"}
    repo.close()
