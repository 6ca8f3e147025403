"""`stash`: put uncommitted work aside and bring it back, as git's stash does.

A stash is git's own shape: a commit W of the workspace whose parents are the
commit it was made on and a commit I of the stage. Each lives under a ref
``refs/datagit-stash/<time>`` (newest is ``stash@{0}``), so `gc` keeps its
content and `git --git-dir .datagit log --all` shows it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datagit.api.undo import workspace_root
from datagit.api.workspace import materialize
from datagit.core.merge import merge_trees
from datagit.errors import ConflictError, DatagitError, InvalidInputError
from datagit.storage.git import CommitInfo

if TYPE_CHECKING:
    from datagit.api.repo import Repo

PREFIX = "refs/datagit-stash/"


@dataclass(frozen=True)
class Stash:
    index: int  # n in stash@{n}
    ref: str
    commit: CommitInfo

    @property
    def name(self) -> str:
        return f"stash@{{{self.index}}}"


def stashes(repo: Repo) -> list[Stash]:
    """Every stash, newest first."""
    refs = sorted(repo.git.refs(PREFIX).items(), reverse=True)
    return [Stash(n, ref, repo.git.commit(oid)) for n, (ref, oid) in enumerate(refs)]


def get(repo: Repo, index: int = 0) -> Stash:
    found = stashes(repo)
    if not found:
        raise InvalidInputError("no stash entries", hint="save one with `datagit stash`")
    if not 0 <= index < len(found):
        raise InvalidInputError(
            f"stash@{{{index}}} does not exist ({len(found)} entries)",
            hint="`datagit stash list` shows them",
        )
    return found[index]


def push(repo: Repo, message: str | None = None) -> Stash:
    """Save the stage and the workspace, then make both match HEAD again."""
    with repo.lock:
        head = repo.head()
        if head is None:
            raise DatagitError(
                "cannot stash: there are no commits yet",
                hint="make a first commit with `datagit commit -a -m ...`",
            )
        status = repo.status()
        if status.conflicts:
            raise DatagitError(
                "cannot stash in the middle of a merge",
                hint="finish it (`datagit commit`) or `datagit merge --abort` first",
            )
        if status.clean:
            raise DatagitError("no local changes to save", hint="the workspace matches HEAD")
        info = repo.git.commit(head)
        where = repo.branch() or "(no branch)"
        who = repo.identity()
        stage = repo.stage_tree() or info.tree
        index = repo.git.create_commit(
            stage, [head], f"index on {where}: {head[:10]} {info.summary}\n", who, who
        )
        text = f"WIP on {where}: {head[:10]} {info.summary}"
        text = f"On {where}: {message}" if message else text
        work = repo.git.create_commit(workspace_root(repo), [head, index], text + "\n", who, who)
        repo.git.update_ref(f"{PREFIX}{time.time_ns():020d}", work, text)
        # The stage is forgotten by the journalled checkout itself: a kill half-way is
        # then finished whole by the next command, not left with the stash's stage.
        materialize(repo, info.tree, force=True, then={"clear_stage": True})
        return stashes(repo)[0]


def apply(repo: Repo, index: int = 0, *, drop: bool = False) -> Stash:
    """Bring stash ``index`` back into the workspace (and its stage, when HEAD is still
    the commit it was made on); on another commit its changes are merged record by
    record, and a clash refuses the whole apply."""
    with repo.lock:
        st = get(repo, index)
        if not repo.status().clean:
            raise ConflictError(
                f"cannot apply {st.name}: the workspace has uncommitted changes",
                hint="commit them, or stash them too",
            )
        head = repo.head()
        assert head is not None  # a stash exists, so there were commits
        head_tree = repo.git.commit(head).tree
        base, staged = st.commit.parents[0], st.commit.parents[1]
        base_tree = repo.git.commit(base).tree
        if head == base:
            stage = repo.git.commit(staged).tree
            # Staged by the journalled checkout itself, so a kill half-way is finished whole.
            then: dict[str, object] = {"clear_stage": stage == head_tree}
            if stage != head_tree:
                then["stage"] = stage
            materialize(repo, st.commit.tree, clean_at=head_tree, then=then)
        else:
            merged = merge_trees(repo.git, base_tree, head_tree, st.commit.tree)
            if merged.conflicts:
                first = merged.conflicts[0]
                raise ConflictError(
                    f"cannot apply {st.name}: {len(merged.conflicts)} examples changed both "
                    f"there and since (first: {first.dataset}/{first.id})",
                    hint=f"switch to the commit it was made on ({base[:10]}) and apply it there",
                )
            materialize(repo, merged.tree, clean_at=head_tree)
        if drop:
            repo.git.delete_ref(st.ref)
        return st


def drop(repo: Repo, index: int = 0) -> Stash:
    with repo.lock:
        st = get(repo, index)
        repo.git.delete_ref(st.ref)
        return st
