"""Consolidate git objects: everything datagit keeps goes into one pack, the rest is deleted.

Each commit writes its own small pack (or a few loose objects), so a long
history piles up thousands of packs and every object lookup searches their
indexes one by one. `repack` writes every reachable object into one new pack
with the gitpack writer, makes it durable (pack, index, then the folder entry),
and only then deletes what it supersedes. A crash at any point leaves each
reachable object in at least one indexed pack or loose file; what a crash
leaves behind (an unindexed pack, a temporary file) the next `repack` removes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from datagit.errors import CorruptObjectError
from datagit.storage.git import GitStore
from datagit.storage.gitpack import index_ids, write_pack_stream

_HEX40 = re.compile(rb"^[0-9a-f]{40}")
_LOOSE_NAME = re.compile(r"^[0-9a-f]{38}$")
_FANOUT_DIR = re.compile(r"^[0-9a-f]{2}$")
_ZERO = "0" * 40
# Files git derives from the set of packs; stale once the packs change, and only
# ever speed-ups, so they are removed rather than rewritten.
_DERIVED = ("pack/multi-pack-index", "info/commit-graph", "info/packs")
_PACK_COMPANIONS = (".rev", ".bitmap", ".mtimes", ".promisor")


@dataclass(frozen=True, slots=True)
class RepackReport:
    """What `repack` found and left: objects in the new pack, and what it replaced."""

    objects: int  # objects in the consolidated pack (all that is reachable)
    packs: int  # packs left afterwards: 1, or 0 when nothing is reachable
    packs_before: int
    loose_before: int
    dropped: int  # unreachable objects deleted
    bytes_before: int
    bytes_after: int

    @property
    def rewritten(self) -> bool:
        """False when the objects were already exactly one pack and nothing else."""
        return self.packs_before != self.packs or self.loose_before > 0 or self.dropped > 0


@dataclass
class _Inventory:
    """The object files on disk when `repack` starts; only these are ever deleted."""

    packs: list[Path]  # indexed packs (the .pack path), excluding .keep ones
    kept_packs: list[Path]  # packs git was told to keep (a .keep file): never deleted
    orphans: list[Path]  # packs without an index and temporary files a crash left
    loose: list[Path]

    @classmethod
    def scan(cls, objects: Path) -> _Inventory:
        pack_dir = objects / "pack"
        packs, kept, orphans = [], [], []
        if pack_dir.is_dir():
            for p in sorted(pack_dir.iterdir()):
                if p.name.startswith("tmp_"):
                    orphans.append(p)
                elif p.suffix == ".pack":
                    if not p.with_suffix(".idx").exists():
                        orphans.append(p)
                    elif p.with_suffix(".keep").exists():
                        kept.append(p)
                    else:
                        packs.append(p)
        loose = []
        for d in sorted(objects.iterdir()) if objects.is_dir() else []:
            if d.name.startswith("tmp_") and d.is_file():  # libgit2's half-written object
                orphans.append(d)
            elif _FANOUT_DIR.match(d.name) and d.is_dir():
                loose += [
                    f
                    for f in d.iterdir()
                    if _LOOSE_NAME.match(f.name) or f.name.startswith("tmp_obj_")
                ]
        return cls(packs, kept, orphans, loose)

    def ids(self) -> set[bytes]:
        """Every object id stored in a pack or loose (20 bytes each)."""
        out: set[bytes] = set()
        for p in self.packs + self.kept_packs:
            out.update(index_ids(p.with_suffix(".idx")))
        for f in self.loose:
            if _LOOSE_NAME.match(f.name):
                out.add(bytes.fromhex(f.parent.name + f.name))
        return out

    def size(self) -> int:
        files = [*self.loose, *self.orphans]
        for p in self.packs + self.kept_packs:
            files += [p, p.with_suffix(".idx")]
        return sum(f.stat().st_size for f in files if f.exists())


def repack(store: GitStore, keep: Iterable[str] = ()) -> RepackReport:
    """Write every object datagit keeps into one pack; delete the packs and loose files it replaces.

    Kept are the objects reachable from every ref (branches, tags, remote and
    bisect refs), HEAD, ``keep`` (ids the caller holds outside refs: the stage,
    a merge in progress), and, when present, reflog entries and ``*_HEAD``
    files. Anything else is deleted at once, like ``git gc --prune=now``. The
    caller holds the repository's write lock, so no writer adds objects meanwhile.
    """
    objects_dir = store.path / "objects"
    before = _Inventory.scan(objects_dir)
    head = store.head_commit()
    required = sorted({*store.ref_targets().values(), *keep, *([head] if head else [])})
    order = reachable(store, required, sorted(logged_ids(store.path) - set(required)))
    stored = before.ids()
    wanted = {bytes.fromhex(o) for o in order}
    bytes_before = before.size()
    dropped = len(stored - wanted)
    if _consolidated(before, wanted):
        return RepackReport(len(order), 1, 1, 0, 0, bytes_before, bytes_before)
    pack_dir = objects_dir / "pack"
    new = None
    if order:
        new = write_pack_stream(pack_dir, len(order), _bodies(store, order))
        _fsync_dir(pack_dir)  # the new pack's name is durable before any old file goes
    _remove_superseded(objects_dir, before, new)
    store.reopen()  # let go of the deleted packs' file handles
    after = (new.stat().st_size + new.with_suffix(".idx").stat().st_size) if new else 0
    for p in before.kept_packs:
        after += p.stat().st_size + p.with_suffix(".idx").stat().st_size
    return RepackReport(
        objects=len(order),
        packs=(1 if new else 0) + len(before.kept_packs),
        packs_before=len(before.packs) + len(before.kept_packs),
        loose_before=sum(1 for f in before.loose if _LOOSE_NAME.match(f.name)),
        dropped=dropped,
        bytes_before=bytes_before,
        bytes_after=after,
    )


def _remove_superseded(objects_dir: Path, before: _Inventory, new: Path | None) -> None:
    """Delete what the new pack replaces: files git derives from the old packs, then each
    old pack, then loose objects and crash leftovers. Only files found at the start go."""
    for rel in _DERIVED:
        (objects_dir / rel).unlink(missing_ok=True)
    shutil.rmtree(objects_dir / "info" / "commit-graphs", ignore_errors=True)
    for p in before.packs:
        if p != new:  # the same objects in the same order make the same pack name
            _delete_pack(p)
    # A gc killed between renaming its pack and its index into place left that pack as
    # an orphan; this run, packing the same objects, has just written the same name.
    mine = {new, new.with_suffix(".idx")} if new is not None else set()
    for f in [*before.loose, *before.orphans]:
        if f not in mine:
            f.unlink(missing_ok=True)
    for d in {f.parent for f in before.loose}:
        with contextlib.suppress(OSError):  # something else lives there: leave it
            d.rmdir()


def _consolidated(before: _Inventory, wanted: set[bytes]) -> bool:
    """One pack holding exactly the reachable objects, and nothing else on disk."""
    if len(before.packs) != 1 or before.kept_packs or before.loose or before.orphans:
        return False
    return set(index_ids(before.packs[0].with_suffix(".idx"))) == wanted


def _delete_pack(pack: Path) -> None:
    """Index first: without it git and libgit2 ignore the pack, so no reader sees half of one."""
    pack.with_suffix(".idx").unlink(missing_ok=True)
    pack.unlink(missing_ok=True)
    for suffix in _PACK_COMPANIONS:
        pack.with_suffix(suffix).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def logged_ids(gitdir: Path) -> set[str]:
    """Object ids named by reflogs (old and new of every entry) and ``*_HEAD`` files.

    These keep objects alive as in git, but are not required: an id whose
    object no longer exists is skipped rather than refusing the repack.
    """
    out: set[str] = set()
    logs = gitdir / "logs"
    files = [p for p in logs.rglob("*") if p.is_file()] if logs.is_dir() else []
    files += [p for p in gitdir.glob("*_HEAD") if p.is_file()]
    for path in files:
        for line in path.read_bytes().splitlines():
            if _HEX40.match(line):
                out.add(line[:40].decode())
                second = line[41:81]
                if line[40:41] == b" " and _HEX40.match(second):
                    out.add(second.decode())
    out.discard(_ZERO)
    return out


def logged_commits_since(gitdir: Path, cutoff: float | None) -> set[str]:
    """Ids (old and new) of reflog entries made at or after ``cutoff`` (Unix seconds;
    None: every entry) — what `gc` keeps content for, as git keeps reflog objects
    until ``gc.reflogExpire``."""
    out: set[str] = set()
    logs = gitdir / "logs"
    files = [p for p in logs.rglob("*") if p.is_file()] if logs.is_dir() else []
    for path in files:
        for line in path.read_bytes().splitlines():
            head, _, _msg = line.partition(b"\t")
            parts = head.split()
            if len(parts) < 4 or not (_HEX40.match(parts[0]) and _HEX40.match(parts[1])):
                continue
            when = parts[-2]
            if cutoff is not None and (not when.isdigit() or int(when) < cutoff):
                continue
            out.update(p[:40].decode() for p in parts[:2])
    out.discard(_ZERO)
    return out


_UNITS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}


def expiry_seconds(value: str | None, default_days: int = 90) -> float | None:
    """``gc.reflogExpire`` as an age in seconds; None for ``never``/``false``.

    Accepts what git's users write: ``90.days.ago``, ``2 weeks``, ``now``/``all``,
    ``never``, or a bare number of days. Anything else falls back to the default,
    as a mistyped setting must not make gc drop more than it should.
    """
    if value is None:
        return default_days * 86400.0
    text = value.strip().lower().replace(".", " ").removesuffix(" ago").strip()
    if text in ("never", "false"):
        return None
    if text in ("now", "all"):
        return 0.0
    if text.isdigit():
        return int(text) * 86400.0
    number, _, unit = text.partition(" ")
    unit = unit.strip().removesuffix("s")
    if number.isdigit() and unit in _UNITS:
        return int(number) * float(_UNITS[unit])
    return default_days * 86400.0


def reachable(store: GitStore, required: list[str], optional: list[str]) -> dict[str, str]:
    """Object id → kind of everything reachable from the roots, in the order to pack them.

    Commits come first, then tags, then trees and blobs as a walk of each
    commit's tree reaches them, so one commit's objects sit together. A missing
    ``required`` root or any missing object below a root raises; a missing
    ``optional`` root is skipped.
    """
    commits: dict[str, str] = {}  # commit → its tree
    tags: dict[str, str] = {}
    contents: dict[str, str] = {}  # tree or blob → kind
    todo_commits: list[str] = []
    todo_trees: list[str] = []

    def visit(oid: str, kind: str, data: bytes) -> None:
        if kind == "commit":
            todo_commits.append(oid)
        elif kind == "tag":
            tags[oid] = "tag"
            target = _header_field(data, b"object")
            if target and target not in tags and target not in commits:
                visit(target, *store.read_raw(target))
        elif kind == "tree":
            todo_trees.append(oid)
        else:
            contents.setdefault(oid, kind)

    for oid in required:
        visit(oid, *store.read_raw(oid))
    for oid in optional:
        if store.has(oid):
            visit(oid, *store.read_raw(oid))
    while todo_commits:
        oid = todo_commits.pop()
        if oid in commits:
            continue
        kind, data = store.read_raw(oid)
        if kind != "commit":
            raise _not_a(oid, "commit", kind)
        header = data.split(b"\n\n", 1)[0].splitlines()
        tree = _header_field(data, b"tree")
        if tree is None:
            raise _not_a(oid, "commit", "commit without a tree")
        commits[oid] = tree
        parents = [ln[7:].decode() for ln in header if ln.startswith(b"parent ")]
        todo_commits.extend(p for p in reversed(parents) if p not in commits)
    todo_trees = list(commits.values()) + todo_trees
    todo_trees.reverse()
    while todo_trees:
        oid = todo_trees.pop()
        if oid in contents:
            continue
        kind, data = store.read_raw(oid)
        if kind != "tree":
            raise _not_a(oid, "tree", kind)
        contents[oid] = "tree"
        subtrees = []
        for is_tree, child in _tree_children(data):
            if is_tree:
                if child not in contents:
                    subtrees.append(child)
            else:
                contents.setdefault(child, "blob")
        todo_trees.extend(reversed(subtrees))
    return {**dict.fromkeys(commits, "commit"), **tags, **contents}


def _tree_children(data: bytes) -> Iterator[tuple[bool, str]]:
    """(is_tree, id) of each entry; gitlinks (mode 160000) name no object here and are skipped."""
    i = 0
    while i < len(data):
        space = data.index(b" ", i)
        nul = data.index(b"\0", space)
        mode = data[i:space]
        if mode != b"160000":
            yield mode == b"40000", data[nul + 1 : nul + 21].hex()
        i = nul + 21


def _header_field(data: bytes, key: bytes) -> str | None:
    for line in data.split(b"\n\n", 1)[0].splitlines():
        if line.startswith(key + b" "):
            return line[len(key) + 1 :].decode()
    return None


def _bodies(store: GitStore, order: dict[str, str]) -> Iterator[tuple[str, str, bytes]]:
    for oid, kind in order.items():
        got, data = store.read_raw(oid)
        if got != kind:
            raise _not_a(oid, kind, got)
        yield oid, kind, data


def _not_a(oid: str, expected: str, got: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"git object {oid} should be a {expected} but is a {got}",
        hint="run `datagit fsck`; restore .datagit from a remote or backup",
    )


AUTO_PACK_LIMIT = 50  # as git's gc.autoPackLimit: past this many packs, commits roll them up


def roll_up(store: GitStore, limit: int | None = None) -> int:
    """Merge small git packs into one once there are more than ``limit``; returns how many.

    Every commit writes a pack of its own, and each object lookup searches every
    pack, so a long history slows every command (9× per commit over 1,000
    packs). This is git's geometric repack: packs are kept while each holds at
    least twice the objects of all smaller ones together, and the rest are
    copied into one new pack. Nothing is pruned and reachability is not walked:
    the cost follows the small packs, not the repository. The new pack is
    fsynced (with its folder) before any old one is deleted; the caller holds
    the write lock.
    """
    limit = AUTO_PACK_LIMIT if limit is None else limit
    pack_dir = store.path / "objects" / "pack"
    packs = [
        p
        for p in pack_dir.glob("pack-*.pack")
        if p.with_suffix(".idx").exists() and not p.with_suffix(".keep").exists()
    ]
    if len(packs) <= limit:
        return 0
    ids = {p: index_ids(p.with_suffix(".idx")) for p in packs}
    desc = sorted(packs, key=lambda p: len(ids[p]), reverse=True)
    rest = sum(len(v) for v in ids.values())
    keep = 0
    for p in desc:
        rest -= len(ids[p])
        if len(ids[p]) < 2 * rest:
            break
        keep += 1
    roll = desc[keep:]
    if len(roll) < 2:
        return 0
    order = list(dict.fromkeys(oid.hex() for p in roll for oid in ids[p]))

    def bodies() -> Iterator[tuple[str, str, bytes]]:
        for oid in order:
            kind, data = store.read_raw(oid)
            yield oid, kind, data

    new = write_pack_stream(pack_dir, len(order), bodies())
    _fsync_dir(pack_dir)
    objects_dir = store.path / "objects"
    for rel in _DERIVED:  # git's caches over the old packs
        (objects_dir / rel).unlink(missing_ok=True)
    shutil.rmtree(objects_dir / "info" / "commit-graphs", ignore_errors=True)
    for p in roll:
        if p != new:
            _delete_pack(p)
    store.reopen()
    return len(roll)
