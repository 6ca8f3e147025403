"""fsck and gc: prove every committed byte is present and intact, drop what nothing uses."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from datagit.core import manifest
from datagit.core.manifest import DatasetTree
from datagit.core.records import decode_lines
from datagit.errors import CorruptObjectError, DatagitError
from datagit.progress import Progress, Reporter
from datagit.storage.content import MissingContentError, prune_loose, rewrite_packs
from datagit.storage.gitgc import RepackReport, expiry_seconds, logged_commits_since, repack
from datagit.storage.gitremote import FETCH_NS

if TYPE_CHECKING:
    from datagit.api.repo import Repo


@dataclass
class FsckReport:
    """What fsck checked and every problem it found, one line each."""

    commits: int = 0
    objects: int = 0
    problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # content not present locally

    @property
    def ok(self) -> bool:
        return not self.problems


def reachable_roots(repo: Repo, *, fetching: bool = True) -> list[str]:
    """Commit ids every ref, HEAD and an in-progress merge keep alive; without
    ``fetching``, not the refs a fetch has landed and not yet accepted (`FETCH_NS`):
    their content arrives before they are, so it may not be here yet."""
    skip = FETCH_NS + "/"
    heads = {o for n, o in repo.git.refs().items() if fetching or not n.startswith(skip)}
    head = repo.head()
    if head:
        heads.add(head)
    from datagit.api.mergestate import read_merge_state

    merge = read_merge_state(repo)
    if merge:
        heads.add(merge["theirs"])
    return sorted(heads)


def reflog_roots(repo: Repo, now: float | None = None) -> list[str]:
    """Commits named by reflog entries younger than ``gc.reflogExpire`` (default 90 days):
    `main@{3}` keeps its content until then, as git keeps the objects."""
    age = expiry_seconds(repo.git.config_get("gc.reflogExpire"))
    cutoff = None if age is None else (time.time() if now is None else now) - age
    out = []
    for oid in sorted(logged_commits_since(repo.git.path, cutoff)):
        try:
            repo.git.commit(oid)
        except DatagitError:  # a tag, or an object a damaged log names: not a root
            continue
        out.append(oid)
    return out


def live_content(
    repo: Repo, *, reflogs: bool = False, fetching: bool = True
) -> Iterator[tuple[str, str]]:
    """(content address, "dataset/id@commit") for every record any live tree names;
    with ``reflogs``, also for unexpired reflog entries (what gc keeps); ``fetching``:
    see `reachable_roots`."""
    seen_shards: set[str] = set()
    roots = reachable_roots(repo, fetching=fetching)
    if reflogs:
        roots = sorted(set(roots) | set(reflog_roots(repo)))
    trees: list[tuple[str, str]] = [(c.tree, c.id[:10]) for c in repo.git.walk(roots)]
    stage = repo.stage_tree()
    if stage:
        trees.append((stage, "stage"))
    for tree, where in trees:
        for name, ds in manifest.read_root(repo.git, tree)[1].items():
            for blob in DatasetTree(repo.git, ds).shards().values():
                if blob in seen_shards:
                    continue
                seen_shards.add(blob)
                for r in decode_lines(repo.git.read_blob(blob)):
                    if r.text is None:
                        yield r.content, f"{name}/{r.id}@{where}"


def fsck(repo: Repo, progress: Progress | None = None) -> FsckReport:
    """Check git objects, every stored object's bytes, and that records' content exists."""
    report = FsckReport()
    git_check = repo.git.check_objects()
    report.problems.extend(git_check.problems)
    report.commits = git_check.commits
    packed = list(repo.store.index)
    loose = list(repo.store.loose_keys())
    verifying = Reporter(progress, "verifying content", len(packed) + len(loose))
    for keys, check in ((packed, repo.store.read), (loose, repo.store.check_loose)):
        for key in keys:
            verifying.advance()
            report.objects += 1
            try:
                check(key)  # a loose copy is read even when a packed one exists: a write
            except CorruptObjectError as exc:  # through a hard link changes only the loose
                report.problems.append(str(exc))
    verifying.finish()
    report.problems.extend(repo.store.index_problems)
    checked: set[str] = set()
    try:
        # A fetch killed before its content arrived left refs that wait for it: what only
        # they name is not missing (gc keeps it; the next fetch brings the rest).
        for key, where in live_content(repo, fetching=False):
            if key in checked:
                continue
            checked.add(key)
            if not repo.store.has(key):
                report.missing.append(f"content {key} missing (needed by {where})")
    except CorruptObjectError as exc:  # an unreadable tree: report it once, do not crash
        named = exc.message.split(" (", 1)[0]  # "git object <id>", already listed by check_objects
        if not any(p.startswith(named) for p in report.problems):
            report.problems.append(exc.message)
    if not _promisor(repo):
        report.problems.extend(report.missing)
    return report


def _promisor(repo: Repo) -> bool:
    """A partial clone expects content to be missing until it is fetched."""
    return repo.git.config_get("datagit.partial") == "true"


@dataclass(frozen=True)
class GcReport:
    """Content objects kept and removed, and how the git objects were repacked."""

    kept: int
    removed: int
    git: RepackReport | None = None


def gc(repo: Repo, progress: Progress | None = None) -> GcReport:
    """Rewrite content packs with only what some live record names, then repack git objects.

    Content goes first: it reads the trees that the git repack then moves, and
    each half is crash-safe on its own.
    """
    with repo.lock:
        steps = Reporter(progress, "gc", 3, "steps")
        keep = {k for k, _ in live_content(repo, reflogs=True)}
        steps.advance(note="live content found")
        try:
            kept, removed = rewrite_packs(repo.store, keep)
        except MissingContentError:
            raise
        removed += prune_loose(repo.store, keep)
        for tmp in repo.workdir.rglob(".*.datagit-tmp"):
            tmp.unlink(missing_ok=True)
        steps.advance(note="content repacked")
        git = repack(repo.git, kept_outside_refs(repo))
        steps.advance(note="git objects repacked")
        steps.finish()
        return GcReport(kept, removed, git)


def kept_outside_refs(repo: Repo) -> list[str]:
    """Git object ids datagit holds in files rather than refs, which gc must keep.

    The stage (its tree, the patch blobs `add` carried for it and the commit
    they are against), a merge in progress (both sides) and the commit a bisect
    started from; reflogs and refs are the storage layer's to read.
    """
    from datagit.api.bisect import START
    from datagit.api.mergestate import read_merge_state
    from datagit.api.repo import STAGE

    ids: list[str] = []
    stage = repo.dotdir / STAGE
    if stage.exists():
        state = orjson.loads(stage.read_bytes())
        ids.append(state["tree"])
        if state.get("base"):
            ids.append(state["base"])
        ids += [oid for oid in (state.get("patches") or {}).values() if _is_oid(oid)]
    merge = read_merge_state(repo)
    if merge:
        ids += [merge[k] for k in ("theirs", "orig_head") if _is_oid(merge.get(k))]
    bisect = repo.dotdir / START
    if bisect.exists() and _is_oid(bisect.read_text().strip()):
        ids.append(bisect.read_text().strip())
    return ids


def _is_oid(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{40}", value) is not None
