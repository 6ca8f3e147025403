"""Executors: a real local Ray bound to 127.0.0.1 trains into the same run cache."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from datagit import Repo
from datagit.api import executors, harness
from datagit.errors import DatagitError, InvalidInputError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "digits"))
from history import regression_history


def _listening(pids: set[int]) -> list[str]:
    import psutil

    return [
        f"{c.laddr.ip}:{c.laddr.port} (pid {c.pid})"
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]


@pytest.mark.slow
def test_ray_trains_into_the_same_cache_and_listens_only_on_loopback(tmp_path: Path) -> None:
    if importlib.util.find_spec("ray") is None:  # not imported here: Ray must start as datagit does
        pytest.skip("ray is not installed (pip install 'datagit[ray]')")
    import psutil

    h = regression_history(tmp_path / "ws", commits=2, culprit=2, base=300)
    repo = Repo.open(h.root)
    cfg = harness.load_config(repo)
    tasks = [executors.EvalTask(str(h.root), c, cfg, cfg.seed) for c in h.commits[1:]]
    pool = executors.make(repo, jobs=2, executor="ray")
    try:
        results = pool.map(tasks)
        me = psutil.Process()
        pids = {me.pid, *(p.pid for p in me.children(recursive=True))}
        sockets = _listening(pids)
    finally:
        pool.close()
    assert [r.commit for r in results] == h.commits[1:] and not any(r.cached for r in results)
    assert sockets, "Ray listens somewhere; the check must see it"
    beyond = [s for s in sockets if not s.startswith(("127.0.0.1:", "::1:", "::ffff:127.0.0.1:"))]
    assert beyond == [], f"listening beyond loopback: {beyond}"
    for r in results:  # the runs landed in the repository's cache
        run = harness.train(repo, r.commit, config=cfg)
        assert run.cached and run.id == r.run_id and run.meta["weights_sha256"] == r.weights_sha256
    import ray

    assert not ray.is_initialized()


def test_executor_choices_are_checked(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "ws")
    with pytest.raises(InvalidInputError, match="--jobs must be at least 1"):
        executors.make(repo, jobs=0)
    with pytest.raises(InvalidInputError, match="unknown executor 'dask'"):
        executors.make(repo, executor="dask")
    with pytest.raises(InvalidInputError, match="--address is for --executor ray"):
        executors.make(repo, address="127.0.0.1:6379")
    with pytest.raises(DatagitError, match=r"cannot reach a Ray cluster at 127\.0\.0\.1:1"):
        executors.make(repo, executor="ray", address="127.0.0.1:1")
    shutil.rmtree(tmp_path / "ws")
