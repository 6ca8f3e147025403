"""Parquet tables: the same row-level history as CSV, decoded one row group at a time."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from datagit import Repo
from datagit.api import history, workspace
from datagit.core import manifest, parquet, parquetlines
from datagit.core.config import DatasetConfig
from datagit.core.layouts import Hasher
from datagit.core.records import Record, decode_lines, encode_lines
from datagit.core.tables import RowMaker
from datagit.errors import InvalidInputError
from datagit.storage.git import GitStore

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def digits_table(relabel: dict[int, int] | None = None, n: int = 120) -> bytes:
    """scikit-learn's digits as a Parquet table: id, label, annotator and 64 pixel columns."""
    from sklearn.datasets import load_digits

    d = load_digits()
    relabel = relabel or {}
    cols: dict[str, list] = {
        "id": [f"d{i:04d}" for i in range(n)],
        "label": [relabel.get(i, int(d.target[i])) for i in range(n)],
        "rater": ["ada" if i % 2 else "bob" for i in range(n)],
    }
    for p in range(64):
        cols[f"p{p}"] = [float(d.data[i][p]) for i in range(n)]
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf, row_group_size=32)  # four row groups
    return buf.getvalue()


@pytest.fixture
def pq_repo(tmp_repo: Repo) -> Repo:
    (tmp_repo.workdir / "digits.parquet").write_bytes(digits_table())
    tmp_repo.add_dataset(
        DatasetConfig(name="digits", layout="table", path="digits.parquet", annotator="rater")
    )
    tmp_repo.commit("digits as parquet", all=True)
    return tmp_repo


def test_rows_become_records_with_typed_fields(pq_repo: Repo) -> None:
    rec = pq_repo.record("digits", "d0003")
    assert rec.label == 3 and rec.annotator == "ada"
    assert rec.fields is not None and rec.fields["p3"] == 15.0 and len(rec.fields) == 64
    assert pq_repo.dataset_config("digits").table_format == "parquet"


def test_diff_and_blame_are_row_level(pq_repo: Repo) -> None:
    (pq_repo.workdir / "digits.parquet").write_bytes(digits_table({5: 9, 7: 1}))
    (ds,) = [d for d in pq_repo.status().datasets if d.name == "digits"]
    assert sorted((c.id, c.kind) for c in ds.unstaged) == [
        ("d0005", "relabeled"),
        ("d0007", "relabeled"),
    ]
    pq_repo.commit("relabel two", all=True)
    changes = pq_repo.changes("HEAD~1", "HEAD")["digits"]
    assert [(c.id, c.old.label, c.new.label) for c in changes] == [  # type: ignore[union-attr]
        ("d0005", 5, 9),
        ("d0007", 7, 1),
    ]
    events = history.example_log(pq_repo, "digits", "d0005")
    assert [e.kind for e in events] == ["relabeled", "added"]


def test_an_unchanged_parquet_table_is_a_stat(pq_repo: Repo) -> None:
    state = pq_repo.tables.load("digits")
    assert state is not None and not state.has_lines  # no lines: a change is read whole
    (ds,) = [d for d in pq_repo.status().datasets if d.name == "digits"]
    assert ds.unstaged == []


def test_checkout_writes_a_parquet_file_with_the_same_records(pq_repo: Repo) -> None:
    first = pq_repo.head()
    (pq_repo.workdir / "digits.parquet").write_bytes(digits_table({5: 9}))
    pq_repo.commit("relabel", all=True)
    assert first is not None
    workspace.checkout(pq_repo, first)
    table = pq.read_table(pq_repo.workdir / "digits.parquet")
    assert table.num_rows == 120
    assert dict(zip(table["id"].to_pylist(), table["label"].to_pylist(), strict=True))["d0005"] == 5
    assert pq_repo.status().clean


def test_rows_are_decoded_one_row_group_at_a_time() -> None:
    cfg = DatasetConfig(name="t", layout="table", path="t.parquet")
    rows = parquet.rows(cfg, digits_table())
    first = next(rows)
    assert first[0] == 1 and first[2]["id"] == "d0000"
    assert sum(1 for _ in rows) == 119


