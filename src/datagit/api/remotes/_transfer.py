"""Moving history and content: push, fetch, a remote's fsck, and content on demand.

push uploads what the remote lacks before it moves the remote's ref; fetch
verifies every object before the remote-tracking refs move. Either way a
failure part-way leaves nothing the user sees changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from datagit.api.remotes._runs import fetch_run, fetch_runs, push_runs
from datagit.api.remotes._settings import (
    RemoteConfig,
    adopt_shared,
    content_remote,
    get_remote,
    is_partial,
    promisor,
    set_upstream,
)
from datagit.api.remotes._shared import SharedRemote
from datagit.core import manifest, trust
from datagit.core.manifest import DatasetTree
from datagit.core.records import decode_lines
from datagit.errors import DatagitError, InvalidInputError, RemoteError
from datagit.progress import Event, Progress, Reporter
from datagit.storage.gitremote import GitRemote
from datagit.storage.remote import ContentRemote

if TYPE_CHECKING:
    from datagit.api.repo import Repo

# Transfers report `datagit.progress` events in phases "upload" and "download".
TransferProgress = Progress


@dataclass
class PushResult:
    remote: str
    branch: str
    old: str | None
    new: str
    uploaded: int
    already_there: int
    runs: int = 0  # harness runs sent (see ``_runs``)


@dataclass
class FetchResult:
    remote: str
    updated: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # ref → (old, new)
    downloaded: int = 0
    runs: int = 0  # harness runs received
    adopted: SharedRemote | None = None  # the content URL this fetch took from the history


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
    report = Reporter(progress, "download", len(keys))
    with repo.lock, repo.store.writer() as writer:
        for key, data in content.download(keys, report.advance):
            writer.put(data, key)
    report.finish()
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
    report = Reporter(progress, "upload", len(missing))
    content.upload(((k, repo.store.read(k)) for k in missing), report.advance)
    report.finish()
    runs = push_runs(repo, content, progress)
    git.push(f"refs/heads/{branch}", f"refs/heads/{branch}", force=force)
    with repo.lock:
        repo.git.update_ref(f"refs/remotes/{remote}/{branch}", local)
        set_upstream(repo, branch, remote, only_if_unset=True)
    return PushResult(remote, branch, old, local, len(missing), len(need) - len(missing), runs)


@dataclass
class TagPushResult:
    remote: str
    pushed: dict[str, str]  # tag → commit it names, sent now
    already_there: list[str]  # tags the remote already had, at the same commit
    uploaded: int


def push_tags(
    repo: Repo,
    remote: str = "origin",
    names: Iterable[str] | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
    content: ContentRemote | None = None,
) -> TagPushResult:
    """Send tags (``names``, or every tag) and the content their commits need.

    A tag the remote holds at another commit is refused unless ``force``, as git
    refuses to move a published tag; everything is checked before anything is sent.
    """
    cfg = get_remote(repo, remote)
    local = {n.removeprefix("refs/tags/"): o for n, o in repo.git.refs("refs/tags/").items()}
    wanted = sorted(local) if names is None else list(dict.fromkeys(names))
    for name in wanted:
        if name not in local:
            raise InvalidInputError(
                f"no tag named {name!r} to push",
                hint=f"tags: {', '.join(sorted(local)) or '(none)'}; create one with `datagit tag`",
            )
    git = GitRemote(repo.git, cfg.url)
    theirs = git.heads().refs
    send: dict[str, str] = {}
    same: list[str] = []
    for name in wanted:
        there = theirs.get(f"refs/tags/{name}")
        if there == local[name]:
            same.append(name)
        elif there is not None and not force:
            raise RemoteError(
                f"push to {remote} rejected: tag {name!r} already exists there at {there[:10]}",
                hint="tags do not move once shared; pick a new name, or pass --force",
            )
        else:
            send[name] = local[name]
    uploaded = _upload_needed(repo, cfg, content, list(send.values()), progress) if send else 0
    for name in send:
        git.push(f"refs/tags/{name}", f"refs/tags/{name}", force=force)
    return TagPushResult(remote, send, same, uploaded)


def _upload_needed(
    repo: Repo,
    cfg: RemoteConfig,
    content: ContentRemote | None,
    commits: list[str],
    progress: Progress | None,
) -> int:
    content = content or content_remote(repo, cfg)
    need = needed_content(repo, commits)
    missing = sorted(need - content.list()) if need else []
    absent = [k for k in missing if not repo.store.has(k)]
    if absent:
        raise DatagitError(
            f"content {absent[0]} (and {len(absent) - 1} more) is in neither the local store "
            f"nor {cfg.content}",
            hint="pull it from the remote that has it, then push again",
        )
    report = Reporter(progress, "upload", len(missing))
    content.upload(((k, repo.store.read(k)) for k in missing), report.advance)
    report.finish()
    return len(missing)


# -- fetch ----------------------------------------------------------------------------
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
        fetched = git.fetch(_history(progress))
    try:
        # A remote is untrusted: every commit it brings is checked before any ref moves.
        known = [o for n, o in repo.git.refs().items() if not n.startswith("refs/datagit/")]
        trust.check_history(repo.git, fetched.values(), known)
        if content is None and fetched:
            result.adopted = adopt_shared(repo, remote, _newest_first(fetched))
            cfg = get_remote(repo, remote)
        heads = {n.removeprefix("heads/"): o for n, o in fetched.items() if n.startswith("heads/")}
        tags = {n.removeprefix("tags/"): o for n, o in fetched.items() if n.startswith("tags/")}
        if not is_partial(repo) and fetched:
            need = {k for k in needed_content(repo, fetched.values()) if not repo.store.has(k)}
            if need:
                content = content or content_remote(repo, cfg)
                result.downloaded = download(repo, content, need, progress)
        if cfg.content and not is_partial(repo):  # a partial clone asks for runs by id
            content = content or content_remote(repo, cfg)
            result.runs = fetch_runs(repo, content, progress)
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


def _history(progress: Progress | None) -> Callable[[int, int], None] | None:
    """libgit2's (received, total) object counts as `Event`s of phase "receiving history"."""
    if progress is None:
        return None
    return lambda done, total: progress(Event("receiving history", done, total))


def _newest_first(fetched: dict[str, str]) -> list[str]:
    """Fetched branch tips, the remote's default branch first: where to look for ``[remotes]``."""
    heads = {n.removeprefix("heads/"): o for n, o in fetched.items() if n.startswith("heads/")}
    first = [heads[b] for b in ("main", "master") if b in heads]
    return first + [o for b, o in sorted(heads.items()) if o not in first]


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
def run_on_demand(repo: Repo, run_id: str) -> bool:
    """A partial clone's cache miss: fetch run ``run_id`` from the promisor if it has it.

    False when this is not a partial clone, the promisor has no such run, or it
    cannot be reached (the caller then trains, as it would offline).
    """
    if not is_partial(repo) or getattr(repo, "readonly", False):
        return False
    try:
        return fetch_run(repo, content_remote(repo, get_remote(repo, promisor(repo))), run_id)
    except RemoteError:
        return False


def fetch_on_demand(repo: Repo) -> None:
    """Let the content store of a partial clone fetch what a read misses from its promisor."""
    remote: list[ContentRemote] = []

    def fetch_missing(keys: list[str]) -> None:
        if not remote:
            remote.append(content_remote(repo, get_remote(repo, promisor(repo))))
        download(repo, remote[0], keys)

    repo.store.fetch_missing = fetch_missing
