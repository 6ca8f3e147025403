"""Where a hunt's trainings run: in this process, in local worker processes, or on Ray.

Every executor receives picklable `EvalTask`s (the repository's path, a commit,
the harness config, a seed) and returns `EvalResult`s. Workers open their own
read-only `Repo` and train through `api.harness.train`, so whatever runs a task,
its run lands in the same run cache (``.datagit/runs``, written atomically)
and a later hunt finds it there.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from datagit.errors import DatagitError, InvalidInputError
from datagit.harness.config import HarnessConfig

if TYPE_CHECKING:
    from datagit.api.repo import Repo

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class EvalTask:
    """Train ``config`` with ``seed`` on the data of ``commit`` in the repository at ``path``."""

    path: str
    commit: str
    config: HarnessConfig
    seed: int


@dataclass(frozen=True)
class EvalResult:
    """What a hunt keeps of one run: enough to judge it and to report it."""

    commit: str
    seed: int
    run_id: str
    metrics: dict[str, Any]
    cached: bool
    weights_sha256: str
    train_tree: str
    eval_tree: str


class Executor(Protocol):
    jobs: int

    def map(self, tasks: Sequence[EvalTask]) -> list[EvalResult]: ...

    def close(self) -> None: ...


_REPOS: dict[str, Repo] = {}


def evaluate(task: EvalTask, repo: Repo | None = None) -> EvalResult:
    """Run one task (in whichever process it landed): the cached run, or a new one."""
    from datagit.api import harness
    from datagit.api.repo import Repo

    if repo is None:
        repo = _REPOS.get(task.path)
        if repo is None:
            repo = _REPOS[task.path] = Repo.open(task.path, readonly=True)
    run = harness.train(repo, task.commit, config=task.config, seed=task.seed)
    key = run.meta.get("key", {})
    return EvalResult(
        commit=task.commit,
        seed=task.seed,
        run_id=run.id,
        metrics=run.metrics,
        cached=run.cached,
        weights_sha256=str(run.meta.get("weights_sha256", "")),
        train_tree=str(key.get("train_tree", "")),
        eval_tree=str(key.get("eval_tree", "")),
    )


class InlineExecutor:
    """One task at a time in this process, with the caller's `Repo` (``--jobs 1``)."""

    jobs = 1

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    def map(self, tasks: Sequence[EvalTask]) -> list[EvalResult]:
        return [evaluate(t, self.repo) for t in tasks]

    def close(self) -> None:
        pass


def _init_worker(threads: int) -> None:
    from datagit.harness.influence_scores import limit_threads

    limit_threads(threads)


class LocalExecutor:
    """``jobs`` spawned worker processes, each with cores/jobs torch threads.

    Spawned, not forked: a forked child would inherit torch's thread pool and
    the parent's open git handles.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        threads = max(1, (os.cpu_count() or 1) // jobs)
        self.pool = ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(threads,),
        )

    def map(self, tasks: Sequence[EvalTask]) -> list[EvalResult]:
        return list(self.pool.map(evaluate, tasks))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# -- Ray ----------------------------------------------------------------------
LOCAL_ONLY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "no_proxy": "127.0.0.1,localhost,::1",
}


@contextlib.contextmanager
def _local_only_env() -> Iterator[None]:
    """Ray's start-up probes cloud metadata and usage servers; point them nowhere."""
    saved = {k: os.environ.get(k) for k in LOCAL_ONLY_ENV}
    os.environ.update(LOCAL_ONLY_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _check_reachable(address: str) -> None:
    """Fail in one line, before Ray's own long retries, when nothing answers there."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    host, port = parts.hostname, parts.port
    if not host or not port:
        raise InvalidInputError(
            f"--address {address!r} is not HOST:PORT", hint="e.g. --address 10.0.0.5:6379"
        )
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        raise DatagitError(
            f"cannot reach a Ray cluster at {address}: {exc.strerror or exc}",
            hint="start one with `ray start --head`, or drop --address to run Ray locally",
        ) from None


class RayExecutor:
    """Tasks as Ray remote functions: a cluster at ``address``, or a local Ray on 127.0.0.1.

    Workers must see the repository at the same path (a shared filesystem).
    A local Ray started here is shut down by `close`.
    """

    def __init__(self, jobs: int, address: str | None = None) -> None:
        if address is not None:
            _check_reachable(address)
        # set before Ray is imported (it reads some settings at import) and kept
        # until `close`: processes Ray starts later inherit it too
        self._env = contextlib.ExitStack()
        self._env.enter_context(_local_only_env())
        try:
            import ray
        except ImportError:
            self._env.close()
            raise DatagitError(
                "--executor ray needs Ray installed",
                hint='pip install "datagit[ray]"',
            ) from None
        self.ray = ray
        self.jobs = jobs
        self.started = not ray.is_initialized()
        self.temp_dir: str | None = None
        if self.started and address is None:
            # a private session folder: /tmp/ray may belong to someone else's Ray
            self.temp_dir = tempfile.mkdtemp(prefix="dgray-")
            ray.init(
                address="local",
                num_cpus=jobs,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                _temp_dir=self.temp_dir,
                log_to_driver=False,
                configure_logging=False,
            )
        elif self.started:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        threads = max(1, (os.cpu_count() or 1) // jobs)
        self.remote = ray.remote(num_cpus=1)(_ray_evaluate).options(
            runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}}
        )

    def map(self, tasks: Sequence[EvalTask]) -> list[EvalResult]:
        refs = [self.remote.remote(t) for t in tasks]
        return list(self.ray.get(refs))

    def close(self) -> None:
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        self._env.close()


def _ray_evaluate(task: EvalTask) -> EvalResult:
    _init_worker(int(os.environ.get("OMP_NUM_THREADS", "1")))
    return evaluate(task)


def make(
    repo: Repo, jobs: int = 1, executor: str = "local", address: str | None = None
) -> Executor:
    """The executor a hunt asked for (``--jobs``, ``--executor``, ``--address``)."""
    if jobs < 1:
        raise InvalidInputError("--jobs must be at least 1")
    if executor not in EXECUTORS:
        raise InvalidInputError(
            f"unknown executor {executor!r}", hint=f"use one of: {', '.join(EXECUTORS)}"
        )
    if address is not None and executor != "ray":
        raise InvalidInputError("--address is for --executor ray", hint="add --executor ray")
    if executor == "ray":
        return RayExecutor(jobs, address)
    return InlineExecutor(repo) if jobs == 1 else LocalExecutor(jobs)
