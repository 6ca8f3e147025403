"""The filesystem monitor: scans narrowed to what it reports agree with full scans.

Each test runs a real inotify daemon on a real digits repository, changes the
workspace the way users do, and compares the monitored `status` with a full
scan made without it — and proves the full scan was not what answered.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from datagit import Repo
from datagit.api import monitor
from datagit.errors import InvalidInputError
from datagit.storage import fsmonitor
from datagit.storage.statcache import RACY_NS

pytestmark = pytest.mark.skipif(not fsmonitor.supported(), reason="inotify is Linux-only")


def age(root: Path) -> None:
    past = time.time_ns() - 10 * RACY_NS
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(past, past))


@pytest.fixture
def watched(digits_repo: Repo) -> Iterator[Repo]:
    """A committed digits repository with its monitor running and a token saved."""
    age(digits_repo.workdir / "train")
    monitor.start(digits_repo)
    digits_repo.commit("digits", all=True)
    try:
        yield digits_repo
    finally:
        monitor.stop(digits_repo)


def changes(repo: Repo) -> list[tuple[str, str]]:
    (ds,) = repo.status().datasets
    return sorted((c.id, c.kind) for c in ds.unstaged)


def truth(repo: Repo) -> list[tuple[str, str]]:
    """The same question with no monitor and no snapshot: every file listed and stat'ed."""
    plain = Repo.open(repo.workdir)
    plain.snapshots.monitor = None
    plain.snapshots.drop()
    return changes(plain)


def narrowed(repo: Repo) -> list[tuple[str, str]]:
    """A monitored status in a new process's shoes, failing if it fell back to a full scan."""
    from datagit.core import snapshot

    def no_full_scan(*_a: object, **_k: object) -> None:
        raise AssertionError("the monitor's answer should have narrowed this scan")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(snapshot, "scan_changes", no_full_scan)
        return changes(Repo.open(repo.workdir))


def test_start_enables_and_stop_disables(watched: Repo) -> None:
    info = monitor.status(watched)
    assert info is not None and info["watches"] >= 11  # workspace, train/, 10 class folders
    assert monitor.enabled(Repo.open(watched.workdir))
    assert monitor.stop(watched)
    assert monitor.status(watched) is None and not monitor.enabled(watched)


def test_a_relabel_is_seen_without_a_full_scan(watched: Repo) -> None:
    train = watched.workdir / "train"
    moved = sorted((train / "3").iterdir())[:5]
    for p in moved:
        os.replace(p, train / "8" / p.name)
    got = narrowed(watched)
    assert got == truth(watched) == sorted((p.name, "relabeled") for p in moved)
    info = Repo.open(watched.workdir).commit("relabel", all=True)
    recs = {r.id: r.label for r in watched.records("train", info.id)}
    assert all(recs[p.name] == "8" for p in moved)
    assert narrowed(watched) == []


def test_in_place_edits_new_and_deleted_files(watched: Repo) -> None:
    train = watched.workdir / "train"
    edited = sorted((train / "1").iterdir())[0]
    with open(edited, "r+b") as f:  # same inode, same size: only the mtime moves
        f.seek(20)
        f.write(b"\xff")
    (train / "2" / "fresh.png").write_bytes((train / "2").iterdir().__next__().read_bytes())
    gone = sorted((train / "4").iterdir())[0]
    gone.unlink()
    got = narrowed(watched)
    assert got == truth(watched)
    assert got == sorted(
        [(edited.name, "modified"), ("fresh.png", "added"), (gone.name, "removed")]
    )


def test_new_folders_and_a_renamed_class_folder(watched: Repo) -> None:
    train = watched.workdir / "train"
    sub = train / "5" / "batch2" / "deep"
    sub.mkdir(parents=True)  # created and filled faster than any watch can be added
    for i in range(3):
        (sub / f"n{i}.png").write_bytes(b"new example %d" % i)
    os.rename(train / "7", train / "seven")
    got = narrowed(watched)
    assert got == truth(watched)
    kinds = dict(got)
    assert kinds["batch2/deep/n0.png"] == "added"
    assert sum(1 for k in kinds.values() if k == "relabeled") == len(
        list((train / "seven").iterdir())
    )


def test_a_deleted_class_folder_removes_its_examples(watched: Repo) -> None:
    import shutil

    n = len(list((watched.workdir / "train" / "6").iterdir()))
    shutil.rmtree(watched.workdir / "train" / "6")
    got = narrowed(watched)
    assert got == truth(watched) and len(got) == n and {k for _, k in got} == {"removed"}


