"""Stat cache: (size, mtime, inode) → content address, so an unchanged file is never re-hashed.

Like git's index, an entry whose mtime is too close to the moment it was hashed
is "racily clean" (the file could change again within the same timestamp
tick) and is not trusted.
"""

from __future__ import annotations

import marshal
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import xxhash

from datagit.storage import stattable
from datagit.storage.stattable import StatTable

if TYPE_CHECKING:  # sqlite3 loads when the cache is first opened: `status` may never open it
    import sqlite3

    from datagit.storage import fsmonitor

SINGLE_LOOKUPS = 2_000  # past this many lookups, load the whole table at once
RACY_NS = 50_000_000  # 50 ms: wider than any file-time granularity seen on ext4


_T = TypeVar("_T")


class StatCache:
    """A sqlite table of path → (size, mtime_ns, inode, hash, hashed_at_ns)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly  # read what is cached, never create or write the file
        self._db: sqlite3.Connection | None = None
        self._rows: dict[str, tuple[int, int, int, str, int]] | None = None
        self._dirty: dict[str, tuple[int, int, int, str, int]] = {}
        self._single = 0

    def _conn(self) -> sqlite3.Connection:
        import sqlite3

        if self._db is None:
            try:
                self._open()
            except sqlite3.DatabaseError:  # a damaged cache is rebuilt, never trusted
                self._reset()
        assert self._db is not None
        return self._db

    def _reset(self) -> None:
        """Throw the cache away and start an empty one (it only saves hashing); a
        read-only reader leaves the file alone and carries on with an empty one in memory."""
        import sqlite3

        self.close()
        self._rows = None
        if self.readonly:
            self._db = sqlite3.connect(":memory:")
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._open()

    def _run(self, op: Callable[[sqlite3.Connection], _T], fallback: _T, retry: bool = False) -> _T:
        """``op`` on the database; a damage sqlite finds only now (a page read later)
        resets the cache: reads then answer ``fallback``, writes run again on the new one."""
        import sqlite3

        try:
            return op(self._conn())
        except sqlite3.DatabaseError:
            self._reset()
            return op(self._conn()) if retry else fallback

    def _open(self) -> None:
        import sqlite3

        if self._db is None and self.readonly:
            try:  # immutable: sqlite takes no lock and writes no -shm/-wal file
                uri = f"{self.path.absolute().as_uri()}?mode=ro&immutable=1"
                self._db = sqlite3.connect(uri, uri=True)
                self._db.execute("SELECT 1 FROM files LIMIT 1")
                return
            except sqlite3.Error:  # missing or damaged: an empty cache, in memory
                self.close()
                self._db = sqlite3.connect(":memory:")
        if self._db is None:
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INT,"
            " mtime_ns INT, inode INT, hash TEXT, hashed_at INT)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS trees (source TEXT PRIMARY KEY, tree TEXT)")

    @property
    def rows(self) -> dict[str, tuple[int, int, int, str, int]]:
        if self._rows is None:
            rows: dict[str, tuple[int, int, int, str, int]] = self._run(
                lambda db: {r[0]: r[1:] for r in db.execute("SELECT * FROM files")}, {}
            )
            self._rows = rows
            self._rows.update(self._dirty)  # recorded but not yet saved
        return self._rows

    def empty(self) -> bool:
        """True when nothing is cached (a first add need not look anything up)."""
        if self._rows is not None:
            return not self._rows and not self._dirty
        got = self._run(lambda db: db.execute("SELECT 1 FROM files LIMIT 1").fetchone(), None)
        return got is None and not self._dirty

    def _row(self, path: str) -> tuple[int, int, int, str, int] | None:
        # A few lookups (the files a snapshot says changed) query by key; loading
        # every row of a 100k-file cache would cost more than they save.
        if self._rows is None and self._single < SINGLE_LOOKUPS:
            self._single += 1
            if path in self._dirty:
                return self._dirty[path]
            got = self._run(
                lambda db: db.execute("SELECT * FROM files WHERE path=?", (path,)).fetchone(),
                None,
            )
            return tuple(got[1:]) if got else None  # type: ignore[return-value]
        return self.rows.get(path)

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        """The cached address of ``path`` if its stat is unchanged and not racy."""
        return cached_key(self._row(path), (st.st_size, st.st_mtime_ns, st.st_ino))

    def record(
        self, path: str, st: os.stat_result, digest: str, hashed_at: int | None = None
    ) -> None:
        """Remember ``path``'s address. ``hashed_at`` may be any time before the read
        (one timestamp per scan): an earlier time only makes more entries racy."""
        self.record_stat(path, (st.st_size, st.st_mtime_ns, st.st_ino), digest, hashed_at)

    def record_stat(
        self, path: str, stat: tuple[int, int, int], digest: str, hashed_at: int | None = None
    ) -> None:
        """`record` from a (size, mtime_ns, inode) triple, as the bulk scans keep them."""
        row = (*stat, digest, hashed_at or time.time_ns())
        if self._rows is not None:
            self._rows[path] = row  # type: ignore[assignment]
        self._dirty[path] = row  # type: ignore[assignment]

    def save(self) -> None:
        if not self._dirty or self.readonly:
            return

        def write(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(
                    "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)",
                    ((p, *r) for p, r in self._dirty.items()),
                )

        self._run(write, None, retry=True)
        self._dirty.clear()

    def tree_for(self, source: str) -> str | None:
        """A records tree already computed for a table file's content address."""
        row = self._run(
            lambda db: db.execute("SELECT tree FROM trees WHERE source=?", (source,)).fetchone(),
            None,
        )
        return row[0] if row else None

    def remember_tree(self, source: str, tree: str) -> None:
        if self.readonly:
            return

        def write(db: sqlite3.Connection) -> None:
            with db:
                db.execute("INSERT OR REPLACE INTO trees VALUES (?,?)", (source, tree))

        self._run(write, None, retry=True)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def cached_key(
    row: tuple[int, int, int, str, int] | None, stat: tuple[int, int, int]
) -> str | None:
    """The address a stat-cache row gives a file with ``stat``: None if the stat moved,
    or if the file was written so close to its hashing that it may have changed since."""
    if row is None or row[0] != stat[0] or row[1] != stat[1] or row[2] != stat[2]:
        return None
    if row[1] + RACY_NS >= row[4]:
        return None
    return row[3]


