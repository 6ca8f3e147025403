"""relabel, label --from-run, suggest and suspects from the command line; unlabelled
examples through status, diff, blame and credit; bad input changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testkit import Cli, digits_pngs, write_tree

from datagit import Repo
from datagit.core.config import DatasetConfig


def _snapshot(repo: Repo) -> tuple[str | None, str | None, list[str]]:
    stage = repo.dotdir / "STAGE"
    files = sorted(
        str(p.relative_to(repo.workdir))
        for p in repo.workdir.rglob("*")
        if ".datagit" not in p.parts
    )
    return repo.head(), stage.read_text() if stage.exists() else None, files


@pytest.fixture
def images(tmp_repo: Repo, cli: Cli) -> Repo:
    write_tree(
        tmp_repo.workdir, {f"train/{t}/d{i:03d}.png": p for i, (p, t) in enumerate(digits_pngs(20))}
    )
    write_tree(tmp_repo.workdir, {"train/loose.png": digits_pngs(21)[20][0]})
    cli("commit", "-a", "-m", "digits", "--annotator", "al")
    return tmp_repo


def test_unlabelled_file_through_status_diff_blame(images: Repo, cli: Cli) -> None:
    assert images.record("train", "loose.png").label is None
    assert "(unlabelled)" in cli("blame", "train/loose.png").output
    write_tree(images.workdir, {"train/new.png": b"not yet labelled"})
    assert "train/new.png  ((unlabelled))" in cli("status").output
    assert "A  train/new.png  ((unlabelled))" in cli("diff").output


def test_relabel_moves_files_and_stages_with_the_annotator(images: Repo, cli: Cli) -> None:
    out = cli("relabel", "train/d000.png", "7", "train/loose.png", "1", "--annotator", "bo")
    assert (
        "relabeled  train/d000.png  0 → 7" in out.output and "2 labels staged as bo" in out.output
    )
    assert (images.workdir / "train/7/d000.png").is_file()
    assert (images.workdir / "train/1/loose.png").is_file()
    assert not (images.workdir / "train/loose.png").exists()
    cli("commit", "-m", "fixes")
    assert images.record("train", "d000.png").annotator == "bo"
    assert images.record("train", "loose.png").label == "1"
    assert "nothing to commit" in cli("status").output
    assert "[bo]" in cli("blame", "train/d000.png").output


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["train/nope.png", "3"], "no example 'nope.png' in dataset 'train'"),
        (["train/d000.png", "a/b"], "train/d000.png: label 'a/b' contains a path separator"),
        (["train/d000.png"], "'train/d000.png' has no label"),
        (["d000.png", "3"], "'d000.png' is not DATASET/ID"),
        (["other/d000.png", "3"], "no dataset named 'other'"),
        (["--from", "missing.json"], "cannot read missing.json"),
        (["train/d001.png", "3", "train/nope.png", "4"], "no example 'nope.png'"),
    ],
)
def test_relabel_bad_input_changes_nothing(
    images: Repo, cli: Cli, args: list[str], match: str
) -> None:
    before = _snapshot(images)
    r = cli("relabel", *args, ok=False)
    assert r.exit_code != 0 and match in r.output
    assert len([x for x in r.output.splitlines() if x.startswith("error:")]) == 1
    assert _snapshot(images) == before


def test_relabel_a_table_rewrites_cells(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    repo = Repo.init(tmp_path / "t")
    (repo.workdir / "reviews.csv").write_text("id,text,label\na,good,pos\nb,bad,\n")
    repo.add_dataset(
        DatasetConfig(name="reviews", layout="table", path="reviews.csv", content="text")
    )
    dg = run_cli(repo.workdir)
    dg("commit", "-a", "-m", "reviews")
    assert repo.record("reviews", "b").label is None
    dg("relabel", "reviews/b", "neg", "reviews/a", "neg", "--annotator", "cy")
    assert (repo.workdir / "reviews.csv").read_text() == "id,text,label\na,good,neg\nb,bad,neg\n"
    dg("commit", "-m", "labels")
    assert repo.record("reviews", "b").annotator == "cy"
    r = dg("relabel", "reviews/zz", "neg", ok=False)
    assert r.exit_code != 0 and "no example 'zz' in dataset 'reviews'" in r.output


def test_relabel_from_a_suspects_file(images: Repo, cli: Cli, tmp_path: Path) -> None:
    doc = {
        "dataset": "train",
        "suspects": [
            {"id": "d001.png", "suggested": "4", "issue": True},
            {"id": "d002.png", "suggested": "5", "issue": False},
        ],
    }
    (tmp_path / "s.json").write_text(json.dumps(doc))
    out = cli("relabel", "--from", str(tmp_path / "s.json"), "--annotator", "al", "--json")
    assert [e["id"] for e in json.loads(out.output)] == ["d001.png"]
    (tmp_path / "bad.json").write_text("{}")
    r = cli("relabel", "--from", str(tmp_path / "bad.json"), ok=False)
    assert r.exit_code != 0 and "not a suspects JSON file" in r.output


FAST = """
[harness]
train = "train"
eval = "train"
model = "logreg"
image_mode = "L"
epochs = 2
"""


def test_suspects_suggest_and_label_from_the_cli(tmp_repo: Repo, cli: Cli) -> None:
    write_tree(
        tmp_repo.workdir,
        {f"train/{t}/d{i:03d}.png": p for i, (p, t) in enumerate(digits_pngs(100))},
    )
    write_tree(
        tmp_repo.workdir, {f"train/u{i}.png": p for i, (p, _) in enumerate(digits_pngs(110)[100:])}
    )
    toml = tmp_repo.workdir / "datagit.toml"
    toml.write_text(toml.read_text() + FAST)
    cli("commit", "-a", "-m", "digits")
    r = cli("suspects", "--folds", "12", ok=False)
    assert r.exit_code != 0 and "fewer than --folds 12" in r.output
    data = json.loads(cli("suspects", "--folds", "2", "--top", "3", "--json").output)
    assert data["examples"] == 100 and len(data["suspects"]) == 3 and len(data["runs"]) == 2
    assert (
        "suspected of 100 labelled examples (0/2 folds trained)"
        in cli("suspects", "--folds", "2").output
    )
    r = cli("suggest", "train", "--budget", "2", "--strategy", "random", ok=False)
    assert r.exit_code != 0 and "unknown strategy 'random'" in r.output
    s = json.loads(cli("suggest", "train", "--budget", "4", "--json").output)
    assert len(s["suggestions"]) == 4 and s["unlabelled"] == 10
    before = _snapshot(tmp_repo)
    r = cli("label", "train", "--from-run", "zzzz", ok=False)
    assert r.exit_code != 0 and "no run with id 'zzzz'" in r.output
    assert _snapshot(tmp_repo) == before
    out = cli("label", "train", "--from-run", s["run"], "--min-confidence", "0").output
    assert "10 labels staged as model:" in out and "0 left unlabelled" in out
    diff = cli("diff", "--cached").output
    assert "10 labels set by a model (model:" in diff and f"[model:{s['run']}]" in diff
    cli("commit", "-m", "machine labels")
    credit = cli("credit").output
    assert "Machine labels" in credit and f"model:{s['run']}" in credit
    assert json.loads(cli("credit", "--json").output)["machines"][0]["labels_set"] == 10


def test_checkout_moves_an_example_back_out_of_its_class_folder(images: Repo, cli: Cli) -> None:
    cli("relabel", "train/loose.png", "4", "--annotator", "bo")
    cli("commit", "-m", "label the loose one")
    cli("checkout", "HEAD~1")
    assert (images.workdir / "train/loose.png").is_file()
    assert not (images.workdir / "train/4/loose.png").exists()
    assert "nothing to commit" in cli("status").output
    cli("switch", "main")
    assert (images.workdir / "train/4/loose.png").is_file()
    assert "nothing to commit" in cli("status").output
