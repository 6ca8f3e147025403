"""The history commands end to end: diff, log/blame per example, merge/resolve, credit, bisect."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from testkit import Cli, digits_pngs, write_tree

from datagit import Repo


def move(repo: Repo, example: str, src: str, dst: str) -> None:
    (repo.workdir / "train" / dst).mkdir(exist_ok=True)
    (repo.workdir / "train" / src / example).rename(repo.workdir / "train" / dst / example)


@pytest.fixture
def two_commits(tmp_repo: Repo, cli: Cli) -> Repo:
    """40 real digits committed by annotator al, then two relabels, a removal, an add, a rename."""
    pngs = digits_pngs(41)
    write_tree(
        tmp_repo.workdir, {f"train/{t}/img_{i:04d}.png": p for i, (p, t) in enumerate(pngs[:40])}
    )
    cli("commit", "-a", "-m", "first 40", "--annotator", "al")
    move(tmp_repo, "img_0000.png", "0", "8")
    move(tmp_repo, "img_0010.png", "0", "8")
    (tmp_repo.workdir / "train/1/img_0001.png").unlink()
    write_tree(tmp_repo.workdir, {"train/5/img_0040.png": pngs[40][0]})
    (tmp_repo.workdir / "train/2/img_0002.png").rename(tmp_repo.workdir / "train/2/renamed.png")
    return tmp_repo


def test_diff_workspace_cached_and_commits(two_commits: Repo, cli: Cli) -> None:
    out = cli("diff").output
    assert "train: 1 added, 1 removed, 2 relabeled, 1 renamed" in out
    assert "0 → 8  2" in out
    assert "L  train/img_0000.png  0 → 8" in out
    assert "R  train/img_0002.png → train/renamed.png" in out
    assert "no changes" in cli("diff", "--cached").output
    cli("add", "train")
    staged = json.loads(cli("diff", "--cached", "--json").output)
    assert staged["new"] == ":stage"
    assert staged["datasets"]["train"]["summary"]["relabeled"] == 2
    cli("commit", "-m", "fixes", "--annotator", "bo")
    data = json.loads(cli("diff", "HEAD~1", "HEAD", "--json", "--", "train").output)
    t = data["datasets"]["train"]
    assert t["added"] == ["img_0040.png"] and t["removed"] == ["img_0001.png"]
    assert {"id": "img_0000.png", "from": "0", "to": "8"} in t["relabeled"]
    assert t["renamed"] == [{"from": "img_0002.png", "to": "renamed.png"}]
    assert t["transitions"] == [{"from": "0", "to": "8", "count": 2}]
    assert t["label_deltas"] == {"0": -2, "1": -1, "5": 1, "8": 2}
    assert set(t["summary"]) == {"added", "removed", "relabeled", "modified", "renamed"}
    assert data["old"] == two_commits.resolve("HEAD~1")
    names = cli("diff", "HEAD~1..HEAD", "--name-status").output.splitlines()
    assert "L\ttrain/img_0010.png  0 → 8" in names and "D\ttrain/img_0001.png  (1)" in names
    stat = cli("diff", "HEAD~1", "HEAD", "--stat").output
    assert "label transitions" in stat and "img_0000" not in stat
    only = json.loads(cli("diff", "HEAD~1", "HEAD", "--label", "5", "--json").output)
    assert only["datasets"]["train"]["added"] == ["img_0040.png"]
    assert only["datasets"]["train"]["relabeled"] == []
    by_id = json.loads(cli("diff", "HEAD~1", "HEAD", "--id", "img_001*", "--json").output)
    assert [r["id"] for r in by_id["datasets"]["train"]["relabeled"]] == ["img_0010.png"]
    by_ann = json.loads(cli("diff", "HEAD~1", "HEAD", "--annotator", "bo", "--json").output)
    assert by_ann["datasets"]["train"]["summary"]["relabeled"] == 2


def test_diff_errors_are_one_line(two_commits: Repo, cli: Cli) -> None:
    r = cli("diff", "nope", "HEAD", ok=False)
    assert r.exit_code != 0 and "unknown revision 'nope'" in r.output
    r = cli("diff", "HEAD", "HEAD", "--", "missing", ok=False)
    assert r.exit_code != 0 and "no dataset named 'missing'" in r.output


def test_log_and_blame_one_example(two_commits: Repo, cli: Cli) -> None:
    cli("commit", "-a", "-m", "fix zeros", "--annotator", "bo")
    move(two_commits, "img_0000.png", "8", "6")
    cli("commit", "-a", "-m", "fix again", "--annotator", "cy")
    out = cli("log", "--oneline", "--", "train/img_0000.png").output.splitlines()
    assert len(out) == 3
    assert "[cy]  relabeled 8 → 6  fix again" in out[0]
    assert "[al]  added (0)  first 40" in out[2]
    same = cli("log", "--example", "img_0000.png", "--json").output
    assert [e["annotator"] for e in json.loads(same)] == ["cy", "bo", "al"]
    full = cli("log", "--example", "img_0000.png", "--", "train").output
    assert "train/img_0000.png: relabeled 8 → 6 [annotator cy]" in full
    assert len(cli("log", "--oneline", "--", "train/img_0005.png").output.splitlines()) == 1
    events = json.loads(cli("blame", "train/img_0000.png", "--json").output)
    assert [(e["kind"], e["old"] and e["old"]["label"], e["new"]["label"]) for e in events] == [
        ("relabeled", "8", "6"),
        ("relabeled", "0", "8"),
        ("added", None, "0"),
    ]
    assert "Ada Tester [cy]  relabeled 8 → 6" in cli("blame", "train/img_0000.png").output


def test_blame_dataset(two_commits: Repo, cli: Cli) -> None:
    first = two_commits.head()
    cli("commit", "-a", "-m", "fixes", "--annotator", "bo")
    rows = {r["id"]: r for r in json.loads(cli("blame", "train", "--json").output)}
    assert len(rows) == 40
    zero = rows["img_0000.png"]
    assert (zero["label"], zero["annotator"], zero["added_in"]) == ("8", "bo", first)
    assert zero["commit"] == two_commits.head() and zero["author"] == "Ada Tester"
    assert (rows["img_0005.png"]["commit"], rows["img_0005.png"]["annotator"]) == (first, "al")
    assert rows["renamed.png"]["added_in"] == first  # a rename keeps its history (#14)
    eights = cli("blame", "train", "--label", "8").output.splitlines()
    assert len(eights) == sum(1 for r in rows.values() if r["label"] == "8")
    old = json.loads(cli("blame", "train", "--rev", "HEAD~1", "--json").output)
    assert {r["commit"] for r in old} == {first}
    r = cli("blame", "nope/x", ok=False)
    assert r.exit_code != 0 and "DATASET or DATASET/ID" in r.output


def _diverge(repo: Repo, cli: Cli) -> None:
    """main and side both edit the committed digits: one disjoint change each, two conflicts."""
    write_tree(
        repo.workdir, {f"train/{t}/img_{i:04d}.png": p for i, (p, t) in enumerate(digits_pngs(12))}
    )
    cli("commit", "-a", "-m", "base", "--annotator", "al")
    cli("switch", "-c", "side")
    move(repo, "img_0003.png", "3", "9")  # conflict: main says 8
    move(repo, "img_0004.png", "4", "1")  # side only
    (repo.workdir / "train/5/img_0005.png").unlink()  # conflict: main relabels it
    cli("commit", "-a", "-m", "side fixes", "--annotator", "bo")
    cli("switch", "main")
    move(repo, "img_0003.png", "3", "8")
    move(repo, "img_0005.png", "5", "6")
    move(repo, "img_0006.png", "6", "0")  # main only
    cli("commit", "-a", "-m", "main fixes", "--annotator", "cy")


def test_merge_conflicts_resolve_and_commit(tmp_repo: Repo, cli: Cli) -> None:
    _diverge(tmp_repo, cli)
    main_head = tmp_repo.head()
    r = cli("merge", "side", ok=False)
    assert r.exit_code == 1 and "2 conflicts" in r.output
    assert "train/img_0003.png  ours: 8 [" in r.output and "by cy" in r.output
    assert "theirs: 9 [" in r.output and "by bo (Ada Tester, " in r.output
    status = json.loads(cli("status", "--json").output)
    assert status["conflicts"] == ["train/img_0003.png", "train/img_0005.png"]
    listed = json.loads(cli("merge", "--list", "--json").output)
    assert listed[1]["theirs"] is None and listed[1]["ours"]["label"] == "6"
    assert listed[0]["theirs_commit"] == tmp_repo.resolve("side")
    assert listed[0]["ours_commit"] == main_head and listed[0]["ours_author"] == "Ada Tester"
    assert (tmp_repo.workdir / "train/1/img_0004.png").exists()  # the disjoint change is in
    r = cli("commit", "-m", "too soon", ok=False)
    assert r.exit_code != 0 and "unresolved merge conflicts" in r.output
    cli("resolve", "train/img_0003.png", "--label", "7")
    assert (tmp_repo.workdir / "train/7/img_0003.png").exists()
    assert "0 conflicts left" in cli("resolve", "train/img_0005.png", "--theirs").output
    assert not (tmp_repo.workdir / "train/6/img_0005.png").exists()
    cli("commit", "-m", "merge side")
    head = tmp_repo.commit_info()
    assert head.parents == (main_head, tmp_repo.resolve("side"))
    labels = {r.id: r.label for r in tmp_repo.records("train")}
    assert (labels["img_0003.png"], labels["img_0004.png"], labels["img_0006.png"]) == (
        "7",
        "1",
        "0",
    )
    assert "img_0005.png" not in labels
    assert json.loads(cli("status", "--json").output)["clean"]


def test_merge_ours_theirs_abort_and_fast_forward(tmp_repo: Repo, cli: Cli) -> None:
    _diverge(tmp_repo, cli)
    before = {r.id: r.label for r in tmp_repo.records("train", ":workspace")}
    cli("merge", "side", ok=False)
    assert "aborted" in cli("merge", "--abort").output
    assert {r.id: r.label for r in tmp_repo.records("train", ":workspace")} == before
    assert json.loads(cli("status", "--json").output)["clean"]
    cli("merge", "side", ok=False)
    assert "Resolved 2 conflicts with ours" in cli("merge", "--ours").output
    cli("commit", "-m", "ours")
    labels = {r.id: r.label for r in tmp_repo.records("train")}
    assert labels["img_0003.png"] == "8" and labels["img_0004.png"] == "1"
    # --theirs at merge time decides conflicts and commits at once
    cli("branch", "other", "HEAD~1")
    cli("switch", "other")
    out = json.loads(cli("merge", "side", "--theirs", "--json").output)
    assert out["result"] == "merged" and out["conflicts"] == []
    assert {r.id: r.label for r in tmp_repo.records("train")}["img_0003.png"] == "9"
    # fast-forward and up to date
    cli("branch", "behind", "side")
    cli("switch", "behind")
    assert "Fast-forward" in cli("merge", "main").output
    assert tmp_repo.head() == tmp_repo.resolve("main")
    assert "Already up to date" in cli("merge", "side").output
    r = cli("resolve", "train/x", "--label", "1", ok=False)
    assert r.exit_code != 0 and "no merge in progress" in r.output


def test_resolve_from_the_edited_workspace(tmp_repo: Repo, cli: Cli) -> None:
    _diverge(tmp_repo, cli)
    cli("merge", "side", ok=False)
    move(tmp_repo, "img_0003.png", "8", "2")
    assert "0 conflicts left" in cli("resolve").output
    cli("commit", "-m", "by hand")
    assert {r.id: r.label for r in tmp_repo.records("train")}["img_0003.png"] == "2"


def test_credit(two_commits: Repo, cli: Cli) -> None:
    cli("commit", "-a", "-m", "fixes", "--annotator", "bo")
    data = json.loads(cli("credit", "--json").output)
    authors = {a["name"]: a for a in data["authors"]}
    annot = {a["name"]: a for a in data["annotators"]}
    assert authors["Ada Tester"]["examples_added"] == 41  # 40 and one new; a rename adds none
    assert annot["al"]["labels_set"] == 40 and annot["al"]["labels_overturned"] == 2
    assert annot["bo"]["labels_standing"] == 3  # the renamed example keeps al's label
    assert annot["al"]["labels_standing"] == 37
    assert set(data["authors"][0]) >= {
        "examples_added",
        "labels_set",
        "labels_standing",
        "labels_overturned",
        "content_bytes",
    }
    table = cli("credit", "--", "train").output
    assert "Annotators:" in table and "overturned" in table
    later = json.loads(cli("credit", "--since", "2999-01-01", "--json").output)
    assert later == {"authors": [], "annotators": [], "machines": []}
    r = cli("credit", "--since", "yesterday", ok=False)
    assert r.exit_code != 0 and "not a date" in r.output


def test_bisect_commands(tmp_repo: Repo, cli: Cli, tmp_path: Path) -> None:
    pngs = digits_pngs(40)
    ids = []
    for k in range(10):
        write_tree(
            tmp_repo.workdir,
            {f"train/{t}/img_{i:04d}.png": p for i, (p, t) in enumerate(pngs) if i // 4 == k},
        )
        if k == 6:
            move(tmp_repo, "img_0001.png", "1", "7")
        cli("commit", "-a", "-m", f"batch {k}")
        ids.append(tmp_repo.head())
    out = cli("bisect", "start", "HEAD", ids[0]).output
    assert "Bisecting: " in out and "left to test after this (roughly 2 steps)" in out
    assert "waiting" not in out
    check = tmp_path / "check.py"
    check.write_text("import os, sys; sys.exit(int(os.path.exists('train/7/img_0001.png')))\n")
    out = cli("bisect", "run", sys.executable, str(check)).output
    assert f"{ids[6]} is the first bad commit" in out
    assert "train: 4 added, 1 relabeled" in out and "1 → 7  1" in out
    log = cli("bisect", "log").output
    assert log.startswith("datagit bisect start") and f"datagit bisect bad {ids[-1]}" in log
    saved = tmp_path / "saved.log"
    saved.write_text(log)
    assert "Bisect reset; back at main" in cli("bisect", "reset").output
    assert f"{ids[6]} is the first bad commit" in cli("bisect", "replay", str(saved)).output
    cli("bisect", "reset")
    # manual marks with custom terms, and skip
    cli("bisect", "start", "--term-old", "fast", "--term-new", "slow")
    assert "old: fast\nnew: slow" in cli("bisect", "terms").output
    assert "waiting for both fast and slow" in cli("bisect", "slow", ids[-1]).output
    cli("bisect", "fast", ids[0])
    assert "Bisecting" in cli("bisect", "skip").output
    r = cli("bisect", "good", ok=False)
    assert r.exit_code != 0 and "not a bisect term" in r.output
    cli("bisect", "reset")
    r = cli("bisect", "good", ok=False)
    assert r.exit_code != 0 and "not bisecting" in r.output
