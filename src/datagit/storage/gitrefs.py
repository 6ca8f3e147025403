"""Revisions and refs of the git metadata: ``HEAD~2`` resolved, HEAD, branches, reflogs.

`GitRefs` is a base of `GitStore` (git.py keeps objects and commits): every layer
above reads and moves refs through the one store it holds, so the methods are
inherited rather than reached through a second object. Revision steps are
followed and checked here before libgit2 reads them (see `VerifiedObjects`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from datagit.errors import CorruptObjectError, RevisionNotFoundError
from datagit.storage.gitobjects import CORRUPT_HINT, VerifiedObjects
from datagit.storage.libgit import pygit2

# a revision datagit can follow itself: a name or id, then ~N / ^N steps
_STEPS = re.compile(r"(?P<base>[^~^:]+?)(?P<steps>(?:[~^]\d*)*)")
_STEP = re.compile(r"([~^])(\d*)")


class GitRefs:
    """Revisions, HEAD and refs of the bare repository a `GitStore` opened."""

    _repo: pygit2.Repository
    path: Path
    _objects: Path
    _verified: VerifiedObjects

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

    def _ref_commit(self, name: str) -> str | None:
        """The commit ``name`` peels to; None for a ref to a tree or blob, or a dangling one."""
        try:
            target = str(self._repo.references[name].resolve().target)
        except (KeyError, ValueError, pygit2.GitError):
            return None
        return self._verified.peel_to_commit(target, name)


def _unreadable_ref(name: str, path: Path, why: str) -> CorruptObjectError:
    return CorruptObjectError(
        f"ref {name} in {path} is unreadable: {why}",
        hint=f"fix or delete the file {path / name}, then run the command again",
    )
