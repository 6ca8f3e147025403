"""Verified reads of git objects, with errors that name the damaged object and its file.

libgit2 1.9 spins forever inflating a truncated loose object (libgit2#7342,
fixed upstream after the version pygit2 bundles), so every loose object datagit
reads is inflated and hash-checked here, in Python, before libgit2 may touch it;
packed objects are read by libgit2, which fails cleanly on them. A damaged or
missing object becomes a `CorruptObjectError` naming its id, what refers to it
and the file (loose object or pack) it should be in.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from datagit.errors import CorruptObjectError
from datagit.storage.gitpack import parse_tree
from datagit.storage.libgit import pygit2
from datagit.storage.packread import PackReader

CORRUPT_HINT = (
    "run `datagit fsck` to list every damaged object, then restore .datagit from a backup "
    "or clone the repository again from its remote (`datagit clone`)"
)
KINDS = frozenset({"commit", "tree", "blob", "tag"})
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git (and libgit2) know it unwritten
ObjectType = pygit2.enums.ObjectType
_KIND_NAMES = {
    ObjectType.COMMIT: "commit",
    ObjectType.TREE: "tree",
    ObjectType.BLOB: "blob",
    ObjectType.TAG: "tag",
}


@dataclass
class GitCheck:
    """What `VerifiedObjects.check` read, and one line per damaged or missing object."""

    commits: int = 0
    objects: int = 0
    problems: list[str] = field(default_factory=list)


class VerifiedObjects:
    """Reads a repository's git objects, verifying each before libgit2 relies on it.

    Commits verified once are remembered with their parents for the life of the
    object (one command), so walking history twice reads each commit once here.
    """

    def __init__(self, repo: pygit2.Repository, git_dir: Path) -> None:
        self._repo = repo
        self._git_dir = git_dir
        self._objects = git_dir / "objects"
        self._objects_str = str(self._objects)  # joined per read: a Path join costs more
        # Packed objects only (libgit2 rescans the pack folder on a miss, so packs
        # written after this opened are found); loose ones are read by `read_loose`.
        self._packs = pygit2.Odb()
        self._packs.add_backend(pygit2.OdbBackendPack(self._objects_str), 1)
        self._reader = PackReader(self._objects)  # whole packed objects, read faster in Python
        self._parents: dict[str, tuple[str, ...]] = {}  # commits verified, and their parents
        self._whole: set[str] = set()  # commits whose whole history is verified

    def packed(self, oid: str) -> bool:
        """Whether a pack holds ``oid``, from the indexes already seen: asked of the pack
        backend itself, since the odb rescans the pack folder on every miss (opendir,
        getdents: ~45 µs, 0.15 s for a million-row table's 4,097 new shards). Call
        `packs_written` after adding a pack. (A pack backend of its own would keep one
        more descriptor open per pack for the life of the process.)"""
        return any(b.exists(oid) for b in self._packs.backends)

    def packs_written(self) -> None:
        """Let `packed` see packs written since it last looked."""
        for b in self._packs.backends:
            b.refresh()
        self._reader.refresh()

    def load(self, oid: str, what: str) -> tuple[str, bytes]:
        """The kind and body of ``oid``, verified, or a `CorruptObjectError` naming it.

        ``what`` says in the error which object this is ("parent of commit …").
        """
        # Packs first, through an odb that has only the pack backend: nearly every
        # object is packed, and trying the loose file first cost a failed open() per
        # read (~2,400 in a 1% re-label commit). libgit2 never opens a loose file
        # here, so the truncated-loose-object hang cannot happen; it checks each
        # packed object's SHA-1 as it inflates it (strict hash verification, on by
        # default), so a damaged pack entry is still an error before it is trusted.
        # A whole object in a pack already listed is read (and SHA-1-checked) faster
        # by `PackReader`; anything it is unsure of comes back None and goes to libgit2.
        got = self._reader.read(oid)
        if got is not None:
            return got
        try:
            kind, data = self._packs.read(oid)
        except KeyError:
            pass
        except (ValueError, pygit2.GitError) as exc:
            packs = packs_listing(self._objects, oid)
            where = packs[0] if packs else self._objects
            raise self._corrupt(oid, what, str(exc).removeprefix(f"{oid}: "), where) from exc
        else:
            return _KIND_NAMES.get(kind, str(kind)), bytes(data)
        try:
            loose = read_loose(self._objects_str, oid)
        except ObjectDamage as exc:
            raise self._corrupt(oid, what, exc.reason, exc.path) from exc
        if loose is not None:
            return loose
        if oid == EMPTY_TREE:
            return "tree", b""
        raise self._missing(oid, what)

    def commit_parents(self, oid: str, what: str) -> tuple[str, ...] | None:
        """Verify commit ``oid`` and return its parents; None if ``oid`` is not a commit."""
        parents = self._parents.get(oid)
        if parents is None:
            kind, body = self.load(oid, what)
            if kind != "commit":
                return None
            parents = parent_ids(body)
            self._parents[oid] = parents
        return parents

    def check_history(self, heads: Iterable[str]) -> None:
        """Verify every commit reachable from ``heads`` (each once per process)."""
        stack = [(h, "commit") for h in heads if h not in self._whole]
        seen: set[str] = set()
        while stack:
            oid, what = stack.pop()
            if oid in seen or oid in self._whole:
                continue
            seen.add(oid)
            parents = self.commit_parents(oid, what) or ()
            stack.extend((p, f"parent of commit {oid}") for p in parents)
        self._whole |= seen

    def peel_to_commit(self, oid: str, name: str) -> str | None:
        """Follow annotated tags from ``oid`` to a commit, verifying each; None if none."""
        for _ in range(16):
            if oid in self._parents:
                return oid
            kind, body = self.load(oid, f"the object {name} names")
            if kind == "commit":
                self._parents[oid] = parent_ids(body)
                return oid
            if kind != "tag" or not body.startswith(b"object "):
                return None
            oid = body[7:47].decode("ascii", "replace")
        return None

    def check(self, heads: list[tuple[str, str]]) -> GitCheck:
        """Read every object reachable from ``(id, name)`` heads; one line per bad object.

        A head may be a commit, an annotated tag or a tree. A damaged commit does
        not stop the check: everything else reachable is still read, so one run
        lists every problem.
        """
        result = GitCheck()
        seen: set[str] = set()
        stack = [(oid, f"the object {name} names") for oid, name in heads]
        while stack:
            oid, what = stack.pop()
            if oid in seen:
                continue
            seen.add(oid)
            try:
                kind, body = self.load(oid, what)
            except CorruptObjectError as exc:
                result.problems.append(exc.message)
                continue
            if kind == "commit":
                result.commits += 1
                stack.extend((p, f"parent of commit {oid}") for p in parent_ids(body))
                if body.startswith(b"tree "):
                    stack.append((body[5:45].decode("ascii", "replace"), f"tree of commit {oid}"))
                continue
            result.objects += 1
            if kind == "tag" and body.startswith(b"object "):
                stack.append((body[7:47].decode("ascii", "replace"), f"target of tag {oid}"))
            elif kind == "tree":
                stack.extend((o, f"{name} in tree {oid}") for name, _, o in parse_tree(body))
        return result

    def where(self, path: Path) -> str:
        """``path`` as the user sees it from the workspace: ``.datagit/objects/…``."""
        try:
            return str(path.relative_to(self._git_dir.parent))
        except ValueError:
            return str(path)

    def _corrupt(self, oid: str, what: str, reason: str, path: Path) -> CorruptObjectError:
        return CorruptObjectError(
            f"git object {oid} ({what}) is corrupt in {self.where(path)}: {reason}",
            hint=CORRUPT_HINT,
        )

    def _missing(self, oid: str, what: str) -> CorruptObjectError:
        packs = packs_listing(self._objects, oid)
        if packs:
            idx = self.where(packs[0].with_suffix(".idx"))
            where = f"{idx} lists it but its pack cannot be read"
        else:
            where = f"not in {self.where(self._objects)}"
        return CorruptObjectError(
            f"git object {oid} ({what}) is missing: {where}", hint=CORRUPT_HINT
        )


def parent_ids(body: bytes) -> tuple[str, ...]:
    """The ``parent`` ids in a commit object's headers, in order."""
    headers = body.split(b"\n\n", 1)[0]
    return tuple(
        line[7:].decode("ascii", "replace")
        for line in headers.split(b"\n")
        if line.startswith(b"parent ")
    )


class ObjectDamage(Exception):
    """Why a loose object cannot be read (one line) and the file it lives in."""

    def __init__(self, reason: str, path: Path) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


def read_loose(objects: str | Path, oid: str) -> tuple[str, bytes] | None:
    """The kind and body of loose object ``oid``, verified; None when it is not loose.

    Raises `ObjectDamage` for a file that cannot be read, a damaged or truncated
    zlib stream, a malformed header, or content whose SHA-1 is not ``oid``.
    """
    name = f"{objects}{os.sep}{oid[:2]}{os.sep}{oid[2:]}"  # not pathlib: most reads miss
    try:
        with open(name, "rb") as f:
            compressed = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ObjectDamage(f"cannot read it ({exc.strerror})", Path(name)) from exc
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed)
    except zlib.error as exc:
        reason = str(exc).rpartition(": ")[2]
        raise ObjectDamage(f"its zlib stream is damaged ({reason})", Path(name)) from exc
    if not inflater.eof:
        raise ObjectDamage(
            f"it is truncated ({len(compressed)} bytes, its zlib stream ends early)", Path(name)
        )
    nul = raw.find(b"\0")
    kind, _, size = raw[: max(nul, 0)].partition(b" ")
    kind_name = kind.decode("ascii", "replace")
    if nul < 0 or kind_name not in KINDS or size != b"%d" % (len(raw) - nul - 1):
        raise ObjectDamage("its header is malformed", Path(name))
    if hashlib.sha1(raw).hexdigest() != oid:
        raise ObjectDamage("its content does not match its id", Path(name))
    return kind_name, raw[nul + 1 :]


def packs_listing(objects: Path, oid: str) -> list[Path]:
    """The ``.pack`` files whose index lists ``oid`` (for error messages; reads every index)."""
    want = bytes.fromhex(oid)
    found = []
    for idx in sorted((objects / "pack").glob("*.idx")):
        try:
            data = idx.read_bytes()
        except OSError:
            continue
        if _index_lists(data, want):
            found.append(idx.with_suffix(".pack"))
    return found


def _index_lists(data: bytes, want: bytes) -> bool:
    """Whether a v2 pack index lists the 20-byte id ``want`` (binary search in its bucket)."""
    if data[:8] != b"\xfftOc\x00\x00\x00\x02" or len(data) < 8 + 1024:
        return False
    fanout = struct.unpack_from(">256I", data, 8)
    base = 8 + 1024
    if base + 20 * fanout[255] > len(data):
        return False
    lo = fanout[want[0] - 1] if want[0] else 0
    hi = fanout[want[0]]
    while lo < hi:
        mid = (lo + hi) // 2
        got = data[base + 20 * mid : base + 20 * mid + 20]
        if got == want:
            return True
        if got < want:
            lo = mid + 1
        else:
            hi = mid
    return False
