"""`status`: what is staged (HEAD → stage) and unstaged (stage → workspace), per dataset.

`Repo.status` answers through here. Unstaged changes come from the stat snapshots
when they hold (`snapshot.status_fast`, `tablesnap.status_fast`), so a clean
repository is looked at without reading its files; those modules, and the merge
state, are imported where they are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from datagit.api.repo import CONFIG
from datagit.core import manifest
from datagit.core.changes import Change, compare, compare_trees
from datagit.core.config import Config, DatasetConfig
from datagit.core.layouts import Hasher, workspace_missing
from datagit.core.manifest import DatasetTree

if TYPE_CHECKING:
    from datagit.api.repo import Repo


@dataclass
class DatasetStatus:
    """One dataset's changes: staged (HEAD → stage) and unstaged (stage → workspace)."""

    name: str
    staged: list[Change] = field(default_factory=list)
    unstaged: list[Change] = field(default_factory=list)
    # the declared folder ("train/") or table file that does not exist: an empty dataset
    missing: str | None = None


@dataclass
class Status:
    """The repository's changes: per dataset, to its config, and merge conflicts."""

    branch: str | None
    head: str | None
    datasets: list[DatasetStatus]
    config_staged: bool = False
    config_unstaged: bool = False
    conflicts: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.config_staged
            or self.config_unstaged
            or self.conflicts
            or any(d.staged or d.unstaged for d in self.datasets)
        )


def status(repo: Repo) -> Status:
    """Staged and unstaged record changes per dataset, and config changes."""
    repo.recover()
    head_tree = repo.root_tree("HEAD")
    head_cfg, head_ds = manifest.read_root(repo.git, head_tree) if head_tree else (b"", {})
    stage_tree = repo.stage_tree()
    stage_cfg, stage_ds = (
        manifest.read_root(repo.git, stage_tree) if stage_tree else (Config().dumps(), {})
    )
    work_cfg_bytes = (
        (repo.workdir / CONFIG).read_bytes() if (repo.workdir / CONFIG).exists() else b""
    )
    work_cfg = Config.parse(work_cfg_bytes)
    out = []
    for name in sorted(set(head_ds) | set(stage_ds) | set(work_cfg.datasets)):
        ds = DatasetStatus(name)
        ds.staged = compare_trees(repo.git, head_ds.get(name), stage_ds.get(name))
        ds.unstaged = _unstaged(repo, name, work_cfg, stage_ds.get(name))
        cfg = work_cfg.datasets.get(name)
        if cfg is not None and workspace_missing(cfg, repo.workdir):
            ds.missing = cfg.path + ("/" if cfg.layout == "imagefolder" else "")
        out.append(ds)
    conflicts: list[str] = []
    if (repo.dotdir / "MERGE_STATE").exists():  # only then load `mergestate` (a merge)
        from datagit.api import mergestate

        conflicts = mergestate.conflicts(repo)
    return Status(
        branch=repo.branch(),
        head=repo.head(),
        datasets=out,
        config_staged=_norm(head_cfg) != _norm(stage_cfg) if head_tree else bool(stage_ds),
        config_unstaged=_norm(stage_cfg) != _norm(work_cfg_bytes),
        conflicts=conflicts,
    )


def _unstaged(repo: Repo, name: str, work_cfg: Config, staged_tree: str | None) -> list[Change]:
    cfg = work_cfg.datasets.get(name)
    if cfg is not None and cfg.layout == "imagefolder" and staged_tree is not None:
        from datagit.core import snapshot  # lazily, as in scan

        hasher = Hasher(repo.workdir, repo.statcache)
        fast = snapshot.status_fast(repo.git, cfg, hasher, repo.snapshots, staged_tree)
        repo._save_statcache()
        if fast is not None:
            return fast
    if cfg is not None and cfg.layout == "table":
        return _unstaged_table(repo, cfg, staged_tree)
    staged = DatasetTree(repo.git, staged_tree).by_id() if staged_tree else {}
    work = {r.id: r for r in repo.scan(name)} if cfg is not None else {}
    return compare(staged, work)


def _unstaged_table(repo: Repo, cfg: DatasetConfig, staged_tree: str | None) -> list[Change]:
    """A table's unstaged changes: by its snapshot when it has one, else read whole
    (and a table found equal to the stage gets a snapshot, so the next look is a stat)."""
    from datagit.core import tablesnap  # lazily, as in scan

    hasher = Hasher(repo.workdir, repo.statcache)
    if staged_tree is not None:
        found = tablesnap.status_fast(
            repo.git, cfg, hasher, repo.tables, repo.snapshots, staged_tree
        )
        if found is not None:
            repo._save_statcache()
            return found
    read = tablesnap.read_full(cfg, hasher, repo.snapshots)
    repo._save_statcache()
    staged = DatasetTree(repo.git, staged_tree).by_id() if staged_tree else {}
    work = {r.id: r for r in read.records}
    changes = compare(staged, work)
    if staged_tree is not None and tablesnap.same_records(staged, work):
        tablesnap.save_read(repo.tables, cfg, read, staged_tree)
    return changes


def _norm(data: bytes) -> bytes:
    return Config.parse(data).dumps() if data else Config().dumps()
