"""GitStore: blobs, trees, commits, refs, revisions and integrity, on a real bare repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from datagit.errors import CorruptObjectError, RevisionNotFoundError
from datagit.storage.git import BLOB, TREE, Entry, GitStore, Signature, hash_blob

SIG = Signature("Ada", "ada@example.com", 1_700_000_000, 60)


@pytest.fixture
def git(tmp_path: Path) -> GitStore:
    return GitStore.init(tmp_path / "g.git")


def _commit(git: GitStore, text: str, parents: list[str], message: str = "m") -> str:
    blob = git.write_blob(text.encode())
    tree = git.write_tree({"f": Entry(blob, BLOB)})
    return git.create_commit(tree, parents, message, SIG, SIG)


def _chain(git: GitStore, n: int) -> list[str]:
    ids: list[str] = []
    for i in range(n):
        ids.append(_commit(git, f"v{i}", ids[-1:], f"commit {i}\n"))
    git.update_ref("refs/heads/main", ids[-1])
    return ids


def test_blob_round_trip_and_hash_matches_written_id(git: GitStore) -> None:
    data = b"hello\nworld\n"
    oid = git.write_blob(data)
    assert oid == hash_blob(data)
    assert git.read_blob(oid) == data
    assert git.has(oid)


def test_missing_blob_is_a_corrupt_object_error_naming_it(git: GitStore) -> None:
    with pytest.raises(CorruptObjectError, match="0" * 40):
        git.read_blob("0" * 40)


def test_tree_entries_round_trip(git: GitStore) -> None:
    blob = git.write_blob(b"x")
    sub = git.write_tree({"leaf.jsonl": Entry(blob, BLOB)})
    root = git.write_tree({"a": Entry(sub, TREE), "b": Entry(blob, BLOB)})
    assert git.tree_entries(root) == {"a": Entry(sub, TREE), "b": Entry(blob, BLOB)}
    with pytest.raises(CorruptObjectError):
        git.tree_entries(blob)


def test_create_commit_moves_no_ref(git: GitStore) -> None:
    oid = _commit(git, "a", [])
    assert git.head_commit() is None
    assert git.refs() == {}
    info = git.commit(oid)
    assert info.author == SIG and info.committer == SIG and info.parents == ()


def test_revisions_like_git(git: GitStore) -> None:
    ids = _chain(git, 4)
    assert git.head_branch() == "main"
    assert git.head_commit() == ids[-1]
    assert git.resolve("HEAD") == ids[-1]
    assert git.resolve("HEAD~3") == ids[0]
    assert git.resolve("main^") == ids[2]
    assert git.resolve(ids[1][:8]) == ids[1]
    git.create_tag("light", ids[1], None, SIG)
    git.create_tag("annotated", ids[2], "release", SIG)
    assert git.resolve("light") == ids[1]
    assert git.resolve("annotated") == ids[2]  # peeled through the tag object
    assert git.refs("refs/tags/") == {"refs/tags/light": ids[1], "refs/tags/annotated": ids[2]}


@pytest.mark.parametrize("rev", ["nope", "HEAD~99", "", "a\nb", "x\0y", "deadbeef" * 5])
def test_unknown_revision(git: GitStore, rev: str) -> None:
    _chain(git, 2)
    with pytest.raises(RevisionNotFoundError, match="unknown revision"):
        git.resolve(rev)


def test_detached_head_and_back(git: GitStore) -> None:
    ids = _chain(git, 2)
    git.set_head_detached(ids[0])
    assert git.head_branch() is None
    assert git.head_commit() == ids[0]
    git.set_head_branch("main")
    assert git.head_commit() == ids[1]


def test_walk_ancestry_and_merge_base(git: GitStore) -> None:
    ids = _chain(git, 3)
    side = _commit(git, "side", [ids[0]])
    assert [c.id for c in git.walk([ids[-1]])] == ids[::-1]
    assert git.merge_base(side, ids[-1]) == ids[0]
    assert git.is_ancestor(ids[0], ids[2])
    assert not git.is_ancestor(ids[2], ids[0])
    assert git.is_ancestor(side, side)
    both = {c.id for c in git.walk([ids[-1], side])}
    assert both == {*ids, side}


def test_delete_ref(git: GitStore) -> None:
    ids = _chain(git, 1)
    git.update_ref("refs/heads/other", ids[0])
    assert git.ref("refs/heads/other") == ids[0]
    git.delete_ref("refs/heads/other")
    assert git.ref("refs/heads/other") is None


def test_trailer() -> None:
    from datagit.storage.git import CommitInfo

    c = CommitInfo("0" * 40, "1" * 40, (), SIG, SIG, "fix cats\n\nbody\n\nAnnotator: bob\n")
    assert c.summary == "fix cats"
    assert c.trailer("Annotator") == "bob"
    assert c.trailer("Reviewer") is None


def test_config_round_trip(git: GitStore) -> None:
    assert git.config_get("user.name") is None
    git.config_set("user.name", "Grace")
    assert git.config_get("user.name") == "Grace"
    assert git.config_items("user.") == {"user.name": "Grace"}
    git.config_delete("user.name")
    git.config_delete("user.name")  # deleting twice is harmless
    assert git.config_get("user.name") is None


def test_open_refuses_a_non_repository(tmp_path: Path) -> None:
    from datagit.errors import DatagitError

    with pytest.raises(DatagitError, match="cannot open"):
        GitStore.open(tmp_path / "nothing")


def test_check_objects_clean_then_names_a_missing_object(git: GitStore) -> None:
    ids = _chain(git, 2)
    assert list(git.check_objects()) == []
    blob = git.write_blob(b"v1")  # the blob of the last commit's tree
    loose = git.path / "objects" / blob[:2] / blob[2:]
    loose.chmod(0o644)
    loose.unlink()
    problems = list(git.check_objects())
    assert problems and blob in problems[0]
    assert ids  # history itself is intact
