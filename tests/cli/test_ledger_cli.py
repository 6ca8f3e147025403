"""`train --ledger`, `blame --region/--class`, `credit --value` from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_bad_input import refused
from testkit import Cli

sys.path.insert(0, str(Path(__file__).parents[1] / "harness"))
from harness_helpers import make_repo

HARNESS = """
[harness]
train = "train"
eval = "eval"
model = "mlp"
hidden = [16]
image_mode = "L"
lr = 0.05
epochs = 2
batch_size = 32
ledger = []
"""


@pytest.fixture(scope="module")
def dg(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    root = tmp_path_factory.mktemp("cli-ledger")
    # module-scoped: made before the per-test isolation, so it names its author itself
    repo = make_repo(root, HARNESS, n=200, commit=False)
    repo.git.config_set("user.name", "Ada Tester")
    repo.git.config_set("user.email", "ada@example.com")
    repo.commit("digits", all=True)
    repo.close()
    return Cli(root)


def test_train_records_a_ledger_from_the_config(dg: Cli) -> None:
    out = dg("train").output
    assert "ledger     ledger-" in out and "3.weight, 3.bias: 170 weights × 160 examples" in out
    data = json.loads(dg("train", "HEAD", "--ledger", "1.weight", "--json").output)
    assert data["ledger"]["params"] == ["1.weight"] and data["ledger"]["memory_bytes"] > 0


def test_blame_region_text_and_json(dg: Cli) -> None:
    text = dg("blame", "--class", "8", "--top", "3").output.splitlines()
    assert text[0].startswith("class 8 (output row 8)") and "‖Δθ_R‖" in text[1]
    assert len(text) == 3 + 3
    data = json.loads(dg("blame", "--region", "output.weight[3, :]", "--json", "--top", "0").output)
    parts = sum(r["score"] for r in data["rows"]) + data["init"] + data["rounding"]
    assert parts == pytest.approx(data["delta_norm"]) and data["size"] == 16
    by = json.loads(dg("blame", "--class", "2", "--by", "label", "--json").output)
    assert {r["key"] for r in by["rows"]} <= {str(d) for d in range(10)}
    neg = dg("blame", "--class", "3", "--negative", "--top", "2", "--counterfactual").output
    assert "counterfactual" in neg.splitlines()[0]
    run = json.loads(dg("train", "--json").output)["id"]
    assert dg("blame", "--class", "8", "--run", run[:8], "--top", "1").exit_code == 0


def test_counterfactual_on_a_hidden_layer(dg: Cli) -> None:
    dg("train", "--ledger", "1")
    out = dg("blame", "--region", "1.weight[0:4]", "--counterfactual", "--top", "2",
             "--projection-dim", "64").output.splitlines()  # fmt: skip
    assert out[0].startswith("1.weight[0:4]  (256 weights") and "projected-fisher (k=64)" in out[0]
    assert len(out) == 3 + 2


def test_counterfactual_ensemble_of_eval_loss(dg: Cli) -> None:
    """--ensemble K averages the eval-loss estimate over runs with K seeds (each a cached
    harness run); the answer names its seeds."""
    wrong = sorted(p.name for p in (dg.cwd / "eval").rglob("*.png"))[:3]
    args = ("--class", "8", "--counterfactual", "--eval-examples", ",".join(wrong))
    data = json.loads(dg("blame", *args, "--ensemble", "2", "--json", "--top", "0").output)
    assert data["method"] == "counterfactual" and data["eval_examples"] == wrong
    assert data["seeds"] == [0, 1] and data["estimator"] == "exact-hessian, mean of 2 seeds"
    assert data["total"] == pytest.approx(sum(r["score"] for r in data["rows"]))
    head = dg("blame", *args, "--ensemble", "2", "--top", "1").output.splitlines()[0]
    assert head.endswith("counterfactual, exact-hessian, mean of 2 seeds)")


def test_credit_value(dg: Cli) -> None:
    out = dg("credit", "--value").output
    assert out.startswith("eval loss ") and "residual" in out and "Authors:" in out
    data = json.loads(dg("credit", "--value", "--json").output)
    total = sum(r["value"] for r in data["authors"]) + data["init"] + data["rounding"]
    total += data["unrecorded"]
    assert total + data["residual"] == pytest.approx(data["improvement"])
    assert "layers not recorded" in out


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("blame", "--region", "fc.weight[8]"), "the ledger records no parameter 'fc.weight'"),
        (("blame", "--region", "output.weight[0:99]"), "rows '0:99' is out of range for size 10"),
        (("blame", "--class", "8", "--regressed", "HEAD"), "--regressed 'HEAD' is not A..B"),
        (("blame",), "blame needs DATASET/ID, DATASET, --region or --class"),
        (("train", "--ledger", "nope"), "ledger layer 'nope' names no parameter"),
        (("blame", "--class", "8", "--run", "ffff"), "no run with id 'ffff'"),
        (
            ("blame", "--class", "8", "--counterfactual", "--projection-dim", "0"),
            "--projection-dim 0 must be at least 1",
        ),
        (
            ("blame", "--class", "8", "--counterfactual", "--ensemble", "3"),
            "a weight region has no counterpart across seeds",
        ),
        (("blame", "--class", "8", "--ensemble", "0"), "--ensemble 0 must be at least 1"),
    ],
)
def test_bad_input(dg: Cli, args: tuple[str, ...], match: str) -> None:
    refused(dg, *args, match=match)


def test_run_without_a_ledger_says_how_to_get_one(dg: Cli) -> None:
    plain = json.loads(dg("train", "--seed", "7", "--json").output)
    assert "ledger" in plain  # [harness] ledger = [] records one: train once more without it
    cfg = dg.cwd / "plain.toml"
    cfg.write_text(HARNESS.replace("ledger = []", "").replace("epochs = 2", "epochs = 1"))
    run = json.loads(dg("train", "--config", str(cfg), "--json").output)
    assert "ledger" not in run
    line = refused(dg, "blame", "--class", "8", "--run", run["id"], match="without a ledger")
    assert line.startswith(f"error: run {run['id']} was trained without a ledger")
