"""Git metadata through pygit2: blobs, trees and commits, in one `GitStore`.

Only storage imports pygit2 (through `storage.libgit`), and `GitStore` is what
the layers above use: it adds refs and revisions (`gitrefs.GitRefs`) and config
(`gitconfig.GitConfig`) as base classes. Everything above it speaks in hex object
ids and small value classes, so pygit2's errors are translated here once.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from datagit.errors import (
    CorruptObjectError,
    DatagitError,
    RevisionNotFoundError,
)
from datagit.storage.gitconfig import GitConfig
from datagit.storage.gitobjects import CORRUPT_HINT, GitCheck, VerifiedObjects
from datagit.storage.gitpack import (
    Data,
    Squeezer,
    object_id,
    parse_tree,
    tree_bytes,
    write_pack,
)
from datagit.storage.gitrefs import GitRefs
from datagit.storage.libgit import pygit2

FileMode, ObjectType, SortMode = (
    pygit2.enums.FileMode,
    pygit2.enums.ObjectType,
    pygit2.enums.SortMode,
)
BLOB = "blob"
TREE = "tree"
SMALL_BATCH = 16  # fewer objects than this are written loose: no pack per tiny commit
BATCH_LIMIT = 64 << 20  # flush a batch into a pack past this many bytes
DEFAULT_BRANCH = "main"
_KINDS = {1: "commit", 2: "tree", 3: "blob", 4: "tag"}  # git's object type codes


@dataclass(frozen=True, slots=True)
class Signature:
    """Who and when, as git records it (time in seconds, offset in minutes)."""

    name: str
    email: str
    time: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """A commit as datagit reads it."""

    id: str
    tree: str
    parents: tuple[str, ...]
    author: Signature
    committer: Signature
    message: str

    @property
    def summary(self) -> str:
        return self.message.split("\n", 1)[0]

    def trailer(self, key: str) -> str | None:
        """A ``Key: value`` trailer of the message, e.g. ``Annotator``."""
        for line in reversed(self.message.rstrip().splitlines()):
            if line.startswith(f"{key}: "):
                return line[len(key) + 2 :].strip()
        return None


@dataclass(frozen=True, slots=True)
class Entry:
    """One tree entry: a blob or a subtree."""

    oid: str
    kind: str  # BLOB or TREE


def hash_blob(data: bytes) -> str:
    """The git blob id of ``data`` without writing it."""
    return str(pygit2.hash(data))


EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # an empty dataset's records


class GitStore(GitRefs, GitConfig):
    """A bare git repository holding datagit's commits, trees and shard blobs."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self._repo = repo
        self.path = Path(repo.path)
        self._objects = self.path / "objects"
        self._verified = VerifiedObjects(repo, self.path)
        self._batch: dict[str, tuple[str, Data]] | None = None
        self._batch_depth = 0
        self._batch_bytes = 0
        self._squeezer: Squeezer | None = None  # compresses a batch's objects as they come
        self._loose_dirs: frozenset[str] | None = None  # a batch's listing of objects/

    # -- opening ---------------------------------------------------------
    @classmethod
    def init(cls, path: Path) -> GitStore:
        repo = pygit2.init_repository(str(path), bare=True, initial_head=DEFAULT_BRANCH)
        repo.config["core.logAllRefUpdates"] = "true"  # a bare repo would not keep reflogs
        return cls(repo)

    @classmethod
    def open(cls, path: Path) -> GitStore:
        try:
            return cls(pygit2.Repository(str(path)))
        except pygit2.GitError as exc:
            raise DatagitError(f"cannot open git metadata at {path}: {exc}") from exc

    # -- objects ---------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Collect the blobs and trees written inside into packs instead of loose files.

        Objects written in a batch are readable at once (from memory) and land
        on disk, as a pack and then its index, when the outermost batch exits,
        or every ~64 MB. Nothing refers to them until a later commit or ref.
        """
        if self._batch is None:
            self._batch = {}
            self._batch_bytes = 0
            self._squeezer = Squeezer()
            self._loose_dirs = None  # listed when first asked (`_stored`)
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                try:
                    self._flush_batch()
                finally:
                    self._batch = None
                    if self._squeezer is not None:
                        self._squeezer.close()
                    self._squeezer = None

    def flush_batch(self, min_bytes: int = 0) -> None:
        """Write what the open batch holds as a pack now, if it holds ``min_bytes`` or
        more, and go on batching: one dataset's shards need not stay in memory while
        the next is read."""
        if self._batch is not None and self._batch_bytes >= min_bytes:
            self._flush_batch()

    def _flush_batch(self) -> None:
        pending = self._batch
        if not pending:
            return
        if len(pending) < SMALL_BATCH:
            if self._squeezer is not None:
                self._squeezer.close()  # loose objects are compressed by libgit2
            for kind, data in pending.values():
                kind_code = ObjectType.BLOB if kind == BLOB else ObjectType.TREE
                self._repo.odb.write(kind_code, bytes(data))
        else:
            write_pack(self.path / "objects" / "pack", pending, self._squeezer)
            self._verified.packs_written()
        self._batch = {}
        self._batch_bytes = 0

    def _stage_object(self, kind: str, data: Data) -> str:
        oid = object_id(kind, data)
        assert self._batch is not None
        if oid not in self._batch and not self._stored(oid):
            self._batch[oid] = (kind, data)
            self._batch_bytes += len(data)
            if self._squeezer is not None:
                self._squeezer.add(oid, kind, data)
            if self._batch_bytes > BATCH_LIMIT:
                self._flush_batch()
        return oid

    def _stored(self, oid: str) -> bool:
        """Whether ``oid`` is already in the repository (a batch's existence check).

        libgit2's own check (``oid in repo``) rescans the pack folder on every miss
        (opendir, getdents: ~45 µs), 0.1–0.2 s for the 4,097 new shards of a
        million-row table. The pack backend answers from the indexes it has seen (told
        of each pack a batch writes; only the command holding the write lock adds
        packs), and one stat finds a loose object.
        """
        if self._verified.packed(oid):
            return True
        if self._loose_dirs is None:
            # The fan-out folders, listed once a batch: a new repository has none, so its
            # thousands of new shards need no stat each (a stat gives the GIL up, and
            # taking it back from the thread making lines cost more than the stat).
            # A folder made during the batch only means an object written twice.
            try:
                self._loose_dirs = frozenset(os.listdir(self._objects))
            except OSError:
                self._loose_dirs = frozenset()
        if oid[:2] not in self._loose_dirs:
            return False
        # Not the empty tree by its id: libgit2 says it exists without storing it, and
        # git's fsck wants every tree a commit names stored (an empty ``changes``).
        return os.path.exists(os.path.join(self._objects, oid[:2], oid[2:]))

    def write_blob(self, data: Data) -> str:
        """Store ``data``; a memoryview (a slice of a bigger buffer: bulk table shards) is
        kept as it is until the batch is written, not copied."""
        if self._batch is not None:
            return self._stage_object(BLOB, data)
        return str(self._repo.create_blob(bytes(data)))

    def read_blob(self, oid: str) -> bytes:
        if self._batch and oid in self._batch:
            return bytes(self._batch[oid][1])
        return self._verified.load(oid, "blob")[1]

    def read_raw(self, oid: str) -> tuple[str, bytes]:
        """An object's kind (``commit``, ``tree``, ``blob``, ``tag``) and its body, as stored."""
        if oid == EMPTY_TREE:  # libgit2 knows it without storing it, but will not read it back
            return TREE, b""
        try:
            kind, data = self._repo.odb.read(oid)
        except (KeyError, ValueError, pygit2.GitError) as exc:
            raise CorruptObjectError(
                f"git object {oid} is missing or unreadable in {self.path}",
                hint="run `datagit fsck`; restore .datagit from a remote or backup",
            ) from exc
        return _KINDS[int(kind)], bytes(data)

    def has(self, oid: str) -> bool:
        return bool(self._batch and oid in self._batch) or oid in self._repo

    def tree_entries(self, oid: str) -> dict[str, Entry]:
        if self._batch and oid in self._batch:
            body = bytes(self._batch[oid][1])
        else:
            kind, body = self._verified.load(oid, "tree")
            if kind != TREE:
                raise CorruptObjectError(
                    f"git object {oid} is a {kind} where a tree was expected", hint=CORRUPT_HINT
                )
        return {name: Entry(o, TREE if is_tree else BLOB) for name, is_tree, o in parse_tree(body)}

    def write_tree(self, entries: Mapping[str, Entry]) -> str:
        if self._batch is not None:
            body = tree_bytes([(n, e.kind == TREE, e.oid) for n, e in entries.items()])
            return self._stage_object(TREE, body)
        builder = self._repo.TreeBuilder()
        for name, entry in entries.items():
            mode = FileMode.TREE if entry.kind == TREE else FileMode.BLOB
            builder.insert(name, pygit2.Oid(hex=entry.oid), mode)
        return str(builder.write())

    def write_tree_body(self, body: bytes) -> str:
        """Store a tree whose body the caller built (`gitpack.tree_bytes`): the shard
        folders of a dataset, computed in bulk (`core.shardtree`)."""
        if self._batch is not None:
            return self._stage_object(TREE, body)
        return str(self._repo.odb.write(ObjectType.TREE, body))

    def empty_tree(self) -> str:
        return self.write_tree({})

    # -- commits ---------------------------------------------------------
    def create_commit(
        self,
        tree: str,
        parents: list[str],
        message: str,
        author: Signature,
        committer: Signature,
    ) -> str:
        """Write a commit object without moving any ref (the caller does last)."""
        oid = self._repo.create_commit(
            None,
            _sig(author),
            _sig(committer),
            message,
            pygit2.Oid(hex=tree),
            [pygit2.Oid(hex=p) for p in parents],
        )
        return str(oid)

    def commit(self, oid: str) -> CommitInfo:
        if self._verified.commit_parents(oid, "commit") is None:
            raise RevisionNotFoundError(f"{oid} is not a commit")
        try:
            obj = self._repo.get(oid)
        except pygit2.GitError as exc:
            raise self._unreadable(exc) from exc
        if not isinstance(obj, pygit2.Commit):
            raise RevisionNotFoundError(f"{oid} is not a commit")
        return _info(obj)

    def walk(
        self, heads: list[str], *, topo: bool = True, hide: Iterable[str] = ()
    ) -> Iterator[CommitInfo]:
        """Commits reachable from ``heads`` and not from ``hide``, newest first (``git log``)."""
        if not heads:
            return
        self._verified.check_history(heads)
        mode = SortMode.TOPOLOGICAL | SortMode.TIME if topo else SortMode.TIME
        try:
            walker = self._repo.walk(pygit2.Oid(hex=heads[0]), mode)
            for extra in heads[1:]:
                walker.push(pygit2.Oid(hex=extra))
            for hidden in hide:
                walker.hide(pygit2.Oid(hex=hidden))
            for c in walker:
                yield _info(c)
        except pygit2.GitError as exc:
            raise self._unreadable(exc) from exc

    def merge_base(self, a: str, b: str) -> str | None:
        self._verified.check_history([a, b])
        try:
            base = self._repo.merge_base(pygit2.Oid(hex=a), pygit2.Oid(hex=b))
        except pygit2.GitError as exc:
            raise self._unreadable(exc) from exc
        return str(base) if base else None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        if ancestor == descendant:
            return True
        self._verified.check_history([descendant, ancestor])
        try:
            return bool(
                self._repo.descendant_of(pygit2.Oid(hex=descendant), pygit2.Oid(hex=ancestor))
            )
        except pygit2.GitError as exc:
            raise self._unreadable(exc) from exc

    def _unreadable(self, exc: pygit2.GitError) -> CorruptObjectError:
        """libgit2 failed on history that datagit's own checks passed: say what it said."""
        return CorruptObjectError(
            f"git history in {self._verified.where(self.path)} cannot be read: {exc}",
            hint=CORRUPT_HINT,
        )

    # -- opening again, tags, stale locks ------------------------------
    def reopen(self) -> None:
        """Drop libgit2's open packs and start afresh (after `gc` replaced them on disk)."""
        self._repo.free()
        self._repo = pygit2.Repository(str(self.path))
        self._verified = VerifiedObjects(self._repo, self.path)

    def create_tag(self, name: str, oid: str, message: str | None, tagger: Signature) -> None:
        if message:
            self._repo.create_tag(
                name, pygit2.Oid(hex=oid), ObjectType.COMMIT, _sig(tagger), message
            )
        else:
            self._repo.references.create(f"refs/tags/{name}", pygit2.Oid(hex=oid))

    def clear_stale_locks(self) -> list[Path]:
        """Remove ``*.lock`` and half-written pack files a killed writer left behind.

        libgit2 updates a ref by writing ``<ref>.lock`` and renaming it; a
        ``kill -9`` between the two leaves the lock file, and every later update
        of that ref fails. Call this only while holding datagit's write lock: then
        no other datagit process can be mid-update, so every such file is stale.
        """
        stale = [p for p in (self.path / "refs").rglob("*.lock") if p.is_file()]
        stale += [
            self.path / n
            for n in ("HEAD.lock", "packed-refs.lock", "config.lock", "index.lock")
            if (self.path / n).is_file()
        ]
        stale += [p for p in (self.path / "objects" / "pack").glob("tmp_*") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    # -- integrity -------------------------------------------------------
    def check_objects(self) -> GitCheck:
        """Read every object reachable from a ref or HEAD; one problem line per bad object."""
        heads: list[tuple[str, str]] = []
        problems: list[str] = []
        try:
            names = sorted(self._repo.references)
        except pygit2.GitError as exc:  # e.g. a garbled packed-refs file
            names = []
            problems.append(f"refs in {self.path} cannot be listed: {exc}")
        for name in ["HEAD", *names]:
            try:
                heads.append((str(self._repo.references[name].resolve().target), name))
            except pygit2.GitError as exc:  # a symbolic-ref loop
                problems.append(f"ref {name} cannot be resolved: {exc}")
            except (KeyError, ValueError):
                continue  # an unborn HEAD, a dangling symbolic ref
        check = self._verified.check(heads)
        check.problems[:0] = problems
        return check


def _sig(s: Signature) -> pygit2.Signature:
    return pygit2.Signature(s.name, s.email, s.time, s.offset)


def _info(c: pygit2.Commit) -> CommitInfo:
    a, m = c.author, c.committer
    return CommitInfo(
        id=str(c.id),
        tree=str(c.tree_id),
        parents=tuple(str(p) for p in c.parent_ids),
        author=Signature(a.name, a.email, a.time, a.offset),
        committer=Signature(m.name, m.email, m.time, m.offset),
        message=c.message,
    )


# -- libgit2's errors, translated in one place --------------------------------
def _translating(fn):  # type: ignore[no-untyped-def]
    """Wrap a `GitStore` method so a libgit2 error it lets through (a symbolic-ref
    loop, a garbled packed-refs file) becomes a one-line `CorruptObjectError`."""

    @functools.wraps(fn)
    def wrapper(self: GitStore, *args: object, **kwargs: object) -> object:
        try:
            return fn(self, *args, **kwargs)
        except pygit2.GitError as exc:
            raise CorruptObjectError(
                f"git metadata in {self.path} is damaged: {exc}",
                hint="run `datagit fsck`; a looping symbolic ref or a garbled "
                "packed-refs file can be fixed with `git --git-dir .datagit update-ref`",
            ) from exc

    return wrapper


for _cls in (GitStore, GitRefs, GitConfig):  # the bases' methods are wrapped on GitStore
    for _name, _fn in list(vars(_cls).items()):
        if (
            inspect.isfunction(_fn)
            and not _name.startswith("__")
            and not (inspect.isgeneratorfunction(_fn))
        ):
            setattr(GitStore, _name, _translating(_fn))
