"""A rename (same content, new id) is one thing everywhere: diff, blame, status (#14)."""

from __future__ import annotations

import shutil

import pytest
from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.api import history
from datagit.storage.git import Signature


def sig(name: str, n: int) -> Signature:
    return Signature(name, f"{name.lower()}@example.com", 1_700_000_000 + n * 100)


@pytest.fixture
def renamed(tmp_repo: Repo) -> tuple[Repo, list[str], str]:
    """Ada adds 20 digits, Bob re-labels img_003, Carol renames it to three.png."""
    ws = tmp_repo.workdir
    pngs = digits_pngs(20)
    write_tree(ws, {f"train/{t}/img_{i:03d}.png": p for i, (p, t) in enumerate(pngs)})
    first = tmp_repo.commit("twenty", all=True, annotator="ada", author=sig("Ada", 1)).id
    t = pngs[3][1]
    (ws / "train" / "x").mkdir()
    shutil.move(ws / f"train/{t}/img_003.png", ws / "train/x/img_003.png")
    second = tmp_repo.commit("relabel", all=True, annotator="bob", author=sig("Bob", 2)).id
    shutil.move(ws / "train/x/img_003.png", ws / "train/x/three.png")
    return tmp_repo, [first, second], t


def test_status_reports_a_rename_as_one_change(
    renamed: tuple[Repo, list[str], str], run_cli
) -> None:  # type: ignore[no-untyped-def]
    """Regression (#14): status called a rename added + removed."""
    repo, _, _ = renamed
    out = run_cli(repo.workdir)("status").stdout
    assert "renamed    train/img_003.png → train/three.png" in out
    assert "added" not in out and "removed" not in out
    js = run_cli(repo.workdir)("status", "--json").stdout
    assert '"renamed":1' in js.replace(" ", "")
    short = run_cli(repo.workdir)("status", "--porcelain").stdout
    assert short.splitlines() == [" R train/img_003.png -> train/three.png"]


def test_blame_follows_an_example_across_a_rename(renamed: tuple[Repo, list[str], str]) -> None:
    """Regression (#14): blame lost the earlier commits and the annotator at a rename."""
    repo, (first, second), t = renamed
    third = repo.commit("rename", all=True, annotator="carol", author=sig("Carol", 3)).id
    events = history.example_log(repo, "train", "three.png")
    assert [(e.commit.id, e.kind) for e in events] == [
        (third, "renamed"),
        (second, "relabeled"),
        (first, "added"),
    ]
    assert events[0].old.id == "img_003.png" and events[0].new.id == "three.png"
    assert [e.annotator for e in events[1:]] == ["bob", "ada"]
    b = {x.id: x for x in history.blame(repo, "train")}["three.png"]
    assert (b.commit, b.added_in, b.annotator, b.label) == (second, first, "bob", "x")
    # the diff of that commit says R, as before
    d = history.diff(repo, second, third).datasets[0]
    assert [(r.old.id, r.new.id) for r in d.renamed] == [("img_003.png", "three.png")]
    assert str(t) != "x"
    # credit: the rename added nothing and set no label; Bob's label still stands
    ledger = history.credit(repo)
    carol = ledger.authors["Carol"]
    assert (carol.commits, carol.examples_added, carol.labels_set) == (1, 0, 0)
    assert ledger.authors["Bob"].labels_standing == 1
    assert "carol" not in ledger.annotators


def test_blame_of_a_rename_with_a_new_label_blames_the_rename(
    renamed: tuple[Repo, list[str], str],
) -> None:
    repo, (first, _), _ = renamed
    ws = repo.workdir
    (ws / "train" / "y").mkdir()
    shutil.move(ws / "train/x/three.png", ws / "train/y/three.png")
    third = repo.commit("rename and relabel", all=True, author=sig("Carol", 3)).id
    b = {x.id: x for x in history.blame(repo, "train")}["three.png"]
    assert (b.commit, b.added_in) == (third, first)
