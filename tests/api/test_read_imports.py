"""The read verbs (`cat`, `ls DATASET/ID`, `blame DATASET/ID`) load only the read path.

On a million-example repository these answer in a few milliseconds of work; what a
user waits for is the interpreter importing modules. So the write path — the folder
scanner, the snapshots, staging and the workspace writer — and importlib.metadata
(~40 ms on its own) must not be imported by them. Each verb runs in a fresh
interpreter, as a user runs it, and reports what it loaded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datagit import Repo

WRITE_PATH = (
    "datagit.core.snapshot",
    "datagit.core.tablesnap",
    "datagit.core.folderscan",
    "datagit.api.staging",
    "datagit.api.workspace",
    "datagit.core.checkout",
    "importlib.metadata",
)

# Runs `datagit ARGS...` in this interpreter (its output on stdout, as a user sees it),
# then writes its exit code and which write-path modules it loaded as JSON on stderr.
_RUN = """
import json, runpy, sys
names = json.loads(sys.argv[1])
sys.argv = ["datagit", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("datagit", run_name="__main__")
except SystemExit as exc:
    code = exc.code or 0
sys.stdout.flush()
loaded = [n for n in names if n in sys.modules]
sys.stderr.write(json.dumps({"code": code, "loaded": loaded}) + "\\n")
"""


def _run(cwd: Path, *args: str) -> tuple[bytes, dict]:
    """(stdout, {"code", "loaded"}) of one verb in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(WRITE_PATH), *args],
        cwd=cwd,
        capture_output=True,
        check=False,
    )
    return proc.stdout, dict(json.loads(proc.stderr.decode().strip().splitlines()[-1]))


@pytest.fixture
def relabelled(digits_repo: Repo) -> tuple[Repo, str]:
    """Digits committed, then one example moved to another class in a second commit."""
    digits_repo.commit("digits", all=True)
    moved = sorted((digits_repo.workdir / "train" / "3").iterdir())[0]
    shutil.move(moved, digits_repo.workdir / "train" / "8" / moved.name)
    digits_repo.commit("relabel", all=True)
    return digits_repo, moved.name


@pytest.mark.parametrize("verb", ["cat", "ls", "blame"])
def test_read_verbs_do_not_load_the_write_path(relabelled: tuple[Repo, str], verb: str) -> None:
    repo, name = relabelled
    args = {
        "cat": ["cat", f"HEAD:train/{name}"],
        "ls": ["ls", "HEAD", f"train/{name}"],
        "blame": ["blame", f"train/{name}"],
    }[verb]
    out, got = _run(repo.workdir, *args)
    assert got["code"] == 0, got
    assert got["loaded"] == [], f"`datagit {' '.join(args)}` imported {got['loaded']}"
    if verb == "cat":  # the committed bytes, read without the write path
        assert out == (repo.workdir / "train" / "8" / name).read_bytes()
    elif verb == "ls":
        assert name.encode() in out
    else:  # both commits, the newest (the move from class 3 to 8) first
        assert out.count(b"\n") == 2 and "relabeled 3 → 8".encode() in out.splitlines()[0]


def test_status_still_loads_what_it_needs(relabelled: tuple[Repo, str]) -> None:
    """The write path is imported where it is used: status after an edit still sees it."""
    repo, name = relabelled
    (repo.workdir / "train" / "8" / name).write_bytes(b"not a png any more")
    out, got = _run(repo.workdir, "status", "--json")
    assert got["code"] == 0, got
    assert "datagit.core.snapshot" in got["loaded"]
    assert name.encode() in out


def test_a_checkout_that_patches_a_table_does_not_load_numpy(tmp_repo: Repo) -> None:
    """numpy (~0.1 s to import) serves line-map comparisons; a checkout only reads the
    ids on each line and writes the new map, so it must not pay for it. The map it
    writes is then the one a later edit is compared against."""
    from datagit.core.config import DatasetConfig

    table = tmp_repo.workdir / "labels.csv"
    table.write_text("id,label\n" + "".join(f"r{i},{i % 3}\n" for i in range(50)))
    tmp_repo.add_dataset(DatasetConfig(name="labels", layout="table", path="labels.csv"))
    first = tmp_repo.commit("labels", all=True).id
    table.write_text(table.read_text().replace("r7,1", "r7,2"))
    tmp_repo.commit("relabel r7", all=True)
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(["numpy"]), "checkout", first],
        cwd=tmp_repo.workdir,
        capture_output=True,
        check=False,
    )
    got = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    assert got == {"code": 0, "loaded": []}, proc.stderr.decode()
    assert "r7,1\n" in table.read_text()
    table.write_text(table.read_text().replace("r9,0", "r9,2"))
    fresh = Repo.open(tmp_repo.workdir)
    (ds,) = [d for d in fresh.status().datasets if d.name == "labels"]
    assert [(c.id, c.kind) for c in ds.unstaged] == [("r9", "relabeled")]


def _loaded(cwd: Path, names: list[str], *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(names), *args],
        cwd=cwd,
        capture_output=True,
        check=False,
    )
    return dict(json.loads(proc.stderr.decode().strip().splitlines()[-1]))


LEAN = [
    "numpy",
    "datagit.core.linedelta",
    "datagit.api.staging",
    "datagit.api.workspace",
    "sqlite3",
    "concurrent.futures",
]


def test_a_table_commit_and_a_clean_status_load_only_what_they_use(tmp_repo: Repo) -> None:
    """A relabel commit of a table matches lines without numpy (`linematch`); a status
    that finds the table unchanged by its stat loads neither the line delta nor staging,
    the workspace writer, the stat cache's sqlite or the packer's threads — every
    import is time a user waits for (issue 15: status ≤ 0.2 s at a million rows)."""
    from datagit.core.config import DatasetConfig

    table = tmp_repo.workdir / "labels.csv"
    table.write_text("id,label\n" + "".join(f"r{i},{i % 3}\n" for i in range(300)))
    tmp_repo.add_dataset(DatasetConfig(name="labels", layout="table", path="labels.csv"))
    tmp_repo.commit("labels", all=True)
    table.write_text(table.read_text().replace("r7,1", "r7,2").replace("r70,1", "r70,0"))
    got = _loaded(tmp_repo.workdir, ["numpy"], "commit", "-a", "-m", "relabel")
    assert got == {"code": 0, "loaded": []}
    after = Repo.open(tmp_repo.workdir)
    assert [after.record("labels", i).label for i in ("r7", "r70", "r8")] == ["2", "0", "2"]
    _loaded(tmp_repo.workdir, [], "status")  # a first look may settle a racy stat
    assert _loaded(tmp_repo.workdir, LEAN, "status") == {"code": 0, "loaded": []}
    table.write_text(table.read_text().replace("r9,0", "r9,2"))
    got = _loaded(tmp_repo.workdir, LEAN, "status", "--porcelain")
    assert got["code"] == 0 and "datagit.core.linedelta" in got["loaded"]
    assert "numpy" not in got["loaded"]
