"""`check`: duplicates and train/eval leakage on a real repository, and the commit policy."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.api import check
from datagit.core.config import DatasetConfig
from datagit.errors import ConflictError, InvalidInputError
from datagit.progress import Event


def enlarged(png: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).resize((64, 64), Image.Resampling.BILINEAR).save(buf, "PNG")
    return buf.getvalue()


def reencoded(png: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("L").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def two_datasets(repo: Repo) -> Repo:
    """train: digits 0–39 plus a second copy of digit 0 under another label;
    eval: digits 40–59 plus a copy of train's digit 3 (a leak)."""
    repo.add_dataset(DatasetConfig(name="eval", layout="imagefolder", path="eval"))
    d = digits_pngs(60)
    files = {f"train/{t}/img_{i:04d}.png": png for i, (png, t) in enumerate(d[:40])}
    files["train/7/dup_of_0.png"] = d[0][0]
    files |= {f"eval/{t}/ev_{i:04d}.png": png for i, (png, t) in enumerate(d[40:], 40)}
    files[f"eval/{d[3][1]}/leaked.png"] = d[3][0]
    write_tree(repo.workdir, files)
    repo.commit("train and eval", all=True)
    return repo


def test_check_finds_duplicates_within_and_leaks_across(tmp_repo: Repo) -> None:
    repo = two_datasets(tmp_repo)
    d = digits_pngs(60)
    report = check.check(repo)
    assert report.datasets == ("eval", "train")
    assert report.examples == 62
    assert [[(m.dataset, m.id, m.label) for m in g.members] for g in report.within] == [
        [("train", "dup_of_0.png", "7"), ("train", "img_0000.png", str(d[0][1]))]
    ]
    assert report.within[0].labels_disagree
    assert [[(m.dataset, m.id) for m in g.members] for g in report.leaks] == [
        [("eval", "leaked.png"), ("train", "img_0003.png")]
    ]
    only_train = check.check(repo, ["train"])
    assert only_train.leaks == () and len(only_train.within) == 1
    assert check.check(repo, ["eval"]).clean


def test_check_at_an_older_revision_and_bad_names(tmp_repo: Repo) -> None:
    repo = two_datasets(tmp_repo)
    (repo.workdir / "eval" / str(digits_pngs(4)[3][1]) / "leaked.png").unlink()
    repo.commit("drop the leak", all=True)
    assert check.check(repo).leaks == ()
    assert len(check.check(repo, rev="HEAD~1").leaks) == 1
    with pytest.raises(InvalidInputError, match="no dataset named 'nope' at HEAD"):
        check.check(repo, ["nope"])
    with pytest.raises(InvalidInputError, match="distance 40"):
        check.check(repo, near=True, distance=40)


def test_near_duplicates_find_a_reencoded_image_and_report_progress(tmp_repo: Repo) -> None:
    repo = tmp_repo
    repo.add_dataset(DatasetConfig(name="eval", layout="imagefolder", path="eval"))
    d = digits_pngs(12)
    files = {f"train/{t}/{i}.png": enlarged(png) for i, (png, t) in enumerate(d[:10])}
    files[f"eval/{d[4][1]}/copy.jpg"] = reencoded(enlarged(d[4][0]))
    files["eval/x/notes.png"] = b"not an image"  # skipped by the perceptual hash
    write_tree(repo.workdir, files)
    repo.commit("images", all=True)
    events: list[Event] = []
    report = check.check(repo, near=True, progress=events.append)
    assert report.leaks == ()  # different bytes …
    together = [
        g for g in report.near if ("eval", "copy.jpg") in {(m.dataset, m.id) for m in g.members}
    ]
    assert together and ("train", "4.png") in {(m.dataset, m.id) for m in together[0].members}
    assert events[0] == Event("hashing images", 0, 12) and events[-1].finished
    assert events[-1].done == 12


def test_commit_policy_error_refuses_a_leak_and_changes_nothing(tmp_repo: Repo) -> None:
    repo = two_datasets(tmp_repo)
    cfg = repo.workdir / "datagit.toml"
    cfg.write_text(cfg.read_text() + '\n[check]\nleakage = "error"\ndatasets = ["train", "eval"]\n')
    write_tree(repo.workdir, {"eval/1/another.png": digits_pngs(6)[5][0]})
    head, refs = repo.head(), repo.git.refs()
    with pytest.raises(ConflictError, match="2 examples leak across datasets"):
        repo.commit("leak more", all=True)
    assert repo.head() == head and repo.git.refs() == refs
    (repo.workdir / "eval" / "1" / "another.png").unlink()
    (repo.workdir / "eval" / str(digits_pngs(4)[3][1]) / "leaked.png").unlink()
    repo.commit("no leaks now", all=True)  # the policy passes a clean commit
    assert repo.head() != head


def test_commit_policy_limited_to_named_datasets_and_off_by_default(tmp_repo: Repo) -> None:
    repo = two_datasets(tmp_repo)  # committed with a leak: no [check] table, no refusal
    cfg = repo.workdir / "datagit.toml"
    cfg.write_text(cfg.read_text() + '\n[check]\nleakage = "error"\ndatasets = ["train"]\n')
    repo.commit("policy on train alone: one dataset cannot leak", all=True)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('leakage = "sometimes"', "leakage = 'sometimes' is not one of off, warn, error"),
        ('leakage = "error"\nwho = 1', "unknown key 'who'"),
        ('leakage = "error"\ndatasets = "train"', "datasets must be a list"),
    ],
)
def test_bad_check_tables_are_refused_at_commit(tmp_repo: Repo, table: str, message: str) -> None:
    repo = two_datasets(tmp_repo)
    cfg = repo.workdir / "datagit.toml"
    cfg.write_text(cfg.read_text() + f"\n[check]\n{table}\n")
    head = repo.head()
    with pytest.raises(InvalidInputError, match=message):
        repo.commit("bad policy", all=True)
    assert repo.head() == head


def test_check_on_text_tables_compares_the_text(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "ws")
    (repo.workdir / "train.csv").write_text("id,text,label\n1,good film,pos\n2,bad film,neg\n")
    (repo.workdir / "eval.csv").write_text("id,text,label\n9,good film,pos\n")
    for name in ("train", "eval"):
        repo.add_dataset(
            DatasetConfig(name=name, layout="table", path=f"{name}.csv", content="text")
        )
    repo.commit("tables", all=True)
    leaks = check.check(repo).leaks
    assert [[(m.dataset, m.id) for m in g.members] for g in leaks] == [
        [("eval", "9"), ("train", "1")]
    ]
