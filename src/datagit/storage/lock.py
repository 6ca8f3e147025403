"""The repository write lock: one writer at a time, released even on kill -9.

`flock` is tied to the open file description, so the kernel drops it when the
process dies; a stale lock file never blocks the next writer.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from datagit.errors import LockedError, ReadOnlyError


class WriteLock:
    """An exclusive, non-blocking lock on ``.datagit/lock``."""

    def __init__(
        self,
        path: Path,
        on_acquire: Callable[[], object] | None = None,
        *,
        readonly: bool = False,
    ) -> None:
        self.path = path
        self.readonly = readonly  # a read-only Repo: every write is refused here, in one place
        self.on_acquire = on_acquire  # runs once the lock is held (e.g. stale-lock cleanup)
        self._fd: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        if self.readonly:
            raise ReadOnlyError(
                f"this repository ({self.path.parent.parent}) was opened read-only",
                hint="open it with Repo.open(path) to write",
            )
        if self._depth:
            self._depth += 1
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if not _try_lock(fd):
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            if not _alive(holder) and _wait_for_lock(fd):
                pass  # its holder was dead; what held it (a dying helper) let go: take it over
            else:
                actual = _holder(fd) or holder or "?"
                os.close(fd)
                raise LockedError(
                    f"another datagit process (pid {actual}) is writing to this repository "
                    f"({self.path})",
                    hint="wait for it to finish and run the command again",
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        self._depth = 1
        if self.on_acquire is not None:
            self.on_acquire()

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


TAKEOVER_WAIT_S = 3.0  # a dead holder's helper dies with it (PR_SET_PDEATHSIG) within this


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _alive(pid_text: str) -> bool:
    """Whether the pid a lock file names still runs (unknown: assume it does)."""
    if not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_lock(fd: int) -> bool:
    """Retry a lock whose recorded holder is dead, while what still holds it goes away."""
    deadline = time.monotonic() + TAKEOVER_WAIT_S
    while time.monotonic() < deadline:
        if _try_lock(fd):
            return True
        time.sleep(0.02)
    return False


def _holder(fd: int) -> str | None:
    """The pid that really holds the flock on ``fd``'s file, from /proc/locks (Linux)."""
    try:
        st = os.fstat(fd)
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    suffix = f":{st.st_ino}"
    for line in lines:
        parts = line.split()
        if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].endswith(suffix):
            return parts[4]
    return None
