"""Run cache and determinism: same data + config + seed → the same run, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

from harness_helpers import FAST, make_repo, run_python, set_harness
from testkit import Cli

from datagit.api import harness
from datagit.harness.runs import RunStore


def test_train_then_cached_eval(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    first = harness.train(repo)
    assert not first.cached
    assert first.metrics["accuracy"] > 0.8
    assert set(first.metrics) >= {"accuracy", "per_class_accuracy", "macro_f1", "loss"}
    again = harness.evaluate(repo)
    assert again.cached and again.id == first.id and again.metrics == first.metrics
    outputs = again.outputs()
    assert len(outputs) == first.meta["eval"]["examples"] == 60
    assert [o["id"] for o in outputs] == sorted(o["id"] for o in outputs)
    assert again.probs().shape == (60, 10)
    weights = again.weights()
    assert weights["1.weight"].shape == (10, 64)
    assert again.classes == [str(d) for d in range(10)]


def test_no_cache_retrains_to_the_same_weights(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    a = harness.train(repo)
    b = harness.train(repo, no_cache=True)
    assert not b.cached and b.id == a.id
    assert b.meta["weights_sha256"] == a.meta["weights_sha256"]


def test_key_follows_data_config_and_seed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    base = harness.train(repo)
    assert harness.train(repo, seed=1).id != base.id
    set_harness(repo, FAST.replace("epochs = 3", "epochs = 2"))
    assert harness.plan(repo).key.id != base.id
    set_harness(repo, FAST.replace("batch_size = 32", "batch_size = 32\nnum_workers = 0"))
    assert harness.plan(repo).key.id == base.id  # speed settings do not change the key
    # a commit that leaves the data alone reuses the run; a re-label does not
    (repo.workdir / "notes.txt").write_text("x")
    src = next((repo.workdir / "train/3").iterdir())
    src.rename(repo.workdir / "train/8" / src.name)
    repo.commit("relabel one 3 as 8", all=True)
    assert harness.plan(repo).key.id != base.id
    assert harness.plan(repo, "HEAD~1").key.id == base.id
    assert harness.evaluate(repo, "HEAD~1").cached


def test_eval_pinned_to_a_revision(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    first = repo.head()
    for p in list((repo.workdir / "eval/1").iterdir())[:3]:
        p.unlink()
    repo.commit("drop 3 eval images", all=True)
    set_harness(repo, FAST + f'eval_rev = "{first}"\n')
    run = harness.train(repo)
    assert run.meta["eval"]["commit"] == first
    assert run.meta["eval"]["examples"] == 60


DETERMINISM = """
import json, sys
from click.testing import CliRunner
from datagit.cli import cli
r = CliRunner().invoke(cli, ["train", "--no-cache", "--json"], catch_exceptions=False)
assert r.exit_code == 0, r.output
out = json.loads(r.stdout)
print(json.dumps({"sha": out["weights_sha256"], "metrics": out["metrics"]}))
"""


def test_bit_identical_weights_in_two_processes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", FAST.replace('"logreg"', '"mlp"\nhidden = [32]'))
    results = []
    for _ in range(2):
        proc = run_python(DETERMINISM, repo.workdir)
        assert proc.returncode == 0, proc.stderr
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1]
    here = harness.train(repo)  # this process, cached from the subprocesses
    assert here.cached and here.meta["weights_sha256"] == results[0]["sha"]


NO_TORCH = """
import sys
from click.testing import CliRunner
from datagit.cli import cli
runner = CliRunner()
for args in (["status"], ["eval", "--json"], ["runs"], ["--help"], ["train", "--help"]):
    r = runner.invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0, (args, r.output)
