"""A small real history for the viewer's tests: digits, a re-label, a branch, a merge,
a tag and two cached harness runs; and a client for the viewer's ASGI app."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from testkit import Cli

from datagit import Repo
from datagit.storage.git import Signature

if TYPE_CHECKING:
    from starlette.testclient import TestClient

ADA = ("Ada Lovelace", "ada@example.com")
BOB = ("Bob Babbage", "bob@example.com")
T0 = 1_790_000_000


def sig(who: tuple[str, str], n: int) -> Signature:
    return Signature(who[0], who[1], T0 + n * 3600, 60)


def build_history(root: Path, *, runs: bool = True) -> dict[str, str]:
    """Commits (oldest first): digits (ada) → 12 threes re-labelled 8 (bob) → a branch
    adding 5 nines (ada) merged back; tag v1 on the first. Returns name → commit id."""
    from harness_helpers import make_repo

    os.environ.setdefault("GIT_AUTHOR_NAME", ADA[0])
    os.environ.setdefault("GIT_AUTHOR_EMAIL", ADA[1])
    repo = make_repo(root, commit=False)
    ids: dict[str, str] = {}
    ids["first"] = repo.commit("Add digits", all=True, annotator="ada", author=sig(ADA, 0)).id
    train = root / "train"
    (train / "8").mkdir(exist_ok=True)
    for p in sorted((train / "3").iterdir())[:12]:
        shutil.move(p, train / "8" / p.name)
    ids["relabel"] = repo.commit(
        "Re-label ambiguous 3s as 8s", all=True, annotator="bob", author=sig(BOB, 1)
    ).id
    cli = Cli(root)
    cli("tag", "v1", ids["first"])
    cli("switch", "-c", "nines")
    src = sorted((train / "9").iterdir())[:5]
    for i, p in enumerate(src):
        shutil.copy(p, train / "9" / f"extra_{i}.png")
    ids["nines"] = repo.commit("Five more nines", all=True, annotator="ada", author=sig(ADA, 2)).id
    cli("switch", "main")
    (train / "0").joinpath(sorted((train / "0").iterdir())[0].name).unlink()
    ids["drop"] = repo.commit("Drop a blurry zero", all=True, author=sig(BOB, 3)).id
    cli("merge", "nines", "-m", "Merge the nines")
    ids["merge"] = repo.head() or ""
    if runs:
        from datagit.api import harness

        ids["run_first"] = harness.train(repo, ids["first"]).id
        ids["run_relabel"] = harness.train(repo, ids["relabel"]).id
    repo.close()
    return ids


def client(root: Path) -> TestClient:
    with warnings.catch_warnings():  # starlette's TestClient says it runs on httpx
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from datagit.web import create_app

    return TestClient(create_app(str(root), hosts=["testserver"]))


def repo_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under .datagit with its size and mtime: what "wrote nothing" compares."""
    out = {}
    for p in sorted((root / ".datagit").rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


__all__ = ["ADA", "BOB", "Repo", "build_history", "client", "repo_state"]
