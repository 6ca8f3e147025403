"""A commit of image folders with other datasets lists the images on the second core
while the others are staged (`staging._look_ahead`): the same answers as one
process, and nothing left behind when the other work fails."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.core import folderscan, manifest, snapshot
from datagit.core.config import DatasetConfig
from datagit.errors import InvalidInputError


def _children() -> set[int]:
    """This process's child processes, zombies included (Linux's /proc)."""
    out: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        text = (task / "children").read_text()
        out |= {int(p) for p in text.split()}
    return out


def _repo(root: Path) -> Repo:
    repo = Repo.init(root)
    pngs = digits_pngs(60)
    write_tree(root, {f"train/{label}/{i}.png": png for i, (png, label) in enumerate(pngs)})
    rows = "".join(f"r{i},{i % 3},ann\n" for i in range(30))
    (root / "labels.csv").write_text("id,label,annotator\n" + rows)
    repo.add_dataset(DatasetConfig(name="train", layout="imagefolder", path="train"))
    repo.add_dataset(
        DatasetConfig(
            "labels", "table", "labels.csv", id="id", label="label", annotator="annotator"
        )
    )
    repo.commit("start", all=True)
    return repo


def _edit(root: Path) -> None:
    moved = next((root / "train" / "3").iterdir())
    (root / "train" / "8").mkdir(exist_ok=True)
    shutil.move(moved, root / "train" / "8" / moved.name)  # a relabel
    (root / "train" / "5" / "new.png").write_bytes(digits_pngs(70)[65][0])
    victim = next((root / "train" / "1").iterdir())
    victim.unlink()
    text = (root / "labels.csv").read_text().replace("r4,1,ann", "r4,2,bob")
    (root / "labels.csv").write_text(text)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_forked_ahead_and_in_one_process_commit_the_same_trees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trees = []
    for forked in (True, False):
        monkeypatch.setenv("DATAGIT_PARALLEL_MIN", "1" if forked else str(1 << 40))
        root = tmp_path / ("forked" if forked else "single")
        repo = _repo(root)
        _edit(root)
        repo.commit("edit", all=True)
        kinds = {
            (name, c.id): c.kind
            for name, changes in repo.changes("HEAD~1", "HEAD").items()
            for c in changes
        }
        assert kinds[("labels", "r4")] == "relabeled"
        assert kinds[("train", "new.png")] == "added"
        assert sorted(kinds.values()) == ["added", "relabeled", "relabeled", "removed"]
        assert repo.status().clean
        trees.append(repo.datasets_at("HEAD"))
        repo.close()
    assert trees[0] == trees[1]


def test_a_listing_begun_ahead_equals_one_made_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAGIT_PARALLEL_MIN", "1")
    repo = _repo(tmp_path / "ws")
    _edit(repo.workdir)
    cfg = repo.config.datasets["train"]
    base = manifest.read_root(repo.git, repo.stage_tree())[1]["train"]
    ahead = snapshot.look_ahead(cfg, repo.workdir, repo.snapshots, base, fork=True)
    assert ahead is not None and ahead.listing is not None
    listed, labels = ahead.listing.finish()
    assert ahead.listing.diffs  # the folders that changed were compared where listed
    assert (listed, labels) == folderscan.list_folders(cfg, repo.workdir, ahead.snap.stats, False)
    repo.close()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_a_bad_table_stops_the_listing_child_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAGIT_PARALLEL_MIN", "1")
    repo = _repo(tmp_path / "ws")
    _edit(repo.workdir)
    stage, head = repo.stage_tree(), repo.head()
    before = _children()
    with (repo.workdir / "labels.csv").open("a") as f:
        f.write("r4,0,eve\n")  # a second row for r4
    with pytest.raises(InvalidInputError, match="r4"):
        repo.commit("bad", all=True)
    assert (repo.stage_tree(), repo.head()) == (stage, head)
    assert _children() <= before  # the child was killed and reaped, not left a zombie
    repo.close()
