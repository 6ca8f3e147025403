"""checkout, switch, branches, tags: the workspace follows history, touching only what differs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.api import branches, workspace
from datagit.core.config import DatasetConfig
from datagit.errors import ConflictError, DatagitError, InvalidInputError, RevisionNotFoundError


def snapshot(repo: Repo) -> dict[str, tuple[int, int, bytes]]:
    """path → (inode, mtime_ns, bytes) of every dataset file."""
    out = {}
    for p in sorted(repo.workdir.rglob("*")):
        if p.is_file() and ".datagit" not in p.parts:
            st = p.stat()
            out[p.relative_to(repo.workdir).as_posix()] = (
                st.st_ino,
                st.st_mtime_ns,
                p.read_bytes(),
            )
    return out


@pytest.fixture
def two_commits(digits_repo: Repo) -> tuple[Repo, str, str]:
    """300 digits, then a commit that relabels 3, modifies 2, removes 2 and adds 2."""
    ws = digits_repo.workdir
    first = digits_repo.commit("digits", all=True).id
    pngs = digits_pngs(300)
    for i in (0, 10, 20):
        t = pngs[i][1]
        shutil.move(ws / f"train/{t}/img_{i:04d}.png", ws / f"train/{(t + 1) % 10}/img_{i:04d}.png")
    for i in (1, 11):
        (ws / f"train/{pngs[i][1]}/img_{i:04d}.png").write_bytes(pngs[i + 100][0])
    for i in (2, 12):
        (ws / f"train/{pngs[i][1]}/img_{i:04d}.png").unlink()
    write_tree(ws, {"train/7/extra_a.png": pngs[5][0], "train/8/extra_b.png": pngs[6][0]})
    second = digits_repo.commit("edit", all=True).id
    return digits_repo, first, second


def test_checkout_writes_only_changed_files_and_renames_relabels(
    two_commits: tuple[Repo, str, str],
) -> None:
    repo, first, second = two_commits
    before = snapshot(repo)
    workspace.checkout(repo, first)
    after = snapshot(repo)
    assert repo.head() == first and repo.branch() is None
    pngs = digits_pngs(300)
    relabeled = {i: pngs[i][1] for i in (0, 10, 20)}
    changed = {f"train/{pngs[i][1]}/img_{i:04d}.png" for i in (1, 11, 2, 12)}
    changed |= {f"train/{t}/img_{i:04d}.png" for i, t in relabeled.items()}
    untouched = set(before) & set(after) - changed - {"datagit.toml"}
    assert len(untouched) == 300 - 7
    for path in untouched:
        assert after[path] == before[path], path  # same inode, same mtime: not rewritten
    for i, t in relabeled.items():
        old = before[f"train/{(t + 1) % 10}/img_{i:04d}.png"]
        new = after[f"train/{t}/img_{i:04d}.png"]
        assert new[0] == old[0] and new[2] == old[2]  # moved, same inode
    assert "train/7/extra_a.png" not in after
    for path, (_, _, data) in after.items():
        if path.startswith("train/"):
            label, name = path.split("/")[1:]
            assert int(label) == pngs[int(name[4:8])][1] and data == pngs[int(name[4:8])][0]
    assert repo.status().clean
    workspace.checkout(repo, "main")
    assert repo.branch() == "main" and repo.head() == second
    assert {p: v[2] for p, v in snapshot(repo).items()} == {p: v[2] for p, v in before.items()}
    assert repo.status().clean


def test_checkout_refuses_to_lose_uncommitted_work_unless_forced(
    two_commits: tuple[Repo, str, str],
) -> None:
    repo, first, _ = two_commits
    victim = repo.workdir / "train/7/extra_a.png"
    victim.write_bytes(b"precious edit")
    before = snapshot(repo)
    with pytest.raises(ConflictError, match="uncommitted changes"):
        workspace.checkout(repo, first)
    assert snapshot(repo) == before and repo.branch() == "main"
    workspace.checkout(repo, first, force=True)
    assert not victim.exists() and repo.status().clean


def test_checkout_unknown_revision_changes_nothing(two_commits: tuple[Repo, str, str]) -> None:
    repo, _, second = two_commits
    before = snapshot(repo)
    with pytest.raises(RevisionNotFoundError, match="no-such-rev"):
        workspace.checkout(repo, "no-such-rev")
    assert snapshot(repo) == before and repo.head() == second


def test_commit_on_detached_head_then_branch_from_it(two_commits: tuple[Repo, str, str]) -> None:
    repo, first, second = two_commits
    workspace.checkout(repo, "HEAD~1")
    write_tree(repo.workdir, {"train/3/side.png": digits_pngs(1)[0][0]})
    side = repo.commit("side work", all=True)
    assert repo.head() == side.id and side.parents == (first,) and repo.branch() is None
    branches.create_branch(repo, "side")
    assert repo.git.ref("refs/heads/side") == side.id
    workspace.switch(repo, "main")
    assert repo.head() == second and not (repo.workdir / "train/3/side.png").exists()
    workspace.switch(repo, "side")
    assert (repo.workdir / "train/3/side.png").exists()


def test_branches(two_commits: tuple[Repo, str, str]) -> None:
    repo, first, second = two_commits
    assert branches.create_branch(repo, "old", first) == first
    assert branches.list_branches(repo) == ["main", "old"]
    with pytest.raises(InvalidInputError, match="already exists"):
        branches.create_branch(repo, "old")
    for bad in ("-x", "a..b", "a b", "x.lock", "a:b", "/x", "x/", "a\nb"):
        with pytest.raises(InvalidInputError, match="not a valid branch name"):
            branches.create_branch(repo, bad)
    workspace.switch(repo, "new", create=True)
    assert repo.branch() == "new" and repo.head() == second
    with pytest.raises(DatagitError, match="checked out"):
        branches.delete_branch(repo, "new")
    workspace.switch(repo, "old")
    assert repo.head() == first
    with pytest.raises(DatagitError, match="not merged"):
        branches.delete_branch(repo, "new")
    branches.delete_branch(repo, "new", force=True)
    branches.delete_branch(repo, "main", force=True)
    assert branches.list_branches(repo) == ["old"]
    with pytest.raises(InvalidInputError, match="no branch named 'main'"):
        workspace.switch(repo, "main")


def test_branch_needs_a_commit(tmp_repo: Repo) -> None:
    with pytest.raises(DatagitError, match="no commits yet"):
        branches.create_branch(tmp_repo, "x")


def test_tags(two_commits: tuple[Repo, str, str]) -> None:
    repo, first, second = two_commits
    branches.create_tag(repo, "v1", first, "first release")
    branches.create_tag(repo, "v2")
    assert branches.list_tags(repo) == {"v1": first, "v2": second}
    assert repo.resolve("v1") == first and repo.resolve("v2~1") == first
    with pytest.raises(InvalidInputError, match="already exists"):
        branches.create_tag(repo, "v1")
    workspace.checkout(repo, "v1")
    assert repo.head() == first and repo.branch() is None
    branches.delete_tag(repo, "v2")
    assert list(branches.list_tags(repo)) == ["v1"]
    with pytest.raises(InvalidInputError, match="no tag named"):
        branches.delete_tag(repo, "v2")


def test_checkout_restores_dataset_declarations(tmp_repo: Repo) -> None:
    ws = tmp_repo.workdir
    write_tree(ws, {"train/a/1.png": digits_pngs(1)[0][0]})
    first = tmp_repo.commit("train only", all=True).id
    tmp_repo.add_dataset(DatasetConfig("eval", "imagefolder", "eval"))
    write_tree(ws, {"eval/b/1.png": digits_pngs(2)[1][0]})
    tmp_repo.commit("eval too", all=True)
    workspace.checkout(tmp_repo, first)
    assert "eval" not in tmp_repo.config.datasets
    assert not (ws / "eval/b/1.png").exists()
    workspace.checkout(tmp_repo, "main")
    assert "eval" in tmp_repo.config.datasets and (ws / "eval/b/1.png").exists()
    assert tmp_repo.status().clean


def test_checkout_of_a_deleted_file_restores_it_with_verified_bytes(
    two_commits: tuple[Repo, str, str],
) -> None:
    repo, first, _ = two_commits
    png, t = digits_pngs(3)[2]
    workspace.checkout(repo, first)
    path = repo.workdir / f"train/{t}/img_0002.png"
    assert path.read_bytes() == png
    assert not [p for p in repo.workdir.rglob("*") if "datagit-tmp" in p.name]
    assert os.access(path, os.R_OK)


def test_switch_keeps_untouched_files(two_commits: tuple[Repo, str, str]) -> None:
    repo, first, _ = two_commits
    branches.create_branch(repo, "old", first)
    before = snapshot(repo)
    workspace.switch(repo, "old")
    after = snapshot(repo)
    same = [p for p in after if p in before and after[p] == before[p]]
    assert len(same) >= 290


def test_checkout_allows_changes_that_already_match_the_target(
    two_commits: tuple[Repo, str, str],
) -> None:
    """What a checkout killed half-way leaves: some files already at the target; re-run it."""
    repo, first, second = two_commits
    pngs = digits_pngs(300)
    t = pngs[0][1]
    shutil.move(
        repo.workdir / f"train/{(t + 1) % 10}/img_0000.png",
        repo.workdir / f"train/{t}/img_0000.png",
    )
    (repo.workdir / "train/7/extra_a.png").unlink()
    assert not repo.status().clean
    workspace.checkout(repo, first)
    assert repo.head() == first and repo.status().clean
    workspace.checkout(repo, "main")
    (repo.workdir / "train/7/extra_a.png").write_bytes(b"not what either commit has")
    with pytest.raises(ConflictError, match=r"\(1 examples\)"):
        workspace.checkout(repo, first)
    assert repo.head() == second


def test_forced_checkout_never_writes_or_deletes_through_a_link_out(
    two_commits: tuple[Repo, str, str], tmp_path: Path
) -> None:
    repo, first, second = two_commits
    outside = tmp_path / "outside"
    folder = repo.workdir / "train/7"
    shutil.move(folder, outside)
    os.symlink(outside, folder)
    before = sorted(p.name for p in outside.iterdir())
    with pytest.raises(InvalidInputError, match=r"train/7 is a symlink to .*outside the workspace"):
        workspace.checkout(repo, first, force=True)
    assert sorted(p.name for p in outside.iterdir()) == before
    assert repo.head() == second


def test_an_unchanged_table_keeps_its_bytes_across_checkouts(digits_repo: Repo) -> None:
    """CRLF and a hand-chosen column order survive moving between commits that leave the
    table's records alone; a table that does change has only its changed rows rewritten,
    under the file's own header and line endings."""
    ws = digits_repo.workdir
    table = b"label,review_id,text\r\npos,r1,great\r\nneg,r2,meh\r\n"
    (ws / "reviews.csv").write_bytes(table)
    digits_repo.add_dataset(
        DatasetConfig(
            name="reviews", layout="table", path="reviews.csv", id="review_id", content="text"
        )
    )
    first = digits_repo.commit("digits and reviews", all=True).id
    (ws / "train" / "0" / "more.png").write_bytes(digits_pngs(301)[300][0])
    second = digits_repo.commit("one more image", all=True).id
    workspace.checkout(digits_repo, first)
    assert (ws / "reviews.csv").read_bytes() == table
    workspace.checkout(digits_repo, second)
    assert (ws / "reviews.csv").read_bytes() == table
    (ws / "reviews.csv").write_bytes(table.replace(b"pos,r1", b"neg,r1"))
    third = digits_repo.commit("relabel r1", all=True).id
    workspace.checkout(digits_repo, first)
    assert (ws / "reviews.csv").read_bytes() == table  # r1's row rewritten in the file's style
    rows = {r.id: r.label for r in digits_repo.scan("reviews")}
    assert rows == {"r1": "pos", "r2": "neg"}
    workspace.checkout(digits_repo, third)
    assert {r.id: r.label for r in digits_repo.scan("reviews")}["r1"] == "neg"
