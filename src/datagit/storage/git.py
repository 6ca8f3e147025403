"""Git metadata through pygit2: blobs, trees, commits, refs and revisions.

Only storage imports pygit2 (through `storage.libgit`), and this module is what
the layers above use. Everything above it speaks in hex object ids and small
value classes, so pygit2's errors are translated here once.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from datagit.errors import (
    CorruptObjectError,
    DatagitError,
    InvalidInputError,
    RevisionNotFoundError,
)
from datagit.storage.gitobjects import CORRUPT_HINT, GitCheck, VerifiedObjects
from datagit.storage.gitpack import (
    Data,
    Squeezer,
    object_id,
    parse_tree,
    tree_bytes,
    write_pack,
)
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
# a revision datagit can follow itself: a name or id, then ~N / ^N steps
_STEPS = re.compile(r"(?P<base>[^~^:]+?)(?P<steps>(?:[~^]\d*)*)")
_STEP = re.compile(r"([~^])(\d*)")


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


class GitStore:
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

    # -- revisions and refs ----------------------------------------------
    def resolve(self, rev: str) -> str:
        """The commit id ``rev`` names (branch, tag, ``HEAD~3``, short id).

        A damaged or missing object on the way is a `CorruptObjectError` naming it,
        not an unknown revision: the steps of ``NAME~N^M`` are checked here first.
        """
        if not rev or "\n" in rev or "\0" in rev:
            raise RevisionNotFoundError(f"unknown revision {rev!r}")
        self._check_rev(rev)
        try:
            obj = self._repo.revparse_single(rev)
            commit = obj.peel(pygit2.Commit)
        except (KeyError, ValueError) as exc:  # NotFoundError, InvalidSpecError, AmbiguousError
            raise RevisionNotFoundError(
                f"unknown revision {rev!r}",
                hint="use a branch, tag, commit id or an expression like HEAD~2 "
                "(see `datagit log --oneline`)",
            ) from exc
        except pygit2.GitError as exc:  # libgit2 says the rest: zlib, hash mismatch
            raise CorruptObjectError(
                f"revision {rev!r} cannot be read: {exc}", hint=CORRUPT_HINT
            ) from exc
        return str(commit.id)

    def _check_rev(self, rev: str) -> None:
        """Follow ``NAME~N^M`` in Python, verifying each object libgit2 will read.

        Anything else (``main@{1}``, ``HEAD:path``, ``^{/text}``) is left to libgit2.
        Stops quietly where the revision is genuinely unknown.
        """
        m = _STEPS.fullmatch(rev)
        if not m:
            return
        oid = self._base_oid(m["base"])
        if oid is None:
            return
        oid = self._verified.peel_to_commit(oid, m["base"])
        if oid is None:
            return
        here = m["base"]  # the revision so far, to name the object that fails
        label = here
        for op, num in _STEP.findall(m["steps"]):
            n = int(num) if num else 1
            if op == "~":
                moves: Iterable[tuple[int, str]] = ((0, f"{here}~{k}") for k in range(1, n + 1))
            else:
                moves = [(n - 1, f"{here}^{n}")] if n else []
            for index, step_label in moves:
                parents = self._verified.commit_parents(oid, f"commit {label}") or ()
                if index >= len(parents):
                    return  # HEAD~99 past the root: libgit2 says unknown revision
                oid, label = parents[index], step_label
            here += f"{op}{num}"
        self._verified.commit_parents(oid, f"commit {label}")

    def _base_oid(self, base: str) -> str | None:
        """The object a revision's name stands for, as libgit2 would find it, without reading it."""
        if re.fullmatch(r"[0-9a-fA-F]{40}", base):  # an id the user typed may not exist
            return base.lower() if base in self._repo else None
        name = "HEAD" if base == "@" else base
        for candidate in (
            name,
            f"refs/{name}",
            f"refs/tags/{name}",
            f"refs/heads/{name}",
            f"refs/remotes/{name}",
            f"refs/remotes/{name}/HEAD",
        ):
            try:
                ref = self._repo.references.get(candidate)
                if ref is not None:
                    return str(ref.resolve().target)
            except (KeyError, ValueError, pygit2.GitError):
                return None  # a dangling symbolic ref, an invalid name: libgit2 will say
        if re.fullmatch(r"[0-9a-fA-F]{4,39}", base):
            folder = self._objects / base[:2].lower()
            rest = base[2:].lower()
            try:
                loose = [f.name for f in os.scandir(folder) if f.name.startswith(rest)]
            except OSError:
                loose = []
            if len(loose) == 1:
                return base[:2].lower() + loose[0]
        return None

    def head_commit(self) -> str | None:
        """The commit HEAD points at, or None on an unborn branch."""
        if self._repo.head_is_unborn:
            return None
        return str(self._repo.head.target)

    def head_branch(self) -> str | None:
        """The branch HEAD is on (``main``), or None when detached."""
        if self._repo.head_is_detached:
            return None
        target = self._repo.references["HEAD"].target
        return str(target).removeprefix("refs/heads/")

    def set_head_branch(self, branch: str) -> None:
        self._repo.set_head(f"refs/heads/{branch}")

    def set_head_detached(self, oid: str) -> None:
        self._repo.set_head(pygit2.Oid(hex=oid))

    def update_ref(self, name: str, oid: str, message: str | None = None) -> None:
        """Point ``name`` at ``oid``; libgit2 writes a lock file and renames it.

        With ``core.logAllRefUpdates`` (set by `init`) the move is also logged, so
        ``main@{1}`` and ``HEAD@{2}`` resolve as in git.
        """
        self._repo.create_reference_direct(name, pygit2.Oid(hex=oid), True, message=message)

    def delete_ref(self, name: str) -> None:
        self._repo.references.delete(name)

    def ref(self, name: str) -> str | None:
        """The commit ref ``name`` leads to, or None if there is no such ref."""
        try:
            ref = self._repo.references.get(name)
        except (ValueError, pygit2.GitError):
            return None
        if ref is None:
            return None
        return self._ref_commit(name)

    def refs(self, prefix: str = "refs/") -> dict[str, str]:
        """All refs under ``prefix`` mapped to the commit they peel to.

        A ref whose object is damaged or missing raises `CorruptObjectError`: callers
        such as gc must not mistake its history for garbage.
        """
        out: dict[str, str] = {}
        for name in self._repo.references:
            if name.startswith(prefix):
                commit = self._ref_commit(name)
                if commit is not None:
                    out[name] = commit
        return out

    def ref_targets(self) -> dict[str, str]:
        """Every ref mapped to the object it names, unpeeled (an annotated tag's tag object).

        `gc` deletes what no ref names, so a ref that cannot be read is an error
        here, not a ref to skip; only a symbolic ref to a missing ref names nothing.
        """
        out: dict[str, str] = {}
        for name in self._repo.references:
            try:
                ref = self._repo.references[name]
                if ref.type == pygit2.enums.ReferenceType.SYMBOLIC and (
                    self._repo.references.get(str(ref.target)) is None
                ):
                    continue
                out[name] = str(ref.resolve().target)
            except (pygit2.GitError, KeyError, ValueError) as exc:
                raise _unreadable_ref(name, self.path, str(exc)) from exc
        # libgit2 skips a ref file it cannot parse; what it names must not be pruned.
        # (A symbolic ref names no object of its own: its target is checked itself.)
        for path in (self.path / "refs").rglob("*"):
            name = path.relative_to(self.path).as_posix()
            if (
                path.is_file()
                and not name.endswith(".lock")
                and name not in out
                and not path.read_bytes().startswith(b"ref: ")
            ):
                raise _unreadable_ref(name, self.path, "not a valid ref")
        return out

    def reopen(self) -> None:
        """Drop libgit2's open packs and start afresh (after `gc` replaced them on disk)."""
        self._repo.free()
        self._repo = pygit2.Repository(str(self.path))
        self._verified = VerifiedObjects(self._repo, self.path)

    def _ref_commit(self, name: str) -> str | None:
        """The commit ``name`` peels to; None for a ref to a tree or blob, or a dangling one."""
        try:
            target = str(self._repo.references[name].resolve().target)
        except (KeyError, ValueError, pygit2.GitError):
            return None
        return self._verified.peel_to_commit(target, name)

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

    def config_get(self, key: str) -> str | None:
        """A value from this repository's git config, falling back to global git config."""
        try:
            return str(self._repo.config[key])
        except (KeyError, pygit2.GitError):
            return None

    def config_set(self, key: str, value: str) -> None:
        try:
            self._repo.config[key] = value
        except pygit2.InvalidSpecError as exc:
            raise InvalidInputError(
                f"cannot set config {key!r}: {exc}",
                hint="a key is section.name, the name made of letters, digits and '-'",
            ) from None
        except pygit2.GitError as exc:  # the key holds several values (a multivar)
            raise InvalidInputError(
                f"cannot set config {key!r}: {exc}",
                hint="remote options change with `datagit remote modify`; "
                f"or drop every value first: `datagit config --unset {key}`",
            ) from None

    def config_delete(self, key: str) -> None:
        """Remove every value of ``key`` (a multivar too), as `git config --unset-all` does."""
        with contextlib.suppress(KeyError, pygit2.GitError):
            self._repo.config.delete_multivar(key, ".*")

    def config_get_all(self, key: str) -> list[str]:
        """Every value of a key that may hold several (git's multivar), in file order."""
        try:
            return [str(v) for v in self._repo.config.get_multivar(key)]
        except (KeyError, pygit2.GitError):
            return []

    def config_replace(self, key: str, pattern: str, value: str) -> None:
        """Replace the values of multivar ``key`` matching ``pattern`` (POSIX ERE), else add one."""
        self._repo.config.set_multivar(key, pattern, value)

    def config_remove(self, key: str, pattern: str) -> None:
        """Remove the values of a multivar ``key`` that match ``pattern`` (a POSIX ERE)."""
        with contextlib.suppress(KeyError, pygit2.GitError):
            self._repo.config.delete_multivar(key, pattern)

    def config_items(self, prefix: str) -> dict[str, str]:
        """Keys under ``prefix`` with one value each (a multivar's last, as `git config` gets)."""
        return dict(self.config_entries(prefix))

    def config_entries(self, prefix: str) -> list[tuple[str, str]]:
        """Every (key, value) under ``prefix`` in file order, each value of a multivar too."""
        cfg = self._repo.config.snapshot()
        return [(e.name, e.value or "") for e in cfg if e.name.startswith(prefix)]

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


def _unreadable_ref(name: str, path: Path, why: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"ref {name} in {path} is unreadable: {why}",
        hint=f"fix or delete the file {path / name}, then run the command again",
    )


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


def global_git_identity() -> tuple[str | None, str | None]:
    """user.name / user.email from git's global config, if any."""
    try:
        cfg = pygit2.Config.get_global_config()
    except (OSError, pygit2.GitError):
        return None, None
    out: list[str | None] = []
    for key in ("user.name", "user.email"):
        try:
            out.append(str(cfg[key]))
        except (KeyError, pygit2.GitError):
            out.append(None)
    return out[0], out[1]


def env_identity() -> tuple[str | None, str | None]:
    """GIT_AUTHOR_NAME / GIT_AUTHOR_EMAIL, as git honours them."""
    return os.environ.get("GIT_AUTHOR_NAME"), os.environ.get("GIT_AUTHOR_EMAIL")


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


for _name, _fn in list(vars(GitStore).items()):
    if (
        inspect.isfunction(_fn)
        and not _name.startswith("__")
        and not (inspect.isgeneratorfunction(_fn))
    ):
        setattr(GitStore, _name, _translating(_fn))