def test_odd_values_become_json(tmp_path: Path) -> None:
    import datetime

    buf = io.BytesIO()
    table = {
        "id": ["a"],
        "label": ["x"],
        "when": [datetime.date(2026, 1, 2)],
        "blob": [b"\x00\x01"],
        "tags": [["p", "q"]],
    }
    pq.write_table(pa.table(table), buf)
    cfg = DatasetConfig(name="t", layout="table", path="t.parquet")
    (_, _, row), *_ = parquet.rows(cfg, buf.getvalue())
    assert row == {
        "id": "a",
        "label": "x",
        "when": "2026-01-02",
        "blob": "AAE=",
        "tags": ["p", "q"],
    }


def test_a_broken_parquet_file_is_refused_and_nothing_changes(pq_repo: Repo) -> None:
    stage = pq_repo.stage_tree()
    good = digits_table({5: 9})
    (pq_repo.workdir / "digits.parquet").write_bytes(good[: len(good) // 2])
    with pytest.raises(InvalidInputError, match=r"digits.parquet: not a readable Parquet file"):
        pq_repo.add(["digits"])
    assert pq_repo.stage_tree() == stage


def test_a_duplicate_id_names_its_row(pq_repo: Repo) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": ["a", "b", "a"], "label": ["x", "y", "z"]}), buf)
    (pq_repo.workdir / "digits.parquet").write_bytes(buf.getvalue())
    with pytest.raises(InvalidInputError, match=r"row 3: duplicate id 'a' \(first on row 1\)"):
        pq_repo.add(["digits"])


def parquet_bytes(cols: dict, groups: int = 3) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf, row_group_size=groups)
    return buf.getvalue()


def row_by_row(cfg: DatasetConfig, data: bytes, workdir: Path) -> list[Record]:
    maker = RowMaker(cfg, Hasher(workdir, None))  # type: ignore[arg-type]
    return sorted((maker(r, n) for _, n, r in parquet.rows(cfg, data)), key=lambda r: r.id)


PLAIN_TABLES = [
    (
        {
            "id": ["b", "a", "c/d", "é", "z"],
            "label": ["x", "", None, "y", "q"],
            "ann": ["u", "", None, "v", "w\x7f"],
            "f": [1.5, float("nan"), None, 1e20, -0.0],
            "i": [1, None, 3, 2**62, -5],
            "s": ["a,b", "q/", None, "\u2028", "ü"],
            "b": [True, False, None, True, False],
        },
        "ann",
    ),
    (
        {
            "id": ["a", "b", "c"],
            "label": ["x", None, ""],
            "f32": pa.array([1.1, None, 2.5], pa.float32()),
            "n": pa.array([None, None, None], pa.null()),
            "u": pa.array([1, 2, None], pa.uint8()),
        },
        "label",
    ),
    ({"id": [5, 3, 10, 1, 2], "label": [1, 2, 3, 4, 5]}, None),
    ({"id": ["a", "b"], "label": [1.5, None], "zz": [1, 2], "aa": ["x", "y"]}, "absent"),
    ({"id": ["a b", ".x"], "label": [True, False]}, None),
    # floats at orjson's edges (no value is ever a Python object on the bulk path)
    (
        {
            "id": [f"f{i}" for i in range(10)],
            "label": ["a", "b"] * 5,
            "v": [
                float("inf"),
                float("-inf"),
                1e-7,
                5e-324,
                1.7976931348623157e308,
                0.1,
                None,
                float("nan"),
                100.0,
                1e16,
            ],
            "w": pa.array([0.25, None, 3.5, -1.0, 7.0, 0.1, 2.0, 1e-3, 9.5, 8.0], pa.float32()),
        },
        None,
    ),
    # every row has an annotator and a label: no per-row choice; fields not in key order
    (
        {"id": ["b", "a"], "label": ["x", "y"], "who": ["p", "q"], "z": [0.5, 2.0], "c": [1, 2]},
        "who",
    ),
]


@pytest.mark.parametrize(("cols", "annotator"), PLAIN_TABLES)
def test_bulk_lines_are_the_records_row_by_row_makes(
    cols: dict, annotator: str | None, tmp_path: Path
) -> None:
    data = parquet_bytes(cols)
    cfg = DatasetConfig(name="t", layout="table", path="t.parquet", annotator=annotator)
    got = parquetlines.encode_rows(cfg, data)
    assert got is not None
    want = row_by_row(cfg, data, tmp_path)
    assert [got.ids[i] for i in got.order] == [r.id for r in want]
    assert got.keys().tolist() == [int(manifest.shard_key(i), 16) for i in got.ids]
    text = b"".join(got.bodies(got.order, [(0, len(want))]))
    assert text == b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in want)
    assert text == encode_lines(want)
    assert sorted(decode_lines(got.text()), key=lambda r: r.id) == decode_lines(text)


