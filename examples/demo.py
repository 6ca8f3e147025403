"""The datagit tour on real data: scikit-learn's digits as an image-folder repository.

    make demo            # or: .venv/bin/python examples/demo.py [--dir demo-repo]

It writes the 1,797 8×8 digit images as PNG files into class folders, commits a
short history by two people (add data, a careless re-label, more data), then
walks through log, status, diff, blame, checkout, training and evaluation of
two commits, a bisect that finds the commit that hurt the model, and the data
engine loop: suspects finds Bob's wrong labels, relabel fixes them, eval
shows the gain.
Everything runs locally on the CPU; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).with_name("digits")))
from build import HARNESS, digits_pngs  # examples/digits/build.py

_pngs = functools.cache(digits_pngs)  # decoded once for the whole tour

ADA = {"GIT_AUTHOR_NAME": "Ada Lovelace", "GIT_AUTHOR_EMAIL": "ada@example.com"}
BOB = {"GIT_AUTHOR_NAME": "Bob Babbage", "GIT_AUTHOR_EMAIL": "bob@example.com"}


def datagit(
    *args: str, who: dict[str, str] = ADA, cwd: Path, check: bool = True, show: bool = True
) -> str:
    """Run one datagit command, echo it and its output like a terminal session."""
    if show:
        print(f"\n$ datagit {' '.join(args)}", flush=True)
    env = {**os.environ, **who}
    proc = subprocess.run(
        [sys.executable, "-m", "datagit", *args],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
    )
    # Progress (epochs, bars) goes to stderr; show it only when something went wrong.
    out = (proc.stdout if proc.returncode == 0 else proc.stdout + proc.stderr).rstrip()
    if out and show:
        print(textwrap.indent(out, "  "))
    if check and proc.returncode != 0:
        raise SystemExit(f"demo step failed: datagit {' '.join(args)} (exit {proc.returncode})")
    return proc.stdout


def write_digits(root: Path, first: int, last: int, folder: str) -> int:
    """Write digits[first:last] as PNGs under root/folder/<digit>/img_NNNN.png."""
    for i, (png, target) in enumerate(_pngs()[first:last], start=first):
        path = root / folder / str(target) / f"img_{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
    return last - first


def relabel(root: Path, src: str, dst: str, count: int) -> int:
    """Move the first ``count`` images of class ``src`` into class ``dst`` (a re-label)."""
    files = sorted((root / "train" / src).iterdir())[:count]
    (root / "train" / dst).mkdir(exist_ok=True)
    for f in files:
        f.rename(root / "train" / dst / f.name)
    return len(files)


def engine_loop(repo: Path) -> None:
    """suspects → relabel --from → commit → eval, on Bob's careless re-label."""
    import json

    datagit("suspects", "--top", "8", cwd=repo)
    report = datagit("suspects", "--json", cwd=repo, show=False)
    (repo / "suspects.json").write_text(report)
    flagged = json.loads(report)["suspects"]
    by_bob = datagit("diff", "v1", "HEAD~1", "--json", cwd=repo, show=False)
    careless = {r["id"] for r in json.loads(by_bob)["datasets"]["train"]["relabeled"]}
    found = sum(s["id"] in careless for s in flagged)
    print(
        f"\n  {len(flagged)} flagged; {found} of Bob's {len(careless)} careless re-labels "
        "among them"
    )
    print("\n$ datagit relabel --from suspects.json --annotator ada")
    staged = datagit(
        "relabel", "--from", "suspects.json", "--annotator", "ada", cwd=repo, show=False
    )
    print("  " + staged.strip().splitlines()[-1])
    (repo / "suspects.json").unlink()
    datagit("diff", "--cached", "--stat", cwd=repo)
    datagit("commit", "-m", "Fix the labels suspects found", cwd=repo)
    before = json.loads(datagit("eval", "HEAD~1", "--json", cwd=repo, show=False))["metrics"]
    after = json.loads(datagit("eval", "HEAD", "--json", cwd=repo, show=False))["metrics"]
    print(
        f"\n  accuracy {before['accuracy']:.4f} → {after['accuracy']:.4f} "
        f"({after['accuracy'] - before['accuracy']:+.4f}) after the fixes"
    )
    datagit("credit", cwd=repo)


