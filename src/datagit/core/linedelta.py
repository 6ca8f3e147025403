"""Which rows a changed table file changed, parsing only the lines its line map does not know.

The new file's lines are hashed in one pass and compared with the old digests
position by position, so an edit that keeps the file's line order — a relabel,
a fix in place — costs a hash per line and one compare of the digests' bytes
(`linematch`, no numpy to import); rows that moved are joined by digest (by
numpy's sort when very many moved). Python code runs only for the lines that
really differ, the way shard patching copies unchanged record lines as bytes.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

import orjson
import xxhash

from datagit.core.config import DatasetConfig
from datagit.core.layouts import Hasher
from datagit.core.linematch import (
    Ids,
    Matched,
    has_key,
    key_array,
    lined,
    match_bytes,
    patched_keys,
)
from datagit.core.records import Record
from datagit.core.tables import RowMaker
from datagit.errors import DatagitError
from datagit.storage.content import address
from datagit.storage.tablecache import (
    LineMap,
    PackedLineMap,
    id_keys,
    packed_line_map,
    unpacked_line_map,
)

if TYPE_CHECKING:
    import numpy as np


class LineDelta(NamedTuple):
    upserts: dict[str, Record]  # rows on lines the map does not know, by id
    deletes: list[str]  # ids whose line is gone
    lines: LineMap | PackedLineMap  # the map for the new file


def match_lines(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """For each new line digest, the index of the same old line, or -1.

    Lines at the same place (or, when lines were added or removed, in the same
    leading and trailing runs) match by position; the rest are joined by digest,
    each old line at most once, so a copied line stays unmatched.
    """
    import numpy as np

    n, m = len(new), len(old)
    out = np.full(n, -1, dtype=np.int64)
    k = min(n, m)
    if n == m:
        same = np.flatnonzero((new == old).all(axis=1))
        out[same] = same
    elif k:
        differ = np.flatnonzero((new[:k] != old[:k]).any(axis=1))
        p = int(differ[0]) if len(differ) else k
        out[:p] = np.arange(p)
        differ = np.flatnonzero((new[n - k :] != old[m - k :]).any(axis=1))
        s = min(k - int(differ[-1]) - 1 if len(differ) else k, k - p)
        if s:
            out[n - s :] = np.arange(m - s, m)
    todo = np.flatnonzero(out < 0)
    if not len(todo):
        return out
    used = np.zeros(m, dtype=bool)
    used[out[out >= 0]] = True
    free = np.flatnonzero(~used)
    if not len(free):
        return out
    order = free[np.argsort(old[free, 0], kind="stable")]
    pos = np.minimum(np.searchsorted(old[order, 0], new[todo, 0]), len(order) - 1)
    cand = order[pos]
    hit = (old[cand] == new[todo]).all(axis=1)
    todo, cand = todo[hit], cand[hit]
    _, first = np.unique(cand, return_index=True)  # an old line matches one new line
    out[todo[first]] = cand[first]
    return out


def line_delta(
    cfg: DatasetConfig, hasher: Hasher, old: LineMap | PackedLineMap, data: bytes
) -> LineDelta | None:
    """The rows a changed table file changed, parsing only lines the map does not know.

    None whenever the careful full read must decide: a new header, a quoted
    newline, a malformed or duplicate row (the full read names the line).
    Lines are matched without numpy (`linematch`) unless too many moved.
    """
    if not lined(data):
        return None
    raw = data.split(b"\n")
    start = 0
    header: list[str] | None = None
    if cfg.table_format == "csv":
        if not raw or raw[0] != old.header:
            return None
        header = next(csv.reader([raw[0].decode("utf-8-sig")]))
        start = 1
    body = raw[start:]
    new_h = b"".join(map(xxhash.xxh3_128_digest, body))
    packed = packed_line_map(old)
    matched = match_bytes(new_h, packed.hashes)
    if matched is None:
        return _numpy_delta(cfg, hasher, unpacked_line_map(old), data, header, body, new_h)
    ids = Ids(packed.ids, len(packed.hashes) >> 4)
    gone = {ids[j].decode() for j in matched.free}
    gone.discard("")
    parsed = _parse_fresh(cfg, hasher, header, start, body, _fresh_lines(matched))
    if parsed is None:
        return None
    upserts, fresh = parsed
    keys = key_array(packed.keys)
    taken = (i for i in upserts if has_key(keys, xxhash.xxh3_64_intdigest(i.encode())))
    if not all(i in gone for i in taken):
        return None  # a changed row takes the id of a row still on an unchanged line
    deletes = sorted(gone - upserts.keys())
    new_ids, new_keys = _packed_ids(packed, ids, matched, fresh)
    lines = PackedLineMap(address(data), packed.header, new_h, new_ids, new_keys)
    return LineDelta(upserts, deletes, lines)


def _fresh_lines(matched: Matched) -> list[int]:
    return [k for k, c in matched.src.items() if c < 0]


def _parse_fresh(
    cfg: DatasetConfig,
    hasher: Hasher,
    header: list[str] | None,
    start: int,
    body: list[bytes],
    lines: Iterable[int],
) -> tuple[dict[str, Record], dict[int, str]] | None:
    """The records on the new ``lines`` of ``body`` by id, and each line's id ("" for a
    blank line); None for a line that is not a whole row, or an id twice."""
    maker = RowMaker(cfg, hasher)
    upserts: dict[str, Record] = {}
    fresh: dict[int, str] = {}
    for k in lines:
        line = body[k]
        if _blank(line, header is not None):
            fresh[k] = ""
            continue
        row = _parse_line(cfg, header, line)
        if row is None:
            return None
        try:
            rec = maker(row, start + k + 1)
        except DatagitError:
            return None
        if rec.id in upserts:
            return None
        upserts[rec.id] = rec
        fresh[k] = rec.id
    return upserts, fresh


def _packed_ids(
    old: PackedLineMap, ids: Ids, matched: Matched, fresh: dict[int, str]
) -> tuple[bytes, bytes]:
    """The new file's ids blob and id keys: the old ones themselves when every line kept
    its place and every rewritten line holds the row it held (a relabel in place)."""
    in_place = matched.shift == 0 and all(c < 0 or c == k for k, c in matched.src.items())
    if in_place and all(ids[k] == i.encode() for k, i in fresh.items()):
        return old.ids, old.keys
    before = ids.all()
    if matched.shift == 0 and matched.head == 0 and matched.tail == len(before):
        out = list(before)  # the same number of lines: patch the few that differ
        for k, c in matched.src.items():
            out[k] = before[c] if c >= 0 else b""
    else:
        middle = [before[c] if c >= 0 else b"" for c in matched.src.values()]
        out = before[: matched.head] + middle + before[matched.tail + matched.shift :]
    for k, i in fresh.items():
        out[k] = i.encode()
    removed = (before[j] for j in matched.free if before[j])
    added = (i.encode() for i in fresh.values() if i)
    return b"\n".join(out), patched_keys(old.keys, removed, added)


def _numpy_delta(
    cfg: DatasetConfig,
    hasher: Hasher,
    old: LineMap,
    data: bytes,
    header: list[str] | None,
    body: list[bytes],
    new_digests: bytes,
) -> LineDelta | None:
    """`line_delta` by numpy's sort: for a file whose lines moved too much to join by dict."""
    import numpy as np

    start = 1 if header is not None else 0
    new_h = np.frombuffer(new_digests, dtype="<u8").reshape(-1, 2)
    src = match_lines(new_h, old.hashes)
    old_ids = _IdIndex(old.ids)
    used = np.zeros(len(old.hashes), dtype=bool)
    used[src[src >= 0]] = True
    gone = {old_ids[i] for i in np.flatnonzero(~used).tolist()}
    gone.discard("")
    parsed = _parse_fresh(cfg, hasher, header, start, body, np.flatnonzero(src < 0).tolist())
    if parsed is None:
        return None
    upserts, fresh = parsed
    if not _ids_free(old, upserts, gone):
        return None
    deletes = sorted(gone - upserts.keys())
    ids = _new_ids(old, old_ids, src, fresh)
    keys = old.keys if ids is old.ids else id_keys(ids.split(b"\n"))
    return LineDelta(upserts, deletes, LineMap(address(data), old.header, new_h, ids, keys))


