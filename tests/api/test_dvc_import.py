"""import-dvc on a real DVC repository that the test builds with git and the dvc CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import digits_pngs

from datagit import DatagitError, InvalidInputError, Repo
from datagit.api.dvc_import import import_dvc

pytest.importorskip("dvc")


def _run(cwd: Path, *args: str, **env: str) -> str:
    full = {**os.environ, "DVC_NO_ANALYTICS": "1", **env}
    return subprocess.run(
        args, cwd=cwd, env=full, check=True, capture_output=True, text=True
    ).stdout.strip()


def _commit(src: Path, who: str, date: str, message: str) -> str:
    dvc = (sys.executable, "-m", "dvc")
    _run(src, *dvc, "add", "-q", "data")
    _run(src, "git", "add", "-A")
    env = {"GIT_AUTHOR_NAME": who, "GIT_AUTHOR_EMAIL": f"{who.lower()}@example.com"}
    env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    _run(src, "git", "commit", "-q", "-m", message, **env)
    return _run(src, "git", "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Three DVC commits of digits in class folders (add, re-label, add+remove) and a README one."""
    src = tmp_path_factory.mktemp("dvcsrc")
    _run(src, "git", "init", "-q", "-b", "main")
    _run(src, "git", "config", "user.name", "Setup")
    _run(src, "git", "config", "user.email", "setup@example.com")
    _run(src, sys.executable, "-m", "dvc", "init", "-q")
    pngs = digits_pngs(12)
    for i, (png, label) in enumerate(pngs[:8]):
        (src / "data" / str(label)).mkdir(parents=True, exist_ok=True)
        (src / "data" / str(label) / f"d{i}.png").write_bytes(png)
    first = _commit(src, "Alice", "2024-01-02T10:00:00+0000", "eight digits")
    label0 = pngs[0][1]
    (src / "data" / "9").mkdir(exist_ok=True)
    shutil.move(src / "data" / str(label0) / "d0.png", src / "data" / "9" / "d0.png")
    second = _commit(src, "Bob", "2024-02-03T11:00:00+0000", "d0 is a nine")
    (src / "README").write_text("not data")
    _run(src, "git", "add", "README")
    _run(src, "git", "commit", "-q", "-m", "docs only")
    for i, (png, label) in enumerate(pngs[8:], start=8):
        (src / "data" / str(label)).mkdir(parents=True, exist_ok=True)
        (src / "data" / str(label) / f"d{i}.png").write_bytes(png)
    (src / "data" / str(pngs[1][1]) / "d1.png").unlink()
    third = _commit(src, "Carol", "2024-03-04T12:00:00+0000", "four more, d1 dropped")
    return src, [first, second, third]


@pytest.fixture
def target(tmp_path: Path) -> Repo:
    repo = Repo.init(tmp_path / "ws")
    yield repo
    repo.close()


def test_history_is_replayed_with_authors_dates_and_relabels(
    dvc_repo: tuple[Path, list[str]], target: Repo
) -> None:
    src, sources = dvc_repo
    done = import_dvc(target, str(src))
    assert [c.source for c in done] == sources  # the README-only commit is skipped
    assert [c.files for c in done] == [8, 8, 11]
    log = list(target.log())[::-1]
    assert [c.author.name for c in log] == ["Alice", "Bob", "Carol"]
    assert [c.summary for c in log] == ["eight digits", "d0 is a nine", "four more, d1 dropped"]
    assert log[1].author.time == 1706958000
    relabel = target.changes(log[0].id, log[1].id)["data"]
    assert [(c.kind, c.id, c.new.label if c.new else None) for c in relabel] == [
        ("relabeled", "d0.png", "9")
    ]
    kinds = sorted(c.kind for c in target.changes(log[1].id, log[2].id)["data"])
    assert kinds == ["added"] * 4 + ["removed"]
    recs = {r.id: r for r in target.records("data")}
    assert target.read(recs["d5.png"]) == digits_pngs(12)[5][0]
    assert target.status().clean


def test_a_revision_range_imports_only_its_commits(
    dvc_repo: tuple[Path, list[str]], target: Repo
) -> None:
    src, sources = dvc_repo
    done = import_dvc(target, str(src), rev=f"{sources[0]}..main", path="data", dataset="digits")
    assert [c.source for c in done] == sources[1:]
    assert target.config.datasets["digits"].path == "data"


