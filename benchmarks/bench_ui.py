"""Speed of the web viewer on a 100,000-example image repository, against the CLI.

Builds a real workspace of N distinct digit PNGs (scikit-learn's digits, each
made unique by a text chunk), commits it, re-labels 1% of the examples by
moving their files to another class folder, commits again, then measures in
the same run (best of 3, server time through the ASGI app in-process):

* the commit page of the re-label (transition table + first 60 examples)
  against ``datagit diff --json A B`` on the same revisions — both in-process
  (the API call plus the JSON text the CLI prints) and as a CLI subprocess;
  target: page ≤ 1.5 × the in-process diff and ≤ 1 s;
* one transition-table cell's page, and the 100k-example root commit's page
  (first of 1,667 pages) against ``datagit show --json`` of it;
* the 60 thumbnails of a page, cold (first request) and warm; target warm ≤ 0.5 s
  (client-side time of the 60 requests, so it includes the in-process client).

Server time is the app's own ``Server-Timing`` header (request in → response
ready), best of 3; the in-process client adds ~1 ms per request on top.

Usage: ``python benchmarks/bench_ui.py [--records 100000]``
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

from datagit import Repo
from datagit.api import history, render
from datagit.core.config import DatasetConfig


def timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def digit_pngs() -> list[tuple[bytes, int]]:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    out = []
    for img, t in zip(d.images, d.target, strict=True):
        buf = io.BytesIO()
        Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
        out.append((buf.getvalue(), int(t)))
    return out


def unique(png: bytes, n: int) -> bytes:
    """The same image with a ``tEXt`` chunk naming ``n`` before IEND: distinct bytes."""
    body = b"tEXt" + b"n\x00" + str(n).encode()
    chunk = (len(body) - 4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    return png[:-12] + chunk + png[-12:]


def build(root: Path, n: int) -> tuple[str, str, str]:
    """Workspace of ``n`` PNGs in class folders; returns (root commit, re-label commit, cell)."""
    base = digit_pngs()
    repo = Repo.init(root)
    train = root / "train"
    for d in range(10):
        (train / str(d)).mkdir(parents=True)
    for i in range(n):
        png, label = base[i % len(base)]
        (train / str(label) / f"img_{i:06d}.png").write_bytes(unique(png, i))
    repo.add_dataset(DatasetConfig(name="train", layout="imagefolder", path="train"))
    first = repo.commit("digits", all=True, annotator="ada").id
    moved = 0
    for i in range(0, n, 100):  # 1%: every hundredth example moves to the next digit
        label = base[i % len(base)][1]
        name = f"img_{i:06d}.png"
        shutil.move(train / str(label) / name, train / str((label + 1) % 10) / name)
        moved += 1
    second = repo.commit(f"re-label {moved} examples", all=True, annotator="bob").id
    repo.close()
    return first, second, "3"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("GIT_AUTHOR_NAME", "Bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from datagit.web import create_app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        t = time.perf_counter()
        first, second, cell = build(root, args.records)
        print(f"built {args.records:,} examples, 2 commits in {time.perf_counter() - t:.1f} s")
        repo = Repo.open(root, readonly=True)
        client = TestClient(create_app(str(root), hosts=["testserver"]))
        rows: list[tuple[str, float, float, str]] = []

        def cli_diff() -> str:
            return render.text(render.diff_json(history.diff(repo, first, second)))

        def cli_show(rev: str) -> str:
            c = repo.commit_info(rev)
            changes = repo.changes(c.parents[0] if c.parents else None, c.id)
            return render.text(render.show_json(c, changes))

        def get(url: str) -> tuple[float, str]:
            """Server time (its Server-Timing header, in s) and the page."""
            answer = client.get(url)
            assert answer.status_code == 200, answer.text[:300]
            ms = float(answer.headers["server-timing"].split("dur=")[1])
            return ms / 1000, answer.text

        def served(url: str, repeat: int = 3) -> tuple[float, str]:
            answers = [get(url) for _ in range(repeat)]
            return min(a[0] for a in answers), answers[0][1]

        base_diff, _ = timed(cli_diff)
        page_diff, html = served(f"/commit/{second}")
        rows.append(("commit page (1% re-label)", page_diff, base_diff, "≤ 1.5×, ≤ 1 s"))
        target = f"{cell}"
        link = re.search(rf'data-from="{cell}" data-to="(\d)" href="([^"]+)"', str(html))
        assert link, "the re-label commit page has a transition cell"
        cell_url = f"/commit/{second}" + link.group(2).replace("&amp;", "&")
        page_cell, cell_html = served(cell_url)
        rows.append((f"transition cell {target} → {link.group(1)}", page_cell, base_diff, ""))
        base_show, _ = timed(lambda: cli_show(first), repeat=1)
        page_root, _ = served(f"/commit/{first}", repeat=1)
        rows.append((f"root commit page ({args.records:,} added)", page_root, base_show, ""))
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "datagit", "-C", str(root), "diff", "--json", first, second],
            capture_output=True,
            check=True,
        )
        cli_wall = time.perf_counter() - t
        assert len(out.stdout) > 1000

        thumbs = re.findall(r'src="(/thumb/[0-9a-f]{32}\?size=128)"', str(cell_html))
        t = time.perf_counter()
        for u in thumbs:
            client.get(u)
        cold = time.perf_counter() - t
        warm, _ = timed(lambda: [client.get(u) for u in thumbs])
        repo.close()

    print()
    print(f"{'measure':<36} {'viewer':>9} {'baseline':>9} {'ratio':>7}  target")
    for name, mine, base, goal in rows:
        print(f"{name:<36} {mine:>8.3f}s {base:>8.3f}s {mine / base:>6.2f}×  {goal}")
    print(f"{'datagit diff --json (subprocess)':<36} {'':>9} {cli_wall:>8.3f}s")
    print(f"{f'{len(thumbs)} thumbnails of a page, cold':<36} {cold:>8.3f}s")
    print(f"{f'{len(thumbs)} thumbnails of a page, warm':<36} {warm:>8.3f}s {'':>17}  ≤ 0.5 s")


if __name__ == "__main__":
    main()
