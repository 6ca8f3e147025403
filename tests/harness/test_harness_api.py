"""The Python API: torch datasets over the store, hooks, user entry points, other models."""

from __future__ import annotations

from pathlib import Path

import torch
from harness_helpers import FAST, make_repo, set_harness
from torch.utils.data import DataLoader

from datagit import Repo
from datagit.api import harness
from datagit.core.config import DatasetConfig
from datagit.core.recordarray import RecordArray
from datagit.harness.data import freeze_inherited
from datagit.harness.train import Hooks, Step


def test_to_torch_reads_the_store_with_workers(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    view = repo.dataset("train", "HEAD")
    ds = view.to_torch()
    assert len(ds) == 240 and ds.classes == [str(d) for d in range(10)]
    x, y = ds[0]
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32 and 0 <= int(y) < 10
    # the workspace is not read: the bytes come from the content store
    for p in (repo.workdir / "train").rglob("*.png"):
        p.unlink()
    loader = DataLoader(ds, batch_size=64, num_workers=2, worker_init_fn=freeze_inherited)
    xs, ys = zip(*loader, strict=True)
    assert torch.cat(xs).shape == (240, 3, 8, 8)
    assert torch.cat(ys).tolist() == ds.targets
    # records packed in one block the workers share, decoded one at a time
    assert isinstance(ds.records, RecordArray) and list(ds.records) == view.records
    assert ds.ids == [r.id for r in view.records]


def test_to_torch_with_a_transform_and_the_iterable_variant(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    view = repo.dataset("eval")
    sizes = view.to_torch(transform=lambda img: torch.tensor(img.size))
    assert sizes[0][0].tolist() == [8, 8]
    it = repo.dataset("eval").to_torch_iterable(image_mode="L")
    ids_in_order = [y for _, y in DataLoader(it, batch_size=None, num_workers=2)]
    assert sorted(ids_in_order) == sorted(int(t) for t in it.inner.targets)
    assert [int(y) for _, y in it] == it.inner.targets


class Recorder(Hooks):
    def __init__(self) -> None:
        self.steps: list[tuple[int, int, int, int]] = []
        self.grads_seen = self.momentum_seen = 0
        self.epochs: list[float] = []
        self.started = self.ended = False

    def on_train_start(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.started = True

    def before_step(self, step: Step) -> None:
        assert len(step.ids) == len(step.losses) == len(step.targets)
        assert abs(float(step.losses.mean()) - step.loss) < 1e-6
        self.grads_seen += all(p.grad is not None for p in step.model.parameters())
        self.steps.append((step.epoch, step.step, step.batch, len(step.ids)))

    def after_step(self, step: Step) -> None:
        states = step.optimizer.state.values()
        self.momentum_seen += all("momentum_buffer" in s for s in states)

    def on_epoch_end(self, epoch: int, mean_loss: float) -> None:
        self.epochs.append(mean_loss)

    def on_train_end(self, model: torch.nn.Module) -> None:
        self.ended = True


def test_hooks_see_every_step_and_do_not_change_the_result(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws")
    plain = harness.train(repo)
    rec = Recorder()
    hooked = harness.train(repo, hooks=[rec])
    assert not hooked.cached  # hooks need the loop to run
    assert hooked.meta["weights_sha256"] == plain.meta["weights_sha256"]
    assert rec.started and rec.ended and len(rec.epochs) == 3
    assert len(rec.steps) == 3 * 8  # 240 examples, batches of 32
    assert [s[1] for s in rec.steps] == list(range(24))
    assert sum(s[3] for s in rec.steps) == 3 * 240
    assert rec.grads_seen == rec.momentum_seen == 24
    assert rec.epochs == hooked.meta["epoch_losses"]


MODELS = """
from torch import nn

def build(num_classes, input_shape):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))

def to_tensor(img):
    import torch
    import numpy as np
    return torch.tensor(np.array(img), dtype=torch.float32).view(1, 8, 8) / 255
"""


def test_user_entry_points_and_their_code_version(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "ws",
        FAST.replace('"logreg"', '"usermodels:build"\ntransform = "usermodels:to_tensor"'),
    )
    (repo.workdir / "usermodels.py").write_text(MODELS)
    run = harness.train(repo)
    assert run.metrics["accuracy"] > 0.7 and run.meta["input_shape"] == [1, 8, 8]
    (repo.workdir / "usermodels.py").write_text(MODELS + "\n# tuned\n")
    assert harness.plan(repo).key.id != run.id  # edited code: a new run
    assert not harness.train(repo).cached


def test_cnn_with_adam_and_a_schedule(tmp_path: Path) -> None:
    cfg = FAST.replace('"logreg"', '"cnn"\nchannels = [8, 16]\nschedule = "cosine"')
    cfg = cfg.replace("epochs = 3", "epochs = 10")
    repo = make_repo(tmp_path / "ws", cfg.replace("lr = 0.1", 'lr = 0.01\noptimizer = "adam"'))
    run = harness.train(repo)
    assert run.meta["device"] == "cpu" and run.metrics["accuracy"] > 0.5
    assert run.meta["epoch_losses"][-1] < run.meta["epoch_losses"][0]
    assert run.weights()["0.weight"].shape == (8, 1, 3, 3)


def test_table_dataset_with_numeric_columns(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    ws = tmp_path / "ws"
    repo = Repo.init(ws)
    header = "id,label," + ",".join(f"px{i}" for i in range(64))
    for name, rows in (("train", range(0, 400)), ("eval", range(400, 500))):
        lines = [header] + [
            f"n{i:04d},{digits.target[i]}," + ",".join(str(int(v)) for v in digits.data[i])
            for i in rows
        ]
        (ws / f"{name}.csv").write_text("\n".join(lines) + "\n")
        repo.add_dataset(DatasetConfig(name=name, layout="table", path=f"{name}.csv"))
    set_harness(repo, FAST.replace('image_mode = "L"', "std = 16.0"))
    repo.commit("digits as a table", all=True)
    run = harness.train(repo)
    assert run.meta["input_shape"] == [64]
    assert run.metrics["accuracy"] > 0.7
    mlp = harness.train(repo, config=harness.load_config(repo, model="mlp"))
    assert mlp.id != run.id and mlp.metrics["accuracy"] > 0.7


def test_to_torch_in_a_partial_clone_fetches_what_it_reads(tmp_path: Path) -> None:
    """A `--no-content` clone holds only HEAD's bytes; training on an older revision
    fetches the rest (the reader reopens the store without the on-demand fetch)."""
    import subprocess

    from datagit.api import remotes

    repo = make_repo(tmp_path / "src", n=60)
    dropped = sorted((repo.workdir / "train").rglob("*.png"))[:10]
    for p in dropped:
        p.unlink()
    repo.commit("drop 10", all=True)
    url = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(url)], check=True)
    remotes.add_remote(repo, "origin", str(url))
    remotes.push(repo, "origin")
    part = remotes.clone(str(url), tmp_path / "part", no_content=True)
    before = {r.content for r in repo.records("train", "HEAD~1")}
    assert not before <= set(part.store.keys())  # some of it was dropped at HEAD
    ds = part.dataset("train", "HEAD~1").to_torch()
    assert len(ds) == len(before) and all(ds[i][0].shape for i in range(len(ds)))
    assert before <= set(part.store.keys())
