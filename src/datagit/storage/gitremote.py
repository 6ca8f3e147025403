"""Git metadata transport: list, fetch and push refs of a git remote through pygit2.

Commits, trees and record shards travel as ordinary git objects, so any git
remote works (a path, ``file://``, ``ssh://``, ``https://``). libgit2's
errors are translated here into `RemoteError`, naming the URL.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlparse

from datagit.errors import RemoteError
from datagit.storage.git import GitStore
from datagit.storage.libgit import pygit2, tls_ready

FETCH_NS = "refs/datagit/fetching"  # where a fetch lands before it is accepted


@dataclass(frozen=True, slots=True)
class RemoteHeads:
    """What a remote advertises: ref name → commit id, and where its HEAD points."""

    refs: dict[str, str]
    head_branch: str | None


class _Callbacks(pygit2.RemoteCallbacks):
    """Credentials from the usual places (ssh agent, the URL), progress, ref results."""

    def __init__(self, progress: object = None) -> None:
        super().__init__()
        self.rejected: dict[str, str] = {}
        self._progress = progress

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: int
    ) -> pygit2.Username | pygit2.UserPass | pygit2.Keypair:
        if allowed_types & pygit2.enums.CredentialType.SSH_KEY:
            return pygit2.KeypairFromAgent(username_from_url or "git")
        if allowed_types & pygit2.enums.CredentialType.USERNAME:
            return pygit2.Username(username_from_url or "git")
        raise pygit2.GitError(f"no credentials for {url}")

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message:
            self.rejected[refname] = message

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        if callable(self._progress):
            self._progress(stats.received_objects, stats.total_objects)


def is_local(url: str) -> bool:
    """A filesystem path or ``file://`` URL (what libgit2's local transport serves)."""
    if re.match(r"^[\w.-]+@[\w.-]+:", url):  # scp-like ssh: git@host:team/repo.git
        return False
    scheme = urlparse(url).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def local_path(url: str) -> str:
    return urlparse(url).path if url.startswith("file://") else url


class GitRemote:
    """One git remote URL, used anonymously so the repository's config stays untouched."""

    def __init__(self, store: GitStore, url: str) -> None:
        self.store = store
        self.url = url
        self._repo: pygit2.Repository = store._repo
        if is_local(url):
            path = local_path(url)
            if not os.path.isdir(path):
                raise RemoteError(
                    f"no git repository at {path}",
                    hint=f"create one with `git init --bare {path}`, or fix the URL",
                )
        tls_ready()
        self._remote = self._repo.remotes.create_anonymous(url)

    def heads(self) -> RemoteHeads:
        """The remote's branches and tags (one round trip)."""
        try:
            heads = self._remote.list_heads(callbacks=_Callbacks())
        except (pygit2.GitError, OSError) as exc:
            raise _unreachable(self.url, exc) from exc
        refs: dict[str, str] = {}
        head_branch = None
        for h in heads:
            name = h.name or ""
            if name == "HEAD":
                if h.symref_target:
                    head_branch = h.symref_target.removeprefix("refs/heads/")
                continue
            if name.endswith("^{}"):  # a peeled annotated tag: keep the commit it names
                refs[name[:-3]] = str(h.oid)
            elif name.startswith(("refs/heads/", "refs/tags/")):
                refs.setdefault(name, str(h.oid))
        return RemoteHeads(refs, head_branch)

    def fetch(self, progress: object = None) -> dict[str, str]:
        """Download the remote's branches and tags into a private namespace.

        Nothing the user sees moves: the caller accepts the fetched refs (after
        the content has arrived) with `accept`, or drops them with `discard`.
        """
        # What a killed fetch left there is not this fetch's: a branch the remote has
        # deleted since would otherwise come back as a remote-tracking ref.
        self.discard()
        specs = [f"+refs/heads/*:{FETCH_NS}/heads/*", f"+refs/tags/*:{FETCH_NS}/tags/*"]
        try:
            self._remote.fetch(specs, callbacks=_Callbacks(progress))
        except (pygit2.GitError, OSError) as exc:
            raise _unreachable(self.url, exc) from exc
        return {
            name.removeprefix(FETCH_NS + "/"): oid
            for name, oid in self.store.refs(FETCH_NS).items()
        }

    def discard(self) -> None:
        for name in self.store.refs(FETCH_NS):
            self.store.delete_ref(name)

    def push(self, local_ref: str, remote_ref: str, *, force: bool) -> None:
        """Send ``local_ref``'s objects and set ``remote_ref`` on the remote."""
        spec = f"{'+' if force else ''}{local_ref}:{remote_ref}"
        callbacks = _Callbacks()
        try:
            self._remote.push([spec], callbacks=callbacks)
        except (pygit2.GitError, OSError) as exc:
            text = str(exc)
            if "fast-forward" in text or "fastforward" in text:
                raise RemoteError(
                    f"push to {self.url} rejected: {remote_ref} is not an ancestor of {local_ref}",
                    hint="pull first and merge, or pass --force to overwrite the remote's commits",
                ) from exc
            if _lost_race(text):
                raise _race(self.url, remote_ref) from exc
            raise _unreachable(self.url, exc) from exc
        if callbacks.rejected:
            ref, why = next(iter(callbacks.rejected.items()))
            if _lost_race(why):
                raise _race(self.url, ref)
            raise RemoteError(f"{self.url} refused {ref}: {why}")


def _lost_race(text: str) -> bool:
    """libgit2's words when another push moved (or is moving) the same ref meanwhile."""
    return "already exists" in text or "failed to lock" in text or ".lock'" in text


def _race(url: str, ref: str) -> RemoteError:
    return RemoteError(
        f"push to {url} lost a race: another push updated {ref} at the same moment",
        hint="run `datagit pull` to get what it pushed, merge, then push again",
    )


def _unreachable(url: str, exc: BaseException) -> RemoteError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RemoteError(
        f"cannot reach git remote {url}: {reason}",
        hint="check the URL and your network or credentials; nothing was changed locally",
    )


def clone_bare(url: str, path: str) -> GitStore:
    """A bare copy of the git repository at ``url`` (used to read another tool's history)."""
    try:
        return GitStore(pygit2.clone_repository(url, path, bare=True, callbacks=_Callbacks()))
    except (pygit2.GitError, OSError) as exc:
        raise _unreachable(url, exc) from exc
