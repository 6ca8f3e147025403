"""`relabel` and `label --from-run`: change labels without moving files by hand.

An image folder's label is its class folder, so a re-label moves the file (an
unlabelled file in the dataset folder moves into one); a table's label is a
cell, rewritten in place. Either way the change is then staged like any edit,
and the records get the annotator given (``model:<run id>`` for machine
labels), so blame, credit and diff always tell who set them. Every edit is
checked before the first file moves: a bad one changes nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from datagit.api import harness, staging
from datagit.core import manifest
from datagit.core.checkout import target_path
from datagit.core.config import DatasetConfig
from datagit.core.manifest import DatasetTree
from datagit.core.records import MACHINE_PREFIX, Label, Record, validate_label
from datagit.core.relabel import table_with_labels
from datagit.errors import DatagitError, InvalidInputError

if TYPE_CHECKING:
    from datagit.api.repo import Repo


@dataclass(frozen=True)
class LabelEdit:
    dataset: str
    id: str
    old: Label
    new: Label

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def relabel(
    repo: Repo, edits: Sequence[tuple[str, str, Any]], *, annotator: str | None = None
) -> list[LabelEdit]:
    """Give each ``(dataset, id, label)`` its new label in the workspace and the stage.

    Ids are looked up in the stage; an edit to the label an example already
    has is dropped. Returns the edits made.
    """
    with repo.lock:
        return _relabel(repo, edits, annotator)


def _relabel(
    repo: Repo, edits: Sequence[tuple[str, str, Any]], annotator: str | None
) -> list[LabelEdit]:
    if not edits:
        raise InvalidInputError("nothing to relabel", hint="give DATASET/ID LABEL pairs")
    stage = repo.stage_tree()
    stage_ds = manifest.read_root(repo.git, stage)[1] if stage else {}
    cfg = repo.config
    planned: dict[str, dict[str, LabelEdit]] = {}
    records: dict[str, dict[str, Record]] = {}
    for name, example_id, label in edits:
        dcfg = _dataset(cfg.datasets.get(name), name, stage_ds)
        if name not in records:
            ids = [i for n, i, _ in edits if n == name]
            records[name] = DatasetTree(repo.git, stage_ds[name]).get_many(ids)
        rec = records[name].get(example_id)
        if rec is None:
            raise InvalidInputError(
                f"no example {example_id!r} in dataset {name!r} (staged)",
                hint=f"list ids with `datagit ls HEAD {name}`",
            )
        label = _coerce(label, rec.label)
        validate_label(label, dcfg.layout, f"{name}/{example_id}")
        if label != rec.label:
            planned.setdefault(name, {})[example_id] = LabelEdit(name, example_id, rec.label, label)
    paths: list[str] = []
    for name, todo in planned.items():
        paths += _check_workspace(repo, cfg.datasets[name], records[name], todo)
    for name, todo in planned.items():
        _edit_workspace(repo, cfg.datasets[name], records[name], todo, annotator)
    if planned:
        staging.add(repo, paths)
        if annotator:
            for name, todo in planned.items():
                staging.stamp(repo, name, list(todo), annotator)
    return [e for todo in planned.values() for e in todo.values()]


def _dataset(dcfg: DatasetConfig | None, name: str, stage_ds: dict[str, str]) -> DatasetConfig:
    if dcfg is None or name not in stage_ds:
        raise InvalidInputError(
            f"no dataset named {name!r} in the stage",
            hint=f"datasets: {', '.join(sorted(stage_ds)) or '(none)'}; give DATASET/ID",
        )
    return dcfg


def _coerce(label: Any, old: Label) -> Any:
    """A label typed as text takes the type of the label it replaces (``"3"`` → 3)."""
    if isinstance(label, str) and old is not None and not isinstance(old, str):
        try:
            value = orjson.loads(label)
        except orjson.JSONDecodeError:
            return label
        return value if type(value) is type(old) else label
    return label


def _check_workspace(
    repo: Repo, dcfg: DatasetConfig, recs: dict[str, Record], todo: dict[str, LabelEdit]
) -> list[str]:
    """The workspace paths to stage after the edit; refuses when the workspace has
    moved on from the stage for any of them."""
    if dcfg.layout != "imagefolder":
        if not (repo.workdir / dcfg.path).is_file():
            raise InvalidInputError(
                f"{dcfg.path} is missing from the workspace",
                hint="check it out again (`datagit checkout -f HEAD`) before relabelling",
            )
        return [dcfg.name]
    paths: list[str] = []
    for example_id, edit in todo.items():
        old = target_path(dcfg, recs[example_id])
        new = target_path(dcfg, Record(example_id, edit.new, "", 0))
        assert old is not None and new is not None
        if not (repo.workdir / old).is_file():
            raise InvalidInputError(
                f"{dcfg.name}/{example_id}: {old} is not in the workspace",
                hint="`datagit status` shows what moved; add or restore it first",
            )
        if os.path.lexists(repo.workdir / new):
            raise InvalidInputError(
                f"{dcfg.name}/{example_id}: {new} already exists",
                hint="move or remove that file first",
            )
        paths += [str(repo.workdir / old), str(repo.workdir / new)]  # add takes them as typed
    return paths


def _edit_workspace(
    repo: Repo,
    dcfg: DatasetConfig,
    recs: dict[str, Record],
    todo: dict[str, LabelEdit],
    annotator: str | None,
) -> None:
    if dcfg.layout != "imagefolder":
        path = repo.workdir / dcfg.path
        data = table_with_labels(
            dcfg, path.read_bytes(), {i: e.new for i, e in todo.items()}, annotator
        )
        tmp = path.with_name(f".{path.name}.datagit-tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return
    for example_id, edit in todo.items():
        old = repo.workdir / str(target_path(dcfg, recs[example_id]))
        new = repo.workdir / str(target_path(dcfg, Record(example_id, edit.new, "", 0)))
        new.parent.mkdir(parents=True, exist_ok=True)
        os.replace(old, new)
        if old.parent != repo.workdir / dcfg.path:
            with contextlib.suppress(OSError):  # an emptied class folder goes, as checkout does
                old.parent.rmdir()


def from_suspects(data: bytes, where: str) -> list[tuple[str, str, Any]]:
    """``(dataset, id, suggested label)`` of each flagged example in a suspects JSON
    (the output of ``datagit suspects --json``)."""
    try:
        doc = orjson.loads(data)
        name = doc["dataset"]
        rows = doc["suspects"]
        return [(name, s["id"], s["suggested"]) for s in rows if s.get("issue", True)]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"{where}: not a suspects JSON file ({exc})",
            hint="write one with `datagit suspects --json > FILE`",
        ) from None


# -- label --from-run ------------------------------------------------------------------
@dataclass
class LabelReport:
    run: str
    dataset: str
    annotator: str
    labelled: list[LabelEdit] = field(default_factory=list)
    left_unlabelled: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labelled"] = [e.to_dict() for e in self.labelled]
        return d


def label_from_run(
    repo: Repo, run_id: str, pool: str, *, min_confidence: float = 0.0
) -> LabelReport:
    """Write run ``run_id``'s predictions as the labels of ``pool``'s unlabelled examples
    (those predicted with at least ``min_confidence``), annotated ``model:<run id>``."""
    if not 0.0 <= min_confidence <= 1.0:
        raise InvalidInputError(f"--min-confidence {min_confidence}: must be between 0 and 1")
    run = harness.show(repo, run_id)
    predicted = run.meta.get("eval", {}).get("dataset")
    if predicted != pool:
        raise InvalidInputError(
            f"run {run.id} predicted dataset {predicted!r}, not {pool!r}",
            hint=f"get a run that predicts the pool with `datagit suggest {pool} --json`",
        )
    stage = repo.stage_tree()
    trees = manifest.read_root(repo.git, stage)[1] if stage else {}
    if pool not in trees:
        raise InvalidInputError(f"no dataset named {pool!r} in the stage")
    unlabelled = {r.id for r in DatasetTree(repo.git, trees[pool]).records() if r.label is None}
    if not unlabelled:
        raise InvalidInputError(
            f"dataset {pool!r} has no unlabelled examples", hint="nothing for a model to label"
        )
    outputs = [o for o in run.outputs() if o["id"] in unlabelled]
    if not outputs:
        raise InvalidInputError(
            f"run {run.id} predicted none of {pool!r}'s unlabelled examples",
            hint=f"get a run that predicts them with `datagit suggest {pool} --json`",
        )
    layout = repo.config.datasets[pool].layout
    for c in run.classes:
        try:
            validate_label(c, layout, f"run {run.id}")
        except DatagitError as exc:
            raise InvalidInputError(
                f"run {run.id} does not match {pool!r} ({layout}): {exc.message}",
                hint="use a run trained on labels this layout can hold",
            ) from None
    chosen = [(pool, o["id"], o["pred"]) for o in outputs if o["confidence"] >= min_confidence]
    annotator = f"{MACHINE_PREFIX}{run.id}"
    edits = relabel(repo, chosen, annotator=annotator) if chosen else []
    return LabelReport(run.id, pool, annotator, edits, len(unlabelled) - len(edits))