class _IdIndex:
    """The id on old line ``i`` without splitting a million ids into objects."""

    def __init__(self, ids: bytes) -> None:
        import numpy as np

        self.ids = ids
        ends = np.flatnonzero(np.frombuffer(ids, dtype=np.uint8) == 10)
        self.ends = np.append(ends, len(ids))
        self.starts = np.insert(ends + 1, 0, 0)

    def __getitem__(self, i: int) -> str:
        return self.ids[self.starts[i] : self.ends[i]].decode()


def _ids_free(old: LineMap, upserts: dict[str, Record], gone: set[str]) -> bool:
    """Whether no changed row takes the id of a row still on an unchanged line (a duplicate)."""
    import numpy as np

    keys = old.keys
    if not upserts or not len(keys):
        return True
    ids = list(upserts)
    want = np.fromiter(map(xxhash.xxh3_64_intdigest, map(str.encode, ids)), dtype="<u8")
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    maybe = np.flatnonzero(keys[pos] == want).tolist()
    return all(ids[j] in gone for j in maybe)


def _new_ids(old: LineMap, old_ids: _IdIndex, src: np.ndarray, fresh: dict[int, str]) -> bytes:
    """The new file's ids, line by line: the old blob itself when every line kept its place
    and every rewritten line holds the row it held (a relabel in place)."""
    import numpy as np

    if len(src) == len(old.hashes):
        moved = src[src >= 0] != np.flatnonzero(src >= 0)
        if not moved.any() and all(old_ids[k] == i for k, i in fresh.items()):
            return old.ids
    before = old.id_list()
    out = [before[s] for s in src.tolist()]  # -1 (a fresh line) is overwritten below
    for k, i in fresh.items():
        out[k] = i.encode()
    return b"\n".join(out)


def _blank(line: bytes, csv_rows: bool) -> bool:
    """A line the full read skips: empty for the csv module, whitespace for JSON Lines."""
    return line in (b"", b"\r") if csv_rows else not line.strip()


def _parse_line(cfg: DatasetConfig, header: list[str] | None, line: bytes) -> dict | None:
    """One raw line as a row, or None when it is not a whole well-formed row by itself."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if header is None:
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        return row if isinstance(row, dict) else None
    if '"' not in text:  # nothing quoted: the csv module would split it at the commas
        fields = text.removesuffix("\r").split(",")  # (a \r only ends a \r\n line here)
    elif text.count('"') % 2:
        return None  # a quoted newline starts here: rows no longer match lines
    else:
        try:
            fields = next(csv.reader([text], strict=True))
        except (csv.Error, StopIteration):
            return None
    if len(fields) != len(header):
        return None
    return dict(zip(header, fields, strict=True))
