"""`commit`: the stage becomes a commit object on the current branch.

The stage already holds the whole next tree (`staging` wrote it), so a commit
adds only what is known once it is made: the patches of its changes against the
first parent, the annotator's stamp on the labels it sets, then the commit
object and the ref, in that order, so a crash leaves the last commit whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datagit.api.mergestate import clear_merge_state, read_merge_state
from datagit.api.staging import SKIP, Staged, carried_patches
from datagit.core import manifest, patch, tablesnap
from datagit.core.config import Config
from datagit.core.diff import changes_between
from datagit.core.manifest import DatasetTree
from datagit.errors import ConflictError, DatagitError, InvalidInputError
from datagit.storage.git import CommitInfo, Signature

if TYPE_CHECKING:
    from datagit.api.repo import Repo


def commit(
    repo: Repo,
    message: str,
    *,
    annotator: str | None = None,
    author: Signature | None = None,
    allow_empty: bool = False,
    parents: list[str] | None = None,
    added_all: bool = False,
) -> CommitInfo:
    """Commit the stage; ``added_all`` says the caller just staged everything (`-a`),
    which changes what an empty commit's hint can suggest."""
    return commit_staged(
        repo,
        message,
        annotator=annotator,
        author=author,
        allow_empty=allow_empty,
        parents=parents,
        added_all=added_all,
    )[0]


def commit_staged(
    repo: Repo,
    message: str,
    *,
    annotator: str | None = None,
    author: Signature | None = None,
    allow_empty: bool = False,
    parents: list[str] | None = None,
    added_all: bool = False,
    staged: Staged | None = None,
) -> tuple[CommitInfo, dict[str, patch.Pairs | str] | None]:
    """`commit`, also returning the commit's changes against its first parent as its
    patches store them (dataset → pairs, or SKIP), None when it stores none (a root
    commit, or a first parent other than HEAD).

    ``staged`` is what an `add` in this process returned (`commit -a`): its patches
    are taken from memory rather than read back, when the stage still holds it.
    """
    if not message.strip():
        raise InvalidInputError("empty commit message", hint='pass one with -m "what changed"')
    head = repo.head()
    merge = read_merge_state(repo)
    if merge and merge.get("conflicts"):
        first = merge["conflicts"][0]
        raise ConflictError(
            f"{len(merge['conflicts'])} unresolved merge conflicts (first: {first})",
            hint="resolve with `datagit merge --ours/--theirs` or `datagit resolve ID --label L`",
        )
    stage = repo.stage_tree()
    stage_ds: dict[str, str]
    if stage is None:
        cfg_bytes, stage_ds = (repo.workdir / "datagit.toml").read_bytes(), {}
    else:
        cfg_bytes, stage_ds = manifest.read_root(repo.git, stage)
    head_tree = repo.git.commit(head).tree if head else None
    head_cfg, head_ds = manifest.read_root(repo.git, head_tree) if head_tree else (b"", {})
    _refuse_leaks(repo, cfg_bytes, stage_ds)
    if parents is None:
        parents = [head] if head else []
        if merge:
            parents.append(merge["theirs"])
    # A patch is the change against the first parent; a root commit gets none.
    first_is_head = bool(parents) and parents[0] == head
    if staged is not None and (staged.tree, staged.base) != (stage, head):
        staged = None  # not what the stage holds now: read it back
    with repo.git.batch():
        pairs = _commit_pairs(repo, head_ds, stage_ds, staged) if first_is_head else {}
        stamped = set()
        if annotator:
            stamped = _stamp_annotator(repo, head_ds, stage_ds, pairs, annotator)
        unchanged = head_tree is not None and (cfg_bytes, stage_ds) == (head_cfg, head_ds)
        if unchanged and not allow_empty and not merge:
            raise DatagitError(
                "nothing to commit: the workspace matches HEAD"
                if added_all
                else "nothing to commit: the stage matches HEAD",
                hint="change, add or re-label examples first (`datagit status` shows none)"
                if added_all
                else "stage changes with `datagit add`, or use `commit -a`",
            )
        written = {} if staged is None else staged.blobs
        kept = {n: b for n, b in written.items() if n not in stamped}
        patches = _patch_blobs(repo, stage_ds, pairs, kept) if first_is_head else None
        stage = manifest.write_root(repo.git, cfg_bytes, stage_ds, patches)
    text = message.rstrip() + "\n"
    if annotator:
        text += f"\nAnnotator: {annotator}\n"
    me = repo.identity()
    oid = repo.git.create_commit(stage, parents, text, author or me, me)
    branch = repo.branch()
    if branch:
        kind = "commit (merge)" if len(parents) > 1 else "commit" if parents else "commit (initial)"
        repo.git.update_ref(f"refs/heads/{branch}", oid, f"{kind}: {message.splitlines()[0]}")
    else:
        repo.git.set_head_detached(oid)
    repo._set_stage(None)
    clear_merge_state(repo)
    from datagit.storage import gitgc  # (not loaded by `status`, which imports this module)

    gitgc.roll_up(repo.git)  # past 50 packs, merge the small ones (as git's auto gc)
    return repo.git.commit(oid), pairs if first_is_head else None


