"""Lanes for drawing a commit graph, one row per commit, as `git log --graph` does.

Pure layout: given commits newest first (each with its parents), say in which
lane each commit sits and which line segments cross its row, so a viewer can
draw the graph row by row without knowing anything about git.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Segment:
    """A line in a row from lane ``a`` at one edge to lane ``b`` at the other.

    ``half`` is 'top' (row top → the commit's dot), 'bottom' (dot → row bottom)
    or 'through' (a branch passing by, top to bottom).
    """

    a: int
    b: int
    half: str


@dataclass
class GraphRow:
    """One commit's row: its lane, the width in lanes, and the lines to draw."""

    commit: str
    lane: int
    width: int
    segments: list[Segment] = field(default_factory=list)


def layout(commits: Iterable[tuple[str, Sequence[str]]]) -> list[GraphRow]:
    """Rows for ``(commit id, parent ids)`` pairs given newest first (topological order)."""
    active: list[str | None] = []  # lane → the commit id that lane is waiting for
    rows: list[GraphRow] = []
    for oid, parents in commits:
        waiting = [i for i, want in enumerate(active) if want == oid]
        if waiting:
            lane = waiting[0]
        else:
            lane = active.index(None) if None in active else len(active)
            if lane == len(active):
                active.append(None)
        segments = [Segment(i, lane, "top") for i in waiting]
        segments += [
            Segment(i, i, "through")
            for i, want in enumerate(active)
            if want is not None and want != oid
        ]
        for i in waiting:
            active[i] = None
        for n, parent in enumerate(parents):
            if parent in active:  # another lane already leads there: join it
                target = active.index(parent)
            elif n == 0:
                target = lane
            else:
                target = active.index(None) if None in active else len(active)
                if target == len(active):
                    active.append(None)
            active[target] = parent
            segments.append(Segment(lane, target, "bottom"))
        while active and active[-1] is None:
            active.pop()
        width = max([lane + 1, len(active), *(max(s.a, s.b) + 1 for s in segments)])
        rows.append(GraphRow(oid, lane, width, segments))
    return rows
