"""Checkout as plan, then apply: the workspace edits that turn one record set into another.

The plan is computed and every object it needs is verified before the first
file is touched, so a corrupt object refuses the checkout instead of leaving a
half-written workspace. Only files whose path or content changes are written;
a re-label of an image-folder example is a rename, not a rewrite.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import xxhash

from datagit.core.changes import changed_chunks
from datagit.core.config import DatasetConfig
from datagit.core.layouts import in_metadata
from datagit.core.manifest import DatasetTree
from datagit.core.records import Record
from datagit.core.table_style import render_like
from datagit.core.tables import render_table
from datagit.core.trust import folder_paths_of_lines, listing_ok, record_path
from datagit.errors import InvalidInputError
from datagit.progress import Progress, Reporter
from datagit.storage import links, listingcache, loosetrust
from datagit.storage.content import ContentStore
from datagit.storage.git import GitStore
from datagit.storage.listingcache import ListingCache

Stat = tuple[int, int, int]  # size, mtime_ns, inode
Written = Callable[[str, Stat, str], None]  # (workspace path, its stat, address)
Groups = dict[str, tuple[list[str], list[str]]]  # folder → (file names, their addresses)


class Plan:
    """Workspace edits: paths to write (path → content address), move, delete.

    Writes of a dataset checked out from nothing may be held by folder instead
    (`folders`, as `by_folder` groups them: what the links and the snapshot want),
    so 100,000 paths are not made only to be split again; `write` folds them into
    the path map the first time anyone asks for it.
    """

    def __init__(
        self,
        write: dict[str, str] | None = None,
        move: dict[str, tuple[str, str]] | None = None,  # old → (new, address)
        delete: set[str] | None = None,
        tables: dict[str, bytes] | None = None,  # table file → bytes
        gone: dict[str, str] | None = None,  # deleted path → address it held
    ) -> None:
        self._write: dict[str, str] = dict(write or {})
        self.folders: Groups = {}  # writes not yet in `_write`, by folder
        self.move = move if move is not None else {}
        self.delete = delete if delete is not None else set()
        self.tables = tables if tables is not None else {}
        self.gone = gone if gone is not None else {}

    @property
    def write(self) -> dict[str, str]:
        """Every write, path → address."""
        if self.folders:
            for folder, (names, keys) in self.folders.items():
                inner = f"{folder}/" if folder else ""
                self._write.update(zip([inner + n for n in names], keys, strict=True))
            self.folders = {}
        return self._write

    def add_folders(self, groups: Groups) -> None:
        """Add writes held by folder (folder → (names, addresses)), not made into paths."""
        for folder, (names, keys) in groups.items():
            have = self.folders.get(folder)
            if have is None:
                self.folders[folder] = (names, keys)
            else:  # two datasets' writes meet in one folder: rare, so copied
                self.folders[folder] = (have[0] + names, have[1] + keys)

    def addresses(self) -> set[str]:
        """The content addresses the plan writes, each once."""
        out = set(self._write.values())
        for _, keys in self.folders.values():
            out.update(keys)
        return out

    def touched(self) -> set[str]:
        """Addresses whose workspace links the plan renames or unlinks (not writes)."""
        return {key for _, key in self.move.values()} | set(self.gone.values())

    @property
    def size(self) -> int:
        held = sum(len(names) for names, _ in self.folders.values())
        return len(self._write) + held + len(self.move) + len(self.delete) + len(self.tables)


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
    plan_paths(plan, have, want)
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


def write_groups(plan: Plan) -> Groups:
    """`by_folder` of every write of ``plan``: the plan's own folders when it holds its
    writes that way (no copy), else grouped from the path map."""
    if not plan._write:
        return plan.folders
    return by_folder(plan.write)


def by_folder(writes: Mapping[str, str]) -> Groups:
    """A plan's writes grouped by folder, once for all who want them that way: the
    links (folders made once, each helper given whole folders), the symlink check and
    the snapshots (a new folder's stats packed in one piece)."""
    groups: Groups = {}
    for path, key in writes.items():
        folder, _, name = path.rpartition("/")
        group = groups.get(folder)
        if group is None:
            group = groups[folder] = ([], [])
        group[0].append(name)
        group[1].append(key)
    return groups


def plan_paths(plan: Plan, have: Mapping[str, str], want: Mapping[str, str]) -> None:
    """Add the writes, moves and deletes that turn files ``have`` into ``want`` (path →
    address): a wanted file whose bytes sit at a path no longer wanted is moved there."""
    if not have:  # a first checkout of a dataset: everything is written
        plan.write.update(want)
        return
    if not want:
        plan.delete.update(have)
        plan.gone.update(have)
        return
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
    for p, key in have.items():
        if p not in want and p not in moved:
            plan.delete.add(p)
            plan.gone[p] = key


def plan_folder_trees(
    plan: Plan,
    git: GitStore,
    cfg: DatasetConfig,
    old: str,
    new: str,
    listings: ListingCache | None = None,
) -> None:
    """`plan_dataset` for an image folder going from tree ``old`` to ``new`` under one
    config, from the shard lines that differ: only the changed rows are read, by a
    pattern, into checked paths and addresses, never into records (a 100,000-file
    checkout plans in a fraction of the time).

    From nothing (``old`` holds no record), the writes are the whole of ``new``,
    held by folder (`Plan.add_folders`) and taken from ``listings`` when it kept
    ``new``'s listing (checked again as it is read: `trust.listing_ok`), else kept
    there for the next time.
    """
    if listings is not None and new and not _holds_records(git, old):
        plan.add_folders(_listing(git, cfg, new, listings))
        return
    gone, came = changed_chunks(git, old, new)
    plan_paths(plan, folder_paths_of_lines(cfg, gone), folder_paths_of_lines(cfg, came))


def _holds_records(git: GitStore, tree: str | None) -> bool:
    return bool(tree) and DatasetTree(git, tree).count > 0  # type: ignore[arg-type]


def _listing(git: GitStore, cfg: DatasetConfig, tree: str, listings: ListingCache) -> Groups:
    raw = listings.load(cfg.name, tree, cfg.path)
    if raw is not None and listing_ok(cfg, raw):
        return listingcache.unpack(raw)
    _, came = changed_chunks(git, None, tree)
    groups = by_folder(folder_paths_of_lines(cfg, came))
    kept = [(f, "\0".join(names), "".join(keys)) for f, (names, keys) in groups.items()]
    if listing_ok(cfg, kept):  # plain names only: anything else is parsed each time
        listings.save(cfg.name, tree, cfg.path, groups)
    return groups


def verify(plan: Plan, store: ContentStore, link: str = "copy") -> loosetrust.LinkedStats | None:
    """Prove every object the plan writes intact; raises on the first corrupt or missing one.

    Copies are read and hashed. Hard links are checked through `loosetrust`: an
    object verified before and whose stat has not moved is not read again; the
    stats come back (address → (size, mtime_ns, inode)), since a hard link's
    stat is its object's.
    """
    keys = list(plan.addresses())  # each object once; any order will do
    store.prefetch(keys)  # a partial clone fetches what it lacks in one batch, not one by one
    if link == "hardlink":
        return loosetrust.verify_many(store, keys, plan.touched())
    store.verify_all(keys)
    return None


def apply(
    plan: Plan,
    workdir: Path,
    store: ContentStore,
    on_written: Written | None = None,
    *,
    link: str = "copy",
    progress: Progress | None = None,
    verified: Mapping[str, Stat] | None = None,
    groups: Groups | None = None,
) -> dict[str, bytes]:
    """Carry out ``plan``; returns the stats of the copies it wrote (see below).

    ``link`` is how a written example gets its bytes (see `datagit.storage.links`):
    ``copy``, ``hardlink`` or ``reflink`` of the store's loose file for it.
    ``verified`` (what `verify` returned for hard links) holds each link's stat,
    so none is taken again, and ``on_written`` is not called for those writes.
    Copies are written on both cores too (`links.copy_many`), each a new file (or a
    temporary file renamed over one in the way); ``on_written`` is not called for
    them either: their stats come back instead, folder → (size, mtime_ns, inode) of
    each file in ``groups``' order, packed as a snapshot keeps them.
    ``groups`` is `by_folder` of the plan's writes, when the caller has it.
    """
    linking = link == "hardlink" and verified is not None
    # Before the first edit: a reflink where the filesystem cannot clone is refused here.
    place = None if link == "copy" or linking else links.placer(store, link, workdir)
    copies = place is None and not linking  # copy, or auto where nothing clones
    if groups is None and (copies or linking):
        groups = write_groups(plan)
    check_inside(plan, workdir, groups)
    report = Reporter(progress, "checkout", plan.size, "files")
    emptied: set[str] = set()
    for old, (new, key) in plan.move.items():
        dest = workdir / new
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(workdir / old, dest)
        emptied.add(os.path.dirname(old))
        if on_written:
            st = dest.stat()
            on_written(new, (st.st_size, st.st_mtime_ns, st.st_ino), key)
        report.advance()
    root = str(workdir) + os.sep
    copied: dict[str, bytes] = {}
    if copies and groups is not None:
        copied = links.copy_many(store, groups, root, report)
    elif linking and groups is not None:
        # on_written is not told of these: their stats are the caller's already (verified)
        linked = verified if isinstance(verified, loosetrust.LinkedStats) else None
        made = links.hardlink_many(
            store, groups, root, report, linked.packed if linked is not None else None
        )
        if linked is not None:  # each folder's stats, packed as its links were made
            linked.folders.update(made)
    else:
        _write_each(plan, root, on_written, place, report)
    for path, data in plan.tables.items():
        _atomic_write(workdir / path, data)
        report.advance()
    for path in plan.delete:
        report.advance()
        if path in plan.write or path in plan.tables:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(root + path)
        emptied.add(os.path.dirname(path))
    for folder in sorted(emptied, key=len, reverse=True):  # deepest first, each once
        _prune_empty(workdir, workdir / folder)
    report.finish()
    return copied


def _write_each(
    plan: Plan,
    root: str,
    on_written: Written | None,
    place: links.Placer | None,
    report: Reporter,
) -> None:
    assert place is not None  # copies go through `links.copy_many`
    for path, key in plan.write.items():
        target = root + path  # plain strings: pathlib or os.path.join cost more than a link
        place(key, target)
        if on_written:
            st = os.stat(target)
            on_written(path, (st.st_size, st.st_mtime_ns, st.st_ino), key)
        report.advance()


def check_inside(plan: Plan, workdir: Path, groups: Groups | None = None) -> None:
    """Refuse, before the first edit, a plan whose folders pass through a link out of the workspace.

    A class folder replaced by a symlink would otherwise let even ``checkout --force``
    delete and write files elsewhere on the machine. (``groups``: `by_folder` of the
    plan's writes, when the caller has it.)
    """
    real = os.path.realpath(workdir)
    moved_to = [new for new, _ in plan.move.values()]
    written = set(groups) if groups is not None else {p.rpartition("/")[0] for p in plan.write}
    folders = written | {p.rpartition("/")[0] for p in [*plan.move, *moved_to, *plan.delete]}
    folders |= {p.rpartition("/")[0] for p in plan.tables}
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
