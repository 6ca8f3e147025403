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

import marshal
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

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
