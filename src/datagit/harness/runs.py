"""The run cache under ``.datagit/runs/``: one folder per run key.

::

    runs/<id>/run.json      key, data revisions, config, classes, metrics, timings
    runs/<id>/eval.jsonl    one line per eval example: id, label, pred, confidence, loss
    runs/<id>/probs.npy     predicted probabilities, float32 [eval examples, classes]
    runs/<id>/weights.pt    the final ``state_dict`` (``torch.save``)
    runs/<id>/artifacts/<key>/   what a hook kept (a ledger, fold outputs), under a
                            key naming what produced it; added without touching the rest

A run is written into a temporary folder and renamed into place, so a reader
sees a whole run or none. Reading a run's metrics touches only ``run.json``
and never imports torch: that is what keeps a cached ``eval`` fast.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from datagit.errors import InvalidInputError

RUN_FILE = "run.json"
ARTIFACTS = "artifacts"


@dataclass
class Run:
    """One cached run; ``cached`` says whether this call reused it rather than training."""

    id: str
    path: Path
    meta: dict[str, Any]
    cached: bool = False

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.meta.get("metrics", {}))

    @property
    def classes(self) -> list[Any]:
        return list(self.meta.get("classes", []))

    @property
    def weights_path(self) -> Path:
        return self.path / "weights.pt"

    def outputs(self) -> list[dict[str, Any]]:
        """Per-example eval outputs in id order (without the probability vectors)."""
        data = (self.path / "eval.jsonl").read_bytes()
        return [orjson.loads(line) for line in data.splitlines() if line]

    def probs(self) -> Any:
        """Predicted probabilities as a numpy array [eval examples, classes]."""
        import numpy as np

        return np.load(self.path / "probs.npy")

    def artifact(self, key: str) -> Path | None:
        """The folder of artifact ``key`` when this run holds it, else None."""
        path = self.path / ARTIFACTS / key
        return path if path.is_dir() else None

    def artifacts(self) -> builtins.list[str]:
        folder = self.path / ARTIFACTS
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))

    def weights(self) -> dict[str, Any]:
        """The final weights as a ``state_dict`` (imports torch)."""
        import torch

        return torch.load(self.weights_path, map_location="cpu", weights_only=True)


class RunStore:
    """Runs on disk, found by id or id prefix."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, run_id: str) -> Run | None:
        path = self.root / run_id
        try:
            meta = orjson.loads((path / RUN_FILE).read_bytes())
        except (FileNotFoundError, NotADirectoryError, orjson.JSONDecodeError):
            return None
        return Run(run_id, path, meta)

    def find(self, prefix: str) -> Run:
        """The run whose id starts with ``prefix``; unknown or ambiguous prefixes are errors."""
        matches = [p.name for p in self._dirs() if p.name.startswith(prefix)] if prefix else []
        if len(matches) != 1:
            what = "no run" if not matches else f"{len(matches)} runs"
            raise InvalidInputError(
                f"{what} with id {prefix!r} in .datagit/runs",
                hint="list runs with `datagit runs`"
                + ("; give more digits" if len(matches) > 1 else ""),
            )
        run = self.get(matches[0])
        if run is None:
            raise InvalidInputError(f"run {matches[0]} is incomplete", hint="`datagit runs gc`")
        return run

    def __iter__(self) -> Iterator[Run]:
        for path in self._dirs():
            run = self.get(path.name)
            if run is not None:
                yield run

    def list(self) -> list[Run]:
        """Every complete run, newest first."""
        return sorted(self, key=lambda r: r.meta.get("created", 0), reverse=True)

    def _dirs(self) -> builtins.list[Path]:  # `list` is a method here
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]

    def save(self, run_id: str, meta: dict[str, Any], write: Callable[[Path], None]) -> Run:
        """Write ``run.json`` plus whatever ``write(folder)`` adds, then move it into place."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{run_id}-{os.getpid()}-{time.monotonic_ns()}"
        tmp.mkdir()
        try:
            write(tmp)
            meta = {**meta, "id": run_id, "created": time.time()}
            (tmp / RUN_FILE).write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
            final = self.root / run_id
            _swap_in(tmp, final)  # --no-cache, or a concurrent writer: the newest wins
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return Run(run_id, final, meta)

    def add_artifact(self, run: Run, key: str, write: Callable[[Path], None]) -> Path:
        """Write artifact ``key`` of ``run`` into a temporary folder, then move it into place."""
        if not key or "/" in key or key.startswith("."):
            raise InvalidInputError(f"artifact key {key!r} is not a plain name")
        folder = run.path / ARTIFACTS
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{key}-{os.getpid()}-{time.monotonic_ns()}"
        tmp.mkdir()
        try:
            write(tmp)
            final = folder / key
            _swap_in(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def remove(self, run_id: str) -> None:
        shutil.rmtree(self.root / run_id, ignore_errors=True)

    def remove_partial(self) -> int:
        """Drop folders left by runs and artifacts that crashed while being written or
        replaced (``.tmp-*``, ``.old-*``)."""
        n = 0
        if self.root.is_dir():
            folders = [self.root, *(p / ARTIFACTS for p in self._dirs())]
            for folder in folders:
                if not folder.is_dir():
                    continue
                for p in folder.iterdir():
                    if p.name.startswith((".tmp-", ".old-")):
                        shutil.rmtree(p, ignore_errors=True)
                        n += 1
        return n


def _swap_in(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing what is there.

    The old folder is renamed aside before the new one moves in and deleted after,
    never emptied in place: a process killed part-way leaves either the old folder
    whole, no folder (the run is made again), or the new one whole, and at worst a
    hidden ``.old-*`` that `remove_partial` clears. Deleting in place first left,
    after a kill, a run whose ``run.json`` had outlived its other files, and that
    was then taken for complete.
    """
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}-{time.monotonic_ns()}")
        try:
            os.replace(final, old)
        except FileNotFoundError:  # a concurrent writer moved it first
            old = None
    try:
        os.replace(tmp, final)
    except OSError as exc:  # another writer's folder moved in meanwhile: it stands
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_result(folder: Path, result: Any) -> None:
    """The files of a `TrainResult`: outputs, probabilities, weights (imports torch)."""
    import numpy as np
    import torch

    lines = b"".join(orjson.dumps(o) + b"\n" for o in result.outputs)
    (folder / "eval.jsonl").write_bytes(lines)
    np.save(folder / "probs.npy", result.probs.numpy().astype(np.float32))
    torch.save(result.state_dict, folder / "weights.pt")
