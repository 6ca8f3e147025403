"""`commit -a` hands `add`'s patches to `commit` in memory: the same commit as reading them back.

Each case builds one history, copies the repository, and commits the same
workspace change two ways — `commit(all=True)` in one process (the hand-off),
and `add` then `commit` through freshly opened `Repo` objects (patches read
back from the stage) — then compares the commit trees (records, patches and
all) and the changes each reports.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.api import committing, staging
from datagit.core import patch
from datagit.core.config import DatasetConfig
from datagit.storage.git import Signature

WHEN = Signature("Ada", "ada@example.com", 1_700_000_000, 0)


def _repo(root: Path) -> Repo:
    """Images in two class folders and a CSV table, committed once."""
    repo = Repo.init(root)
    pngs = digits_pngs(12)
    files: dict[str, bytes | str] = {
        f"train/{'cat' if i < 6 else 'dog'}/{i}.png": png for i, (png, _) in enumerate(pngs)
    }
    files["labels.csv"] = "id,label,who\n" + "".join(f"r{i},c{i % 3},ann\n" for i in range(40))
    write_tree(root, files)
    repo.add_dataset(DatasetConfig("train", "imagefolder", "train"))
    repo.add_dataset(DatasetConfig("labels", "table", "labels.csv", annotator="who"))
    repo.commit("first", all=True, author=WHEN)
    return repo


def _edit(root: Path) -> None:
    """A relabel, a content change and a removal of images; edited, added and dropped rows."""
    shutil.move(root / "train/cat/0.png", root / "train/dog/0.png")
    (root / "train/cat/1.png").write_bytes(digits_pngs(20)[19][0])
    (root / "train/dog/11.png").unlink()
    lines = (root / "labels.csv").read_text().splitlines()
    lines[1] = "r0,c9,"  # relabel, no annotator: the commit's annotator may stamp it
    lines[5] = "r4,c0,bob"
    del lines[7]
    lines.append("r99,c1,")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def _twins(tmp_path: Path) -> tuple[Path, Path]:
    one = tmp_path / "one"
    _repo(one).close()
    two = tmp_path / "two"
    shutil.copytree(one, two, symlinks=True)
    return one, two


def _same_commit(
    tmp_path: Path, before: Callable[[Repo], object] | None = None, annotator: str | None = None
) -> None:
    """Commit the same change both ways and compare what was committed and reported."""
    one, two = _twins(tmp_path)
    for root in (one, two):
        _edit(root)
        if before is not None:
            repo = Repo.open(root)
            before(repo)
            repo.close()
    handed = Repo.open(one)
    info = handed.commit("edit", all=True, author=WHEN, annotator=annotator)
    assert handed._committed is not None  # `changes` below answers from memory
    in_memory = handed.changes(info.parents[0], info.id)
    handed.close()
    Repo.open(two).add()
    read_back = Repo.open(two)
    other = read_back.commit("edit", author=WHEN, annotator=annotator)
    assert other.tree == info.tree  # records, fanout and the `changes/` patches alike
    fresh = Repo.open(one)  # reads the stored patches: no memory of the commit
    assert in_memory == fresh.changes(info.parents[0], info.id)
    assert in_memory == read_back.changes(other.parents[0], other.id)
    assert {c.kind for c in in_memory["train"]} == {"relabeled", "modified", "removed"}
    assert {c.kind for c in in_memory["labels"]} >= {"relabeled", "added", "removed"}


def test_commit_all_equals_add_then_commit(tmp_path: Path) -> None:
    _same_commit(tmp_path)


def test_annotator_stamp_rewrites_the_handed_patch(tmp_path: Path) -> None:
    _same_commit(tmp_path, annotator="carol")
    repo = Repo.open(tmp_path / "one")
    r0 = repo.record("labels", "r0")
    assert (r0.label, r0.annotator) == ("c9", "carol")
    pairs = patch.read(repo.git, repo.commit_info().tree, "labels")
    assert pairs is not None and pairs["r0"][1] == r0  # the stored patch says so too


def test_carried_patch_composes_with_the_handed_one(tmp_path: Path) -> None:
    """A partial `add` first: `commit -a` composes its carried patch with the rest."""
    _same_commit(tmp_path, before=lambda repo: repo.add(["labels"]))


def test_the_hand_off_is_what_the_stage_holds(tmp_path: Path) -> None:
    """What `add` hands over equals what reading the stage's patches back gives."""
    one, _ = _twins(tmp_path)
    repo = Repo.open(one)
    _edit(one)
    _, staged = staging.add_staged(repo, None)
    assert staged is not None and (staged.tree, staged.base) == (repo.stage_tree(), repo.head())
    assert staged.pairs == staging.carried_patches(repo)
    assert staged.blobs == repo._stage_patches()


def test_a_stale_hand_off_is_ignored(tmp_path: Path) -> None:
    """What an earlier `add` returned no longer describes the stage: it is read back."""
    one, two = _twins(tmp_path)
    repo = Repo.open(one)
    _edit(one)
    _, staged = staging.add_staged(repo, None)
    assert staged is not None and staged.tree == repo.stage_tree()
    (one / "train/dog/10.png").unlink()  # the stage moves on without this object knowing
    repo.add()
    info, pairs = committing.commit_staged(repo, "edit", author=WHEN, staged=staged)
    _edit(two)
    (two / "train/dog/10.png").unlink()
    other = Repo.open(two).commit("edit", all=True, author=WHEN)
    assert info.tree == other.tree
    assert pairs is not None and {"10.png", "11.png"} <= set(pairs["train"])  # type: ignore[arg-type]


def test_root_commit_hands_nothing_over(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r")
    write_tree(repo.workdir, {"train/cat/0.png": digits_pngs(1)[0][0]})
    repo.add_dataset(DatasetConfig("train", "imagefolder", "train"))
    _, staged = staging.add_staged(repo, None)
    assert staged is None  # no HEAD: no patch to carry
    info, pairs = committing.commit_staged(repo, "first", staged=staged)
    assert pairs is None and not info.parents
    assert [c.kind for c in repo.changes(None, info.id)["train"]] == ["added"]
