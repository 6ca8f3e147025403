"""Re-label some training digits (move them to another class folder) to show a regression.

    python examples/digits/relabel.py /tmp/digits --from 3 --to 8 --count 60
    cd /tmp/digits && datagit commit -a -m "relabel 60 threes as eights" && datagit eval

The first ``count`` images of ``train/<from>/`` in name order move to
``train/<to>/``: the same examples, re-labelled, as `datagit diff` will show.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def relabel(workspace: Path, src: str, dst: str, count: int) -> int:
    files = sorted((workspace / "train" / src).glob("*.png"))[:count]
    (workspace / "train" / dst).mkdir(parents=True, exist_ok=True)
    for f in files:
        f.rename(workspace / "train" / dst / f.name)
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--from", dest="src", default="3")
    parser.add_argument("--to", dest="dst", default="8")
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    n = relabel(args.workspace, args.src, args.dst, args.count)
    print(f"moved {n} images from train/{args.src}/ to train/{args.dst}/")


if __name__ == "__main__":
    main()
