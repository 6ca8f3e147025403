"""Remotes: push, fetch, pull and clone metadata (git) and content (object store).

Order of operations keeps both sides consistent:

- push uploads the content the remote lacks *before* it moves the remote's
  git ref, so a killed push leaves the remote at its old commit with some
  extra objects, and the next push sends only the rest;
- fetch lands git objects under a private namespace, downloads and verifies
  the content, and only then moves the remote-tracking refs, so an
  unreachable or corrupt remote changes nothing the user sees.

Remote settings live in ``.datagit/config`` (git's own file): ``remote.NAME.url``
(the git URL) and ``remote.NAME.datagit-content`` (the fsspec content URL).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from datagit.api import history, workspace
from datagit.core import manifest
from datagit.core.manifest import DatasetTree
from datagit.core.records import decode_lines
from datagit.errors import DatagitError, InvalidInputError, RemoteError
from datagit.storage.gitremote import GitRemote, is_local, local_path
from datagit.storage.remote import ContentRemote

if TYPE_CHECKING:
    from datagit.api.repo import Repo

# (phase, objects done so far, objects in this phase): "upload" or "download"
TransferProgress = Callable[[str, int, int], None]
DEFAULT_CONTENT_DIR = "datagit-content"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class RemoteConfig:
    name: str
    url: str
    content: str | None


@dataclass
class PushResult:
    remote: str
    branch: str
    old: str | None
    new: str
    uploaded: int
    already_there: int


@dataclass
class FetchResult:
    remote: str
    updated: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # ref → (old, new)
    downloaded: int = 0


@dataclass
class PullResult:
    fetch: FetchResult
    kind: str  # "up-to-date", "fast-forward", "checkout" (unborn branch), "merged", "conflicts"
    old: str | None
    new: str | None
    conflicts: list[str] = field(default_factory=list)


# -- configuration ---------------------------------------------------------------
def add_remote(repo: Repo, name: str, url: str, content: str | None = None) -> RemoteConfig:
    """Register a remote; a local git path gets ``<path>/datagit-content`` for content."""
    if not _NAME.match(name):
        raise InvalidInputError(
            f"{name!r} is not a valid remote name", hint="use letters, digits, '-' and '_'"
        )
    if repo.git.config_get(f"remote.{name}.url") is not None:
        raise InvalidInputError(
            f"remote {name!r} already exists",
            hint=f"remove it first with `datagit remote remove {name}`",
        )
    url = _absolute(url)
    content = _absolute(content) if content else None
    with repo.lock:
        repo.git.config_set(f"remote.{name}.url", url)
        repo.git.config_set(f"remote.{name}.fetch", f"+refs/heads/*:refs/remotes/{name}/*")
        if content:
            repo.git.config_set(f"remote.{name}.datagit-content", content)
    return get_remote(repo, name)


def _absolute(url: str) -> str:
    """Local paths are stored absolute so `-C` and later `cd` do not change their meaning."""
    if "://" in url or re.match(r"^[\w.-]+@[\w.-]+:", url):
        return url
    return os.path.abspath(os.path.expanduser(url))


def get_remote(repo: Repo, name: str) -> RemoteConfig:
    url = repo.git.config_get(f"remote.{name}.url")
    if url is None:
        names = ", ".join(list_remotes(repo)) or "none"
        raise RemoteError(
            f"no remote named {name!r}",
            hint=f"add one with `datagit remote add {name} URL` (remotes: {names})",
        )
    content = repo.git.config_get(f"remote.{name}.datagit-content")
    if content is None and is_local(url):
        content = os.path.join(local_path(url), DEFAULT_CONTENT_DIR)
    return RemoteConfig(name, url, content)


def list_remotes(repo: Repo) -> dict[str, RemoteConfig]:
    names = sorted(
        {k.split(".")[1] for k in repo.git.config_items("remote.") if k.endswith(".url")}
    )
    return {n: get_remote(repo, n) for n in names}


def remove_remote(repo: Repo, name: str) -> None:
    """Forget a remote and its remote-tracking refs (nothing on the remote is touched)."""
    get_remote(repo, name)
    with repo.lock:
        for key in repo.git.config_items(f"remote.{name}."):
            repo.git.config_delete(key)
        for ref in repo.git.refs(f"refs/remotes/{name}/"):
            repo.git.delete_ref(ref)


def content_remote(repo: Repo, cfg: RemoteConfig) -> ContentRemote:
    if not cfg.content:
        raise RemoteError(
            f"remote {cfg.name!r} has no content URL",
            hint=f"set one with `datagit remote add {cfg.name} {cfg.url} --content s3://bucket/prefix`"
            " (after `datagit remote remove`)",
        )
    return ContentRemote(cfg.content)


# -- which content a set of commits needs --------------------------------------------
def needed_content(
    repo: Repo,
    heads: Iterable[str],
    *,
    history: bool = True,
    datasets: Iterable[str] | None = None,
) -> set[str]:
    """Content addresses the records of ``heads`` name (and of their history)."""
    heads = sorted(set(heads))
    if not heads:
        return set()
    wanted = set(datasets) if datasets is not None else None
    commits = repo.git.walk(heads) if history else (repo.git.commit(h) for h in heads)
    seen: set[str] = set()
    out: set[str] = set()
    for c in commits:
        for name, ds in manifest.read_root(repo.git, c.tree)[1].items():
            if wanted is not None and name not in wanted:
                continue
            for blob in DatasetTree(repo.git, ds).shards().values():
                if blob in seen:
                    continue
                seen.add(blob)
                out.update(
                    r.content for r in decode_lines(repo.git.read_blob(blob)) if r.text is None
                )
    return out


def _counting(progress: TransferProgress | None, phase: str, total: int) -> Callable[[int], None]:
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(phase, done, total)

    if progress:
        progress(phase, 0, total)
    return step


def download(
    repo: Repo,
    content: ContentRemote,
    keys: Iterable[str],
    progress: TransferProgress | None = None,
) -> int:
    """Copy ``keys`` into the local store; each object is verified before it is written."""
    keys = sorted(k for k in set(keys) if not repo.store.has(k))
    if not keys:
        return 0
    step = _counting(progress, "download", len(keys))
    with repo.lock, repo.store.writer() as writer:
        for key, data in content.download(keys, step):
            writer.put(data, key)
    return len(keys)


# -- push ------------------------------------------------------------------------------
def push(
    repo: Repo,
    remote: str = "origin",
    branch: str | None = None,
    *,
    force: bool = False,
    progress: TransferProgress | None = None,
    content: ContentRemote | None = None,
) -> PushResult:
    """Upload the content the remote lacks, then move the remote's branch."""
    cfg = get_remote(repo, remote)
    branch = branch or repo.branch()
    if branch is None:
        raise DatagitError(
            "HEAD is detached: name the branch to push",
            hint=f"datagit push {remote} BRANCH",
        )
    local = repo.git.ref(f"refs/heads/{branch}")
    if local is None:
        raise InvalidInputError(
            f"no branch named {branch!r} to push",
            hint="list branches with `datagit branch`",
        )
    git = GitRemote(repo.git, cfg.url)
    old = git.heads().refs.get(f"refs/heads/{branch}")
    if (
        old
        and old != local
        and not force
        and not (repo.git.has(old) and repo.git.is_ancestor(old, local))
    ):
        raise RemoteError(
            f"push to {remote} rejected: {remote}/{branch} has commits that {branch} does not "
            "(non-fast-forward)",
            hint=f"run `datagit pull {remote} {branch}` and merge, "
            "or pass --force to overwrite the remote's history",
        )
    content = content or content_remote(repo, cfg)
    need = needed_content(repo, [local])
    have = content.list() if need else set()
    missing = sorted(need - have)
    absent = [k for k in missing if not repo.store.has(k)]
    if absent:
        raise DatagitError(
            f"content {absent[0]} (and {len(absent) - 1} more) is in neither the local store "
            f"nor {cfg.content}",
            hint="pull it from the remote that has it (`datagit pull --rev ...` "
            "in a partial clone), then push again",
        )
    step = _counting(progress, "upload", len(missing))
    content.upload(((k, repo.store.read(k)) for k in missing), step)
    git.push(f"refs/heads/{branch}", f"refs/heads/{branch}", force=force)
    with repo.lock:
        repo.git.update_ref(f"refs/remotes/{remote}/{branch}", local)
        _set_upstream(repo, branch, remote, only_if_unset=True)
    return PushResult(remote, branch, old, local, len(missing), len(need) - len(missing))


