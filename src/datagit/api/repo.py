"""`Repo`: the one object the CLI and users' Python call.

It wires storage (git metadata, content store, stat cache, lock) to the core
(layouts, manifest, changes, checkout) and never prints. The history verbs
(diff, blame, merge, credit, bisect), remotes and the harness live in their
own modules and take a `Repo`, so this class stays the repository's plumbing
rather than a home for every verb.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from datagit.core import manifest, patch
from datagit.core.changes import Change, compare_trees
from datagit.core.config import Config, DatasetConfig
from datagit.core.layouts import Hasher, check_columns, scan
from datagit.core.manifest import DatasetTree
from datagit.core.records import Record
from datagit.errors import DatagitError, InvalidInputError, NotARepositoryError
from datagit.progress import Progress
from datagit.storage.content import ContentStore
from datagit.storage.git import CommitInfo, GitStore, Signature
from datagit.storage.gitconfig import env_identity, global_git_identity
from datagit.storage.lock import WriteLock
from datagit.storage.statcache import Snapshots, StatCache
from datagit.storage.tablecache import TableCache

if TYPE_CHECKING:
    from datagit.api.dataset import DatasetView
    from datagit.api.status import Status

DOTDIR = ".datagit"
CONFIG = "datagit.toml"
STAGE = "STAGE"
WORKSPACE = ":workspace"  # a pseudo-revision: the files as they are now
STAGED = ":stage"  # a pseudo-revision: what `add` has staged


class Repo:
    """A datagit workspace: ``datagit.toml``, the datasets, and ``.datagit/``."""

    def __init__(self, workdir: Path, *, readonly: bool = False) -> None:
        """``readonly``: no side effects at all — no monitor started, nothing fetched,
        no stat cache or snapshot written, and the write lock refuses — so viewers,
        worker processes and threads can open a repository another process writes."""
        self.workdir = workdir
        self.dotdir = workdir / DOTDIR
        self.readonly = readonly
        self.git = GitStore.open(self.dotdir)
        self.store = ContentStore(self.dotdir / "content")
        self.statcache = StatCache(self.dotdir / "index.sqlite", readonly=readonly)
        self.snapshots = Snapshots(self.dotdir / "cache", readonly=readonly)
        self.tables = TableCache(self.dotdir / "cache", readonly=readonly)
        self.lock = WriteLock(
            self.dotdir / "lock", on_acquire=self.git.clear_stale_locks, readonly=readonly
        )
        # The last commit this object made and its patches' pairs (see `commit`).
        self._committed: tuple[CommitInfo, dict[str, patch.Pairs | str]] | None = None
        if readonly:  # a reader (the web viewer, executors): no monitor, no fetching
            return
        if self.git.config_get("datagit.fsmonitor") == "true":
            from datagit.api import monitor

            monitor.attach(self)  # scans ask the monitor what changed (api/monitor.py)
        if self.git.config_get("datagit.partial") == "true":
            from datagit.api.remotes import fetch_on_demand

            fetch_on_demand(self)  # a partial clone reads missing content from its remote

    # -- opening ---------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".") -> Repo:
        """Create an empty repository in ``path`` (created if missing)."""
        workdir = Path(path).absolute()
        dotdir = workdir / DOTDIR
        if dotdir.exists():
            raise DatagitError(
                f"{workdir} is already a datagit repository",
                hint="use it as it is, or remove .datagit to start over",
            )
        workdir.mkdir(parents=True, exist_ok=True)
        GitStore.init(dotdir)
        ContentStore.init(dotdir / "content")
        (dotdir / "runs").mkdir()
        config = workdir / CONFIG
        if not config.exists():
            config.write_bytes(Config().dumps())
        return cls(workdir)

    @classmethod
    def open(cls, path: str | os.PathLike[str] = ".", *, readonly: bool = False) -> Repo:
        """Open the repository at ``path`` or the nearest parent holding ``.datagit``.

        ``readonly``: never take the write lock (a writer's `with repo.lock` raises),
        attach no filesystem monitor, fetch nothing and write no stat cache.
        """
        start = Path(path).absolute()
        for folder in (start, *start.parents):
            if (folder / DOTDIR / "HEAD").exists():
                return cls(folder, readonly=readonly)
        raise NotARepositoryError(
            f"not a datagit repository: {start} (nor any parent folder)",
            hint="run `datagit init` here, or cd into a repository",
        )

    def close(self) -> None:
        self.store.close()
        self.statcache.close()

    # -- configuration ---------------------------------------------------
    @property
    def config(self) -> Config:
        """The workspace's ``datagit.toml`` as it is on disk now."""
        return Config.load(self.workdir / CONFIG)

    def dataset_config(self, name: str, rev: str | None = None) -> DatasetConfig:
        cfg = self.config if rev in (None, WORKSPACE) else self.config_at(rev)
        try:
            return cfg.datasets[name]
        except KeyError:
            raise InvalidInputError(
                f"no dataset named {name!r}" + ("" if rev in (None, WORKSPACE) else f" at {rev}"),
                hint=f"datasets: {', '.join(sorted(cfg.datasets)) or '(none)'}; "
                "declare one with `datagit dataset add`",
            ) from None

    def add_dataset(self, cfg: DatasetConfig) -> None:
        """Declare a dataset in ``datagit.toml``."""
        with self.lock:
            config = self.config
            if cfg.name in config.datasets:
                raise InvalidInputError(
                    f"dataset {cfg.name!r} already exists in datagit.toml",
                    hint="pick another name, or edit datagit.toml",
                )
            check_columns(cfg, self.workdir)
            config.datasets[cfg.name] = cfg
            data = config.dumps()
            Config.parse(data)  # validate before writing
            _atomic_write(self.workdir / CONFIG, data)

    def remove_dataset(self, name: str) -> DatasetConfig:
        """Undeclare a dataset in ``datagit.toml``; its files stay, and the next commit
        drops its records (as `git rm --cached -r`). Refused while [harness] uses it."""
        with self.lock:
            config = self.config
            cfg = self.dataset_config(name)
            harness = config.extra.get("harness")
            # an unset train/eval key means the dataset of that name (harness defaults)
            roles = [
                r for r in ("train", "eval") if harness is not None and harness.get(r, r) == name
            ]
            if roles:
                raise InvalidInputError(
                    f"dataset {name!r} is the harness's {roles[0]} data ([harness] {roles[0]})",
                    hint="point [harness] at another dataset in datagit.toml first",
                )
            del config.datasets[name]
            _atomic_write(self.workdir / CONFIG, config.dumps())
            return cfg

    def identity(self) -> Signature:
        """The author of new commits: datagit config, then git's, then the environment."""
        name, email = env_identity()
        name = name or self.git.config_get("user.name")
        email = email or self.git.config_get("user.email")
        if not name or not email:
            gname, gemail = global_git_identity()
            name, email = name or gname, email or gemail
        if not name or not email:
            raise DatagitError(
                "no author identity: user.name or user.email is not set",
                hint='run `datagit config user.name "Your Name"` and '
                "`datagit config user.email you@example.com`",
            )
        return Signature(name, email, int(time.time()), _utc_offset())

    # -- revisions -------------------------------------------------------
    def head(self) -> str | None:
        return self.git.head_commit()

    def branch(self) -> str | None:
        return self.git.head_branch()

    def resolve(self, rev: str = "HEAD") -> str:
        """The commit id a revision names (anything git accepts: ``HEAD~3``, tags, short ids)."""
        return self.git.resolve(rev)

    def commit_info(self, rev: str = "HEAD") -> CommitInfo:
        return self.git.commit(self.resolve(rev))

    def root_tree(self, rev: str) -> str | None:
        """The commit tree for a revision; STAGED and WORKSPACE are pseudo-revisions."""
        if rev == STAGED:
            return self.stage_tree()
        head = self.head() if rev == "HEAD" else self.resolve(rev)
        return self.git.commit(head).tree if head else None

    def config_at(self, rev: str) -> Config:
        if rev == WORKSPACE:
            return self.config
        tree = self.root_tree(rev)
        if tree is None:
            return Config()
        return Config.parse(manifest.read_root(self.git, tree)[0], f"{rev}:datagit.toml")

    def datasets_at(self, rev: str) -> dict[str, str]:
        """Dataset name → dataset tree id at a revision (or the stage)."""
        tree = self.root_tree(rev)
        return manifest.read_root(self.git, tree)[1] if tree else {}

    def dataset_tree(self, dataset: str, rev: str = "HEAD") -> DatasetTree:
        trees = self.datasets_at(rev)
        if dataset not in trees:
            raise InvalidInputError(
                f"no dataset named {dataset!r} at {rev}",
                hint=f"datasets there: {', '.join(sorted(trees)) or '(none)'}",
            )
        return DatasetTree(self.git, trees[dataset])

    # -- reading records and content ---------------------------------------
    def records(self, dataset: str, rev: str = "HEAD") -> Iterator[Record]:
        """The records of ``dataset`` at ``rev`` (or WORKSPACE / STAGED), in no fixed order."""
        if rev == WORKSPACE:
            yield from self.scan(dataset)
            return
        yield from self.dataset_tree(dataset, rev).records()

    def record(self, dataset: str, example_id: str, rev: str = "HEAD") -> Record:
        rec = self.dataset_tree(dataset, rev).get(example_id)
        if rec is None:
            raise InvalidInputError(
                f"no example {example_id!r} in dataset {dataset!r} at {rev}",
                hint=f"list ids with `datagit ls {rev} {dataset}`",
            )
        return rec

    def dataset(self, name: str, rev: str = "HEAD") -> DatasetView:
        """One dataset at one revision: records, bytes, and ``.to_torch()``."""
        from datagit.api.dataset import DatasetView

        return DatasetView(self, name, rev)

    def read(self, record: Record) -> bytes:
        """The example's bytes, verified against its content address."""
        if record.text is not None:
            return record.text.encode()
        return self.store.read(record.content)

    def scan(self, dataset: str, include: Callable[[str], bool] | None = None) -> list[Record]:
        """The dataset as the workspace holds it now (hashing only what the stat cache misses)."""
        cfg = self.dataset_config(dataset)
        from datagit.core import snapshot  # lazily: reads (cat, ls, blame) never need it

        hasher = Hasher(self.workdir, self.statcache)
        if cfg.layout == "imagefolder":
            hasher.known = snapshot.snapshot_rows(self.git, cfg, self.snapshots)
        recs = scan(cfg, hasher, include)
        self._save_statcache()
        return recs

    def _save_statcache(self) -> None:
        if self.readonly:
            return
        with contextlib.suppress(Exception):
            self.statcache.save()

    # -- the stage ---------------------------------------------------------
    def stage_tree(self) -> str | None:
        """The staged commit tree, or HEAD's when nothing is staged."""
        state = self._stage_state()
        if state is not None:
            return str(state["tree"])
        head = self.head()
        return self.git.commit(head).tree if head else None

    def _stage_state(self) -> dict | None:
        """The STAGE file's contents; a damaged one is discarded (the stage falls back to
        HEAD, and what was staged shows as unstaged changes of the workspace)."""
        path = self.dotdir / STAGE
        try:
            state = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError):
            state = None
        tree = state.get("tree") if isinstance(state, dict) else None
        if not isinstance(tree, str) or len(tree) != 40 or not _is_hex(tree):
            path.unlink(missing_ok=True)
            return None
        return state

    def _set_stage(
        self, tree: str | None, *, base: str | None = None, patches: dict | None = None
    ) -> None:
        """Record the staged tree; ``patches`` (dataset → patch blob) are its changes
        against commit ``base``, carried so `commit` need not diff the trees again."""
        path = self.dotdir / STAGE
        if tree is None:
            path.unlink(missing_ok=True)
            return
        state: dict = {"tree": tree}
        if patches is not None:
            state.update(base=base, patches=patches)
        _atomic_write(path, orjson.dumps(state))

    def _stage_patches(self) -> dict[str, str] | None:
        """Dataset → patch blob of the stage against HEAD, when `add` carried them."""
        state = self._stage_state()
        if state is None:
            return {}  # the stage is HEAD: nothing changed
        if "patches" not in state or state.get("base") != self.head():
            return None
        return dict(state["patches"])

    def add(
        self,
        paths: list[str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> dict[str, list[Change]]:
        """Stage datasets (by name) or workspace paths; returns staged changes per dataset."""
        from datagit.api import staging

        with self.lock:
            self.recover()
            return staging.add(self, paths, progress=progress)

    def commit(
        self,
        message: str,
        *,
        all: bool = False,
        annotator: str | None = None,
        author: Signature | None = None,
        allow_empty: bool = False,
        parents: list[str] | None = None,
        progress: Progress | None = None,
    ) -> CommitInfo:
        """Record the stage (after `add` of everything with ``all``) as a new commit."""
        from datagit.api import committing, staging

        with self.lock:
            self.recover()
            staged = None
            if all:
                staged = staging.add_staged(self, None, report=False, progress=progress)[1]
            info, pairs = committing.commit_staged(
                self,
                message,
                annotator=annotator,
                author=author,
                allow_empty=allow_empty,
                parents=parents,
                added_all=all,
                staged=staged,
            )
            # Its patches, as written: `changes` of this commit against its first parent
            # (the summary `commit` prints) then reads nothing back.
            self._committed = (info, pairs) if pairs is not None and info.parents else None
            return info

    def recover(self) -> bool:
        """Finish a checkout that was killed half-way (its journal says where it was
        going), so no command sees the half-moved workspace; True if one was."""
        if self.readonly or not (self.dotdir / "CHECKOUT").exists():
            return False  # a reader (the viewer) never writes; the next writer finishes it
        from datagit.api.workspace import finish_interrupted

        return finish_interrupted(self)

    # -- status ------------------------------------------------------------
    def status(self) -> Status:
        """Staged and unstaged record changes per dataset, and config changes (`api.status`)."""
        from datagit.api.status import status

        return status(self)

    # -- log ---------------------------------------------------------------
    def log(
        self, rev: str = "HEAD", *, limit: int | None = None, dataset: str | None = None
    ) -> Iterator[CommitInfo]:
        """Commits reachable from ``rev``, newest first; with ``dataset``, those changing it."""
        head = self.head() if rev == "HEAD" else self.resolve(rev)
        if head is None or (limit is not None and limit <= 0):  # `log -n 0` shows nothing, as git
            return
        n = 0
        for c in self.git.walk([head]):
            if dataset is not None and not self._touches(c, dataset):
                continue
            yield c
            n += 1
            if limit is not None and n >= limit:
                return

    def _touches(self, c: CommitInfo, dataset: str) -> bool:
        mine = manifest.read_root(self.git, c.tree)[1].get(dataset)
        if not c.parents:
            return mine is not None
        return any(
            manifest.read_root(self.git, self.git.commit(p).tree)[1].get(dataset) != mine
            for p in c.parents
        )

    def changes(self, old_rev: str | None, new_rev: str) -> dict[str, list[Change]]:
        """Record changes per dataset between two revisions (``None``: the empty state)."""
        a = self.datasets_at(old_rev) if old_rev else {}
        b = self.datasets_at(new_rev)
        pseudo = (STAGED, WORKSPACE)
        old_id = self.resolve(old_rev) if old_rev and old_rev not in pseudo else None
        new_id = self.resolve(new_rev) if new_rev not in pseudo else None
        out = {}
        known = self._committed
        mine = known[1] if known and (old_id, new_id) == (known[0].parents[0], known[0].id) else {}
        for n in sorted(set(a) | set(b)):
            found = None
            if isinstance(mine.get(n), dict):
                found = patch.to_changes(mine[n])  # type: ignore[arg-type]
            elif old_id and new_id and a.get(n) != b.get(n):
                found = patch.changes_between_commits(self.git, old_id, new_id, n)
            out[n] = found if found is not None else compare_trees(self.git, a.get(n), b.get(n))
        return out


def _utc_offset() -> int:
    return (time.localtime().tm_gmtoff or 0) // 60


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