def test_bad_sources_are_refused_and_change_nothing(
    dvc_repo: tuple[Path, list[str]], target: Repo, tmp_path: Path
) -> None:
    src, _ = dvc_repo
    with pytest.raises(InvalidInputError, match="not a DVC repository"):
        import_dvc(target, str(tmp_path))
    with pytest.raises(InvalidInputError, match=r"no commit .* changes nope\.dvc"):
        import_dvc(target, str(src), path="nope")
    assert target.head() is None and target.config.datasets == {}
    (target.workdir / "datagit.toml").write_text(
        '[datasets.data]\nlayout = "imagefolder"\npath = "data"\n'
    )
    (target.workdir / "data" / "x").mkdir(parents=True)
    (target.workdir / "data" / "x" / "y.png").write_bytes(b"uncommitted")
    with pytest.raises(DatagitError, match="clean workspace"):
        import_dvc(target, str(src))


def test_import_dvc_from_the_command_line(
    dvc_repo: tuple[Path, list[str]], target: Repo, run_cli
) -> None:  # type: ignore[no-untyped-def]
    src, _ = dvc_repo
    out = run_cli(target.workdir)("import-dvc", str(src), "--path", "data").output
    assert out.rstrip().endswith("Imported 3 commits")
    r = run_cli(target.workdir)("import-dvc", str(target.workdir), ok=False)
    assert r.exit_code != 0 and "error: " in r.output and "not a DVC repository" in r.output


def _files(repo: Repo) -> dict[str, str]:
    """The dataset folder as label → id pairs, read from disk."""
    root = repo.workdir / "data"
    return {p.relative_to(root).as_posix(): p.parent.name for p in root.rglob("*.png")}


def test_importing_again_brings_only_the_new_commits(
    dvc_repo: tuple[Path, list[str]], target: Repo
) -> None:
    """Regression (#14): a second import replayed everything and failed on a moved file."""
    src, sources = dvc_repo
    done = import_dvc(target, str(src), rev=sources[1])
    assert [c.source for c in done] == sources[:2]
    again = import_dvc(target, str(src))
    assert [c.source for c in again] == sources[2:]
    assert sorted(r.id for r in target.records("data")) == sorted(
        f"d{i}.png" for i in range(12) if i != 1
    )
    assert target.status().clean
    assert import_dvc(target, str(src)) == []  # nothing new: nothing done


def test_a_range_in_two_steps_keeps_the_second_range_deletions(
    dvc_repo: tuple[Path, list[str]], target: Repo
) -> None:
    """Regression (#14): `--rev A..B` then `--rev B..main` kept a file deleted in B..main."""
    src, sources = dvc_repo
    import_dvc(target, str(src), rev=f"{sources[0]}..{sources[1]}")
    import_dvc(target, str(src), rev=f"{sources[1]}..main")
    ids = sorted(r.id for r in target.records("data"))
    assert "d1.png" not in ids and len(ids) == 11
    assert target.status().clean


def _damaged_copy(src: Path, tmp_path: Path, victim: bytes) -> Path:
    """A copy of the DVC repository whose cache lost the bytes ``victim``."""
    import hashlib

    copy = tmp_path / "damaged"
    shutil.copytree(src, copy, symlinks=True)
    md5 = hashlib.md5(victim).hexdigest()
    (copy / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    return copy


def test_a_failed_import_leaves_an_empty_repository_as_it_was(
    dvc_repo: tuple[Path, list[str]], target: Repo, tmp_path: Path
) -> None:
    src, _ = dvc_repo
    copy = _damaged_copy(src, tmp_path, digits_pngs(12)[9][0])  # d9 arrives in the third commit
    config = (target.workdir / "datagit.toml").read_bytes()
    with pytest.raises(DatagitError, match="cannot read data/"):
        import_dvc(target, str(copy))
    assert target.head() is None and list(target.git.refs("refs/heads/")) == []
    assert (target.workdir / "datagit.toml").read_bytes() == config
    assert not (target.workdir / "data").exists()
    assert target.status().clean


def test_a_failed_re_import_leaves_the_last_import_as_it_was(
    dvc_repo: tuple[Path, list[str]], target: Repo, tmp_path: Path
) -> None:
    src, sources = dvc_repo
    import_dvc(target, str(src), rev=sources[1])
    head, before = target.head(), _files(target)
    copy = _damaged_copy(src, tmp_path, digits_pngs(12)[9][0])
    with pytest.raises(DatagitError, match="cannot read data/"):
        import_dvc(target, str(copy))
    assert target.head() == head and _files(target) == before
    assert target.status().clean
