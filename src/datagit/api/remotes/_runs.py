"""The shared run cache: push and fetch carry harness runs through the content remote.

A run's files (``run.json``, per-example outputs, probabilities, weights …)
travel as ordinary content objects, by address, so weights already on the
remote are not sent twice; then a small index ``runs/<id>.json`` — file name →
address — is written beside them, last, so a reader never finds an index whose
files are missing. A run id is the hash of what produced it (data trees,
harness config, seed, code), so a teammate's `eval` of the same commit finds
the run under the same id and answers without training.

Runs fetched from a remote are verified file by file and written into the
local cache whole or not at all (`RunStore.save`'s rename).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from datagit.errors import RemoteError
from datagit.harness import runs as run_cache
from datagit.harness.runs import RunStore
from datagit.progress import Progress, Reporter
from datagit.storage.content import address
from datagit.storage.remote import RUN_ID, ContentRemote

if TYPE_CHECKING:
    from datagit.api.repo import Repo

_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # a run's own file names, nothing else


def _store(repo: Repo) -> RunStore:
    return RunStore(repo.dotdir / "runs")


def push_runs(repo: Repo, content: ContentRemote, progress: Progress | None = None) -> int:
    """Send every local run the remote has no index for; returns how many were sent."""
    local = [r for r in _store(repo) if RUN_ID.match(r.id)]
    if not local:
        return 0  # no listing at all when there is nothing to send
    there = content.run_ids()
    todo = [r for r in local if r.id not in there]
    if not todo:
        return 0
    have = content.list()
    report = Reporter(progress, "upload runs", len(todo), "runs")
    for run in todo:
        files = {p.name: p.read_bytes() for p in sorted(run.path.iterdir()) if _FILE.match(p.name)}
        index = {name: address(data) for name, data in files.items()}
        content.upload((index[n], d) for n, d in files.items() if index[n] not in have)
        have.update(index.values())
        content.put_run_index(run.id, orjson.dumps({"id": run.id, "files": index}))
        report.advance()
    report.finish()
    return len(todo)


def fetch_runs(repo: Repo, content: ContentRemote, progress: Progress | None = None) -> int:
    """Copy the remote's runs this repository lacks into its run cache; returns how many."""
    runs = _store(repo)
    todo = sorted(i for i in content.run_ids() if runs.get(i) is None)
    report = Reporter(progress, "download runs", len(todo), "runs")
    for run_id in todo:
        _fetch_one(runs, content, run_id)
        report.advance()
    report.finish()
    return len(todo)


def fetch_run(repo: Repo, content: ContentRemote, run_id: str) -> bool:
    """Copy one run from the remote if it has it; False when it does not.

    A partial clone (`clone --no-content`) fetches no runs with the history, since
    weights and per-example outputs are bytes like any other; `eval` asks for the
    one run it needs, by id, when its own cache misses.
    """
    if not RUN_ID.fullmatch(run_id) or run_id not in content.run_ids():
        return False
    _fetch_one(_store(repo), content, run_id)
    return True


def _fetch_one(runs: RunStore, content: ContentRemote, run_id: str) -> None:
    files = _index(content, run_id)
    blobs = dict(content.download(sorted(set(files.values()))))  # verified by address
    try:
        meta = orjson.loads(blobs[files[run_cache.RUN_FILE]])
    except orjson.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict):
        raise RemoteError(
            f"run {run_id} on {content.url}: its run.json is not a JSON object",
            hint=f"delete runs/{run_id}.json on the remote and push the run again",
        )

    def write(folder: Path) -> None:
        for name, key in files.items():
            if name != run_cache.RUN_FILE:
                (folder / name).write_bytes(blobs[key])

    saved = runs.save(run_id, {k: v for k, v in meta.items() if k != "id"}, write)
    if "created" in meta:  # keep the producer's time, not the moment it arrived
        (saved.path / run_cache.RUN_FILE).write_bytes(blobs[files[run_cache.RUN_FILE]])


def _index(content: ContentRemote, run_id: str) -> dict[str, str]:
    """A run index's file → address map, refusing anything that is not one."""
    try:
        index = orjson.loads(content.get_run_index(run_id))
        files = index["files"]
        ok = (
            index.get("id") == run_id
            and isinstance(files, dict)
            and run_cache.RUN_FILE in files
            and all(_FILE.match(n) and re.fullmatch(r"[0-9a-f]{32}", k) for n, k in files.items())
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise RemoteError(
            f"run index runs/{run_id}.json on {content.url} is malformed",
            hint="delete it on the remote and push the run again from a repository that has it",
        )
    return files  # type: ignore[no-any-return]
