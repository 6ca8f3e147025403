"""Which commits `log` shows: git's revision ranges (``A..B``, ``^A``), ``--all`` and
``--author``, and the lanes of ``--graph``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datagit.errors import InvalidInputError
from datagit.storage.git import CommitInfo

if TYPE_CHECKING:
    from datagit.api.repo import Repo


def select(
    repo: Repo,
    revs: list[str],
    *,
    all_refs: bool = False,
    author: str | None = None,
    dataset: str | None = None,
    limit: int | None = None,
) -> Iterator[CommitInfo]:
    """Commits reachable from ``revs`` (``HEAD`` when none), newest first, as git reads
    them: ``A..B`` is B without what A reaches, ``^A`` hides A; ``all_refs`` adds every
    branch, tag and remote branch; ``author`` is a regular expression on ``Name <email>``."""
    heads: list[str] = []
    hide: list[str] = []
    for rev in revs:
        if ".." in rev and "..." not in rev:
            a, b = rev.split("..", 1)
            hide.append(_resolve(repo, a or "HEAD"))
            heads.append(_resolve(repo, b or "HEAD"))
        elif rev.startswith("^"):
            hide.append(_resolve(repo, rev[1:]))
        else:
            heads.append(_resolve(repo, rev))
    if all_refs:
        heads.extend(repo.git.refs("refs/heads/").values())
        heads.extend(repo.git.refs("refs/tags/").values())
        heads.extend(repo.git.refs("refs/remotes/").values())
    if not revs:
        head = repo.head()
        if head is not None:
            heads.append(head)
    if not heads or (limit is not None and limit <= 0):
        return
    who = _pattern(author)
    n = 0
    for c in repo.git.walk(list(dict.fromkeys(heads)), hide=hide):
        if who is not None and not who.search(f"{c.author.name} <{c.author.email}>"):
            continue
        if dataset is not None and not repo._touches(c, dataset):
            continue
        yield c
        n += 1
        if limit is not None and n >= limit:
            return


def _resolve(repo: Repo, rev: str) -> str:
    return repo.resolve(rev)


def _pattern(author: str | None) -> re.Pattern[str] | None:
    if author is None:
        return None
    try:
        return re.compile(author)
    except re.error as exc:
        raise InvalidInputError(
            f"--author {author!r} is not a valid regular expression ({exc})",
            hint="quote it, or escape characters such as ( [ * +",
        ) from None


@dataclass(frozen=True)
class GraphRow:
    """One commit's line of ``log --graph``: the lanes before it, then edge lines after."""

    commit: CommitInfo
    lanes: str  # e.g. "| * " — the commit's mark in its lane
    after: list[str]  # connector lines ("|\\", "|/") drawn below the commit


def graph(commits: list[CommitInfo]) -> list[GraphRow]:
    """Lanes for commits in topological order: each lane waits for one commit; a merge
    opens a lane per extra parent, and lanes waiting for the same commit join."""
    lanes: list[str] = []
    out = []
    for c in commits:
        if c.id not in lanes:
            lanes.append(c.id)
        at = lanes.index(c.id)
        marks = " ".join("*" if i == at else "|" for i in range(len(lanes)))
        before = len(lanes)
        parents = [p for p in c.parents]
        new = list(lanes)
        if parents:
            new[at] = parents[0]
            for p in parents[1:]:
                if p not in new:
                    new.insert(at + 1, p)
        else:
            del new[at]
        seen: list[str] = []
        for lane in new:  # lanes now waiting for the same commit join into the first
            if lane not in seen:
                seen.append(lane)
        after = []
        if len(seen) > before:
            after.append(" ".join(["|"] * (at + 1)) + "\\")
        elif len(seen) < before and len(seen) > 0:
            after.append(" ".join(["|"] * len(seen)) + "/")
        lanes = seen
        out.append(GraphRow(c, marks, after))
    return out
