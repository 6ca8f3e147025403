"""The shared run cache: push and fetch carry runs, so a teammate's eval needs no training."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest
from harness_helpers import make_repo

from datagit.api import harness, remotes
from datagit.errors import RemoteError
from datagit.progress import Event
from datagit.storage.remote import ContentRemote


def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return str(path)


def test_a_pushed_run_answers_a_teammates_eval_without_training(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ada")
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(repo, "origin", url)
    run = harness.train(repo)
    assert not run.cached
    events: list[Event] = []
    assert remotes.push(repo, progress=events.append).runs == 1
    assert any(e.phase == "upload runs" and e.finished for e in events)
    assert remotes.push(repo).runs == 0  # the remote already has it

    bob = remotes.clone(url, tmp_path / "bob")
    again = harness.evaluate(bob)
    assert again.cached and again.id == run.id
    assert again.metrics == run.metrics
    assert again.outputs() == run.outputs()
    assert again.weights_path.read_bytes() == run.weights_path.read_bytes()
    assert (again.path / "run.json").read_bytes() == (run.path / "run.json").read_bytes()


def test_weights_already_on_the_remote_are_not_sent_again(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ada")
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(repo, "origin", url)
    run = harness.train(repo)
    content = ContentRemote(remotes.get_remote(repo, "origin").content or "")
    remotes.push(repo, content=content)
    before = content.stats.uploaded
    harness.train(repo, seed=run.meta["config"]["seed"] + 1)  # another run, other weights
    remotes.push(repo, content=content)
    # the new run's files, nothing of the first run's
    assert content.stats.uploaded - before == len(list(harness.show(repo, run.id).path.iterdir()))


def test_a_malformed_run_index_is_named_and_moves_no_ref(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ada")
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(repo, "origin", url)
    harness.train(repo)
    remotes.push(repo)
    content_dir = Path(remotes.get_remote(repo, "origin").content or "")
    index = next((content_dir / "runs").iterdir())
    bad = orjson.loads(index.read_bytes())
    bad["files"]["../../escape"] = "0" * 32
    index.write_bytes(orjson.dumps(bad))
    other = make_repo(tmp_path / "bob", commit=False)
    remotes.add_remote(other, "origin", url)
    with pytest.raises(RemoteError, match=rf"run index runs/{index.stem}.json .* is malformed"):
        remotes.fetch(other)
    assert other.git.refs("refs/remotes/") == {}
    assert harness.runs(other) == []


def test_a_run_whose_run_json_is_not_an_object_is_refused(tmp_path: Path) -> None:
    from datagit.storage.content import address

    repo = make_repo(tmp_path / "ada")
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(repo, "origin", url)
    harness.train(repo)
    remotes.push(repo)
    content = ContentRemote(remotes.get_remote(repo, "origin").content or "")
    garbage = b"[1, 2, 3]"
    content.upload([(address(garbage), garbage)])
    (run_id,) = content.run_ids()
    index = orjson.loads(content.get_run_index(run_id))
    index["files"]["run.json"] = address(garbage)
    content.put_run_index(run_id, orjson.dumps(index))
    other = make_repo(tmp_path / "bob", commit=False)
    remotes.add_remote(other, "origin", url)
    with pytest.raises(RemoteError, match=rf"run {run_id} .*: its run.json is not a JSON object"):
        remotes.fetch(other)
    assert harness.runs(other) == [] and other.git.refs("refs/remotes/") == {}


def test_a_partial_clone_fetches_the_one_run_its_eval_needs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ada")
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(repo, "origin", url)
    run = harness.train(repo)
    other = harness.train(repo, seed=run.meta["config"]["seed"] + 1)  # a run bob never asks for
    remotes.push(repo)

    bob = remotes.clone(url, tmp_path / "bob", no_content=True)
    assert harness.runs(bob) == []  # history only: no weights or outputs came with it
    assert remotes.fetch(bob).runs == 0
    again = harness.evaluate(bob)
    assert again.cached and again.id == run.id
    assert again.weights_path.read_bytes() == run.weights_path.read_bytes()
    assert [r.id for r in harness.runs(bob)] == [run.id]  # that run, not the other
    assert other.id != run.id


def test_a_partial_clone_trains_when_its_promisor_is_gone(tmp_path: Path) -> None:
    import shutil

    repo = make_repo(tmp_path / "ada")
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(repo, "origin", url)
    run = harness.train(repo)
    remotes.push(repo)
    bob = remotes.clone(url, tmp_path / "bob", no_content=True)
    bob.store.prefetch(remotes.needed_content(bob, [bob.head() or ""]))  # every byte it trains on
    shutil.rmtree(remotes.get_remote(repo, "origin").content or "")
    again = harness.evaluate(bob)  # offline: trains as it would without a remote
    assert not again.cached and again.id == run.id
