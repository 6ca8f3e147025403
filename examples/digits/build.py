"""Build the digits example: scikit-learn's 8x8 digits as an image-folder datagit repository.

    python examples/digits/build.py /tmp/digits     # creates the repository and commits
    cd /tmp/digits && datagit eval                  # trains (a few seconds on CPU), then cached

Images are written as PNGs with Pillow: 80% to ``train/<digit>/``, 20% to
``eval/<digit>/`` (a fixed split), with the ``[harness]`` section below.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

HARNESS = """
[harness]
train = "train"
eval = "eval"
model = "mlp"
hidden = [128]
image_mode = "L"
optimizer = "sgd"
lr = 0.05
momentum = 0.9
weight_decay = 0.0001
schedule = "cosine"
epochs = 15
batch_size = 32
seed = 0
"""


def digits_pngs() -> list[tuple[bytes, int]]:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    out = []
    for img, target in zip(d.images, d.target, strict=True):
        buf = io.BytesIO()
        Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
        out.append((buf.getvalue(), int(target)))
    return out


def build(dest: Path, commit: bool = True) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for i, (png, label) in enumerate(digits_pngs()):
        split = "eval" if i % 5 == 0 else "train"
        path = dest / split / str(label) / f"digit_{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
    datagit = [str(Path(sys.executable).with_name("datagit"))]

    def dg(*args: str) -> None:
        subprocess.run([*datagit, "-C", str(dest), *args], check=True)

    subprocess.run([*datagit, "init", str(dest)], check=True)  # init takes its folder
    dg("dataset", "add", "train", "--layout", "imagefolder", "--path", "train")
    dg("dataset", "add", "eval", "--layout", "imagefolder", "--path", "eval")
    with open(dest / "datagit.toml", "a") as f:
        f.write(HARNESS)
    if commit:
        dg("commit", "-a", "-m", "digits: 1437 train, 360 eval images")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="folder to create the repository in")
    parser.add_argument("--no-commit", action="store_true", help="write files only")
    args = parser.parse_args()
    build(args.dest, commit=not args.no_commit)
    print(f"digits repository ready in {args.dest}; try: cd {args.dest} && datagit eval")


if __name__ == "__main__":
    main()
