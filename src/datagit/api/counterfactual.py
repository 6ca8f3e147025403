"""`blame --counterfactual`: curvature-corrected influence estimates, from one run or
averaged over an ensemble of runs of the same data trained with other seeds.

The ledger's path account says what moved the weights; these estimate what would
change without an example (docs/ledger.md). Along a weight region's own change
(the default) the estimate belongs to one run: a region of a hidden layer has no
counterpart in a run with another seed (hidden unit 3 of one run is not unit 3 of
another), so it is never averaged. Along the loss of chosen eval examples
(``--eval-examples``, ``--regressed``) it is a number per training example about the
model's outputs, which every run of the same data answers, so, as in TRAK (Park et
al., 2023), ``--ensemble K`` averages it over the runs with seeds s, s+1, …, s+K−1
(each a cached harness run, trained with a ledger when the cache lacks one), which
smooths out what one run's initialisation and data order add to the estimate.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from datagit.api import attribution
from datagit.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

    from datagit.api.repo import Repo
    from datagit.harness.region import LedgerData, Region
    from datagit.harness.runs import Run


def check_ensemble(
    ensemble: int, counterfactual: bool, eval_loss: bool, run_id: str | None
) -> None:
    """Refuse, in one line and before training anything, an ensemble that cannot be built
    or whose question has no counterpart across seeds."""
    if ensemble < 1:
        raise InvalidInputError(f"--ensemble {ensemble} must be at least 1", hint="e.g. 5")
    if ensemble == 1:
        return
    if not counterfactual:
        raise InvalidInputError(
            "--ensemble averages --counterfactual estimates; the path account is one run's",
            hint="add --counterfactual",
        )
    if not eval_loss:
        raise InvalidInputError(
            "--ensemble averages estimates of eval examples' loss; a weight region has no "
            "counterpart across seeds (hidden unit 3 of one run is not unit 3 of another)",
            hint="add --eval-examples IDS or --regressed A..B, or drop --ensemble",
        )
    if run_id is not None:
        raise InvalidInputError(
            "--ensemble trains runs of a revision with other seeds; it cannot start from --run",
            hint="give the revision (--rev) instead of --run",
        )


def check_region(ensemble: int, parsed: Region | None, data: LedgerData, name: str) -> None:
    """An ensemble's eval-loss estimate through a region is the same question in every run
    only when the region is: a whole parameter, or whole rows of the output layer."""
    if ensemble == 1 or parsed is None or (parsed.rows is None and parsed.cols is None):
        return
    output = parsed.param.split(".")[0] in ("output", data.output)
    if parsed.cols is not None or not output:
        raise InvalidInputError(
            f"--ensemble: region {name} picks hidden units, which do not correspond "
            "across seeds (unit 3 of one run is not unit 3 of another)",
            hint="blame a whole parameter or an output row (--class C), or drop --ensemble",
        )


def estimates(
    repo: Repo,
    run: Run,
    data: LedgerData,
    idx: np.ndarray,
    direction: np.ndarray | None,
    wanted: list[str],
    *,
    rev: str,
    config_file: str | Path | None,
    projection_dim: int,
    ensemble: int,
    want: str,
) -> tuple[np.ndarray, str, list[int]]:
    """Per training example of ``data`` (in its order): the estimated change that including
    it causes along ``direction`` (a unit vector on the region), or, with ``wanted``, of
    those eval examples' mean loss through the region's weights (positive: it made them
    worse); averaged over ``ensemble`` seeds. Also the estimator's name and the seeds."""
    import numpy as np

    if projection_dim < 1:
        raise InvalidInputError(
            f"--projection-dim {projection_dim} must be at least 1", hint="e.g. 2048"
        )
    members: list[tuple[Run, LedgerData]] = [(run, data)]
    seed = attribution.run_config(run).seed
    layers = tuple(data.meta.get("layers", ()))  # the same ledger in every run
    for k in range(1, ensemble):
        members.append(
            attribution.ledger_run(
                repo, rev, config_file=config_file, layers=layers, want=want, seed=seed + k
            )
        )
    total = np.zeros(len(data.ids))
    estimator = ""
    for member, mdata in members:
        cfg = attribution.run_config(member)
        p = attribution._probe(repo, member, mdata, member.weights())
        u = np.zeros(len(mdata.theta_final))
        if wanted:
            u[idx] = p.loss_gradient(wanted)[0][idx]
        else:
            assert direction is not None
            u[idx] = direction
        est, estimator = p.counterfactual(
            u, cfg.weight_decay + attribution.COUNTERFACTUAL_DAMPING, projection_dim
        )
        at = {i: k for k, i in enumerate(p.train_ids)}
        missing = [i for i in data.ids if i not in at]
        if missing:  # the same revision and config: the same training set in every run
            raise InvalidInputError(
                f"run {member.id} did not train on {missing[0]!r}",
                hint="an ensemble needs runs of one revision's training set",
            )
        total += est[[at[i] for i in data.ids]]
    if ensemble > 1:
        estimator += f", mean of {ensemble} seeds"
    return total / len(members), estimator, [seed + k for k in range(len(members))]
