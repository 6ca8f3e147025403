"""Harness speed: data loading from the store vs plain files, and cached `eval` latency.

    .venv/bin/python benchmarks/bench_harness.py

Builds the digits example repository in a temporary folder, then measures in
the same run:

* examples/s fed to a no-op model by ``repo.dataset("train").to_torch()``
  (reads + verifies every example from the content store, decodes with
  Pillow) against a plain Pillow + ``torch.utils.data.Dataset`` over the same
  PNG files in an ordinary folder; target ≥ 0.5×;
* a cached ``eval``: the API call (``Repo.open`` + ``harness.evaluate``) and
  the ``datagit eval`` CLI as a subprocess; target ≤ 0.3 s each;
* the first (training) ``eval`` of the digits example, for reference.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from datagit import Repo
from datagit.api import harness

HERE = Path(__file__).resolve().parent
DATAGIT = str(Path(sys.executable).with_name("datagit"))


def load_example() -> object:
    spec = importlib.util.spec_from_file_location(
        "digits_build", HERE.parent / "examples/digits/build.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class PlainImages(Dataset):
    """The baseline: Pillow over files in a folder, labels from the class folder."""

    def __init__(self, root: Path) -> None:
        self.paths = sorted(root.rglob("*.png"))
        classes = sorted({p.parent.name for p in self.paths})
        self.index = {c: i for i, c in enumerate(classes)}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        p = self.paths[i]
        with Image.open(p) as img:
            arr = np.array(img.convert("L"), dtype=np.uint8)
        return torch.from_numpy(arr).unsqueeze(0).float().div_(255.0), self.index[p.parent.name]


def throughput(ds: Dataset, workers: int, passes: int = 3) -> float:
    """Best examples/s over ``passes`` full passes into a no-op model."""
    model = torch.nn.Identity()
    best = 0.0
    for _ in range(passes):
        loader = DataLoader(ds, batch_size=64, shuffle=False, num_workers=workers)
        start = time.perf_counter()
        n = 0
        for x, _ in loader:
            model(x)
            n += len(x)
        best = max(best, n / (time.perf_counter() - start))
    return best


def timed(fn: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "digits"
        example = load_example()
        subprocess_quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        example.build(ws)  # type: ignore[attr-defined]
        repo = Repo.open(ws)
        store_ds = repo.dataset("train").to_torch(image_mode="L")
        plain_ds = PlainImages(ws / "train")
        assert len(store_ds) == len(plain_ds)
        for workers in (0, 2):
            s = throughput(store_ds, workers)
            p = throughput(plain_ds, workers)
            rows.append(
                (f"load {len(store_ds)} PNGs, {workers} workers", f"{s:,.0f} ex/s",
                 f"{p:,.0f} ex/s (plain)", f"{s / p:.2f}× (≥ 0.5×)")
            )  # fmt: skip
        start = time.perf_counter()
        first = harness.evaluate(repo)
        train_s = time.perf_counter() - start
        rows.append(
            ("digits example: first eval (trains)", f"{train_s:.2f} s",
             f"accuracy {first.metrics['accuracy']:.4f}", "≥ 0.9, < 60 s")
        )  # fmt: skip
        repo.close()

        def api_eval() -> None:
            r = Repo.open(ws)
            assert harness.evaluate(r).cached
            r.close()

        api = timed(api_eval, 20)
        rows.append(("cached eval, API call", f"{api * 1000:.0f} ms", "", "≤ 300 ms"))

        def cli_eval() -> None:
            subprocess.run([DATAGIT, "-C", str(ws), "eval"], check=True, **subprocess_quiet)

        cli = timed(cli_eval, 7)
        rows.append(
            ("cached eval, `datagit eval` subprocess", f"{cli * 1000:.0f} ms", "", "≤ 300 ms")
        )
        status = timed(
            lambda: subprocess.run(
                [DATAGIT, "-C", str(ws), "status"], check=True, **subprocess_quiet
            ),
            5,
        )
        rows.append(("(reference) `datagit status` subprocess", f"{status * 1000:.0f} ms", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("measure", "datagit", "baseline / detail", "ratio / target")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