def test_a_subfolder_moved_out_of_the_workspace(watched: Repo, tmp_path: Path) -> None:
    train = watched.workdir / "train"
    sub = train / "5" / "extra"
    sub.mkdir()
    for i in range(3):
        (sub / f"e{i}.png").write_bytes(b"extra %d" % i)
    age(sub)
    Repo.open(watched.workdir).commit("extra", all=True)
    os.rename(sub, tmp_path / "away")  # one MOVED_FROM for the folder, none for its files
    got = narrowed(watched)
    assert got == truth(watched) == [(f"extra/e{i}.png", "removed") for i in range(3)]


def test_layout_rules_still_hold_on_what_changed(watched: Repo) -> None:
    train = watched.workdir / "train"
    (train / "2" / "3").mkdir()  # a class folder nested in a class folder
    (train / "2" / "3" / "x.png").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="nested inside class folder"):
        Repo.open(watched.workdir).status()
    (train / "2" / "3" / "x.png").unlink()
    (train / "2" / "3").rmdir()
    dup = sorted((train / "1").iterdir())[0]
    (train / "9" / dup.name).write_bytes(b"same id, other label")
    with pytest.raises(InvalidInputError, match="given by both"):
        Repo.open(watched.workdir).status()


def test_a_killed_monitor_falls_back_and_is_restarted(watched: Repo) -> None:
    info = monitor.status(watched)
    assert info is not None
    os.kill(int(info["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    deadline = time.monotonic() + 5
    while monitor.status(watched) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    train = watched.workdir / "train"
    p = sorted((train / "0").iterdir())[0]
    os.replace(p, train / "1" / p.name)
    assert changes(Repo.open(watched.workdir)) == truth(watched) == [(p.name, "relabeled")]
    restarted = monitor.status(watched)
    assert restarted is not None and restarted["pid"] != info["pid"]


def test_cli_start_status_stop(watched: Repo) -> None:
    import subprocess

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "datagit", "fsmonitor", *args],
            cwd=watched.workdir,
            capture_output=True,
            text=True,
        )

    assert "running: pid" in run("status").stdout
    assert run("stop").stdout.strip() == "fsmonitor stopped"
    off = run("status")
    assert off.returncode == 0 and "disabled, not running" in off.stdout
    assert "fsmonitor running" in run("start").stdout
    assert "enabled, running" in run("status").stdout


def test_a_big_full_scan_advises_the_monitor_until_muted(
    digits_repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(monitor, "ADVISE_FILES", 100)  # 300 digits count as "big" here
    age(digits_repo.workdir / "train")
    digits_repo.commit("digits", all=True)
    repo = Repo.open(digits_repo.workdir)
    repo.status()
    hint = monitor.advice(repo)
    assert hint is not None and "datagit fsmonitor start" in hint and "\n" not in hint
    repo.git.config_set("advice.fsmonitor", "false")
    assert monitor.advice(repo) is None
    repo.git.config_delete("advice.fsmonitor")
    small = Repo.open(digits_repo.workdir)
    assert monitor.advice(small) is None  # nothing scanned yet in this process


def test_no_advice_once_the_monitor_is_on(watched: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitor, "ADVISE_FILES", 100)
    repo = Repo.open(watched.workdir)
    repo.status()
    assert monitor.advice(repo) is None


def test_unlabelled_files_in_and_out_of_class_folders(watched: Repo) -> None:
    """A file dropped directly in the dataset folder is an unlabelled example; moving
    one into a class folder (or out of one) is a re-label the narrowed scan sees."""
    train = watched.workdir / "train"
    (train / "loose.png").write_bytes(b"an unlabelled example")
    out = sorted((train / "6").iterdir())[0]
    os.replace(out, train / out.name)
    got = narrowed(watched)
    assert got == truth(watched) == sorted([("loose.png", "added"), (out.name, "relabeled")])
    watched.commit("unlabelled", all=True)
    assert watched.record("train", out.name).label is None
    os.replace(train / "loose.png", train / "6" / "loose.png")
    assert narrowed(watched) == truth(watched) == [("loose.png", "relabeled")]


def test_a_table_is_watched_too(digits_repo: Repo) -> None:
    """A table no reported path touches is answered by the monitor, without a stat."""
    from datagit.core import tablesnap
    from datagit.core.config import DatasetConfig

    ws = digits_repo.workdir
    table = ws / "labels.csv"
    table.write_bytes(b"id,label\n" + b"".join(b"r%d,x\n" % i for i in range(50)))
    digits_repo.add_dataset(DatasetConfig(name="labels", layout="table", path="labels.csv"))
    age(ws)
    monitor.start(digits_repo)
    try:
        repo = Repo.open(ws)
        repo.commit("digits and labels", all=True)
        state = repo.tables.load("labels")
        assert state is not None and state.token is not None
        assert tablesnap._monitor_clean(repo.snapshots, state)
        os.replace(sorted((ws / "train" / "3").iterdir())[0], ws / "train" / "8" / "x.png")
        assert tablesnap._monitor_clean(repo.snapshots, state)  # images moved, not the table
        table.write_bytes(table.read_bytes().replace(b"r7,x", b"r7,y"))
        assert not tablesnap._monitor_clean(repo.snapshots, state)
        (ds,) = [d for d in Repo.open(ws).status().datasets if d.name == "labels"]
        assert [(c.id, c.kind) for c in ds.unstaged] == [("r7", "relabeled")]
    finally:
        monitor.stop(digits_repo)


# -- a monitor datagit did not start is never believed ----------------------------------------
class FakeMonitor:
    """A socket server at the monitor's address answering "nothing changed" to everything."""

    def __init__(self, address: str | bytes) -> None:
        import socket
        import threading

        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(address)
        self.server.listen(8)
        self.asked = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import orjson

        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self.asked += 1
                try:  # a careful client hangs up before asking
                    conn.makefile("rb").readline()
                    conn.sendall(orjson.dumps({"token": "fake:1", "paths": [], "pid": 1}))
                except OSError:
                    continue

    def close(self) -> None:
        import socket

        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()


def test_a_fake_monitor_cannot_make_status_say_clean(digits_repo: Repo) -> None:
    """Bound at the socket file (same user, but not the pid the monitor recorded) or at
    the old predictable abstract name, a fake's "nothing changed" is never used."""
    import hashlib

    repo = digits_repo
    age(repo.workdir / "train")
    monitor.start(repo)
    repo.commit("digits", all=True)
    info = monitor.status(repo)
    assert info is not None
    folder = repo.dotdir / fsmonitor.DIRNAME
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / fsmonitor.SOCKET).stat().st_mode & 0o077 == 0
    os.kill(int(info["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    deadline = time.monotonic() + 5
    while monitor.status(repo) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    (folder / fsmonitor.SOCKET).unlink()
    digest = hashlib.sha1(os.path.realpath(repo.dotdir).encode()).hexdigest()[:20]
    fakes = [
        FakeMonitor(str(folder / fsmonitor.SOCKET)),
        FakeMonitor(b"\0datagit-fsmonitor-" + digest.encode()),
    ]
    try:
        assert monitor.status(repo) is None  # not the monitor we started: not reported
        train = repo.workdir / "train"
        moved = sorted((train / "0").iterdir())[:5]
        for p in moved:
            os.replace(p, train / "1" / p.name)
        for p in sorted((train / "2").iterdir())[:5]:
            p.write_bytes(p.read_bytes() + b"edit")
        opened = Repo.open(repo.workdir)
        opened.snapshots.monitor = monitor_ask(opened)
        assert changes(opened) == truth(repo)
        assert len(changes(opened)) == 10
        assert fakes[0].asked > 0  # it was asked, and its answer refused
    finally:
        for f in fakes:
            f.close()
        monitor.stop(repo)


def monitor_ask(repo: Repo):  # type: ignore[no-untyped-def]
    """The monitor hook without auto-start: a query alone, as the fake sees it."""

    def ask(since: str | None) -> fsmonitor.Answer | None:
        return fsmonitor.query(repo.dotdir, since)

    return ask


def test_a_long_workspace_path_still_gets_a_socket(tmp_path: Path) -> None:
    from datagit.core.config import DatasetConfig

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    repo = Repo.init(deep)
    (repo.workdir / "train" / "a").mkdir(parents=True)
    repo.add_dataset(DatasetConfig(name="train", layout="imagefolder", path="train"))
    assert len(str(repo.dotdir / "fsmonitor" / "sock")) > 108
    try:
        info = monitor.start(repo)
        assert info.get("pid") == fsmonitor.recorded_pid(repo.dotdir)
    finally:
        monitor.stop(repo)
