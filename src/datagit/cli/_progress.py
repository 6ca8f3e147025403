"""The CLI renderer of `datagit.progress` events: bars on a terminal, silence otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from datagit.progress import Event, Progress


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    """A `Progress` for the api: rich bars on stderr when it is a terminal, else a no-op.

    Bars are transient (gone when the command ends), so what stays on screen is the
    command's answer; a pipe or a log file gets no control characters at all.
    """
    if not (enabled and sys.stderr.isatty()):
        yield _quiet
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
    from rich.progress import Progress as Bars

    with Bars(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]} {task.fields[note]}"),
        console=Console(stderr=True),
        transient=True,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def update(event: Event) -> None:
            task = tasks.get(event.phase)
            if task is None:
                task = tasks[event.phase] = bars.add_task(
                    event.phase, total=event.total, unit=event.unit, note=event.note
                )
            bars.update(task, completed=event.done, total=event.total, note=event.note)

        yield update


def _quiet(event: Event) -> Any:
    return None
