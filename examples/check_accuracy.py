"""A `bisect run` test: exit 0 when the model trained on the checked-out commit is good.

    datagit bisect run python examples/check_accuracy.py --min 0.93

It calls `datagit eval --json` (cached per commit, so re-visiting a commit never
retrains) and compares the accuracy to ``--min``, using git's bisect exit codes:
0 good, 1 bad, 125 skip (datagit says this commit cannot be evaluated), and 128
abort when the setup itself is broken (datagit not importable, a crash, output
that is not JSON): skipping those would end in "only skipped commits left".

`datagit bisect run --harness` does all of this without a script.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

SKIP, ABORT = 125, 128  # git bisect run: skip this commit / stop bisecting


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min", type=float, required=True, help="lowest good accuracy")
    ap.add_argument("--metric", default="accuracy")
    args = ap.parse_args()
    proc = subprocess.run(
        [sys.executable, "-m", "datagit", "eval", "--json"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        print(proc.stderr.strip(), file=sys.stderr)
        # datagit's own errors start with "error:" and mean "this commit cannot be
        # evaluated"; anything else (ImportError, a traceback) is a broken setup
        return SKIP if proc.stderr.startswith("error:") else ABORT
    try:
        metrics = json.loads(proc.stdout)["metrics"]
        value = float(metrics[args.metric])
    except (ValueError, KeyError, TypeError) as exc:
        print(
            f"check_accuracy: cannot read {args.metric!r} from datagit eval: {exc}", file=sys.stderr
        )
        return ABORT
    verdict = "good" if value >= args.min else "bad"
    print(f"{args.metric} = {value:.4f} ({verdict}, threshold {args.min})")
    return 0 if value >= args.min else 1


if __name__ == "__main__":
    sys.exit(main())
