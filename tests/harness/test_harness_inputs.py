"""Bad input: each gives one clear error naming what is wrong, and trains nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness_helpers import FAST, make_repo, set_harness
from testkit import Cli, digits_pngs

from datagit.api import harness
from datagit.core.config import DatasetConfig
from datagit.errors import InvalidInputError
from datagit.harness.train import TrainingError


def _error(repo_root: Path, *args: str) -> str:
    result = Cli(repo_root)(*args, ok=False)
    assert result.exit_code == 1, result.output
    return result.output


def test_missing_dataset(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", FAST.replace('eval = "eval"', 'eval = "holdout"'))
    out = _error(repo.workdir, "eval")
    assert "[harness] eval = 'holdout': no dataset 'holdout' at HEAD" in out
    assert "hint: datasets there: eval, train" in out
    assert harness.runs(repo) == []


def test_no_harness_section(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", "")
    assert "no [harness] section in datagit.toml" in _error(repo.workdir, "train")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('model = "resnet"', "unknown model 'resnet'"),
        ('model = "no_such_module:build"', "module 'no_such_module' not found"),
        ('optimizer = "rmsprop"', "optimizer = 'rmsprop' is not supported"),
        ("epochs = 0", "epochs must be at least 1"),
        ('colour = "blue"', "unknown key 'colour'"),
        ('lr = "fast"', "lr = 'fast' has the wrong type"),
    ],
)
def test_bad_config(tmp_path: Path, setting: str, message: str) -> None:
    key = setting.split(" = ")[0]
    lines = [ln for ln in FAST.splitlines() if not ln.startswith(key + " ")]
    repo = make_repo(tmp_path / "ws", "\n".join(lines) + "\n" + setting + "\n")
    assert message in _error(repo.workdir, "eval")


def test_entry_point_without_that_function(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", FAST.replace('"logreg"', '"mymodels:nothere"'))
    (repo.workdir / "mymodels.py").write_text("def build(num_classes, input_shape):\n    pass\n")
    out = _error(repo.workdir, "eval")
    assert "entry point 'mymodels:nothere': mymodels has no function 'nothere'" in out


def test_entry_point_not_returning_a_module(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", FAST.replace('"logreg"', '"mymodels:build"'))
    (repo.workdir / "mymodels.py").write_text(
        "def build(num_classes, input_shape):\n    return 1\n"
    )
    assert "returned int, not a torch.nn.Module" in _error(repo.workdir, "eval")


def test_eval_label_unseen_in_train(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", commit=False)
    (repo.workdir / "eval/ten").mkdir()
    (repo.workdir / "eval/ten/t1.png").write_bytes(digits_pngs(1)[0][0])
    repo.commit("a class train never has", all=True)
    out = _error(repo.workdir, "eval")
    assert "eval/t1.png has label 'ten', which the training data never has" in out
    set_harness(repo, FAST + 'unseen_labels = "wrong"\n')
    run = harness.train(repo)
    assert run.metrics["per_class_accuracy"]["ten"] == 0.0
    row = next(o for o in run.outputs() if o["id"] == "t1.png")
    assert row["loss"] is None and row["pred"] != "ten"


def test_undecodable_image_is_named(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", commit=False)
    (repo.workdir / "train/4/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    repo.commit("a broken image", all=True)
    with pytest.raises(
        InvalidInputError,
        match=r"train/broken.png \(label '4'\): cannot decode image \(not a known image format\)",
    ):
        harness.train(repo)
    assert "hint: fix or remove that file" in _error(repo.workdir, "train")


def test_empty_dataset(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", commit=False)
    (repo.workdir / "holdout").mkdir()
    repo.add_dataset(DatasetConfig(name="holdout", layout="imagefolder", path="holdout"))
    repo.commit("an empty holdout", all=True)
    set_harness(repo, FAST.replace('eval = "eval"', 'eval = "holdout"'))
    assert "eval dataset 'holdout'" in _error(repo.workdir, "eval")
    assert "has no examples" in _error(repo.workdir, "eval")


def test_images_of_different_sizes_need_image_size(tmp_path: Path) -> None:
    import io

    from PIL import Image

    repo = make_repo(tmp_path / "ws", commit=False)
    buf = io.BytesIO()
    Image.new("L", (12, 9)).save(buf, format="PNG")
    (repo.workdir / "train/5/big.png").write_bytes(buf.getvalue())
    repo.commit("one bigger image", all=True)
    assert "set [harness] image_size" in _error(repo.workdir, "eval")
    set_harness(repo, FAST + "image_size = 8\n")
    assert harness.train(repo).metrics["accuracy"] > 0.5


def _table(rows: list[list[object]]) -> str:
    header = "id,label," + ",".join(f"f{i}" for i in range(len(rows[0]) - 2))
    return header + "\n" + "\n".join(",".join(str(v) for v in row) for row in rows) + "\n"


def test_nan_loss_names_step_and_batch(tmp_path: Path) -> None:
    from datagit import Repo

    ws = tmp_path / "ws"
    repo = Repo.init(ws)
    rows = [[f"r{i:03d}", i % 2, i % 7, (i * 3) % 5] for i in range(64)]
    rows[40][3] = "nan"
    (ws / "train.csv").write_text(_table(rows))
    (ws / "eval.csv").write_text(_table(rows[:8]))
    for name in ("train", "eval"):
        repo.add_dataset(DatasetConfig(name=name, layout="table", path=f"{name}.csv"))
    set_harness(repo, FAST.replace("batch_size = 32", "batch_size = 16"))
    repo.commit("tables", all=True)
    with pytest.raises(
        TrainingError, match=r"loss is nan at step \d+ \(epoch 1, batch \d+\)"
    ) as exc:
        harness.train(repo)
    assert exc.value.message.endswith("examples with a non-finite loss: r040")
    assert harness.runs(repo) == []


def test_a_parquet_table_trains_like_a_csv_one(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from datagit import Repo

    ws = tmp_path / "ws"
    repo = Repo.init(ws)
    rows = [[f"r{i:03d}", i % 2, (i % 2) * 3 + i % 3, (i * 3) % 5] for i in range(64)]
    for name, part in (("train", rows), ("eval", rows[:16])):
        cols = {"id": [r[0] for r in part], "label": [r[1] for r in part]}
        cols.update({f"f{j}": [float(r[j + 2]) for r in part] for j in range(2)})
        pq.write_table(pa.table(cols), ws / f"{name}.parquet", row_group_size=16)
        repo.add_dataset(DatasetConfig(name=name, layout="table", path=f"{name}.parquet"))
    set_harness(repo, FAST.replace("batch_size = 32", "batch_size = 16"))
    repo.commit("parquet tables", all=True)
    result = harness.train(repo)
    assert result.metrics["accuracy"] > 0.75  # chance is 0.5; f0 separates the labels
