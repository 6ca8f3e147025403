"""pull and clone: a fetch, then a local branch and the workspace move to what arrived."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from datagit.api import history, workspace
from datagit.api.remotes._options import OptionValue, option_text, storage_options
from datagit.api.remotes._settings import add_remote, get_remote, set_upstream, upstream
from datagit.api.remotes._transfer import (
    FetchResult,
    TransferProgress,
    fetch,
    fetch_content,
    fetch_on_demand,
    needed_content,
)
from datagit.errors import DatagitError, RemoteError
from datagit.storage.gitremote import GitRemote

if TYPE_CHECKING:
    from datagit.api.repo import Repo


@dataclass
class PullResult:
    fetch: FetchResult
    kind: str  # "up-to-date", "fast-forward", "checkout" (unborn branch), "merged", "conflicts"
    old: str | None
    new: str | None
    conflicts: list[str] = field(default_factory=list)


def pull(
    repo: Repo,
    remote: str | None = None,
    branch: str | None = None,
    *,
    datasets: Iterable[str] | None = None,
    rev: str | None = None,
    progress: TransferProgress | None = None,
) -> PullResult:
    """Fetch, then merge the remote branch into the current one (fast-forward when it can).

    Diverged histories get datagit's record-level three-way merge; conflicts are
    left in progress for `datagit merge --ours/--theirs` or `resolve`, as after `merge`.

    In a partial clone only the content of ``datasets`` (or of ``rev``) is
    downloaded; the rest is fetched on demand.
    """
    local_branch = repo.branch()
    if local_branch is None:
        raise DatagitError("HEAD is detached: switch to a branch before pulling")
    remote, their_branch = upstream(repo, local_branch, remote)
    their_branch = branch or their_branch
    result = fetch(repo, remote, progress=progress)
    theirs = repo.git.ref(f"refs/remotes/{remote}/{their_branch}")
    if theirs is None:
        raise RemoteError(
            f"the remote {remote!r} has no branch {their_branch!r}",
            hint=f"push it first, or name another: `datagit pull {remote} BRANCH`",
        )
    head = repo.head()
    if datasets is not None or rev is not None:
        fetch_content(repo, rev or theirs, datasets=datasets, remote=remote, progress=progress)
    outcome = history.merge(
        repo,
        f"{remote}/{their_branch}",
        message=f"Merge {remote}/{their_branch} into {local_branch}",
    )
    kind = "checkout" if head is None and outcome.kind == "fast-forward" else outcome.kind
    return PullResult(result, kind, head, repo.head(), [c.key for c in outcome.conflicts])


def clone(
    url: str,
    directory: str | os.PathLike[str] | None = None,
    *,
    content: str | None = None,
    options: Mapping[str, OptionValue] | None = None,
    no_content: bool = False,
    branch: str | None = None,
    progress: TransferProgress | None = None,
) -> Repo:
    """A new repository in ``directory`` with ``origin`` = ``url``, its default branch checked out.

    ``options`` are the content URL's fsspec storage options, as for `add_remote`.
    With ``no_content`` only history is fetched; content arrives when read.
    On any failure the directory is left as it was found.
    """
    from datagit.api.repo import Repo

    texts = {k: option_text(k, v, "origin") for k, v in (options or {}).items()}
    storage_options(texts, "origin")  # bad options are refused before anything is created

    target = Path(directory) if directory else Path(default_directory(url))
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DatagitError(
            f"cannot clone into {target}: it exists and is not an empty directory",
            hint="choose a new directory, or empty this one",
        )
    created = not target.exists()
    try:
        repo = Repo.init(target)
        add_remote(repo, "origin", url, content, texts)
        if no_content:
            repo.git.config_set("datagit.partial", "true")
            repo.git.config_set("datagit.promisor", "origin")
            fetch_on_demand(repo)
        fetch(repo, "origin", progress=progress)
        heads = repo.git.refs("refs/remotes/origin/")
        if heads:
            chosen = branch or _default_branch(repo, url, heads)
            oid = heads.get(f"refs/remotes/origin/{chosen}")
            if oid is None:
                raise RemoteError(f"the remote has no branch {chosen!r}")
            repo.git.update_ref(f"refs/heads/{chosen}", oid)
            repo.git.set_head_branch(chosen)
            set_upstream(repo, chosen, "origin", only_if_unset=False)
            if no_content:
                repo.store.prefetch(needed_content(repo, [oid], history=False))
            workspace.materialize(repo, repo.git.commit(oid).tree, force=True)
        return repo
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in target.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise


def default_directory(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return name.removesuffix(".git") or "datagit-clone"


def _default_branch(repo: Repo, url: str, heads: dict[str, str]) -> str:
    advertised = GitRemote(repo.git, get_remote(repo, "origin").url).heads().head_branch
    names = [h.removeprefix("refs/remotes/origin/") for h in heads]
    for candidate in (advertised, "main", "master"):
        if candidate in names:
            return candidate
    return sorted(names)[0]
