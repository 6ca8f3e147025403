"""repack on a bare GitStore: what counts as kept, what a crash leaves, and the index format."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from datagit.errors import CorruptObjectError
from datagit.storage.git import BLOB, TREE, Entry, GitStore, Signature
from datagit.storage.gitgc import repack
from datagit.storage.gitpack import _write_index, index_ids, object_id, write_pack_stream

SIG = Signature("Ada", "ada@example.com", 1_700_000_000, 60)
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git CLI")


@pytest.fixture
def git(tmp_path: Path) -> GitStore:
    return GitStore.init(tmp_path / "g.git")


def commit(git: GitStore, text: str, parents: list[str]) -> str:
    with git.batch():  # many objects → a pack, as a big commit writes
        blobs = {f"f{i}": Entry(git.write_blob(f"{text} {i}".encode()), BLOB) for i in range(20)}
        tree = git.write_tree({"sub": Entry(git.write_tree(blobs), TREE)})
    return git.create_commit(tree, parents, f"{text}\n", SIG, SIG)


def chain(git: GitStore, n: int, ref: str = "refs/heads/main") -> list[str]:
    ids: list[str] = []
    for i in range(n):
        ids.append(commit(git, f"{ref} {i}", ids[-1:]))
        git.update_ref(ref, ids[-1], f"commit: {i}")
    return ids


def pack_files(git: GitStore) -> list[str]:
    return sorted(p.name for p in (git.path / "objects" / "pack").iterdir())


def test_repack_keeps_refs_reflogs_and_named_ids_and_drops_the_rest(git: GitStore) -> None:
    main = chain(git, 5)
    git.set_head_branch("main")
    side = chain(git, 2, "refs/heads/side")
    git.delete_ref("refs/heads/side")  # its reflog goes too; HEAD (on main) never logged it
    kept_blob = git.write_blob(b"named by the caller, as the stage's blobs are")
    lost_blob = git.write_blob(b"named by nothing")
    light = git.write_blob(b"a lightweight tag may point at a blob")
    git.update_ref("refs/tags/blob-tag", light)
    (git.path / "ORIG_HEAD").write_text(side[0] + "\n")
    report = repack(git, [kept_blob])
    assert report.packs == 1 and report.packs_before == 7 and report.loose_before > 0
    for oid in (*main, kept_blob, light, side[0]):
        assert git.has(oid)
    assert not git.has(lost_blob) and not git.has(side[1])
    assert report.dropped == 1 + 1 + 2 + 20  # lost blob, side[1], its two trees and blobs
    assert len([n for n in pack_files(git) if n.endswith(".pack")]) == 1


def test_a_reflog_naming_a_missing_object_does_not_stop_repack(git: GitStore) -> None:
    chain(git, 2)
    log = git.path / "logs" / "refs" / "heads" / "main"
    ghost = "ab" * 20
    log.write_text(log.read_text() + f"{'0' * 40} {ghost} x <x@y> 1 +0000\tghost\n")
    assert repack(git).packs == 1


def test_an_unreadable_ref_refuses_repack_before_anything_is_deleted(git: GitStore) -> None:
    chain(git, 2)
    (git.path / "refs" / "heads" / "broken").write_text("not an object id\n")
    (git.path / "refs" / "heads" / "nowhere").write_text("ref: refs/heads/missing\n")
    files = sorted(p for p in (git.path / "objects").rglob("*"))
    with pytest.raises(CorruptObjectError, match=r"ref refs/heads/broken .* is unreadable"):
        repack(git)
    assert sorted(p for p in (git.path / "objects").rglob("*")) == files
    (git.path / "refs" / "heads" / "broken").unlink()
    assert repack(git).packs == 1  # a symbolic ref to nowhere names nothing to keep


def test_crash_leftovers_are_removed_and_keep_packs_kept(git: GitStore) -> None:
    chain(git, 3)
    pack_dir = git.path / "objects" / "pack"
    (pack_dir / "tmp_pack_12345").write_bytes(b"half a pack")
    (pack_dir / "pack-0123456789abcdef0123456789abcdef01234567.pack").write_bytes(b"no index")
    (git.path / "objects" / "tmp_object_git2_x").write_bytes(b"half a loose object")
    kept = next(p for p in pack_dir.glob("*.pack"))
    kept.with_suffix(".keep").write_text("")
    report = repack(git)
    names = pack_files(git)
    assert "tmp_pack_12345" not in names and not (git.path / "objects/tmp_object_git2_x").exists()
    assert "pack-0123456789abcdef0123456789abcdef01234567.pack" not in names
    assert kept.exists() and kept.with_suffix(".idx").exists() and report.packs == 2


def test_a_failing_source_leaves_no_pack_behind(tmp_path: Path) -> None:
    def objects():  # type: ignore[no-untyped-def]
        yield object_id("blob", b"one"), "blob", b"one"
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        write_pack_stream(tmp_path, 2, objects())
    with pytest.raises(ValueError, match="says 3 objects, 1 written"):
        write_pack_stream(tmp_path, 3, iter([(object_id("blob", b"x"), "blob", b"x")]))
    assert list(tmp_path.iterdir()) == []


@needs_git
def test_index_offsets_past_2_gib_use_the_64_bit_table(tmp_path: Path) -> None:
    offsets = {
        object_id("blob", str(i).encode()): off for i, off in enumerate([12, 2**31 + 5, 2**33])
    }
    crcs = dict.fromkeys(offsets, 7)
    idx = tmp_path / "pack-x.idx"
    _write_index(idx, offsets, crcs, b"\0" * 20)
    shown = subprocess.run(
        ["git", "show-index"], input=idx.read_bytes(), capture_output=True, check=True
    ).stdout.decode()
    got = {line.split()[1]: int(line.split()[0]) for line in shown.splitlines()}
    assert got == offsets
    assert sorted(index_ids(idx)) == sorted(bytes.fromhex(o) for o in offsets)


def n_packs(git: GitStore) -> int:
    return len(list((git.path / "objects" / "pack").glob("*.pack")))


def test_roll_up_merges_small_packs_geometrically_and_loses_nothing(git: GitStore) -> None:
    """Past the limit, commits' small packs become one; every object stays readable."""
    from datagit.storage.gitgc import roll_up

    ids = chain(git, 8)
    before = set()
    for idx in (git.path / "objects" / "pack").glob("*.idx"):
        before |= set(index_ids(idx))
    assert n_packs(git) == 8
    assert roll_up(git, limit=10) == 0  # under the limit: nothing to do
    assert roll_up(git, limit=3) == 8  # equal small packs: all of them roll up
    after = set()
    for idx in (git.path / "objects" / "pack").glob("*.idx"):
        after |= set(index_ids(idx))
    assert n_packs(git) == 1 and after == before
    more = chain_from(git, ids[-1], 4)
    assert roll_up(git, limit=3) == 4  # the big pack stays: it holds twice the rest
    assert n_packs(git) == 2
    assert [c.id for c in git.walk([more[-1]])][-1] == ids[0]