def section(title: str) -> None:
    print(f"\n{'=' * 72}\n{title}\n{'=' * 72}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="demo-repo", help="where to build the repository")
    ap.add_argument("--no-train", action="store_true", help="skip the harness steps")
    ap.add_argument(
        "--min-accuracy",
        type=float,
        default=0.85,
        help="bisect's threshold between a good and a bad commit",
    )
    args = ap.parse_args()
    repo = Path(args.dir).absolute()
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)

    section("1. A repository of real images")
    n_eval = write_digits(repo, 1400, 1797, "eval")
    n_train = write_digits(repo, 0, 1000, "train")
    print(f"wrote {n_train} training and {n_eval} evaluation PNGs from sklearn's digits")
    datagit("init", ".", cwd=repo)
    datagit("dataset", "add", "train", "--layout", "imagefolder", "--path", "train", cwd=repo)
    datagit("dataset", "add", "eval", "--layout", "imagefolder", "--path", "eval", cwd=repo)
    with open(repo / "datagit.toml", "a") as f:
        f.write(HARNESS)
    datagit("status", cwd=repo)
    datagit(
        "commit",
        "-a",
        "-m",
        "Add 1,000 training and 397 eval digits",
        "--annotator",
        "ada",
        cwd=repo,
    )
    datagit("tag", "v1", cwd=repo)

    section("2. History by two people: a careless re-label, then more data")
    moved = relabel(repo, "3", "8", 60) + relabel(repo, "9", "5", 40)
    print(f"Bob moves {moved} images between class folders (3 → 8, 9 → 5)")
    datagit("status", cwd=repo, who=BOB)
    datagit(
        "commit",
        "-a",
        "-m",
        "Re-label ambiguous 3s and 9s",
        "--annotator",
        "bob",
        cwd=repo,
        who=BOB,
    )
    write_digits(repo, 1000, 1400, "train")
    datagit("commit", "-a", "-m", "Add 400 more training digits", "--annotator", "ada", cwd=repo)
    datagit("log", "--oneline", cwd=repo)
    datagit("log", "-n", "1", cwd=repo)

    section("3. What changed, example by example")
    datagit("diff", "v1", "HEAD", "--", "train", cwd=repo)
    datagit("show", "HEAD~1", "--limit", "5", cwd=repo)
    datagit("blame", "train/img_0003.png", cwd=repo)
    datagit("credit", cwd=repo)

    section("4. Travel in time")
    datagit("checkout", "v1", cwd=repo)
    print("  train/3 holds", len(list((repo / "train" / "3").iterdir())), "images at v1")
    datagit("status", cwd=repo)
    datagit("switch", "main", cwd=repo)
    print("  train/3 holds", len(list((repo / "train" / "3").iterdir())), "images on main")
    datagit("fsck", cwd=repo)

    if not args.no_train:
        section("5. Train and evaluate two commits (cached runs)")
        datagit("eval", "v1", cwd=repo)
        datagit("eval", "HEAD~1", cwd=repo)
        import json

        before = json.loads(datagit("eval", "v1", "--json", cwd=repo, show=False))["metrics"][
            "accuracy"
        ]
        after = json.loads(datagit("eval", "HEAD~1", "--json", cwd=repo, show=False))["metrics"][
            "accuracy"
        ]
        print(
            f"\n  accuracy moved {before:.4f} → {after:.4f} ({after - before:+.4f}) "
            "across Bob's re-label; both answers came from the run cache"
        )
        datagit("runs", cwd=repo)

        section("6. Bisect: which commit hurt the model?")
        check = str(Path(__file__).with_name("check_accuracy.py"))
        datagit("bisect", "start", "HEAD", "v1", cwd=repo)
        datagit("bisect", "run", sys.executable, check, "--min", str(args.min_accuracy), cwd=repo)
        datagit("bisect", "reset", cwd=repo)

        section("7. The data engine loop: find the wrong labels, fix them, measure")
        engine_loop(repo)

    print(f"\nThe repository is in {repo}; try `datagit -C {args.dir} log` yourself.")


if __name__ == "__main__":
    main()