def _set_upstream(repo: Repo, branch: str, remote: str, *, only_if_unset: bool) -> None:
    if only_if_unset and repo.git.config_get(f"branch.{branch}.remote"):
        return
    repo.git.config_set(f"branch.{branch}.remote", remote)
    repo.git.config_set(f"branch.{branch}.merge", f"refs/heads/{branch}")


# -- fetch / pull ----------------------------------------------------------------------------
def is_partial(repo: Repo) -> bool:
    return repo.git.config_get("datagit.partial") == "true"


def fetch(
    repo: Repo,
    remote: str = "origin",
    *,
    progress: TransferProgress | None = None,
    content: ContentRemote | None = None,
) -> FetchResult:
    """Download the remote's branches, tags and (unless partial) all their content.

    Remote-tracking refs move only after every object has arrived and been
    verified; on any failure the fetched refs are dropped.
    """
    cfg = get_remote(repo, remote)
    git = GitRemote(repo.git, cfg.url)
    result = FetchResult(remote)
    with repo.lock:  # objects land before their refs do: gc must not run in between
        fetched = git.fetch()
    try:
        heads = {n.removeprefix("heads/"): o for n, o in fetched.items() if n.startswith("heads/")}
        tags = {n.removeprefix("tags/"): o for n, o in fetched.items() if n.startswith("tags/")}
        if not is_partial(repo) and fetched:
            need = {k for k in needed_content(repo, fetched.values()) if not repo.store.has(k)}
            if need:
                content = content or content_remote(repo, cfg)
                result.downloaded = download(repo, content, need, progress)
        with repo.lock:
            for b, oid in heads.items():
                ref = f"refs/remotes/{remote}/{b}"
                old = repo.git.ref(ref)
                if old != oid:
                    repo.git.update_ref(ref, oid)
                    result.updated[ref] = (old, oid)
            for ref in repo.git.refs(f"refs/remotes/{remote}/"):
                if ref.removeprefix(f"refs/remotes/{remote}/") not in heads:
                    repo.git.delete_ref(ref)  # the branch is gone on the remote
            for t, oid in tags.items():
                if repo.git.ref(f"refs/tags/{t}") is None:
                    repo.git.update_ref(f"refs/tags/{t}", oid)
                    result.updated[f"refs/tags/{t}"] = (None, oid)
    finally:
        git.discard()
    return result