@pytest.mark.parametrize(
    ("cols", "content"),
    [
        ({"id": ["a", "b", "a"], "label": ["x", "y", "z"]}, None),  # duplicate: rows name it
        ({"id": ["../a", "b"], "label": ["x", "y"]}, None),
        ({"id": ["a", None], "label": ["x", "y"]}, None),
        ({"id": ["a", "b"], "label": ['say "hi"', "y"]}, None),  # text JSON must escape
        ({"id": ["a", "b"], "label": ["x", "y"], "note": ["tab\there", "back\\slash"]}, None),
        ({"id": ["a", "b"], "label": ["x", "y"], "tags": [["p"], ["q"]]}, None),
        ({"id": ["a", "b"], "label": ["x", "y"], "text": ["t", "u"]}, "text"),
        ({"id": ["a", "b"], "name": ["x", "y"]}, None),  # no label column
    ],
)
def test_anything_unusual_is_left_to_the_row_by_row_read(cols: dict, content: str | None) -> None:
    cfg = DatasetConfig(name="t", layout="table", path="t.parquet", content=content)
    assert parquetlines.encode_rows(cfg, parquet_bytes(cols)) is None


def test_a_first_commit_in_bulk_writes_the_tree_rows_write(tmp_repo: Repo) -> None:
    cols, annotator = PLAIN_TABLES[0]
    data = parquet_bytes(cols)
    (tmp_repo.workdir / "t.parquet").write_bytes(data)
    cfg = DatasetConfig(name="t", layout="table", path="t.parquet", annotator=annotator)
    tmp_repo.add_dataset(cfg)
    tmp_repo.commit("bulk", all=True)
    tree = tmp_repo.datasets_at("HEAD")["t"]
    assert tree == manifest.write_dataset(tmp_repo.git, row_by_row(cfg, data, tmp_repo.workdir))
    assert tmp_repo.record("t", "é").annotator == "v"  # type: ignore[union-attr]
    (ds,) = [d for d in tmp_repo.status().datasets if d.name == "t"]
    assert ds.unstaged == []


@pytest.mark.parametrize("n", [1, 300, 5000])
@pytest.mark.parametrize("in_order", [False, True])
def test_bulk_shards_are_the_shards_records_make(n: int, in_order: bool, tmp_path: Path) -> None:
    """Across fan-outs (one shard, 16, 256), in any file order (a file already in id
    order is not sorted again)."""
    ids = [f"r{(i if in_order else (i * 7919) % n):05d}" for i in range(n)]
    data = parquet_bytes({"id": ids, "label": [f"c{i % 3}" for i in range(n)]}, groups=128)
    cfg = DatasetConfig(name="t", layout="table", path="t.parquet")
    got = parquetlines.encode_rows(cfg, data)
    assert got is not None
    git = GitStore.init(tmp_path / "g.git")
    with git.batch():
        tree = manifest.write_encoded(git, got)
    assert tree == manifest.write_dataset(git, row_by_row(cfg, data, tmp_path))


def test_a_first_commit_with_a_duplicate_id_names_its_row_and_commits_nothing(
    tmp_repo: Repo,
) -> None:
    (tmp_repo.workdir / "t.parquet").write_bytes(
        parquet_bytes({"id": ["a", "b", "a"], "label": ["x", "y", "z"]})
    )
    tmp_repo.add_dataset(DatasetConfig(name="t", layout="table", path="t.parquet"))
    head = tmp_repo.head()
    with pytest.raises(InvalidInputError, match=r"t.parquet row 3: duplicate id 'a'"):
        tmp_repo.commit("dup", all=True)
    assert tmp_repo.head() == head


@pytest.mark.parametrize("slice_rows", [1, 7, 1000])
def test_lines_made_slice_by_slice_are_the_shards_records_make(
    slice_rows: int, tmp_path: Path
) -> None:
    """Slices of one row (each shard larger than a slice), of a few shards, of all."""
    n = 700
    cols = {
        "id": [f"r{(i * 7919) % n:05d}" for i in range(n)],
        "label": [f"c{i % 3}" for i in range(n)],
        "who": [f"a{i % 5}" for i in range(n)],
        "x": [i * 0.5 for i in range(n)],
        "y": [i % 97 for i in range(n)],
    }
    data = parquet_bytes(cols, groups=64)
    cfg = DatasetConfig(name="t", layout="table", path="t.parquet", annotator="who")
    got = parquetlines.encode_rows(cfg, data, slice_rows=slice_rows)
    assert got is not None
    want = row_by_row(cfg, data, tmp_path)
    git = GitStore.init(tmp_path / "g.git")
    with git.batch():
        assert manifest.write_encoded(git, got) == manifest.write_dataset(git, want)
    assert sorted(decode_lines(got.text()), key=lambda r: r.id) == want


