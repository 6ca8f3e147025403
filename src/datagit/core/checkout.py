"""Checkout as plan, then apply: the workspace edits that turn one record set into another.

The plan is computed and every object it needs is verified before the first
file is touched, so a corrupt object refuses the checkout instead of leaving a
half-written workspace. Only files whose path or content changes are written;
a re-label of an image-folder example is a rename, not a rewrite.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from datagit.core.config import DatasetConfig
from datagit.core.layouts import in_metadata
from datagit.core.records import Record
from datagit.core.table_style import render_like
from datagit.core.tables import render_table
from datagit.core.trust import record_path
from datagit.errors import InvalidInputError
from datagit.progress import Progress, Reporter
from datagit.storage import links
from datagit.storage.content import ContentStore


@dataclass
class Plan:
    """Workspace edits: paths to write (path → content address), move, delete."""

    write: dict[str, str] = field(default_factory=dict)
    move: dict[str, tuple[str, str]] = field(default_factory=dict)  # old → (new, address)
    delete: set[str] = field(default_factory=set)
    tables: dict[str, bytes] = field(default_factory=dict)  # table file → bytes

    @property
    def size(self) -> int:
        return len(self.write) + len(self.move) + len(self.delete) + len(self.tables)


def target_path(cfg: DatasetConfig, rec: Record) -> str | None:
    """Where a record's bytes live in the workspace under ``cfg``'s layout."""
    if cfg.layout == "imagefolder":
        if rec.label is None:  # unlabelled: directly in the dataset folder
            return f"{cfg.path}/{rec.id}"
        return f"{cfg.path}/{rec.label}/{rec.id}"
    return rec.source


def plan_dataset(
    plan: Plan,
    cfg_now: DatasetConfig | None,
    now: Mapping[str, Record],
    cfg_target: DatasetConfig | None,
    target: Mapping[str, Record],
    table_bytes_now: bytes | None,
    have: dict[str, str] | None = None,
) -> None:
    """Add to ``plan`` the edits that turn dataset ``now`` into ``target``.

    ``have`` (path → content address), when given, is what the workspace holds
    instead of ``now``'s paths: files listed as they are, rules broken or not.
    """
    # Every path is checked (`record_path`) before it is planned: records may come
    # from a crafted commit, and a plan is what writes and deletes files.
    if have is not None:
        cfg_now_records = None
    else:
        have = {}  # path → content, as the workspace holds it
        cfg_now_records = cfg_now
    if cfg_now_records is not None:
        for r in now.values():
            path = record_path(cfg_now_records, r)
            if path:
                have[path] = r.content
    want: dict[str, str] = {}
    if cfg_target is not None:
        for r in target.values():
            path = record_path(cfg_target, r)
            if path:
                want[path] = r.content
    by_content: dict[str, list[str]] = {}
    for path, key in have.items():
        if path not in want:
            by_content.setdefault(key, []).append(path)
    for path, key in want.items():
        if have.get(path) == key:
            continue
        spare = by_content.get(key)
        if spare and path not in have:
            plan.move[spare.pop()] = (path, key)
        else:
            plan.write[path] = key
    moved = set(plan.move)
    plan.delete.update(p for p in have if p not in want and p not in moved)
    if (
        cfg_now is not None
        and cfg_now.layout == "table"
        and (cfg_target is None or cfg_target.path != cfg_now.path)
    ):
        plan.delete.add(cfg_now.path)
    if cfg_target is not None and cfg_target.layout == "table":
        # A table whose records already are the target's is left as the user wrote
        # it (column order, quoting, line endings, row order), as git leaves a file
        # that did not change; only a table that really changes is rendered anew.
        if table_bytes_now is not None and cfg_now == cfg_target and now == target:
            return
        same_file = cfg_now is not None and cfg_now.path == cfg_target.path
        if same_file and cfg_now.table_format == cfg_target.table_format:  # type: ignore[union-attr]
            rendered = render_like(cfg_target, target, now, table_bytes_now)
        else:
            rendered = render_table(cfg_target, list(target.values()))
        if rendered != table_bytes_now or (not target and table_bytes_now is None):
            plan.tables[cfg_target.path] = rendered


def verify(plan: Plan, store: ContentStore) -> None:
    """Read every object the plan writes; raises on the first corrupt or missing one."""
    keys = sorted(set(plan.write.values()))
    store.prefetch(keys)  # a partial clone fetches what it lacks in one batch, not one by one
    store.verify_all(keys)


def apply(
    plan: Plan,
    workdir: Path,
    store: ContentStore,
    on_written: Callable[[str, os.stat_result, str], None] | None = None,
    *,
    link: str = "copy",
    progress: Progress | None = None,
) -> None:
    """Carry out ``plan``; each write goes to a temp file renamed into place.

    ``link`` is how a written example gets its bytes (see `datagit.storage.links`):
    ``copy``, ``hardlink`` or ``reflink`` of the store's loose file for it.
    """
    check_inside(plan, workdir)
    report = Reporter(progress, "checkout", plan.size, "files")
    place = links.placer(store, link, workdir)
    for old, (new, key) in plan.move.items():
        dest = workdir / new
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(workdir / old, dest)
        _prune_empty(workdir, (workdir / old).parent)
        if on_written:
            on_written(new, dest.stat(), key)
        report.advance()
    root = str(workdir) + os.sep
    for path, key in plan.write.items():
        target = root + path  # plain strings: pathlib or os.path.join cost more than a link
        if place is None:
            _atomic_write(Path(target), store.read(key))
        else:
            place(key, target)
        if on_written:
            on_written(path, os.stat(target), key)
        report.advance()
    for path, data in plan.tables.items():
        _atomic_write(workdir / path, data)
        report.advance()
    for path in plan.delete:
        report.advance()
        if path in plan.write or path in plan.tables:
            continue
        (workdir / path).unlink(missing_ok=True)
        _prune_empty(workdir, (workdir / path).parent)
    report.finish()


def check_inside(plan: Plan, workdir: Path) -> None:
    """Refuse, before the first edit, a plan whose folders pass through a link out of the workspace.

    A class folder replaced by a symlink would otherwise let even ``checkout --force``
    delete and write files elsewhere on the machine.
    """
    real = os.path.realpath(workdir)
    moved_to = [new for new, _ in plan.move.values()]
    folders = {os.path.dirname(p) for p in [*plan.write, *plan.move, *moved_to, *plan.delete]}
    folders |= {os.path.dirname(p) for p in plan.tables}
    for folder in sorted(folders):
        target = os.path.realpath(workdir / folder)
        if os.path.commonpath([target, real]) != real or in_metadata(target, real):
            where = "into .datagit" if in_metadata(target, real) else "outside the workspace"
            raise InvalidInputError(
                f"{folder} is a symlink to {target}, {where}",
                hint="remove the link (checkout never writes through it) and run it again",
            )


def _atomic_write(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A short, stable temp name: `.<name>.tmp` passes 255 bytes for a 250-byte name,
    # and a checkout re-run after a kill overwrites the temp file it left.
    tmp = dest.with_name(f".{xxhash.xxh3_64_hexdigest(dest.name.encode())}.datagit-tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, dest)


def _prune_empty(workdir: Path, folder: Path) -> None:
    """Remove folders emptied by deletes and moves, but never a dataset root's parent."""
    while folder != workdir and folder.is_relative_to(workdir):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
