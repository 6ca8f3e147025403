"""One history, built once per test process (it trains two small runs), shared read-only."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "harness"))


@pytest.fixture(scope="session")
def hist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(workspace, name → commit/run id) of `web_helpers.build_history`; do not change it."""
    from web_helpers import build_history

    root = tmp_path_factory.mktemp("hist") / "ws"
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("home")
        mp.setenv("HOME", str(home))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        mp.setenv("GIT_AUTHOR_NAME", "Ada Lovelace")
        mp.setenv("GIT_AUTHOR_EMAIL", "ada@example.com")
        ids = build_history(root)
    return root, ids
