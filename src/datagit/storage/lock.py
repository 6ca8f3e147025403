"""The repository write lock: one writer at a time, released even on kill -9.

`flock` is tied to the open file description, so the kernel drops it when the
process dies; a stale lock file never blocks the next writer.
"""

from __future__ import annotations

import fcntl
import os
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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise LockedError(
                f"another datagit process (pid {holder}) is writing to this repository "
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
