"""A `bisect run` test: exit 0 when the model trained on the checked-out commit is good.

    datagit bisect run python examples/check_accuracy.py --min 0.93

It calls `datagit eval --json` (cached per commit, so re-visiting a commit never
retrains) and compares the accuracy to ``--min``, using git's bisect exit codes:
0 good, 1 bad, 125 skip (the commit cannot be evaluated).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


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
        return 125
    metrics = json.loads(proc.stdout)["metrics"]
    value = float(metrics[args.metric])
    verdict = "good" if value >= args.min else "bad"
    print(f"{args.metric} = {value:.4f} ({verdict}, threshold {args.min})")
    return 0 if value >= args.min else 1


if __name__ == "__main__":
    sys.exit(main())
