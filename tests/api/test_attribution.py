"""Weight-region blame (api.attribution) and value credit (api.value_credit) on a real
digits history: Ada adds, Bob re-labels six 3s as 8, Carol replaces the bytes of one image."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "harness"))
from harness_helpers import make_repo

from datagit import Repo, Signature
from datagit.api import attribution, harness, value_credit
from datagit.errors import InvalidInputError

MLP = """
[harness]
train = "train"
eval = "eval"
model = "mlp"
hidden = [16]
image_mode = "L"
lr = 0.05
epochs = 4
batch_size = 32
"""


def _sig(name: str) -> Signature:
    return Signature(name, f"{name.lower()}@example.com", int(time.time()))


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[Repo, list[str], str]:
    """(repo, Bob's relabelled ids, Carol's re-imaged id); HEAD has a ledger run."""
    root = tmp_path_factory.mktemp("story")
    repo = make_repo(root, MLP, n=300, commit=False)
    # module-scoped: made before the per-test isolation, so it names the committer itself
    repo.git.config_set("user.name", "Ada Tester")
    repo.git.config_set("user.email", "ada@example.com")
    repo.commit("digits", all=True, author=_sig("Ada"), annotator="ada")
    threes = sorted((root / "train" / "3").iterdir())[:6]
    for p in threes:
        shutil.move(p, root / "train" / "8" / p.name)
    repo.commit("3s that are 8s", all=True, author=_sig("Bob"), annotator="bob")
    zero = sorted((root / "train" / "0").iterdir())[0]
    (root / "train" / "0" / zero.name).write_bytes(
        (root / "train" / "8" / threes[0].name).read_bytes()
    )
    repo.commit("a cleaner 0", all=True, author=_sig("Carol"))
    return repo, [p.name for p in threes], zero.name


def test_class_blame_adds_up_and_names_commits(story: tuple[Repo, list[str], str]) -> None:
    repo, relabelled, _ = story
    every = attribution.blame_region(repo, cls="8", top=0)
    assert every.method == "path" and every.size == 17 and every.examples == len(every.rows)
    parts = sum(r.score for r in every.rows) + every.init + every.rounding  # type: ignore[operator]
    assert parts == pytest.approx(every.delta_norm, rel=1e-9) and every.total == pytest.approx(
        every.delta_norm
    )
    bob = [r for r in every.rows if r.key in relabelled]
    assert {r.author for r in bob} == {"Bob"} and {r.annotator for r in bob} == {"bob"}
    others = [r.score for r in every.rows if r.key not in relabelled and r.label == "8"]
    assert np.mean([r.score for r in bob]) > np.mean(others)  # wrong 8s pull row 8 hardest
    for by in ("commit", "author", "annotator", "label"):
        groups = attribution.blame_region(repo, cls="8", by=by, top=0)
        assert sum(g.score for g in groups.rows) == pytest.approx(sum(r.score for r in every.rows))
        assert sum(g.examples for g in groups.rows) == every.examples
    authors = {g.key: g for g in attribution.blame_region(repo, cls="8", by="author").rows}
    assert authors["Bob"].score == pytest.approx(sum(r.score for r in bob))
    assert authors["Bob"].examples == 6


def test_an_example_belongs_to_the_commit_that_last_set_its_bytes(
    story: tuple[Repo, list[str], str],
) -> None:
    repo, _, zero = story
    rows = attribution.blame_region(repo, "output.weight[0, :]", top=0).rows
    carol = next(r for r in rows if r.key == zero)
    assert carol.author == "Carol" and carol.label == "0"


def test_region_slices_and_negative_order(story: tuple[Repo, list[str], str]) -> None:
    repo, _, _ = story
    row = attribution.blame_region(repo, "3.weight[3, 0:4]", top=5, negative=True)
    assert row.size == 4 and len(row.rows) == 5
    assert [r.score for r in row.rows] == sorted(r.score for r in row.rows)
    bias = attribution.blame_region(repo, "output.bias[2:5]", top=0)
    assert bias.size == 3 and bias.region == "output.bias[2:5]"
    d = bias.to_dict()
    assert set(d) >= {"total", "delta_norm", "init", "rounding", "rows", "run", "ledger"}
    assert json.loads(json.dumps(d))["rows"][0]["key"]


def test_loss_blame_on_eval_examples_and_regressions(story: tuple[Repo, list[str], str]) -> None:
    repo, _, _ = story
    run, _ = attribution.ledger_run(repo)
    wrong = [o["id"] for o in run.outputs() if str(o["pred"]) != str(o["label"])][:5]
    loss = attribution.blame_region(repo, cls="8", eval_examples=wrong, top=0)
    assert loss.method == "loss" and loss.eval_examples == wrong
    total = sum(r.score for r in loss.rows) + loss.init + loss.rounding  # type: ignore[operator]
    assert total == pytest.approx(loss.total, rel=1e-9, abs=1e-12)
    try:
        reg = attribution.blame_region(repo, cls="8", regressed="HEAD~2..HEAD", by="commit")
    except InvalidInputError as exc:  # no eval example flipped: said in one line
        assert "no eval example regressed" in exc.message
    else:
        assert reg.method == "loss" and reg.eval_examples
    with pytest.raises(InvalidInputError, match="not in the eval dataset"):
        attribution.blame_region(repo, cls="8", eval_examples=["nope.png"])


def test_counterfactual_uses_the_exact_output_hessian(story: tuple[Repo, list[str], str]) -> None:
    repo, _, _ = story
    cf = attribution.blame_region(repo, cls="8", counterfactual=True, top=0)
    assert cf.method == "counterfactual" and cf.init is None and len(cf.rows) == cf.examples
    assert all(np.isfinite(r.score) for r in cf.rows)
    assert cf.total == pytest.approx(sum(r.score for r in cf.rows))


def test_counterfactual_of_eval_loss_and_its_ensemble(
    story: tuple[Repo, list[str], str],
) -> None:
    """With eval examples the estimate is, per training example, the change of their loss
    through the region that including it causes, −⟨H⁻¹g_i, ∇L_E⟩/N; --ensemble K is the
    mean of that over the runs with seeds s … s+K−1, matched by example id."""
    repo, _, _ = story
    run, data = attribution.ledger_run(repo)
    evals = [o["id"] for o in run.outputs()][:4]
    one = attribution.blame_region(repo, cls="8", counterfactual=True, eval_examples=evals, top=0)
    assert one.method == "counterfactual" and one.estimator == "exact-hessian"
    assert one.seeds == [0] and one.eval_examples == evals
    probe = attribution._probe(repo, run, data, run.weights())
    idx = data.class_indices(8)
    u = np.zeros(len(data.theta_final))
    u[idx] = probe.loss_gradient(evals)[0][idx]
    cfg = attribution.run_config(run)
    want = probe.influence(u, cfg.weight_decay + attribution.COUNTERFACTUAL_DAMPING)
    got = {r.key: r.score for r in one.rows}
    for k, i in enumerate(probe.train_ids):
        assert got[i] == pytest.approx(want[k], rel=1e-9, abs=1e-15)
    pair = attribution.blame_region(
        repo, cls="8", counterfactual=True, eval_examples=evals, top=0, ensemble=2
    )
    assert pair.seeds == [0, 1] and pair.estimator == "exact-hessian, mean of 2 seeds"
    second, _ = attribution.ledger_run(repo, seed=1)
    other = attribution.blame_region(
        repo, cls="8", counterfactual=True, eval_examples=evals, top=0, run_id=second.id
    )
    theirs = {r.key: r.score for r in other.rows}
    assert theirs != got  # another seed, another model
    for r in pair.rows:
        assert r.score == pytest.approx((got[r.key] + theirs[r.key]) / 2, rel=1e-9, abs=1e-15)


def test_ensembles_that_are_not_defined_are_refused(story: tuple[Repo, list[str], str]) -> None:
    """An ensemble needs a question every seed's run shares: the eval examples' loss, through
    a whole parameter or output rows; and runs it can train, so not --run. Refused in one
    line, before anything is trained."""
    repo, _, _ = story
    run, _ = attribution.ledger_run(repo)
    evals = [o["id"] for o in run.outputs()][:2]
    runs = repo.workdir / ".datagit" / "runs"
    before = sorted(p.name for p in runs.iterdir())
    cases = {
        "--ensemble 0 must be at least 1": dict(cls="8", counterfactual=True, ensemble=0),
        "averages --counterfactual estimates": dict(cls="8", ensemble=2),
        "a weight region has no counterpart across seeds": dict(
            cls="8", counterfactual=True, ensemble=2
        ),
        "cannot start from --run": dict(
            cls="8", counterfactual=True, ensemble=2, eval_examples=evals, run_id=run.id
        ),
        r"output.weight\[8, 0:4\] picks hidden units": dict(
            region="output.weight[8, 0:4]", counterfactual=True, ensemble=2, eval_examples=evals
        ),
    }
    for message, kwargs in cases.items():
        with pytest.raises(InvalidInputError, match=message) as err:
            attribution.blame_region(repo, **kwargs)  # type: ignore[arg-type]
        assert "\n" not in err.value.message
    assert sorted(p.name for p in runs.iterdir()) == before


def test_credit_value_sums_to_the_improvement(story: tuple[Repo, list[str], str]) -> None:
    repo, _, _ = story
    v = value_credit.credit_value(repo)
    assert v.eval_loss_final < v.eval_loss_init
    for table in (v.authors, v.annotators):
        total = sum(r["value"] for r in table) + v.init + v.rounding + v.unrecorded
        assert total + v.residual == pytest.approx(v.improvement, rel=1e-9)
    # integrated along the line θ_init → θ_final, what is left is quadrature error
    assert abs(v.residual) < 1e-2 * abs(v.improvement) and v.unrecorded != 0.0
    names = {r["name"]: r for r in v.authors}
    assert set(names) == {"Ada", "Bob", "Carol"} and names["Bob"]["labels_set"] == 6
    assert names["Ada"]["value"] > 0 and json.dumps(v.to_dict())


def test_credit_value_with_every_layer_recorded(
    story: tuple[Repo, list[str], str], tmp_path: Path
) -> None:
    """With every layer in the ledger nothing is left unrecorded, and the values, init and
    rounding add up to the improvement up to the quadrature error."""
    repo, _, _ = story
    config = tmp_path / "all.toml"
    # another seed: its own run, so the other tests' runs keep the ledgers they expect
    config.write_text(MLP + 'ledger = ["1", "3"]\nseed = 1\n')
    v = value_credit.credit_value(repo, config_file=config)
    assert v.params == ["1.weight", "1.bias", "3.weight", "3.bias"] and v.unrecorded == 0.0
    total = sum(r["value"] for r in v.authors) + v.init + v.rounding
    assert abs(v.improvement - total) < 1e-2 * abs(v.improvement)


def test_bad_inputs_are_one_line_errors(story: tuple[Repo, list[str], str]) -> None:
    repo, _, _ = story
    cases = {
        "records no parameter": dict(region="fc.weight[8]"),
        "out of range": dict(region="output.weight[10]"),
        "must be one or two": dict(region="output.weight[[1]]"),
        "not PARAM": dict(region="output weight"),
        "one axis": dict(region="output.bias[1, 2]"),
        "not both": dict(region="output.weight[1]", cls="8"),
        "not a class": dict(cls="x"),
        "not A..B": dict(cls="8", regressed="HEAD"),
        "is not one of": dict(cls="8", by="weekday"),
    }
    for message, kwargs in cases.items():
        with pytest.raises(InvalidInputError, match=message) as err:
            attribution.blame_region(repo, **kwargs)  # type: ignore[arg-type]
        assert "\n" not in err.value.message
    plain = harness.train(repo, "HEAD~1")
    with pytest.raises(InvalidInputError, match="trained without a ledger") as err:
        attribution.blame_region(repo, cls="8", run_id=plain.id)
    assert err.value.hint is not None and "--ledger" in err.value.hint
    run, data = attribution.ledger_run(repo)
    meta = json.loads((data.folder / "ledger.json").read_text())
    (data.folder / "ledger.json").write_text(json.dumps({**meta, "config": "0" * 64}))
    try:
        with pytest.raises(InvalidInputError, match="another harness config"):
            attribution.blame_region(repo, cls="8", run_id=run.id)
    finally:
        (data.folder / "ledger.json").write_text(json.dumps(meta))
    first = harness.load_config(repo)
    hook = attribution.ledger_hook(first, ("1.weight",))
    assert hook is not None
    harness.train(repo, config=first, hooks=[hook])
    with pytest.raises(InvalidInputError, match="--projection-dim 0 must be at least 1") as err:
        attribution.blame_region(
            repo, "1.weight[0]", run_id=run.id, counterfactual=True, projection_dim=0
        )
    assert "\n" not in err.value.message
    with pytest.raises(InvalidInputError, match=r"'x\.png' is not in the eval dataset"):
        attribution.blame_region(
            repo, "1.weight", run_id=run.id, counterfactual=True, eval_examples=["x.png"]
        )


def test_counterfactual_on_a_hidden_layer_projects_gradients(
    story: tuple[Repo, list[str], str],
) -> None:
    """A hidden layer's Hessian is not formed: per-example gradients (torch.func) are
    projected to k dimensions and the projected empirical Fisher is solved. Without a
    projection (k ≥ |R|) the gradients are the autograd ones; with one, the ranking
    stays close to the unprojected answer."""
    import torch
    import torch.nn.functional as F
    from scipy.stats import spearmanr

    from datagit.harness.trak import projected_gradients

    repo, _, _ = story
    cfg = harness.load_config(repo)
    hook = attribution.ledger_hook(cfg, ("1",))
    assert hook is not None
    run = harness.train(repo, config=cfg, hooks=[hook])
    full = attribution.blame_region(
        repo, "1.weight", run_id=run.id, counterfactual=True, top=0, projection_dim=4096
    )
    assert full.method == "counterfactual" and full.estimator == "empirical-fisher"
    assert full.size == 16 * 64 and len(full.rows) == full.examples
    assert full.total == pytest.approx(sum(r.score for r in full.rows))
    small = attribution.blame_region(
        repo, "1.weight", run_id=run.id, counterfactual=True, top=0, projection_dim=512
    )
    assert small.estimator == "projected-fisher (k=512)"
    a = {r.key: r.score for r in full.rows}
    b = {r.key: r.score for r in small.rows}
    keys = sorted(a)
    rho = spearmanr([a[k] for k in keys], [b[k] for k in keys])[0]
    assert rho > 0.8
    # the per-example gradients are autograd's
    _, data = attribution.ledger_run(repo, run_id=run.id, want="1.weight")
    probe = attribution._probe(repo, run, data, run.weights())
    phi = projected_gradients(probe, None)
    params = dict(probe.model.named_parameters())
    for k in (0, 7):
        probe.model.zero_grad()
        F.cross_entropy(probe.model(probe.train_x[k : k + 1]), probe.train_y[k : k + 1]).backward()
        want = torch.cat([params[n].grad.reshape(-1) for n in probe.names]).double()  # type: ignore[union-attr]
        assert torch.allclose(phi[k], want, atol=1e-6)
