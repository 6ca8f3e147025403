"""`shardtree.build` writes the same ``records/`` trees as git's own tree writer would,
at every fan-out, and `git fsck` accepts them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from datagit.core import manifest, shardsplice, shardtree
from datagit.storage.git import BLOB, TREE, Entry, GitStore, Signature


def _reference(git: GitStore, shards: dict[str, str]) -> str:
    """The records tree through libgit2's tree builder, folder by folder."""
    nested: dict = {}
    for prefix, oid in shards.items():
        *dirs, leaf = manifest.shard_path(prefix)
        node = nested
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = oid

    def write(node: dict) -> str:  # type: ignore[type-arg]
        entries = {
            name: Entry(write(v), TREE) if isinstance(v, dict) else Entry(v, BLOB)
            for name, v in node.items()
        }
        return git.write_tree(entries)

    return write(nested)


@pytest.mark.parametrize("fanout", [0, 1, 2, 3, 4, 5])
def test_build_matches_libgit2_at_every_fanout(tmp_path: Path, fanout: int) -> None:
    git = GitStore.init(tmp_path / "repo.git")
    blob = git.write_blob(b'{"id":"x"}\n')
    count = min(16**fanout, 300)  # a partial map too: not every prefix has a shard
    shards = {
        format(i * 7919 % 16**fanout, f"0{fanout}x") if fanout else "": blob for i in range(count)
    }
    root, bodies = shardtree.build(shards)
    assert root == _reference(git, shards)
    assert shardtree.write(git, shards) == root
    assert git.tree_entries(root)  # stored, and readable back
    assert len(bodies) == 1 + (len({p[:2] for p in shards}) if fanout >= 3 else 0) + (
        len({p[:4] for p in shards}) if fanout >= 5 else 0
    )


def test_an_empty_map_is_the_empty_tree(tmp_path: Path) -> None:
    git = GitStore.init(tmp_path / "repo.git")
    assert shardtree.build({})[0] == git.write_tree({})


def test_a_dataset_written_in_a_batch_passes_git_fsck(tmp_path: Path) -> None:
    from datagit.core.records import Record

    git = GitStore.init(tmp_path / "repo.git")
    records = [Record(f"{i}.png", str(i % 10), "ab" * 16, 100 + i) for i in range(5000)]
    with git.batch():
        tree = manifest.write_dataset(git, records)
        tree = shardsplice.apply_changes(
            git, tree, {"7.png": Record("7.png", "3", "cd" * 16, 1)}, ["8.png"]
        )[0]
    got = manifest.DatasetTree(git, tree)
    assert got.fanout == 2 and got.count == 4999
    assert got.get("7.png").label == "3" and got.get("8.png") is None  # type: ignore[union-attr]
    if shutil.which("git"):
        sig = Signature("T", "t@example.com", 1_700_000_000)
        git.update_ref("refs/heads/main", git.create_commit(tree, [], "t", sig, sig))
        subprocess.run(["git", "--git-dir", str(git.path), "fsck", "--strict"], check=True)
