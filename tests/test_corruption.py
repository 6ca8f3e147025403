"""One flipped byte in each kind of file under .datagit: detected by fsck, or discarded
and rebuilt; never a traceback, never a wrong answer, never bad bytes handed out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from testkit import Cli, digits_pngs, write_tree

from datagit import DatagitError, Repo


def datagit(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datagit", "-C", str(ws), *args], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two commits of 40 digits: git packs and loose objects, content pack and index,
    stat cache, snapshot, refs, a stage."""
    ws = tmp_path_factory.mktemp("corrupt") / "ws"
    Cli(ws.parent)("init", "ws")
    run = Cli(ws)
    # a module fixture runs before the per-test isolation: name the author here
    run("config", "user.name", "Ada Tester")
    run("config", "user.email", "ada@example.com")
    run("dataset", "add", "train", "--layout", "imagefolder", "--path", "train")
    write_tree(ws, {f"train/{t}/img_{i:02d}.png": p for i, (p, t) in enumerate(digits_pngs(40))})
    run("commit", "-a", "-m", "digits")
    run("gc")  # a git pack
    (ws / "train" / "3" / "img_03.png").rename(ws / "train" / "4" / "img_03.png")
    run("commit", "-a", "-m", "relabel")  # loose objects or a small pack
    write_tree(ws, {"train/5/staged.png": digits_pngs(41)[40][0]})
    run("add")
    run("status")  # a snapshot and stat cache rows
    return ws


KINDS = {
    "content pack": "content/packs/pack-000000.pack",
    "content index": "content/packs/pack-000000.idx",
    "git pack": "objects/pack/*.pack",
    "git pack index": "objects/pack/*.idx",
    "loose git object": "objects/??/*",
    "stat cache": "index.sqlite",
    "snapshot": "cache/snapshot-train.marshal",
    "branch ref": "refs/heads/main",
    "HEAD": "HEAD",
    "stage": "STAGE",
    "git config": "config",
}


def _expected(ws: Path) -> tuple[dict[str, bytes], str]:
    files = {
        p.relative_to(ws).as_posix(): p.read_bytes()
        for p in sorted((ws / "train").rglob("*"))
        if p.is_file()
    }
    return files, datagit(ws, "status").stdout


@pytest.mark.parametrize("where", [0.0, 0.3, 0.6, 0.97])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_one_flipped_byte(template: Path, tmp_path: Path, kind: str, where: float) -> None:
    import shutil

    ws = tmp_path / "ws"
    # the stat cache's WAL files come and go with the fixture's open connections
    shutil.copytree(template, ws, symlinks=True, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    files, status_before = _expected(ws)
    candidates = sorted((ws / ".datagit").glob(KINDS[kind]))
    candidates = [p for p in candidates if p.is_file()]
    assert candidates, kind
    target = candidates[0]
    data = bytearray(target.read_bytes())
    pos = min(int(len(data) * where), len(data) - 1)
    data[pos] ^= 0x01 if kind in ("branch ref", "HEAD") else 0x5A
    target.write_bytes(bytes(data))

    outputs = {}
    first_status = None
    for args in (("status",), ("log",), ("fsck",), ("checkout", "-f", "main"), ("status",)):
        out = datagit(ws, *args)
        first_status = out if first_status is None else first_status
        assert "Traceback" not in out.stderr, (args, out.stderr)
        if out.returncode != 0:
            lines = out.stderr.strip().splitlines()
            assert lines[0].startswith("error: ") and len(lines) <= 2, out.stderr
        outputs[args] = out
    detected = outputs[("fsck",)].returncode != 0 or any(
        o.returncode != 0 for o in outputs.values()
    )
    if not detected:  # then it was discarded and rebuilt: every answer must be right
        assert first_status is not None
        assert first_status.stdout == status_before or kind == "stage"
    # never bad bytes: whatever reads, reads verified
    try:
        repo = Repo.open(ws)
        for r in repo.records("train", "HEAD"):
            try:
                data_read = repo.read(r)
            except DatagitError:
                continue
            want = files.get(f"train/{r.label}/{r.id}")
            if want is not None:
                assert data_read == want
    except DatagitError:
        pass
