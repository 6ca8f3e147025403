"""How HEAD's branch stands against its upstream, as `git status` says it.

Its own module, not `workspace`'s: `status` asks it every time, and importing the
checkout machinery to ask it cost `status` more than its own work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datagit.api.repo import Repo


@dataclass(frozen=True)
class Tracking:
    """The current branch against its upstream: ``ahead``/``behind`` are None when the
    upstream ref is gone (never fetched, or deleted on the remote)."""

    upstream: str  # "origin/main"
    ahead: int | None
    behind: int | None


def tracking(repo: Repo) -> Tracking | None:
    """How HEAD's branch stands against the remote branch it pulls from, as `git status`
    says it; None when the branch has no upstream (``branch.NAME.remote`` unset)."""
    branch = repo.branch()
    remote = repo.git.config_get(f"branch.{branch}.remote") if branch else None
    if not branch or not remote:
        return None
    merge = repo.git.config_get(f"branch.{branch}.merge") or f"refs/heads/{branch}"
    name = f"{remote}/{merge.removeprefix('refs/heads/')}"
    theirs = repo.git.ref(f"refs/remotes/{name}")
    ours = repo.head()
    if theirs is None or ours is None:
        return Tracking(name, None, None)
    ahead = sum(1 for _ in repo.git.walk([ours], hide=[theirs]))
    behind = sum(1 for _ in repo.git.walk([theirs], hide=[ours]))
    return Tracking(name, ahead, behind)
