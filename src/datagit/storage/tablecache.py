"""Table snapshots: what a table file looked like when it matched a dataset tree.

An image folder's snapshot (statcache.Snapshots) is a stat per file; a table is
one file, so its snapshot is that file's stat and address, plus a line map: the
hash of each single-line row's raw bytes → that row's id. The small state is
read by every `status`; the line map only when the file really changed, so an
unchanged 1,000,000-row table costs one stat and a few hundred bytes of reading.
"""

from __future__ import annotations

import marshal
import os
from pathlib import Path
from typing import NamedTuple

import xxhash

# The key of one raw table line in a line map: its xxh3-128 digest. Bytes rather
# than an int: half the hashing and unmarshalling time for a million lines.
line_hash = xxhash.xxh3_128_digest


class TableState(NamedTuple):
    tree: str  # the dataset tree the table file matched
    config: str  # the dataset's settings then (other columns: other records)
    taken: int  # when (ns); a file written within RACY_NS of it is hashed, not trusted
    stats: dict[str, tuple[int, int, int]]  # table file (and files it names) → stat
    digest: str  # xxh3-128 of the table file then
    token: str | None  # the filesystem monitor's token from before the read
    has_lines: bool  # whether a line map covering every record was saved


class LineMap(NamedTuple):
    digest: str  # the table file the map describes
    header: bytes  # its first line (CSV), b"" for JSON Lines
    lines: dict[bytes, str]  # line_hash(raw line) → id, for every record


class TableCache:
    """Per table dataset: a `TableState` and, beside it, its `LineMap`."""

    def __init__(self, folder: Path, *, readonly: bool = False) -> None:
        self.readonly = readonly  # a reader's table snapshots are never saved or dropped
        self.folder = folder

    def _paths(self, dataset: str) -> tuple[Path, Path]:
        return (
            self.folder / f"table-{dataset}.marshal",
            self.folder / f"table-{dataset}.lines",
        )

    def load(self, dataset: str) -> TableState | None:
        try:
            return TableState(*marshal.loads(self._paths(dataset)[0].read_bytes()))
        except (OSError, EOFError, ValueError, TypeError):
            return None

    def load_lines(self, dataset: str, digest: str) -> LineMap | None:
        """The line map saved for the file with address ``digest``; None if it is not that one."""
        try:
            got = LineMap(*marshal.loads(self._paths(dataset)[1].read_bytes()))
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return got if got.digest == digest else None

    def save(self, dataset: str, state: TableState, lines: LineMap | None) -> None:
        """Write the line map first (None: keep the one saved, which names its file's
        address), then the state naming it, each atomically."""
        if self.readonly:
            return
        self.folder.mkdir(exist_ok=True)
        state_path, lines_path = self._paths(dataset)
        if lines is not None:
            _atomic(lines_path, marshal.dumps(tuple(lines)))
        _atomic(state_path, marshal.dumps(tuple(state)))

    def drop(self, dataset: str) -> None:
        if self.readonly:
            return
        for p in self._paths(dataset):
            p.unlink(missing_ok=True)


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