def test_a_parquet_table_commits_the_tree_its_json_lines_twin_commits(tmp_repo: Repo) -> None:
    """The same rows as Parquet (bulk lines) and as JSON Lines (the row-by-row read every
    text table takes): the same records, byte for byte, so the same dataset tree."""
    data = digits_table()
    rows = pq.read_table(io.BytesIO(data)).to_pylist()
    (tmp_repo.workdir / "digits.parquet").write_bytes(data)
    (tmp_repo.workdir / "digits.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    assert parquetlines.encode_rows(
        DatasetConfig(name="p", layout="table", path="digits.parquet"), data
    )
    for name, path in [("pq", "digits.parquet"), ("jl", "digits.jsonl")]:
        tmp_repo.add_dataset(DatasetConfig(name=name, layout="table", path=path, annotator="rater"))
    tmp_repo.commit("twins", all=True)
    trees = tmp_repo.datasets_at("HEAD")
    assert trees["pq"] == trees["jl"]
    assert tmp_repo.record("pq", "d0007") == tmp_repo.record("jl", "d0007")


_BULK_READ = (
    "import sys\n"
    "from pathlib import Path\n"
    "from datagit import process\n"
    "if sys.argv[1] == 'cli':\n"
    "    process.own()\n"
    "from datagit.core import manifest, parquetlines\n"
    "from datagit.core.config import DatasetConfig\n"
    "from datagit.storage.git import GitStore\n"
    "cfg = DatasetConfig(name='t', layout='table', path='t.parquet', annotator='rater')\n"
    "got = parquetlines.encode_rows(cfg, Path('t.parquet').read_bytes())\n"
    "git = GitStore.init(Path('g.git'))\n"
    "with git.batch():\n"
    "    tree = manifest.write_encoded(git, got)\n"
    "from datagit.core import parquetdelta\n"
    "assert parquetdelta.committed_map(git, tree, 'd') is not None\n"
    "import os\n"
    "from threadpoolctl import threadpool_info\n"
    "blas = [p['num_threads'] for p in threadpool_info() if p['internal_api'] == 'openblas']\n"
    "print('pandas' in sys.modules, os.environ.get('OPENBLAS_NUM_THREADS'), blas[:1])\n"
)


@pytest.mark.parametrize("owner", ["cli", "library"])
def test_a_bulk_read_imports_no_pandas(tmp_path: Path, owner: str) -> None:
    """pyarrow imports pandas (~0.25 s) on any Python value it converts; the bulk path
    (and the map made from a committed tree) makes every Arrow value from buffers.
    Under the CLI numpy's BLAS, loaded by pyarrow, starts no spinning threads (nothing
    multiplies) and the setting is not left for child processes; in a library user's
    process it is left alone."""
    import os
    import subprocess
    import sys

    (tmp_path / "t.parquet").write_bytes(digits_table())
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", _BULK_READ, owner],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    pandas, variable, blas = out.stdout.strip().split(maxsplit=2)
    assert (pandas, variable) == ("False", "None")
    if owner == "cli":
        assert blas == "[1]"
    elif os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        assert blas != "[1]"


def test_a_damaged_row_group_is_named_and_the_first_commit_writes_nothing(
    tmp_repo: Repo,
) -> None:
    """The footer reads, a row group's pages do not: the bulk read names the group."""
    data = bytearray(parquet_bytes({"id": [f"r{i}" for i in range(900)], "label": ["x"] * 900}))
    data[40:200] = b"\xff" * 160  # inside the first row group's pages
    (tmp_repo.workdir / "t.parquet").write_bytes(bytes(data))
    tmp_repo.add_dataset(DatasetConfig(name="t", layout="table", path="t.parquet"))
    head, stage = tmp_repo.head(), tmp_repo.stage_tree()
    with pytest.raises(InvalidInputError, match=r"t.parquet row group 0: unreadable"):
        tmp_repo.commit("damaged", all=True)
    assert (tmp_repo.head(), tmp_repo.stage_tree()) == (head, stage)