def fetch_content(
    repo: Repo,
    rev: str = "HEAD",
    *,
    datasets: Iterable[str] | None = None,
    remote: str | None = None,
    progress: TransferProgress | None = None,
) -> int:
    """Download the content one revision needs (all datasets, or the named ones)."""
    remote = remote or promisor(repo)
    commit = repo.resolve(rev)
    names = list(datasets) if datasets is not None else None
    if names:
        have = repo.datasets_at(commit)
        for n in names:
            if n not in have:
                raise InvalidInputError(
                    f"no dataset named {n!r} at {rev}",
                    hint=f"datasets there: {', '.join(sorted(have)) or '(none)'}",
                )
    need = needed_content(repo, [commit], history=False, datasets=names)
    cfg = get_remote(repo, remote)
    missing = {k for k in need if not repo.store.has(k)}
    if not missing:
        return 0
    return download(repo, content_remote(repo, cfg), missing, progress)


def upstream(repo: Repo, branch: str, remote: str | None) -> tuple[str, str]:
    """(remote, remote branch) that ``branch`` pulls from."""
    remote = remote or repo.git.config_get(f"branch.{branch}.remote") or "origin"
    merge = repo.git.config_get(f"branch.{branch}.merge") or f"refs/heads/{branch}"
    return remote, merge.removeprefix("refs/heads/")


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


def check_remote(repo: Repo, remote: str = "origin", *, verify: bool = True) -> list[str]:
    """A remote's fsck: every object its branches need is there (and, with ``verify``, intact).

    Git objects are fetched into a private namespace and dropped afterwards, so
    nothing local changes; content is checked by listing and, with ``verify``,
    by downloading and hashing every object (it is not stored).
    """
    cfg = get_remote(repo, remote)
    git = GitRemote(repo.git, cfg.url)
    try:
        with repo.lock:  # objects land before their refs do: gc must not run in between
            fetched = git.fetch()
        need = needed_content(repo, fetched.values())
        content = content_remote(repo, cfg)
        have = content.list() if need else set()
        problems = [f"content {k} is missing on {cfg.content}" for k in sorted(need - have)]
        if verify:
            problems += content.check(sorted(need & have))
        return problems
    finally:
        git.discard()


# -- partial clones: content on demand ---------------------------------------------------------
def promisor(repo: Repo) -> str:
    return repo.git.config_get("datagit.promisor") or "origin"


def fetch_on_demand(repo: Repo) -> None:
    """Let the content store of a partial clone fetch what a read misses from its promisor."""
    remote: list[ContentRemote] = []

    def fetch_missing(keys: list[str]) -> None:
        if not remote:
            remote.append(content_remote(repo, get_remote(repo, promisor(repo))))
        download(repo, remote[0], keys)

    repo.store.fetch_missing = fetch_missing


# -- clone ---------------------------------------------------------------------------------------
def clone(
    url: str,
    directory: str | os.PathLike[str] | None = None,
    *,
    content: str | None = None,
    no_content: bool = False,
    branch: str | None = None,
    progress: TransferProgress | None = None,
) -> Repo:
    """A new repository in ``directory`` with ``origin`` = ``url``, its default branch checked out.

    With ``no_content`` only history is fetched; content arrives when read.
    On any failure the directory is left as it was found.
    """
    from datagit.api.repo import Repo

    target = Path(directory) if directory else Path(default_directory(url))
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DatagitError(
            f"cannot clone into {target}: it exists and is not an empty directory",
            hint="choose a new directory, or empty this one",
        )
    created = not target.exists()
    try:
        repo = Repo.init(target)
        add_remote(repo, "origin", url, content)
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
            _set_upstream(repo, chosen, "origin", only_if_unset=False)
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