_SNAP_MAGIC = b"DGSNAP3\n"  # then xxh3-64 of the marshalled body, then the body
_OLD_MAGIC = b"DGSNAP2\n"  # the same, with the stats as one path → stat dict


def _well_formed(tree: object, taken: object, stats: object, token: object) -> bool:
    """Whether a loaded snapshot's header has the shape the code relies on."""
    return (
        isinstance(tree, str)
        and isinstance(taken, int)
        and isinstance(stats, dict)
        and (token is None or isinstance(token, str))
    )


def _stat_dict(entries: dict[object, object]) -> bool:
    """Whether ``entries`` is ``str → (int, int, int)`` throughout (a snapshot written
    before snapshots carried a checksum is checked entry by entry)."""
    return all(
        isinstance(k, str) and type(v) is tuple and len(v) == 3 and all(type(x) is int for x in v)
        for k, v in entries.items()
    )


def _table(folders: dict[object, object]) -> StatTable | None:
    """A v3 body's folders as a `StatTable`; None if any folder is malformed."""
    for folder, got in folders.items():
        if not isinstance(folder, str):
            return None
        if isinstance(got, dict) and not _stat_dict(got):
            return None
        if not isinstance(got, dict) and not stattable.well_formed(got):
            return None
    return StatTable.decode(folders)  # type: ignore[arg-type]


