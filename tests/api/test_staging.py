"""add and commit: example-level status, partial adds, re-labels, annotators, table layouts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.api import workspace
from datagit.core.config import DatasetConfig
from datagit.errors import DatagitError, InvalidInputError
from datagit.storage.git import Signature


def kinds(changes: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {c.id: c.kind for c in changes}


def status_of(repo: Repo, name: str = "train") -> tuple[dict[str, str], dict[str, str]]:
    (ds,) = [d for d in repo.status().datasets if d.name == name]
    return kinds(ds.staged), kinds(ds.unstaged)


def small(repo: Repo) -> Repo:
    pngs = digits_pngs(6)
    write_tree(
        repo.workdir,
        {f"train/{'cat' if i < 3 else 'dog'}/{i}.png": png for i, (png, _) in enumerate(pngs)},
    )
    return repo


def test_status_added_then_staged_then_clean(tmp_repo: Repo) -> None:
    small(tmp_repo)
    staged, unstaged = status_of(tmp_repo)
    assert staged == {} and set(unstaged.values()) == {"added"} and len(unstaged) == 6
    changes = tmp_repo.add()
    assert len(changes["train"]) == 6
    staged, unstaged = status_of(tmp_repo)
    assert len(staged) == 6 and unstaged == {}
    tmp_repo.commit("first")
    assert tmp_repo.status().clean


def test_status_sees_relabel_modify_remove(tmp_repo: Repo) -> None:
    ws = small(tmp_repo).workdir
    tmp_repo.commit("first", all=True)
    shutil.move(ws / "train/cat/0.png", ws / "train/dog/0.png")
    (ws / "train/cat/1.png").write_bytes(digits_pngs(10)[9][0])
    (ws / "train/dog/5.png").unlink()
    _, unstaged = status_of(tmp_repo)
    assert unstaged == {"0.png": "relabeled", "1.png": "modified", "5.png": "removed"}
    (ds,) = tmp_repo.status().datasets
    relabel = next(c for c in ds.unstaged if c.kind == "relabeled")
    assert (relabel.old.label, relabel.new.label) == ("cat", "dog")
    info = tmp_repo.commit("edit", all=True)
    assert kinds(tmp_repo.changes(info.parents[0], info.id)["train"]) == unstaged


def test_add_one_class_folder_stages_only_it(
    tmp_repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = small(tmp_repo).workdir
    monkeypatch.chdir(ws)
    tmp_repo.add(["train/cat"])
    staged, unstaged = status_of(tmp_repo)
    assert set(staged) == {"0.png", "1.png", "2.png"}
    assert set(unstaged) == {"3.png", "4.png", "5.png"}
    tmp_repo.add([str(ws / "train/dog/4.png")])  # one file, by absolute path
    staged, unstaged = status_of(tmp_repo)
    assert set(unstaged) == {"3.png", "5.png"}


def test_add_a_class_folder_after_a_relabel_keeps_other_examples(
    tmp_repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = small(tmp_repo).workdir
    tmp_repo.commit("first", all=True)
    monkeypatch.chdir(ws)
    (ws / "train/dog/3.png").unlink()
    tmp_repo.add(["train/cat"])  # nothing changed in cat: the dog deletion stays unstaged
    staged, unstaged = status_of(tmp_repo)
    assert staged == {} and unstaged == {"3.png": "removed"}


def test_add_of_a_removed_class_folder_stages_the_removals(
    tmp_repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = small(tmp_repo).workdir
    tmp_repo.commit("first", all=True)
    monkeypatch.chdir(ws)
    shutil.rmtree(ws / "train/dog")
    tmp_repo.add(["train/dog"])
    assert status_of(tmp_repo) == ({"3.png": "removed", "4.png": "removed", "5.png": "removed"}, {})
    with pytest.raises(InvalidInputError, match="train/dog matches no file of dataset train"):
        tmp_repo.add(["train/dog"])  # now neither the workspace nor the stage has it


def test_add_by_dataset_name_and_unknown_paths(tmp_repo: Repo, tmp_path: Path) -> None:
    tmp_repo.add_dataset(DatasetConfig("eval", "imagefolder", "eval"))
    write_tree(tmp_repo.workdir, {"eval/a/1.png": digits_pngs(1)[0][0]})
    small(tmp_repo)
    tmp_repo.add(["eval"])
    assert status_of(tmp_repo, "eval")[0] == {"1.png": "added"}
    assert status_of(tmp_repo, "train")[0] == {}
    with pytest.raises(InvalidInputError, match="outside the workspace"):
        tmp_repo.add([str(tmp_path)])
    with pytest.raises(InvalidInputError, match="not a dataset name nor inside"):
        tmp_repo.add([str(tmp_repo.workdir / "elsewhere")])


def test_commit_refuses_nothing_and_empty_messages(tmp_repo: Repo) -> None:
    small(tmp_repo)
    with pytest.raises(InvalidInputError, match="empty commit message"):
        tmp_repo.commit("  ", all=True)
    tmp_repo.commit("first", all=True)
    with pytest.raises(DatagitError, match="nothing to commit"):
        tmp_repo.commit("again", all=True)
    info = tmp_repo.commit("marker", allow_empty=True)
    assert info.parents == (tmp_repo.resolve("HEAD~1"),)
    # Same records and config; only the (empty) per-commit patch folder differs.
    assert tmp_repo.datasets_at("HEAD") == tmp_repo.datasets_at("HEAD~1")
    assert not any(tmp_repo.changes("HEAD~1", "HEAD").values())


def test_author_override_keeps_committer(tmp_repo: Repo) -> None:
    small(tmp_repo)
    bob = Signature("Bob Labeller", "bob@example.com", 1_700_000_000, 0)
    info = tmp_repo.commit("by bob", all=True, author=bob)
    assert info.author == bob
    assert (info.committer.name, info.committer.email) == ("Ada Tester", "ada@example.com")


def test_annotator_stamps_only_labels_this_commit_sets(tmp_repo: Repo) -> None:
    ws = small(tmp_repo).workdir
    first = tmp_repo.commit("first", all=True, annotator="alice")
    assert first.trailer("Annotator") == "alice"
    assert {r.annotator for r in tmp_repo.records("train")} == {"alice"}
    shutil.move(ws / "train/cat/0.png", ws / "train/dog/0.png")  # relabel
    (ws / "train/cat/1.png").write_bytes(digits_pngs(10)[9][0])  # new bytes, same label
    write_tree(ws, {"train/cat/new.png": digits_pngs(8)[7][0]})  # added
    tmp_repo.commit("relabel", all=True, annotator="bob")
    got = {r.id: r.annotator for r in tmp_repo.records("train")}
    assert got == {
        "0.png": "bob",
        "1.png": "alice",
        "2.png": "alice",
        "3.png": "alice",
        "4.png": "alice",
        "5.png": "alice",
        "new.png": "bob",
    }
    shutil.move(ws / "train/dog/4.png", ws / "train/cat/4.png")
    tmp_repo.commit("no annotator given", all=True)
    assert tmp_repo.record("train", "4.png").annotator is None


def test_csv_inline_text_table_through_add_status_commit_checkout(tmp_repo: Repo) -> None:
    tmp_repo.add_dataset(
        DatasetConfig(
            "reviews",
            "table",
            "reviews.csv",
            id="rid",
            label="sentiment",
            content="text",
            annotator="rater",
        )
    )
    path = tmp_repo.workdir / "reviews.csv"
    path.write_text(
        "rid,sentiment,text,rater\n"
        'r1,pos,"great, loved it",ann\nr2,neg,awful,ann\nr3,pos,fine,bea\n'
    )
    first = tmp_repo.commit("reviews", all=True)
    path.write_text(
        "rid,sentiment,text,rater\n"
        'r1,neg,"great, loved it",cid\nr2,neg,"awful!!",ann\nr4,pos,new,bea\n'
    )
    _, unstaged = status_of(tmp_repo, "reviews")
    assert unstaged == {"r1": "relabeled", "r2": "modified", "r3": "removed", "r4": "added"}
    tmp_repo.commit("edit reviews", all=True)
    r1 = tmp_repo.record("reviews", "r1")
    assert (r1.label, r1.annotator, tmp_repo.read(r1)) == ("neg", "cid", b"great, loved it")
    _checkout(tmp_repo, first.id)
    recs = {r.id: r for r in tmp_repo.records("reviews", "HEAD")}
    on_disk = {r.id: r for r in tmp_repo.scan("reviews")}
    assert {i: (r.label, r.text, r.annotator) for i, r in on_disk.items()} == {
        i: (r.label, r.text, r.annotator) for i, r in recs.items()
    }
    assert on_disk["r1"].label == "pos" and "r4" not in on_disk
    assert tmp_repo.status().clean


def _checkout(repo: Repo, rev: str) -> None:
    from datagit.api import workspace

    workspace.checkout(repo, rev)


def test_jsonl_file_column_table_through_commit_and_checkout(tmp_repo: Repo) -> None:
    pngs = digits_pngs(4)
    tmp_repo.add_dataset(
        DatasetConfig("scans", "table", "scans/index.jsonl", file="image", annotator="who")
    )
    rows = [
        {"id": f"s{i}", "label": t, "image": f"img/{i}.png", "who": "ann"}
        for i, (_, t) in enumerate(pngs)
    ]
    files: dict[str, bytes | str] = {f"scans/img/{i}.png": p for i, (p, _) in enumerate(pngs)}
    files["scans/index.jsonl"] = "".join(json.dumps(r) + "\n" for r in rows)
    write_tree(tmp_repo.workdir, files)
    first = tmp_repo.commit("scans", all=True)
    s0 = tmp_repo.record("scans", "s0")
    assert tmp_repo.read(s0) == pngs[0][0] and s0.label == pngs[0][1]
    (tmp_repo.workdir / "scans/img/0.png").write_bytes(pngs[3][0])
    _, unstaged = status_of(tmp_repo, "scans")
    assert unstaged == {"s0": "modified"}
    tmp_repo.commit("new scan bytes", all=True)
    _checkout(tmp_repo, first.id)
    assert (tmp_repo.workdir / "scans/img/0.png").read_bytes() == pngs[0][0]
    assert tmp_repo.status().clean


def test_staged_removal_of_a_dataset_declaration(tmp_repo: Repo) -> None:
    small(tmp_repo)
    tmp_repo.commit("first", all=True)
    (tmp_repo.workdir / "datagit.toml").write_text("")
    st = tmp_repo.status()
    assert st.config_unstaged and not st.clean


def test_commit_without_all_records_the_staged_bytes_not_the_later_edit(tmp_repo: Repo) -> None:
    ws = small(tmp_repo).workdir
    pngs = digits_pngs(12)
    tmp_repo.commit("first", all=True)
    (ws / "train/cat/0.png").write_bytes(pngs[10][0])
    tmp_repo.add()
    (ws / "train/cat/0.png").write_bytes(pngs[11][0])
    staged, unstaged = status_of(tmp_repo)
    assert staged == {"0.png": "modified"} and unstaged == {"0.png": "modified"}
    tmp_repo.commit("staged version")
    assert tmp_repo.read(tmp_repo.record("train", "0.png")) == pngs[10][0]
    assert status_of(tmp_repo) == ({}, {"0.png": "modified"})
    _checkout_force(tmp_repo, "HEAD")
    assert (ws / "train/cat/0.png").read_bytes() == pngs[10][0]


def _checkout_force(repo: Repo, rev: str) -> None:
    from datagit.api import workspace

    workspace.checkout(repo, rev, force=True)


def test_relabel_into_a_new_class_and_removing_a_whole_class(tmp_repo: Repo) -> None:
    ws = small(tmp_repo).workdir
    first = tmp_repo.commit("first", all=True).id
    (ws / "train/bird").mkdir()
    shutil.move(ws / "train/cat/0.png", ws / "train/bird/0.png")
    shutil.rmtree(ws / "train/dog")
    _, unstaged = status_of(tmp_repo)
    assert unstaged == {
        "0.png": "relabeled",
        "3.png": "removed",
        "4.png": "removed",
        "5.png": "removed",
    }
    tmp_repo.commit("birds", all=True)
    assert {r.label for r in tmp_repo.records("train")} == {"bird", "cat"}
    _checkout(tmp_repo, first)
    assert sorted(p.name for p in (ws / "train").iterdir()) == ["cat", "dog"]
    assert tmp_repo.status().clean


def test_table_dataset_dropped_from_config_is_removed_on_checkout(tmp_repo: Repo) -> None:
    ws = small(tmp_repo).workdir
    first = tmp_repo.commit("images", all=True).id
    tmp_repo.add_dataset(DatasetConfig("notes", "table", "notes.csv", content="text"))
    (ws / "notes.csv").write_text("id,label,text\nn1,a,hello\n")
    tmp_repo.commit("notes", all=True)
    _checkout(tmp_repo, first)
    assert not (ws / "notes.csv").exists() and "notes" not in tmp_repo.config.datasets
    _checkout(tmp_repo, "main")
    assert "hello" in (ws / "notes.csv").read_text()
    assert tmp_repo.status().clean


def test_csv_file_column_relabel_and_checkout(
    tmp_repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    pngs = digits_pngs(3)
    tmp_repo.add_dataset(DatasetConfig("d", "table", "d/labels.csv", file="path", annotator="by"))
    files: dict[str, bytes | str] = {f"d/img/{i}.png": p for i, (p, _) in enumerate(pngs)}
    files["d/labels.csv"] = "".join(
        ["id,label,path,by\n"] + [f"e{i},{t},img/{i}.png,ann\n" for i, (_, t) in enumerate(pngs)]
    )
    write_tree(tmp_repo.workdir, files)
    first = tmp_repo.commit("labels", all=True)
    text = (tmp_repo.workdir / "d/labels.csv").read_text()
    (tmp_repo.workdir / "d/labels.csv").write_text(text.replace(f"e1,{pngs[1][1]},", "e1,9,"))
    assert status_of(tmp_repo, "d")[1] == {"e1": "relabeled"}
    monkeypatch.chdir(tmp_repo.workdir)
    tmp_repo.add(["d/labels.csv"])
    tmp_repo.commit("relabel e1", annotator="zed")
    assert tmp_repo.record("d", "e1").label == "9"
    assert tmp_repo.record("d", "e1").annotator == "ann"  # the row's own annotator wins
    _checkout(tmp_repo, first.id)
    assert tmp_repo.record("d", "e1", "HEAD").label == str(pngs[1][1])
    assert [r.label for r in tmp_repo.scan("d") if r.id == "e1"] == [str(pngs[1][1])]
    assert tmp_repo.status().clean
    assert (tmp_repo.workdir / "d/img/1.png").read_bytes() == pngs[1][0]


def _truth(repo: Repo, tmp: Path) -> dict[str, str]:
    """Unstaged changes computed from scratch: no stat cache, no snapshot."""
    from datagit.core.changes import compare
    from datagit.core.layouts import Hasher, scan
    from datagit.core.manifest import DatasetTree
    from datagit.storage.statcache import StatCache

    cache = tmp / f"truth-{os.getpid()}-{len(list(tmp.iterdir()))}.sqlite"
    work = scan(repo.config.datasets["train"], Hasher(repo.workdir, StatCache(cache)))
    tree = repo.datasets_at(":stage").get("train")
    staged = DatasetTree(repo.git, tree).by_id() if tree else {}
    return kinds(compare(staged, {r.id: r for r in work}))


def test_status_and_add_agree_with_a_scan_from_scratch_after_random_edits(
    tmp_repo: Repo, tmp_path: Path
) -> None:
    """A seeded random walk of edits, adds, commits and checkouts; the fast paths must agree."""
    import random

    from datagit.api import workspace

    rng = random.Random(7)
    pngs = [p for p, _ in digits_pngs(120)]
    ws = tmp_repo.workdir
    write_tree(ws, {f"train/{i % 3}/f{i}.png": pngs[i] for i in range(40)})
    tmp_repo.commit("start", all=True)
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    for step in range(30):
        files = sorted(p for p in (ws / "train").rglob("*.png"))
        op = rng.choice(["relabel", "modify", "same-size", "delete", "new", "touch", "add",
                         "add-folder", "commit", "checkout"])  # fmt: skip
        victim = rng.choice(files) if files else None
        if op == "relabel" and victim:
            dest = ws / "train" / str(rng.randrange(4)) / victim.name
            dest.parent.mkdir(exist_ok=True)
            if not dest.exists():
                shutil.move(victim, dest)
        elif op == "modify" and victim:
            victim.write_bytes(rng.choice(pngs))
        elif op == "same-size" and victim:
            data = bytearray(victim.read_bytes())
            data[-3] ^= 0x55
            victim.write_bytes(bytes(data))
        elif op == "delete" and victim and len(files) > 5:
            victim.unlink()
        elif op == "new":
            write_tree(ws, {f"train/{rng.randrange(3)}/n{step}.png": rng.choice(pngs)})
        elif op == "touch" and victim:
            os.utime(victim)
        elif op == "add":
            tmp_repo.add()
        elif op == "add-folder":
            tmp_repo.add([str(ws / "train" / str(rng.randrange(3)))])
        elif op == "commit":
            tmp_repo.commit(f"step {step}", all=True, allow_empty=True)
        elif op == "checkout":
            has_parent = bool(tmp_repo.commit_info().parents)
            revs = ["main", "HEAD", *(["HEAD~1"] if has_parent else [])]
            workspace.checkout(tmp_repo, rng.choice(revs), force=True)
        expected = _truth(tmp_repo, truth_dir)
        assert status_of(tmp_repo)[1] == expected, (step, op)
        assert status_of(Repo.open(ws))[1] == expected, (step, op)


# -- a declared folder or table that does not exist is an empty dataset ---------------------
def dataset_status(repo: Repo, name: str = "train"):  # type: ignore[no-untyped-def]
    (ds,) = [d for d in repo.status().datasets if d.name == name]
    return ds


def test_a_dataset_declared_before_its_folder_exists_is_empty(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "ws")
    repo.add_dataset(DatasetConfig("train", "imagefolder", "train"))
    ds = dataset_status(repo)
    assert (ds.staged, ds.unstaged, ds.missing) == ([], [], "train/")
    assert repo.add() == {"train": []}
    info = repo.commit("declare train", all=True)
    assert list(repo.records("train", rev=info.id)) == []
    assert not (repo.workdir / "train").exists()  # nothing was created behind the user's back
    small(repo)  # the data arrives later
    ds = dataset_status(repo)
    assert ds.missing is None and set(kinds(ds.unstaged).values()) == {"added"}
    repo.commit("images", all=True)
    assert repo.status().clean


@pytest.mark.parametrize("snapshot", [True, False], ids=["stat-snapshot", "full-scan"])
def test_deleting_a_committed_folder_removes_every_example(tmp_repo: Repo, snapshot: bool) -> None:
    ws = small(tmp_repo).workdir
    first = tmp_repo.commit("first", all=True).id
    assert tmp_repo.snapshots.load("train") is not None
    if not snapshot:
        tmp_repo.snapshots.drop("train")
    shutil.rmtree(ws / "train")
    ds = dataset_status(tmp_repo)
    assert ds.missing == "train/" and ds.staged == []
    assert kinds(ds.unstaged) == {f"{i}.png": "removed" for i in range(6)}
    changes = tmp_repo.add()
    assert kinds(changes["train"]) == {f"{i}.png": "removed" for i in range(6)}
    assert status_of(tmp_repo) == ({f"{i}.png": "removed" for i in range(6)}, {})
    gone = tmp_repo.commit("drop every example")
    assert list(tmp_repo.records("train", rev=gone.id)) == []
    assert tmp_repo.status().clean and not (ws / "train").exists()
    workspace.checkout(tmp_repo, first)  # the folder comes back with its class folders
    assert sorted(p.relative_to(ws).as_posix() for p in (ws / "train").rglob("*.png")) == [
        f"train/{'cat' if i < 3 else 'dog'}/{i}.png" for i in range(6)
    ]
    assert tmp_repo.status().clean
    workspace.checkout(tmp_repo, gone.id)
    assert tmp_repo.status().clean and not list((ws / "train").rglob("*.png"))


def test_commit_all_stages_the_removal_of_a_deleted_folder(tmp_repo: Repo) -> None:
    ws = small(tmp_repo).workdir
    tmp_repo.commit("first", all=True)
    shutil.rmtree(ws / "train")
    info = tmp_repo.commit("drop", all=True)
    assert list(tmp_repo.records("train", rev=info.id)) == []
    assert tmp_repo.status().clean


def test_a_missing_table_is_empty_when_new_and_all_removed_when_committed(tmp_repo: Repo) -> None:
    cfg = DatasetConfig("reviews", "table", "reviews.csv", id="rid", label="y", content="text")
    tmp_repo.add_dataset(cfg)
    ds = dataset_status(tmp_repo, "reviews")
    assert (ds.staged, ds.unstaged, ds.missing) == ([], [], "reviews.csv")
    tmp_repo.commit("declare", all=True)
    path = tmp_repo.workdir / "reviews.csv"
    path.write_text("rid,y,text\nr1,pos,good\nr2,neg,bad\n")
    first = tmp_repo.commit("rows", all=True).id
    path.unlink()
    ds = dataset_status(tmp_repo, "reviews")
    assert ds.missing == "reviews.csv"
    assert kinds(ds.unstaged) == {"r1": "removed", "r2": "removed"}
    tmp_repo.commit("drop the table", all=True)
    assert tmp_repo.status().clean
    workspace.checkout(tmp_repo, first)
    assert path.read_text().splitlines()[1:] == ["r1,pos,good", "r2,neg,bad"]
    assert tmp_repo.status().clean


def test_add_turns_garbage_collection_back_on_even_when_it_fails(tmp_repo: Repo) -> None:
    import gc

    small(tmp_repo)
    tmp_repo.add()
    assert gc.isenabled()
    (tmp_repo.workdir / "train" / "cat" / "dog").mkdir(parents=True, exist_ok=True)
    (tmp_repo.workdir / "train" / "dog").mkdir(exist_ok=True)
    with pytest.raises(InvalidInputError, match=r"class folder nested"):
        tmp_repo.add()
    assert gc.isenabled()