assert "torch" not in sys.modules, "torch was imported"
print("ok")
"""


def test_status_and_cached_eval_do_not_import_torch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    harness.train(repo)
    proc = run_python(NO_TORCH, repo.workdir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_cli_train_eval_runs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    cli = Cli(repo.workdir)
    out = cli("train").stdout
    assert "accuracy" in out and "trained in" in out
    run_id = out.split()[1]
    ev = json.loads(cli("eval", "--json").stdout)
    assert ev["cached"] is True and ev["id"] == run_id
    assert "per_class_accuracy" in ev["metrics"]
    assert "cached" in cli("eval", "--per-class").output
    listing = cli("runs").output
    assert run_id in listing
    shown = cli("runs", "show", run_id[:6]).output
    assert "highest-loss eval examples" in shown and "weights" in shown
    shown_json = json.loads(cli("runs", "show", run_id, "--json").stdout)
    assert len(shown_json["outputs"]) == 60
    bad = cli("runs", "show", "zzzz", ok=False)
    assert bad.exit_code == 1 and "no run with id 'zzzz'" in bad.output


def test_runs_gc_drops_runs_of_unreachable_data(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    live = harness.train(repo)
    store = RunStore(repo.dotdir / "runs")
    meta = {**live.meta, "key": {**live.meta["key"], "train_tree": "0" * 40}}
    store.save("deadbeefdeadbeef", meta, lambda folder: None)
    (repo.dotdir / "runs" / ".tmp-crashed").mkdir()
    cli = Cli(repo.workdir)
    assert "kept 1 runs, removed 1" in cli("runs", "gc").output
    assert [r.id for r in harness.runs(repo)] == [live.id]
    assert not (repo.dotdir / "runs" / ".tmp-crashed").exists()
    assert "kept 0 runs, removed 1" in cli("runs", "gc", "--all").output


def test_runs_gc_keeps_subset_runs_of_reachable_commits(tmp_path: Path) -> None:
    """A fold or narrowing run (data named `records:<sha256>`) lives while its commit does."""
    repo = make_repo(tmp_path / "ws")
    part = harness.train(repo, train_view=repo.dataset("train").subset(lambda r: r.id < "d0150"))
    assert part.meta["key"]["train_tree"].startswith("records:")
    store = RunStore(repo.dotdir / "runs")
    gone = {**part.meta, "train": {**part.meta["train"], "commit": "0" * 40}}
    store.save("feedfacefeedface", gone, lambda folder: None)
    assert harness.gc(repo) == harness.RunsGcReport(kept=1, removed=1)
    assert [r.id for r in harness.runs(repo)] == [part.id]


def test_config_file_option(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    other = tmp_path / "other.toml"
    other.write_text(FAST.replace("epochs = 3", "epochs = 1"))
    cli = Cli(repo.workdir)
    one = json.loads(cli("eval", "--config", str(other), "--json").stdout)
    assert one["config"]["epochs"] == 1
    assert one["id"] != harness.plan(repo).key.id


def test_a_run_replaced_is_swapped_whole_and_a_killed_swap_leaves_no_half_run(
    tmp_path: Path,
) -> None:
    """A run (or artifact) written again replaces the old folder by renaming it aside,
    never by emptying it in place: a kill part-way must not leave a `run.json` whose
    other files are gone, which would then be taken for a complete run."""
    store = RunStore(tmp_path / "runs")

    def files(*names: str):  # type: ignore[no-untyped-def]
        return lambda folder: [(folder / n).write_text(n) for n in names]

    store.save("abc", {"v": 1}, files("probs.npy", "weights.pt"))
    run = store.save("abc", {"v": 2}, files("probs.npy"))
    assert run.meta["v"] == 2 and sorted(p.name for p in run.path.iterdir()) == [
        "probs.npy",
        "run.json",
    ]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["abc"]  # no .old-* left
    art = store.add_artifact(run, "ledger", files("a"))
    art = store.add_artifact(run, "ledger", files("b"))
    assert [p.name for p in art.iterdir()] == ["b"]
    # What a kill between the two renames leaves: the old run aside, none in place.
    (tmp_path / "runs" / "abc").rename(tmp_path / "runs" / ".old-abc-1-2")
    (tmp_path / "runs" / ".tmp-abc-1-3").mkdir()
    assert store.get("abc") is None  # absent, so made again: never half a run
    assert store.remove_partial() == 2
    assert list((tmp_path / "runs").iterdir()) == []
