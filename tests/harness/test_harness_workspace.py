"""`eval` on HEAD with uncommitted changes says so; `--workspace` evaluates them (#14)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness_helpers import make_repo
from testkit import Cli


def test_eval_of_head_warns_about_uncommitted_data_and_workspace_evaluates_it(
    tmp_path: Path,
) -> None:
    """Regression (#14): eval answered from the cache for the committed data, silently."""
    repo = make_repo(tmp_path / "ws", n=150)
    dg = Cli(repo.workdir)
    first = json.loads(dg("eval", "--json").stdout)
    assert first["uncommitted"] == [] and not first["cached"]
    for i, p in enumerate(sorted((repo.workdir / "train" / "3").glob("*.png"))):
        if i < 6:
            (repo.workdir / "train" / "8").mkdir(exist_ok=True)
            shutil.move(p, repo.workdir / "train" / "8" / p.name)
    dirty = dg("eval", "--json")
    assert "warning: train has uncommitted changes" in dirty.stderr
    assert "--workspace" in dirty.stderr
    again = json.loads(dirty.stdout)
    assert again["uncommitted"] == ["train"] and again["cached"]
    ws = json.loads(dg("eval", "--workspace", "--json").stdout)
    assert not ws["cached"] and ws["workspace"]
    assert ws["key"]["train_tree"] != first["key"]["train_tree"]
    assert ws["key"]["eval_tree"] == first["key"]["eval_tree"]
    assert json.loads(dg("eval", "--workspace", "--json").stdout)["cached"]
    assert repo.status().datasets[1].unstaged  # the workspace is still uncommitted
    bad = dg("eval", "HEAD~1", "--workspace", ok=False)
    assert bad.exit_code != 0 and "--workspace and a revision" in bad.stderr