def chain_from(git: GitStore, parent: str, n: int) -> list[str]:
    ids = [parent]
    for i in range(n):
        ids.append(commit(git, f"more {i}", ids[-1:]))
        git.update_ref("refs/heads/main", ids[-1], f"commit: more {i}")
    return ids[1:]


@needs_git
def test_commits_roll_packs_up_and_git_agrees(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from datagit import Repo
    from datagit.core.config import DatasetConfig
    from datagit.storage import gitgc

    monkeypatch.setattr(gitgc, "AUTO_PACK_LIMIT", 4)
    repo = Repo.init(tmp_path / "ws")
    repo.add_dataset(DatasetConfig(name="t", layout="imagefolder", path="t"))
    for i in range(12):
        d = repo.workdir / "t" / f"c{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        for j in range(20):  # enough objects that each commit writes a pack
            (d / f"x{i}_{j}.txt").write_text(f"{i} {j}")
        repo.commit(f"c{i}", all=True)
    packs = list((repo.dotdir / "objects" / "pack").glob("*.pack"))
    assert len(packs) <= 5
    subprocess.run(["git", "--git-dir", str(repo.dotdir), "fsck", "--full", "--strict"], check=True)
    log = subprocess.run(
        ["git", "--git-dir", str(repo.dotdir), "log", "--oneline"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert len(log) == 12
    assert len(list(Repo.open(repo.workdir).records("t"))) == 240


@needs_git
def test_a_crash_while_rolling_up_loses_nothing(git: GitStore, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The new pack is durable before the first old one goes: stop after one deletion."""
    from datagit.storage import gitgc

    ids = chain(git, 6)
    real, deleted = gitgc._delete_pack, []

    def crash_after_one(pack: Path) -> None:
        if deleted:
            raise KeyboardInterrupt("killed")
        real(pack)
        deleted.append(pack)

    monkeypatch.setattr(gitgc, "_delete_pack", crash_after_one)
    with pytest.raises(KeyboardInterrupt):
        gitgc.roll_up(git, limit=2)
    fresh = GitStore.open(git.path)
    assert [c.id for c in fresh.walk([ids[-1]])] == ids[::-1]
    subprocess.run(["git", "--git-dir", str(git.path), "fsck", "--full", "--strict"], check=True)
    monkeypatch.setattr(gitgc, "_delete_pack", real)
    assert gitgc.roll_up(fresh, limit=2) >= 2  # the next roll-up finishes the job
    assert n_packs(fresh) == 1


@needs_git
def test_a_gc_killed_before_its_index_does_not_make_the_next_delete_its_pack(
    git: GitStore, tmp_path: Path
) -> None:
    """A killed gc can leave its new pack renamed into place without its index: an
    orphan. The next gc packs the same objects under the same name, and must not then
    delete that pack as the orphan it found (all packed objects would be lost)."""
    chain(git, 4)
    git.set_head_branch("main")
    twin = tmp_path / "twin.git"
    shutil.copytree(git.path, twin)
    twin_store = GitStore.open(twin)
    repack(twin_store)
    (made,) = (twin / "objects" / "pack").glob("pack-*.pack")
    twin_store.reopen()
    pack_dir = git.path / "objects" / "pack"
    shutil.copy(made, pack_dir / made.name)  # what the killed gc left: no .idx beside it
    report = repack(git)
    assert report.packs == 1
    assert (pack_dir / made.name).exists() and (pack_dir / made.name).with_suffix(".idx").exists()
    subprocess.run(["git", "--git-dir", str(git.path), "fsck", "--strict"], check=True)
    assert git.has(git.head_commit() or "")
