"""The metric hunt on real digits histories: culprit, cache, parallel workers, narrowing,
the auditor's report, and every bad input leaving the repository as it was."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from datagit import Repo
from datagit.api import bisect, hunt, hunt_report, narrow
from datagit.errors import DatagitError, InvalidInputError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "digits"))
from history import History, narrowing_history, regression_history

COMMITS, CULPRIT = 6, 4


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> History:
    """One 6-commit history (commit 4 re-labels 70% of the 3s), built once per module."""
    return regression_history(
        tmp_path_factory.mktemp("hunt") / "ws",
        commits=COMMITS,
        culprit=CULPRIT,
        base=600,
        fraction=0.7,
    )


@pytest.fixture
def hist(built: History, tmp_path: Path) -> History:
    """A private copy of the built history (its run cache included)."""
    root = tmp_path / "ws"
    shutil.copytree(built.root, root, symlinks=True)
    return History(root, built.commits, built.culprit, built.flipped)


def _start(root: Path) -> Repo:
    repo = Repo.open(root)
    bisect.start(repo, "HEAD", [f"HEAD~{COMMITS}"])
    return repo


def test_the_hunt_finds_the_culprit_by_one_judge_and_a_rerun_trains_nothing(
    hist: History,
) -> None:
    repo = _start(hist.root)
    checked_out = repo.head()
    seen = []
    out = hunt.run(repo, drop=0.015, progress=seen.append)
    assert out.first_bad == hist.culprit
    assert repo.head() == checked_out  # the hunt itself never checks anything out
    assert [t.role for t in seen[:2]] == ["bad endpoint", "good endpoint"]
    assert out.runs <= 2 + 3 and out.trained == out.runs
    log = bisect.log(repo)
    assert "# hunt: good when accuracy >=" in log and "# accuracy 0." in log
    saved = hist.root / "saved.log"
    saved.write_text(log)
    bisect.reset(repo)
    step = bisect.replay(repo, saved)  # the log replays like git's
    assert step is not None and step.first_bad == hist.culprit
    bisect.reset(repo)
    repo = _start(hist.root)
    again = hunt.run(repo, drop=0.015)
    assert again.first_bad == hist.culprit and again.trained == 0


def test_two_worker_processes_give_the_same_answer_into_the_same_cache(hist: History) -> None:
    repo = _start(hist.root)
    sequential = hunt.run(repo, drop=0.015)
    values = {t.commit: t.values for t in sequential.tested}
    bisect.reset(repo)
    shutil.rmtree(hist.root / ".datagit" / "runs")
    repo = _start(hist.root)
    parallel = hunt.run(repo, drop=0.015, jobs=2)
    assert parallel.first_bad == hist.culprit and parallel.trained == parallel.runs
    assert all(values.get(t.commit, t.values) == t.values for t in parallel.tested)  # bit-equal
    bisect.reset(repo)
    repo = _start(hist.root)
    assert hunt.run(repo, drop=0.015, jobs=2).trained == 0  # the workers' runs are cached


def test_seeds_and_the_default_noise_rule(hist: History) -> None:
    repo = _start(hist.root)
    out = hunt.run(repo, seeds=2, max_seeds=4)
    assert out.rule.mode == "noise" and out.rule.noise > 0
    ends = [t for t in out.tested if t.role != "test"]
    assert all(len(t.values) == 3 for t in ends)  # the noise is measured with ≥ 3 seeds
    tests = [t for t in out.tested if t.role == "test"]
    assert all(2 <= len(t.values) <= 4 for t in tests)
    # a commit judged unsure at the cap is skipped, never guessed
    assert all(t.verdict in ("old", "new", "skip") for t in tests)
    if out.first_bad is not None:
        assert out.first_bad == hist.culprit
    else:
        assert hist.culprit in out.only_skipped


def test_the_report_proves_its_evidence_and_an_edit_fails_verify(hist: History) -> None:
    repo = _start(hist.root)
    hunt.run(repo, drop=0.015)
    rep = hunt_report.report(repo)
    assert rep["format"] == "datagit-bisect-report/1" and rep["result"]["first_bad"] == hist.culprit
    assert rep["result"]["label_changes"][0] == {
        "from": "3",
        "to": "8",
        "count": len(hist.flipped),
    }
    assert rep["tool"]["torch"] and all(len(e["sha256"]) == 64 for e in rep["evidence"])
    assert all(r["weights_file_sha256"] and r["cached"] is False for r in rep["runs"])
    for fmt in ("json", "md", "html"):
        path = hist.root / f"report.{fmt}"
        path.write_text(hunt_report.render(rep, fmt))
        assert hunt_report.verify(repo, path).first_bad == hist.culprit
    edited = hist.root / "report.json"
    data = json.loads(edited.read_text())
    data["result"]["first_bad"] = hist.commits[1]
    edited.write_text(json.dumps(data))
    with pytest.raises(DatagitError, match="was edited"):
        hunt_report.verify(repo, edited)
    md = hist.root / "report.md"
    md.write_text(md.read_text().replace("First bad commit", "First good commit"))
    with pytest.raises(DatagitError, match="md text differs"):
        hunt_report.verify(repo, md)


def test_narrow_finds_the_harmful_flips_and_apply_stages_their_revert(tmp_path: Path) -> None:
    h = narrowing_history(tmp_path / "ws", parent_size=500, wrong=10, additions=40, harmful=20)
    repo = Repo.open(h.root)
    result = narrow.narrow(repo, commit=h.culprit, max_retrains=6)
    got = {e["id"] for e in result.harmful}
    truth = set(h.flipped)
    assert len(got & truth) >= 0.9 * len(truth) and len(got & truth) >= 0.8 * len(got)
    assert result.retrains <= 6 and result.changes == 70
    e = result.harmful[0]
    assert (e["old_label"], e["new_label"], e["annotator"]) == ("3", "8", "bob")
    again = narrow.narrow(repo, commit=h.culprit, max_retrains=6)
    assert again.harmful == result.harmful  # every retrain came from the run cache
    applied = narrow.apply(repo, result)
    assert applied["reverted"] == len(result.harmful)
    staged = repo.status().datasets
    train = next(d for d in staged if d.name == "train")
    assert {c.id for c in train.staged} == got and not train.unstaged
    assert all(c.old.label == "8" and c.new.label == "3" for c in train.staged)  # type: ignore[union-attr]


def test_bad_inputs_are_one_line_errors_that_change_nothing(hist: History) -> None:
    repo = _start(hist.root)
    toml = hist.root / "datagit.toml"
    saved = toml.read_bytes()
    toml.write_text(saved.decode().split("[harness]")[0])  # as a checkout without [harness]
    cfg, source = hunt.config_from(repo, None, None)  # the judge is the start commit's
    assert cfg.model == "logreg" and "bisect start" in source
    toml.write_bytes(saved)
    refs = dict(repo.git.refs("refs/"))
    log = bisect.log(repo)
    cases = [
        ({"metric": "recall"}, "unknown metric 'recall'"),
        ({"metric": "macro_f1", "config_file": str(_config(hist.root))}, "not among"),
        ({"metric": "per_class_accuracy.11"}, "no class '11'"),
        ({"threshold": 0.0}, "bad endpoint .* is not bad"),
        ({"threshold": 1.0}, "good endpoint .* is not good"),
        ({"executor": "ray", "address": "127.0.0.1:1"}, "cannot reach a Ray cluster|needs Ray"),
    ]
    for opts, message in cases:
        with pytest.raises(DatagitError, match=message) as exc:
            hunt.run(repo, **opts)  # type: ignore[arg-type]
        assert "\n" not in exc.value.message
        assert repo.git.refs("refs/") == refs and bisect.log(repo) == log
    bisect.reset(repo)
    me = repo.identity()  # a side branch: the data of commit 2, forked from commit 0
    side = repo.git.create_commit(
        repo.git.commit(hist.commits[2]).tree, [hist.commits[0]], "side", me, me
    )
    repo.git.update_ref("refs/heads/side", side)
    bisect.start(repo, hist.commits[3], ["side"])
    with pytest.raises(InvalidInputError, match="not an ancestor"):
        hunt.run(repo, drop=0.015)
    bisect.reset(repo)
    (hist.root / ".datagit" / "HUNT").unlink(missing_ok=True)
    with pytest.raises(DatagitError, match="no first bad commit to narrow"):
        narrow.narrow(repo)
    with pytest.raises(DatagitError, match="no finished hunt"):
        hunt_report.report(repo)


def _config(root: Path) -> Path:
    path = root / "only-accuracy.toml"
    path.write_text(
        '[harness]\ntrain = "train"\neval = "eval"\nmodel = "logreg"\nimage_mode = "L"\n'
        'epochs = 2\nmetrics = ["accuracy"]\n'
    )
    return path
