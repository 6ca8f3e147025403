"""Shared fixtures: an isolated HOME and git config, real temporary repositories,
a `gen` helper that writes datasets, real digits PNGs, and a CLI runner."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from datagit import Repo


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test sees the machine's git identity or config."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada Tester")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ada@example.com")
    monkeypatch.delenv("GIT_DIR", raising=False)
    try:
        import pygit2

        for level in (
            pygit2.enums.ConfigLevel.GLOBAL,
            pygit2.enums.ConfigLevel.XDG,
            pygit2.enums.ConfigLevel.SYSTEM,
        ):
            pygit2.settings.search_path[level] = str(home)
    except (ImportError, AttributeError):
        pass
    return home


def write_tree(root: Path, files: dict[str, bytes | str]) -> None:
    """Write ``{"train/cat/1.png": b"..."}`` under ``root``."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)


@pytest.fixture
def gen(tmp_path: Path) -> Callable[[dict[str, bytes | str]], Path]:
    """``gen({...})`` writes files into the test's workspace folder and returns it."""
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)

    def _gen(files: dict[str, bytes | str]) -> Path:
        write_tree(ws, files)
        return ws

    return _gen


@pytest.fixture
def tmp_repo(tmp_path: Path) -> Iterator[Repo]:
    """An empty repository with an imagefolder dataset ``train`` declared at ``train/``."""
    from datagit.core.config import DatasetConfig

    repo = Repo.init(tmp_path / "ws")
    (repo.workdir / "train").mkdir()
    repo.add_dataset(DatasetConfig(name="train", layout="imagefolder", path="train"))
    yield repo
    repo.close()


_DIGITS: list[tuple[bytes, int]] | None = None


def digits_pngs(limit: int | None = None) -> list[tuple[bytes, int]]:
    """scikit-learn's real 8×8 digits as PNG bytes with their labels (cached per process)."""
    global _DIGITS
    if _DIGITS is None:
        import io

        import numpy as np
        from PIL import Image
        from sklearn.datasets import load_digits

        d = load_digits()
        out = []
        for img, target in zip(d.images, d.target, strict=True):
            buf = io.BytesIO()
            Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
            out.append((buf.getvalue(), int(target)))
        _DIGITS = out
    return _DIGITS[:limit] if limit else _DIGITS


@pytest.fixture
def digits_repo(tmp_repo: Repo) -> Repo:
    """tmp_repo with 300 real digits images written (not yet committed)."""
    files = {f"train/{t}/img_{i:04d}.png": png for i, (png, t) in enumerate(digits_pngs(300))}
    write_tree(tmp_repo.workdir, files)
    return tmp_repo


def history(repo: Repo, steps: list[tuple[str, Callable[[Path], None]]]) -> list[str]:
    """Apply each (message, edit) to the workspace and commit it; returns commit ids."""
    ids = []
    for message, edit in steps:
        edit(repo.workdir)
        ids.append(repo.commit(message, all=True).id)
    return ids


class Cli:
    """Runs `datagit` in-process with CliRunner, in a given folder."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True, input: str | None = None) -> Result:
        from datagit.cli import cli

        result = self.runner.invoke(
            cli, ["-C", str(self.cwd), *args], input=input, catch_exceptions=False
        )
        if ok and result.exit_code != 0:
            raise AssertionError(
                f"datagit {' '.join(args)} exited {result.exit_code}:\n{result.output}"
            )
        return result


@pytest.fixture
def cli(tmp_repo: Repo) -> Cli:
    return Cli(tmp_repo.workdir)


@pytest.fixture
def run_cli() -> Callable[[Path], Cli]:
    return Cli


# Import these helpers as `from testkit import ...`: in a full run another folder's
# conftest.py (tests/storage/) takes over the module name `conftest` in sys.modules.
sys.modules.setdefault("testkit", sys.modules[__name__])
