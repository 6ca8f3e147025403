"""The filesystem monitor as the repository sees it: enable, start, stop, ask.

Enabled (``datagit.fsmonitor = true``, set by `datagit fsmonitor start`), every
scan of an image folder asks the monitor which paths changed since its
snapshot instead of stat'ing every file; a monitor that is not running is
started on first use (after a reboot, say) and the scan falls back to a full
one until it answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datagit.errors import DatagitError
from datagit.storage import fsmonitor

if TYPE_CHECKING:
    from datagit.api.repo import Repo

CONFIG_KEY = "datagit.fsmonitor"


def enabled(repo: Repo) -> bool:
    return repo.git.config_get(CONFIG_KEY) == "true"


def attach(repo: Repo) -> None:
    """Route the repository's snapshot scans through the monitor (auto-started once)."""
    tried = False

    def ask(since: str | None) -> fsmonitor.Answer | None:
        nonlocal tried
        answer = fsmonitor.query(repo.dotdir, since)
        if answer is None and not tried:
            tried = True
            if fsmonitor.start(repo.workdir, repo.dotdir, wait=2.0):
                answer = fsmonitor.query(repo.dotdir, since)
        return answer

    repo.snapshots.monitor = ask


ADVISE_FILES = 50_000  # a full scan this large costs ~0.3 s of stat calls alone


def advice(repo: Repo) -> str | None:
    """A one-line hint to enable the monitor, after a command stat'ed many files without
    one (as git advises on slow status); ``datagit config advice.fsmonitor false`` mutes it."""
    if (
        repo.snapshots.full_scanned < ADVISE_FILES
        or repo.snapshots.monitor is not None
        or not fsmonitor.supported()
        or repo.git.config_get("advice.fsmonitor") == "false"
    ):
        return None
    return (
        f"hint: {repo.snapshots.full_scanned:,} files were stat'ed; `datagit fsmonitor start` "
        "watches the workspace so status and commit look only at what changed "
        "(`datagit config advice.fsmonitor false` hides this)"
    )


def start(repo: Repo) -> fsmonitor.Reply:
    """Enable the monitor for this repository and start it; its status."""
    if not fsmonitor.supported():
        raise DatagitError(
            "the filesystem monitor needs Linux (inotify)",
            hint="without it, status and commit stat every file, on both cores",
        )
    if not fsmonitor.start(repo.workdir, repo.dotdir):
        log = repo.dotdir / fsmonitor.DIRNAME / "log"
        raise DatagitError(
            "the filesystem monitor did not start",
            hint=f"see {log}; check `cat /proc/sys/fs/inotify/max_user_watches`",
        )
    repo.git.config_set(CONFIG_KEY, "true")
    attach(repo)
    return fsmonitor.status(repo.dotdir) or {}


def stop(repo: Repo) -> bool:
    """Disable the monitor and stop it; True if one was running."""
    repo.git.config_delete(CONFIG_KEY)
    repo.snapshots.monitor = None
    return fsmonitor.stop(repo.dotdir)


def status(repo: Repo) -> fsmonitor.Reply | None:
    return fsmonitor.status(repo.dotdir)
