"""Per-file work on both cores: the second half of a list runs in a forked child.

Stat, read and hash loops over 100,000 files are bound by one core's system
calls, and threads measured slower than one (the GIL hands over on every
call). A forked child shares the parent's memory (the snapshot, the listing)
for free and returns only its results, marshalled through a pipe.

The child never touches shared state (no sqlite, no git, no stdout) and exits
with ``os._exit``; if it fails for any reason its half is run again here, so
every error surfaces from the parent with the file it concerns named.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_PR_SET_PDEATHSIG = 1
PARALLEL_MIN = 20_000  # below this many items a second process costs more than it saves


def parallel_min() -> int:
    """`PARALLEL_MIN`, or ``DATAGIT_PARALLEL_MIN`` from the environment: tests and the
    crash benchmark run the forked path on small datasets."""
    value = os.environ.get("DATAGIT_PARALLEL_MIN", "")
    return int(value) if value.isdigit() else PARALLEL_MIN


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this (forked) process when its parent dies (Linux's
    ``PR_SET_PDEATHSIG``): a killed `add` must not leave a helper writing a pack and
    holding the inherited write lock after it."""
    if sys.platform.startswith("linux"):
        import ctypes  # here, not at the top: only forked helpers use it

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def can_fork() -> bool:
    return hasattr(os, "fork") and (os.cpu_count() or 1) >= 2


def split_run(
    items: Sequence[T],
    run: Callable[[Sequence[T], bool], list[Any]],
    minimum: int | None = None,
    at: int | None = None,
) -> tuple[list[Any], bool]:
    """``run(items, in_child)`` over two halves; returns (results in order, helped).

    ``helped`` is True when the child's results were used, so a caller whose child
    wrote files of its own (a side pack) knows to adopt them. ``run``'s results
    must be marshal-able (str, int, bytes, tuples and lists of them). ``at`` splits
    elsewhere than in the middle (items of unequal cost, ordered by the caller).
    """
    if len(items) < (parallel_min() if minimum is None else minimum) or not can_fork():
        return run(items, False), False
    half = len(items) // 2 if at is None else at
    mine, theirs = items[:half], items[half:]
    import ctypes  # noqa: F401 - loaded once here, not by every helper (see die_with_parent)

    r, w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: compute, report, vanish without running any cleanup
        code = 1
        try:
            die_with_parent(parent)
            os.close(r)
            payload = marshal.dumps(run(theirs, True))
            with os.fdopen(w, "wb") as out:
                out.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        got = run(mine, False)
    finally:
        with os.fdopen(r, "rb") as inp:  # drain before waiting, or a full pipe blocks it
            payload = inp.read()
        _, status = os.waitpid(pid, 0)
    if status == 0:
        try:
            return got + list(marshal.loads(payload)), True
        except (EOFError, ValueError, TypeError):
            pass
    return got + run(theirs, False), False


class Shared(Generic[T, R]):
    """Items run by this process and a forked child, each taking the next one free.

    Unlike `split_run`'s fixed halves, the split is decided as the work goes: the
    child starts at once and the parent joins in when it calls `finish`, after
    doing other work of its own meanwhile (a commit stages its table while the
    child lists the image folders). The queue is a pipe holding every item's index
    as 4 bytes, written before the fork; a read of 4 bytes from a pipe is atomic,
    so each index goes to exactly one process, and an empty pipe whose writers are
    closed reads as the end. Results come back in the items' order; an item the
    child took but did not report (it failed, or was killed) is run again here, so
    an error surfaces from the parent naming what it concerns.
    """

    def __init__(self, items: Sequence[T], run: Callable[[T], R]) -> None:
        self._items, self._run = items, run
        self._queue: int | None = None
        self._pid = 0
        self._result: int | None = None
        # The queue holds pieces of consecutive items, at most `_PIECES` of them, so
        # their indexes fit a pipe's buffer before anyone reads it.
        step = -(-len(items) // _PIECES) or 1
        self._bounds = [*range(0, len(items), step), len(items)]

    @classmethod
    def start(cls, items: Sequence[T], run: Callable[[T], R]) -> Shared[T, R]:
        """Fork the child (when there are two items or more and a second core) and let
        it start taking items."""
        shared = cls(items, run)
        if len(items) < 2 or not can_fork():
            return shared
        pieces = len(shared._bounds) - 1
        queue_r, queue_w = os.pipe()
        os.write(queue_w, b"".join(k.to_bytes(4, "little") for k in range(pieces)))
        os.close(queue_w)
        import ctypes  # noqa: F401 - loaded once here, not in the child (see die_with_parent)

        result_r, result_w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: take pieces until none is left, report, vanish
            code = 1
            try:
                die_with_parent(parent)
                os.close(result_r)
                done = [(i, run(items[i])) for k in _take(queue_r) for i in shared._piece(k)]
                with os.fdopen(result_w, "wb") as out:
                    out.write(marshal.dumps(done))
                code = 0
            finally:
                os._exit(code)
        os.close(result_w)
        shared._queue, shared._pid, shared._result = queue_r, pid, result_r
        return shared

    def _piece(self, k: int) -> range:
        return range(self._bounds[k], self._bounds[k + 1])

    def finish(self) -> list[R]:
        """Take the items left, then gather the child's: every item's result, in order.
        An error in an item here stops the child at once and is raised."""
        if self._queue is None:
            return [self._run(item) for item in self._items]
        results: dict[int, R] = {}
        try:
            for k in _take(self._queue):
                for i in self._piece(k):
                    results[i] = self._run(self._items[i])
        except BaseException:
            self.cancel()
            raise
        for i, got in self._gather():
            results.setdefault(i, got)
        for i, item in enumerate(self._items):  # what the child took and did not report
            if i not in results:
                results[i] = self._run(item)
        return [results[i] for i in range(len(self._items))]

    def cancel(self) -> None:
        """Stop the child without its results (the parent failed before `finish`)."""
        if self._pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            self._gather()

    def _gather(self) -> list[tuple[int, R]]:
        if self._queue is None or self._result is None:
            return []
        os.close(self._queue)
        with os.fdopen(self._result, "rb") as inp:  # drain before waiting: a full pipe blocks
            payload = inp.read()
        _, status = os.waitpid(self._pid, 0)
        self._queue = self._result = None
        self._pid = 0
        if status != 0:
            return []
        try:
            return list(marshal.loads(payload))
        except (EOFError, ValueError, TypeError):
            return []


_PIECES = 1024  # 4-byte indexes a pipe takes without blocking (POSIX: at least 4,096 bytes)


def _take(queue: int) -> Iterator[int]:
    """Indexes from the shared queue until it is empty."""
    while True:
        got = os.read(queue, 4)
        if len(got) < 4:
            return
        yield int.from_bytes(got, "little")