def _refuse_leaks(repo: Repo, cfg_bytes: bytes, stage_ds: dict[str, str]) -> None:
    """Under ``[check] leakage = "error"``, refuse a commit whose datasets share an example."""
    from datagit.api import check

    cfg = Config.parse(cfg_bytes)
    if check.leakage_policy(cfg)[0] != "error":
        return
    leaks = check.leaks_for_commit(repo, cfg, stage_ds)
    if leaks:
        first = leaks[0].members
        raise ConflictError(
            f"{len(leaks)} examples leak across datasets (first: {first[0].dataset}/{first[0].id}"
            f' = {first[1].dataset}/{first[1].id}); datagit.toml [check] leakage = "error"',
            hint="remove one copy of each (`datagit check` lists them), or set "
            'leakage = "warn" in datagit.toml',
        )


def _commit_pairs(
    repo: Repo, head_ds: dict[str, str], stage_ds: dict[str, str], staged: Staged | None
) -> dict[str, patch.Pairs | str]:
    """The stage's record changes against HEAD (or SKIP): handed over or carried
    from `add`, or diffed now."""
    if staged is not None:
        return dict(staged.pairs)
    carried = carried_patches(repo)
    if carried is not None:
        return {n: p for n, p in carried.items() if p}
    out: dict[str, patch.Pairs | str] = {}
    for name in sorted(set(head_ds) | set(stage_ds)):
        if head_ds.get(name) != stage_ds.get(name):
            found = changes_between(repo.git, head_ds.get(name), stage_ds.get(name))
            if found:
                out[name] = patch.from_changes(found)
    return out


def _stamp_annotator(
    repo: Repo,
    head_ds: dict[str, str],
    stage_ds: dict[str, str],
    pairs: dict[str, patch.Pairs | str],
    annotator: str,
) -> set[str]:
    """Credit ``annotator`` with every label this commit sets that has no annotator yet;
    returns the datasets whose records (and so whose patches) it changed.

    Uses the carried patch where there is one (updating it in place), and diffs
    the dataset otherwise (a root commit, a bulk change marked SKIP).
    """
    stamped = set()
    for name in sorted(stage_ds):
        if head_ds.get(name) == stage_ds[name]:
            continue
        known = pairs.get(name)
        if isinstance(known, dict):
            changed = known
        else:
            found = changes_between(repo.git, head_ds.get(name), stage_ds[name])
            changed = patch.from_changes(found)
        upserts = {}
        # A rename that keeps its label sets no label: it keeps the annotator it had.
        gone = {o.content: o for o, n in changed.values() if n is None and o is not None}
        for i, (old, new) in changed.items():
            if new is None or new.annotator is not None:
                continue
            was = gone.get(new.content) if old is None else None
            if was is not None and was.label == new.label:
                if was.annotator:
                    upserts[i] = new.with_annotator(was.annotator)
            elif old is None or old.label != new.label:
                upserts[i] = new.with_annotator(annotator)
        if upserts:
            before = stage_ds[name]
            stage_ds[name] = manifest.patch_dataset(repo.git, stage_ds[name], upserts)
            # A table's rows give no annotator to these records, and `add` keeps the
            # one an unchanged label has: its snapshot holds for the stamped tree too.
            tablesnap.follow_stamp(repo.tables, name, before, stage_ds[name])
            changed.update((i, (changed[i][0], r)) for i, r in upserts.items())
            stamped.add(name)
    return stamped


def _patch_blobs(
    repo: Repo,
    stage_ds: dict[str, str],
    pairs: dict[str, patch.Pairs | str],
    written: dict[str, str],
) -> dict[str, str]:
    """``changes/`` entries: a patch per changed dataset, or a skip marker for bulk changes.

    ``written``: dataset → a blob `add` already wrote for exactly these pairs (its
    encoding is canonical, so the same pairs make the same blob): used as it is.
    """
    out = {}
    for name, changed in pairs.items():
        size = DatasetTree(repo.git, stage_ds[name]).count if name in stage_ds else 0
        if changed is not SKIP and patch.worth_storing(changed, size):  # type: ignore[arg-type]
            blob = written.get(name)
            if blob is None or blob == SKIP:
                blob = repo.git.write_blob(patch.encode(changed))  # type: ignore[arg-type]
            out[f"{name}.jsonl"] = blob
        else:
            out[f"{name}.skip"] = repo.git.write_blob(b"")
    return out
