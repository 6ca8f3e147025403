"""`datagit check`: duplicate examples within a dataset and leakage across datasets.

Exact duplicates come from the manifests alone (records carry their content
address), so a check costs about what listing the records costs. Near-duplicate
images (``near=True``) read and hash every image's bytes.

A team can make leakage fail commits with a committed setting in datagit.toml::

    [check]
    leakage = "error"            # or "warn" (commit, then say so) or "off" (default)
    datasets = ["train", "eval"] # optional: only leaks between these count
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from datagit.core import check as core
from datagit.core.config import Config
from datagit.core.manifest import DatasetTree
from datagit.core.records import Label, decode_lines
from datagit.errors import InvalidInputError
from datagit.progress import Progress, Reporter

if TYPE_CHECKING:
    from datagit.api.repo import Repo

Report = core.Report
Group = core.Group


def check(
    repo: Repo,
    datasets: Iterable[str] | None = None,
    rev: str = "HEAD",
    *,
    near: bool = False,
    distance: int = 4,
    progress: Progress | None = None,
) -> core.Report:
    """Exact duplicates (and, with ``near``, near-duplicate images) among ``datasets`` at ``rev``.

    ``datasets`` None checks every dataset at ``rev``.
    """
    trees = repo.datasets_at(rev)
    names = _names(trees, datasets, rev)
    if near and not 0 <= distance <= 16:
        raise InvalidInputError(
            f"--distance {distance} is out of range", hint="use 0 to 16 bits (default 4)"
        )
    return check_trees(
        repo, {n: trees[n] for n in names}, near=near, distance=distance, progress=progress
    )


def check_trees(
    repo: Repo,
    trees: dict[str, str],
    *,
    near: bool = False,
    distance: int = 4,
    progress: Progress | None = None,
) -> core.Report:
    """The check over dataset trees (a commit's, or the stage's before a commit)."""
    n, within, leaks = core.exact_duplicates({n: _rows(repo, t) for n, t in trees.items()})
    found_near: list[core.Group] = []
    if near:
        found_near = core.near_duplicates(_image_hashes(repo, trees, n, progress), distance)
    return core.Report(tuple(trees), n, tuple(within), tuple(leaks), tuple(found_near))


def _names(trees: dict[str, str], datasets: Iterable[str] | None, rev: str) -> list[str]:
    if datasets is None:
        return sorted(trees)
    names = list(dict.fromkeys(datasets))
    for n in names:
        if n not in trees:
            raise InvalidInputError(
                f"no dataset named {n!r} at {rev}",
                hint=f"datasets there: {', '.join(sorted(trees)) or '(none)'}",
            )
    return names


def _rows(repo: Repo, tree: str) -> Iterator[tuple[str, Label, str]]:
    for blob in DatasetTree(repo.git, tree).shards().values():
        for r in decode_lines(repo.git.read_blob(blob)):
            yield r.id, r.label, r.content


def _image_hashes(
    repo: Repo, trees: dict[str, str], total: int, progress: Progress | None
) -> Iterator[tuple[core.Member, str, int]]:
    """(member, content, dHash) for every example whose bytes are an image."""
    hashes: dict[str, int | None] = {}  # content → dHash: identical bytes are hashed once
    report = Reporter(progress, "hashing images", total)
    for name, tree in trees.items():
        for r in DatasetTree(repo.git, tree).records():
            report.advance()
            if r.text is not None:
                continue
            if r.content not in hashes:
                hashes[r.content] = core.dhash(repo.read(r))
            h = hashes[r.content]
            if h is not None:
                yield core.Member(name, r.id, r.label), r.content, h
    report.finish()


# -- the commit-time policy ---------------------------------------------------------
def leakage_policy(cfg: Config) -> tuple[str, list[str] | None]:
    """(mode, datasets) from datagit.toml's ``[check]`` table; ("off", None) when absent."""
    table: Any = cfg.extra.get("check", {})
    if not isinstance(table, dict):
        raise InvalidInputError("datagit.toml: [check] must be a table")
    unknown = set(table) - {"leakage", "datasets"}
    if unknown:
        raise InvalidInputError(
            f"datagit.toml: [check] has unknown key {sorted(unknown)[0]!r}",
            hint="known keys: datasets, leakage",
        )
    mode = table.get("leakage", "off")
    if mode not in core.LEAKAGE_MODES:
        raise InvalidInputError(
            f"datagit.toml: [check] leakage = {mode!r} is not one of "
            f"{', '.join(core.LEAKAGE_MODES)}",
            hint='for example: leakage = "error"',
        )
    names = table.get("datasets")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(x, str) for x in names)
    ):
        raise InvalidInputError(
            "datagit.toml: [check] datasets must be a list of dataset names",
            hint='for example: datasets = ["train", "eval"]',
        )
    return mode, names


def leaks_for_commit(repo: Repo, cfg: Config, trees: dict[str, str]) -> list[core.Group]:
    """Leaks the ``[check]`` policy counts among the datasets about to be committed."""
    mode, names = leakage_policy(cfg)
    if mode == "off":
        return []
    chosen = {n: t for n, t in trees.items() if names is None or n in names}
    if len(chosen) < 2:
        return []
    return list(check_trees(repo, chosen).leaks)


def describe(group: core.Group) -> str:
    """One line per group: ``a1b2c3d4e5  train/3.png (3)  eval/9.png (8)``."""
    members = "  ".join(f"{m.dataset}/{m.id} ({_label(m.label)})" for m in group.members)
    return f"{group.content[:10]}  {members}"


def _label(value: Label) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)
