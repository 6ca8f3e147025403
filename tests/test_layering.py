"""The architecture as tests: import-linter's layer contracts, no torch on the CLI path, and a
curated `datagit.__all__` that names every public type and nothing that does not exist."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import datagit
import datagit.errors

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_status_does_not_import_torch(tmp_repo: datagit.Repo) -> None:
    code = (
        "import sys\n"
        "from datagit.cli import cli\n"
        f"cli(['-C', {str(tmp_repo.workdir)!r}, 'status'], standalone_mode=False)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'sklearn'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_all_names_exist() -> None:
    for name in datagit.__all__:
        assert hasattr(datagit, name), name
    assert sorted(datagit.__all__) == sorted(set(datagit.__all__))


def test_all_is_complete() -> None:
    errors = {
        name
        for name, obj in vars(datagit.errors).items()
        if inspect.isclass(obj) and issubclass(obj, datagit.errors.DatagitError)
    }
    public_types = {
        "Repo",  # Repo.open / Repo.init
        "Record",  # repo.records()
        "Status",  # repo.status()
        "DatasetStatus",  # Status.datasets
        "Change",  # repo.changes(), DatasetStatus.staged
        "CommitInfo",  # repo.log(), repo.commit()
        "Signature",  # CommitInfo.author, commit(author=...)
        "Config",  # repo.config
        "DatasetConfig",  # repo.add_dataset()
        "DatasetView",  # repo.dataset()
        "STAGED",
        "WORKSPACE",
        "__version__",
    }
    missing = (errors | public_types) - set(datagit.__all__)
    assert not missing, f"missing from datagit.__all__: {sorted(missing)}"


def test_public_names_are_the_objects_the_api_returns(digits_repo: datagit.Repo) -> None:
    info = digits_repo.commit("one", all=True)
    assert isinstance(info, datagit.CommitInfo) and isinstance(info.author, datagit.Signature)
    assert isinstance(next(iter(digits_repo.records("train"))), datagit.Record)
    st = digits_repo.status()
    assert isinstance(st, datagit.Status)
    assert all(isinstance(d, datagit.DatasetStatus) for d in st.datasets)
    assert isinstance(digits_repo.dataset("train"), datagit.DatasetView)
    assert isinstance(digits_repo.config, datagit.Config)
