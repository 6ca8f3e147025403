"""`Repo.open(path, readonly=True)`: a reader takes no lock, starts no monitor and writes
no stat cache, so it can look at a repository while a writer works on it."""

from __future__ import annotations

import pytest
from testkit import digits_pngs, write_tree

from datagit import DatagitError, Repo


def test_readonly_repo_refuses_writes_and_leaves_the_repository_as_it_was(
    tmp_repo: Repo,
) -> None:
    write_tree(tmp_repo.workdir, {"train/3/a.png": digits_pngs(1)[0][0]})
    head = tmp_repo.commit("one", all=True).id
    write_tree(tmp_repo.workdir, {"train/5/b.png": digits_pngs(2)[1][0]})
    (tmp_repo.dotdir / "index.sqlite").unlink(missing_ok=True)
    before = sorted(p.name for p in tmp_repo.dotdir.iterdir())
    reader = Repo.open(tmp_repo.workdir, readonly=True)
    assert [r.id for r in reader.records("train")] == ["a.png"]
    assert {r.id for r in reader.scan("train")} == {"a.png", "b.png"}
    with pytest.raises(DatagitError, match="was opened read-only"):
        reader.commit("two", all=True)
    with pytest.raises(DatagitError, match="was opened read-only"):
        reader.add()
    reader.close()
    assert sorted(p.name for p in tmp_repo.dotdir.iterdir()) == before  # no index.sqlite, no lock
    assert tmp_repo.head() == head


def test_readonly_repo_reads_while_a_writer_holds_the_lock(tmp_repo: Repo) -> None:
    with tmp_repo.lock:
        reader = Repo.open(tmp_repo.workdir, readonly=True)
        assert reader.head() is None
        reader.close()


def test_readonly_repo_starts_no_monitor(tmp_repo: Repo) -> None:
    tmp_repo.git.config_set("datagit.fsmonitor", "true")
    assert Repo.open(tmp_repo.workdir, readonly=True).snapshots.monitor is None
    assert Repo.open(tmp_repo.workdir).snapshots.monitor is not None


def test_readonly_status_uses_the_stat_cache_without_writing_it(tmp_repo: Repo) -> None:
    write_tree(tmp_repo.workdir, {"train/3/a.png": digits_pngs(1)[0][0]})
    tmp_repo.commit("one", all=True)
    tmp_repo.statcache.close()
    write_tree(tmp_repo.workdir, {"train/5/b.png": digits_pngs(2)[1][0]})
    files = {p: p.stat().st_mtime_ns for p in tmp_repo.dotdir.rglob("*") if p.is_file()}
    reader = Repo.open(tmp_repo.workdir, readonly=True)
    status = reader.status()
    assert [c.id for d in status.datasets for c in d.unstaged] == ["b.png"]
    reader.close()
    assert {p: p.stat().st_mtime_ns for p in tmp_repo.dotdir.rglob("*") if p.is_file()} == files
