"""One progress protocol for every long operation: a frozen `Event` handed to a `Progress` callable.

Any layer reports progress (storage's transfers, core's checkout, the harness's
training loop), so the protocol lives beside `errors`, under all of them, and
imports nothing. Code that works does::

    report = Reporter(progress, "checkout", total=len(plan))   # progress may be None
    for item in work:
        ...
        report.advance()            # or advance(n) after a batch
    report.finish()

and a caller that shows it passes any ``Callable[[Event], None]`` — the CLI's
bar (`datagit.cli._progress.progress_bar`, silent when stderr is not a
terminal), a test's ``events.append``, a web viewer's queue. The callable is
never told how to render: ``phase`` names what is happening ("hashing",
"checkout", "upload", "epoch 3/10"), ``done``/``total`` count ``unit`` (total
None when unknown), ``note`` carries a short live figure such as a loss, and
the last event of a phase has ``finished`` set. `Reporter` throttles to about
200 events a phase, so reporting per file costs nothing measurable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Event:
    """Where one phase of a long operation stands."""

    phase: str
    done: int
    total: int | None = None
    unit: str = "objects"
    note: str = ""
    finished: bool = False


class Progress(Protocol):
    """Anything called with each `Event` (a function, a bound method, ``list.append``)."""

    def __call__(self, event: Event, /) -> None: ...


class Reporter:
    """Counts one phase and emits throttled `Event`s to ``progress`` (which may be None)."""

    __slots__ = ("_next", "_step", "done", "note", "phase", "progress", "total", "unit")

    def __init__(
        self, progress: Progress | None, phase: str, total: int | None = None, unit: str = "objects"
    ) -> None:
        self.progress = progress
        self.phase = phase
        self.total = total
        self.unit = unit
        self.done = 0
        self.note = ""
        self._step = max(1, (total or 0) // 200)
        self._next = 0
        if progress is not None:
            progress(Event(phase, 0, total, unit))
            self._next = self._step

    def advance(self, n: int = 1, note: str | None = None) -> None:
        """Count ``n`` more units done (emits an event when enough have passed)."""
        self.done += n
        if note is not None:
            self.note = note
        if self.progress is not None and self.done >= self._next:
            self._next = self.done + self._step
            self.progress(Event(self.phase, self.done, self.total, self.unit, self.note))

    def finish(self) -> None:
        """The phase is over: one last event with ``finished`` set."""
        if self.progress is not None:
            self.progress(
                Event(self.phase, self.done, self.total, self.unit, self.note, finished=True)
            )
            self.progress = None  # a second finish says nothing