class Snapshot(NamedTuple):
    tree: str  # the dataset tree the workspace matched
    taken: int  # when (ns): entries written within RACY_NS of it are not trusted
    stats: StatTable  # workspace path → (size, mtime_ns, inode), packed per folder
    token: str | None  # the filesystem monitor's token from just before the scan


Monitor = Callable[[str | None], "fsmonitor.Answer | None"]


class Snapshots:
    """Per dataset: the stat of every file at the moment the workspace matched a tree.

    This is datagit's equivalent of git's index: when the stage's tree for a
    dataset is the snapshot's tree and no file's (size, mtime, inode) moved,
    the workspace equals the stage without decoding a single record. Files
    whose mtime is within RACY_NS of the snapshot time are never trusted.

    With a filesystem ``monitor`` (`fsmonitor.query`), each snapshot also keeps
    the monitor's token from before its scan, so the next scan need only look
    at the paths the monitor names.
    """

    def __init__(
        self, folder: Path, monitor: Monitor | None = None, *, readonly: bool = False
    ) -> None:
        self.folder = folder
        self.monitor = monitor
        self.readonly = readonly  # a reader's snapshots are never saved or dropped
        self.full_scanned = 0  # files this process stat'ed without a monitor's help

    def _path(self, dataset: str) -> Path:
        return self.folder / f"snapshot-{dataset}.marshal"

    def load(self, dataset: str) -> Snapshot | None:
        """The dataset's snapshot, or None: a damaged one is discarded (the next scan
        rebuilds it), never trusted. Snapshots carry a checksum; older ones without
        it are checked entry by entry, and older formats are read as they were."""
        try:
            raw = self._path(dataset).read_bytes()
        except OSError:
            return None
        checked = raw.startswith((_SNAP_MAGIC, _OLD_MAGIC))
        packed = raw.startswith(_SNAP_MAGIC)
        if checked:
            start = len(_SNAP_MAGIC) + 8
            digest, body = raw[len(_SNAP_MAGIC) : start], raw[start:]
            if xxhash.xxh3_64_digest(body) != digest:
                return self._discard(dataset)
            raw = body
        try:
            tree, taken, stats, *token = marshal.loads(raw)
        except (EOFError, ValueError, TypeError):
            return self._discard(dataset)
        tok = token[0] if token else None  # the oldest snapshots had no token
        if not _well_formed(tree, taken, stats, tok) or (not checked and not _stat_dict(stats)):
            return self._discard(dataset)
        table = _table(stats) if packed else StatTable.from_items(stats.items())
        if table is None:
            return self._discard(dataset)
        return Snapshot(tree, taken, table, tok)

    def _discard(self, dataset: str) -> Snapshot | None:
        if not self.readonly:
            self._path(dataset).unlink(missing_ok=True)
        return None

    def ask(self, since: str | None) -> fsmonitor.Answer | None:
        """The monitor's answer for ``since``: None without a (running) monitor."""
        return self.monitor(since) if self.monitor is not None else None

    def token_now(self) -> str | None:
        """A token to save with a full scan about to start."""
        answer = self.ask(None)
        return answer.token if answer is not None else None

    def save(
        self,
        dataset: str,
        tree: str,
        taken_ns: int,
        stats: Mapping[str, tuple[int, int, int]],
        token: str | None = None,
    ) -> None:
        if self.readonly:
            return
        self.folder.mkdir(exist_ok=True)
        path = self._path(dataset)
        tmp = path.with_suffix(".tmp")
        if not isinstance(stats, StatTable):
            stats = StatTable.from_items(stats.items())
        body = marshal.dumps((tree, taken_ns, stats.encode(), token))
        tmp.write_bytes(_SNAP_MAGIC + xxhash.xxh3_64_digest(body) + body)
        os.replace(tmp, path)

    def drop(self, dataset: str | None = None) -> None:
        if self.readonly:
            return
        if dataset is None:
            for p in self.folder.glob("snapshot-*.marshal"):
                p.unlink(missing_ok=True)
        else:
            self._path(dataset).unlink(missing_ok=True)
