"""A table's checkout, planned from its snapshot: rewrite only the rows that differ.

Between two clean commits the snapshot (`tablesnap.probe`) vouches for the file
and its line map says which id is on each line, so the target's file is the
current one with changed rows replaced, dropped rows cut and new rows appended;
every other line stays byte for byte as the user wrote it. `api.workspace`
writes the planned file and then saves it as the snapshot of the target tree.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from datagit.core.changes import Change, compare_trees
from datagit.core.config import DatasetConfig
from datagit.core.records import Record
from datagit.core.table_style import is_int, typed
from datagit.core.tables import read_table_bytes, render_line, table_row
from datagit.core.tablesnap import COPY_LIMIT, fingerprint, probe
from datagit.storage.content import address
from datagit.storage.git import GitStore
from datagit.storage.statcache import Snapshots
from datagit.storage.tablecache import PackedLineMap, TableCache, TableState, pack_line_map


def _jsonl_row(line: bytes) -> dict[str, Any]:
    row = orjson.loads(line)
    if not isinstance(row, dict):
        raise ValueError("not a row")
    return row


def plan_checkout(
    git: GitStore,
    cfg: DatasetConfig,
    workdir: Path,
    tables: TableCache,
    snapshots: Snapshots,
    now_tree: str,
    target_tree: str,
    changes: Callable[[], list[Change]] | None = None,
) -> tuple[bytes, PackedLineMap] | None:
    """The table file for ``target_tree``, made from the file that is ``now_tree`` by
    replacing, dropping or appending only the rows whose records differ.

    None when the snapshot cannot vouch for the file or a row will not fit on one
    line under its header: the caller renders the table whole. ``changes``: the
    records that differ, from the commits' patches (the trees' shards otherwise).
    """
    got = probe(cfg, workdir, tables, snapshots, now_tree)
    if got is None or got.data is not None or not got.state.has_lines:
        return None
    # Only the ids on each line are wanted, not the line digests: read without numpy.
    saved = tables.load_ids(cfg.name, got.state.digest)
    data = read_table_bytes(cfg, workdir)
    if saved is None or data is None or address(data) != got.state.digest:
        return None
    first_line, ids, id_keys = saved
    header = None
    if cfg.table_format == "csv":
        header = next(csv.reader([first_line.decode("utf-8-sig")]))
    eol = b"\r" if first_line.endswith(b"\r") or data.endswith(b"\r\n") else b""
    raw = data.split(b"\n")
    start = 1 if header is not None else 0
    if len(ids) != len(raw) - start:
        return None
    if raw and raw[-1] == b"":
        raw.pop()
        ids.pop()
    # JSON Lines rows are written in the style of the row they replace (its key order,
    # numeric ids as numbers), new rows in the style of the file's first row.
    styled = cfg.table_format == "jsonl"
    changed: dict[bytes, bytes | Record | None] = {}  # by the id's bytes, as the map holds it
    for c in changes() if changes is not None else compare_trees(git, now_tree, target_tree):
        if c.new is None or styled:
            changed[c.id.encode()] = c.new
            continue
        line = render_line(cfg, header, c.new)
        if line is None:
            return None
        changed[c.id.encode()] = line + eol
    try:
        first = _jsonl_row(raw[0]) if styled and raw else None
    except ValueError:
        return None

    def render(new: bytes | Record, like: dict[str, Any] | None) -> bytes:
        if isinstance(new, bytes):
            return new
        numeric = like is not None and is_int(like.get(cfg.id))
        return orjson.dumps(typed(table_row(cfg, new), cfg, numeric, like)) + eol

    out = raw[:start]
    out_ids: list[bytes] = []
    same_ids = True  # no row dropped or appended: the map's id keys stay as they are
    for line, i in zip(raw[start:], ids, strict=True):
        if not i or i not in changed:
            out.append(line)
            out_ids.append(i)
            continue
        new = changed.pop(i)
        if new is None:
            same_ids = False
            continue
        try:
            out.append(render(new, _jsonl_row(line) if styled else None))
        except ValueError:
            return None
        out_ids.append(i)
    for i in sorted(changed):  # examples the file did not have: appended (bytes sort as str)
        new = changed[i]
        if new is not None:
            out.append(render(new, first))
            out_ids.append(i)
            same_ids = False
    body = b"\n".join(out) + b"\n" if out else b""
    after = body.split(b"\n")[start:]
    keep = id_keys if same_ids else None
    return body, pack_line_map(
        address(body), first_line, after, [*out_ids, b""][: len(after)], keep
    )


def save_checkout(
    cfg: DatasetConfig,
    workdir: Path,
    tables: TableCache,
    tree: str,
    lines: PackedLineMap,
    started: int,
    token: str | None,
) -> None:
    """Record the table `plan_checkout` wrote as the snapshot of ``tree``."""
    st = os.stat(workdir / cfg.path)
    stat = (st.st_size, st.st_mtime_ns, st.st_ino)
    state = TableState(tree, fingerprint(cfg), started, {cfg.path: stat}, lines.digest, token, True)
    tables.save(cfg.name, state, lines)


def save_rendered(
    cfg: DatasetConfig,
    workdir: Path,
    tables: TableCache,
    tree: str,
    data: bytes,
    started: int,
    token: str | None,
) -> None:
    """Record a table a checkout wrote as ``tree``'s snapshot, so the next `status` need
    not read it back (a million-row Parquet file: ~14 s), and keep a Parquet file as
    the copy its next change is compared with in place. Only for a file known to read
    as ``tree``'s records (`parquetcheckout` parses every row it wrote back). A table
    naming files of its own (a file column) is left to the full read, which stats
    them."""
    if cfg.file is not None:
        return
    st = os.stat(workdir / cfg.path)
    stats = {cfg.path: (st.st_size, st.st_mtime_ns, st.st_ino)}
    if cfg.table_format == "parquet" and len(data) <= COPY_LIMIT:
        tables.save_copy(cfg.name, data)
    state = TableState(tree, fingerprint(cfg), started, stats, address(data), token, False)
    tables.save(cfg.name, state, None)
