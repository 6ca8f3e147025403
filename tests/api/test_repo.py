"""Repo: opening, reading records and verified bytes at any revision, identity, log."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from testkit import digits_pngs, write_tree

from datagit import STAGED, WORKSPACE, Repo
from datagit.core.config import DatasetConfig
from datagit.errors import (
    DatagitError,
    InvalidInputError,
    NotARepositoryError,
    RevisionNotFoundError,
)


def files_of(repo: Repo, folder: str = "train") -> dict[str, bytes]:
    root = repo.workdir / folder
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_init_makes_a_bare_git_repository_and_a_config(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "new")
    assert (repo.dotdir / "HEAD").exists() and (repo.dotdir / "objects").is_dir()
    assert (repo.workdir / "datagit.toml").exists()
    assert repo.head() is None and repo.branch() == "main"
    with pytest.raises(DatagitError, match="already a datagit repository"):
        Repo.init(tmp_path / "new")


def test_open_finds_the_repository_from_a_subfolder(tmp_repo: Repo) -> None:
    sub = tmp_repo.workdir / "train" / "deep"
    sub.mkdir()
    assert Repo.open(sub).workdir == tmp_repo.workdir


def test_open_outside_a_repository(tmp_path: Path) -> None:
    with pytest.raises(NotARepositoryError, match=str(tmp_path)) as exc:
        Repo.open(tmp_path)
    assert exc.value.exit_code != 0 and "datagit init" in (exc.value.hint or "")


def test_records_and_bytes_at_head_match_the_workspace(digits_repo: Repo) -> None:
    before = files_of(digits_repo)
    info = digits_repo.commit("digits", all=True)
    assert digits_repo.head() == info.id
    recs = list(digits_repo.records("train", rev="HEAD"))
    assert len(recs) == 300
    for r in recs:
        assert digits_repo.read(r) == before[f"{r.label}/{r.id}"]
    r = digits_repo.record("train", "img_0007.png")
    assert r.label == str(digits_pngs(8)[7][1])


def test_records_at_every_revision_and_pseudo_revision(digits_repo: Repo) -> None:
    first = digits_repo.commit("one", all=True).id
    ws = digits_repo.workdir
    shutil.move(ws / "train/0/img_0000.png", ws / "train/9/img_0000.png")
    second = digits_repo.commit("relabel", all=True).id
    (ws / "train/1/img_0001.png").unlink()
    digits_repo.add()
    write_tree(ws, {"train/5/new.png": digits_pngs(1)[0][0]})

    def labels(rev: str) -> dict[str, object]:
        return {r.id: r.label for r in digits_repo.records("train", rev)}

    assert labels(first)["img_0000.png"] == "0"
    assert labels("HEAD")["img_0000.png"] == "9"
    assert labels("HEAD~1") == labels(first) and labels("main") == labels(second)
    assert "img_0001.png" not in labels(STAGED) and "new.png" not in labels(STAGED)
    assert labels(WORKSPACE)["new.png"] == "5"
    view = digits_repo.dataset("train", first)
    assert len(view) == 300 and view.labels() == [str(i) for i in range(10)]
    assert [r.id for r in view] == sorted(r.id for r in view)


def test_unknown_dataset_example_and_revision(digits_repo: Repo) -> None:
    digits_repo.commit("one", all=True)
    with pytest.raises(InvalidInputError, match="no dataset named 'nope'"):
        list(digits_repo.records("nope"))
    with pytest.raises(InvalidInputError, match=r"no example 'x\.png' in dataset 'train' at HEAD"):
        digits_repo.record("train", "x.png")
    with pytest.raises(RevisionNotFoundError, match="HEAD~5"):
        list(digits_repo.records("train", "HEAD~5"))


def test_identity_from_datagit_config_then_git_config(
    tmp_repo: Repo, monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    monkeypatch.delenv("GIT_AUTHOR_NAME")
    monkeypatch.delenv("GIT_AUTHOR_EMAIL")
    with pytest.raises(DatagitError, match="no author identity"):
        tmp_repo.identity()
    (isolated_home / ".gitconfig").write_text("[user]\n\tname = Global Gus\n\temail = g@x.org\n")
    assert (tmp_repo.identity().name, tmp_repo.identity().email) == ("Global Gus", "g@x.org")
    tmp_repo.git.config_set("user.name", "Local Lin")
    tmp_repo.git.config_set("user.email", "lin@x.org")
    (tmp_repo.workdir / "train/cat").mkdir()
    (tmp_repo.workdir / "train/cat/a.png").write_bytes(digits_pngs(1)[0][0])
    c = tmp_repo.commit("by lin", all=True)
    assert (c.author.name, c.author.email) == ("Local Lin", "lin@x.org")
    assert c.committer.name == "Local Lin"


def test_log_limit_and_dataset_filter(tmp_repo: Repo) -> None:
    ws = tmp_repo.workdir
    tmp_repo.add_dataset(DatasetConfig("eval", "imagefolder", "eval"))
    pngs = digits_pngs(4)
    write_tree(ws, {"train/a/1.png": pngs[0][0], "eval/a/1.png": pngs[1][0]})
    c1 = tmp_repo.commit("both", all=True).id
    write_tree(ws, {"train/a/2.png": pngs[2][0]})
    c2 = tmp_repo.commit("train only", all=True).id
    write_tree(ws, {"eval/a/2.png": pngs[3][0]})
    c3 = tmp_repo.commit("eval only", all=True).id
    assert [c.id for c in tmp_repo.log()] == [c3, c2, c1]
    assert [c.id for c in tmp_repo.log(limit=2)] == [c3, c2]
    assert list(tmp_repo.log(limit=0)) == []
    assert [c.id for c in tmp_repo.log(dataset="train")] == [c2, c1]
    assert [c.id for c in tmp_repo.log(dataset="eval")] == [c3, c1]
    assert [c.id for c in tmp_repo.log("HEAD~1", dataset="eval")] == [c1]
    changes = tmp_repo.changes(c1, c3)
    assert {n: [(c.id, c.kind) for c in ch] for n, ch in changes.items()} == {
        "eval": [("2.png", "added")],
        "train": [("2.png", "added")],
    }


def test_two_datasets_and_a_table_in_one_workspace(tmp_repo: Repo) -> None:
    tmp_repo.add_dataset(DatasetConfig("eval", "imagefolder", "eval"))
    tmp_repo.add_dataset(
        DatasetConfig("notes", "table", "notes.csv", content="text", annotator="who")
    )
    pngs = digits_pngs(2)
    write_tree(
        tmp_repo.workdir,
        {
            "train/a/1.png": pngs[0][0],
            "eval/b/1.png": pngs[1][0],
            "notes.csv": "id,label,text,who\nn1,ok,hello,zoe\n",
        },
    )
    tmp_repo.commit("three datasets", all=True)
    assert set(tmp_repo.datasets_at("HEAD")) == {"train", "eval", "notes"}
    (note,) = tmp_repo.records("notes")
    assert tmp_repo.read(note) == b"hello" and note.annotator == "zoe"
    assert tmp_repo.config_at("HEAD").datasets["notes"].content == "text"


def test_reflog_revisions_resolve(tmp_repo: Repo) -> None:
    """`init` turns on ref logging, so `main@{1}` / `HEAD@{1}` name earlier tips as in git."""
    (tmp_repo.workdir / "train" / "a").mkdir()
    (tmp_repo.workdir / "train" / "a" / "1.png").write_bytes(b"one")
    first = tmp_repo.commit("one", all=True).id
    (tmp_repo.workdir / "train" / "a" / "2.png").write_bytes(b"two")
    second = tmp_repo.commit("two", all=True).id
    assert tmp_repo.resolve("main@{1}") == first
    assert tmp_repo.resolve("main@{0}") == second
