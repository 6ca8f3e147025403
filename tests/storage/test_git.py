"""GitStore: blobs, trees, commits, refs, revisions and integrity, on a real bare repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zlib
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
    check = git.check_objects()
    assert check.problems == [] and check.commits == 2
    blob = git.write_blob(b"v1")  # the blob of the last commit's tree
    loose = git.path / "objects" / blob[:2] / blob[2:]
    loose.chmod(0o644)
    loose.unlink()
    problems = git.check_objects().problems
    assert len(problems) == 1 and blob in problems[0] and "missing" in problems[0]
    assert ids  # history itself is intact


# -- damaged objects: named, never "unknown revision", never a hang -------------------------
def _damage(git: GitStore, oid: str, how: str) -> None:
    """Damage loose object ``oid`` the ways a disk or a crash does."""
    loose = git.path / "objects" / oid[:2] / oid[2:]
    loose.chmod(0o644)
    raw = loose.read_bytes()
    if how == "flip":  # zlib notices: a bad code or a bad checksum
        loose.write_bytes(
            raw[: len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0xFF]) + raw[len(raw) // 2 + 1 :]
        )
    elif how == "truncate":  # libgit2 1.9 would spin forever inflating this
        loose.write_bytes(raw[: len(raw) // 2])
    elif how == "empty":
        loose.write_bytes(b"")
    elif how == "other-content":  # a valid zlib stream of the wrong bytes
        body = zlib.decompress(raw).replace(b"commit 0", b"commit X")
        loose.write_bytes(zlib.compress(body))
    elif how == "missing":
        loose.unlink()


DAMAGE = ["flip", "truncate", "empty", "other-content", "missing"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_parent_is_a_corrupt_object_naming_it(git: GitStore, how: str) -> None:
    ids = _chain(git, 3)
    _damage(git, ids[0], how)
    for call in (
        lambda: git.resolve("HEAD~2"),
        lambda: git.resolve("main~1~1"),
        lambda: git.resolve("HEAD^^"),
        lambda: list(git.walk([ids[-1]])),
        lambda: git.commit(ids[0]),
        lambda: git.merge_base(ids[2], ids[1]),
        lambda: git.is_ancestor(ids[0], ids[2]),
    ):
        with pytest.raises(CorruptObjectError, match=ids[0]) as err:
            call()
        assert "missing" in str(err.value) if how == "missing" else "corrupt in" in str(err.value)
        assert err.value.hint and "datagit fsck" in err.value.hint
    with pytest.raises(CorruptObjectError, match=r"commit HEAD~2\)"):
        git.resolve("HEAD~2")
    assert git.resolve("HEAD~1") == ids[1]  # what is intact still resolves
    with pytest.raises(RevisionNotFoundError, match="unknown revision"):
        git.resolve("nope")
    problems = git.check_objects().problems
    assert len(problems) == 1 and ids[0] in problems[0]


def test_damage_inside_a_pack_names_the_pack(git: GitStore) -> None:
    ids = _chain(git, 3)
    subprocess.run(["git", "--git-dir", str(git.path), "repack", "-a", "-d", "-q"], check=True)
    pack = next((git.path / "objects" / "pack").glob("*.pack"))
    offset = _pack_offset(git.path, ids[0])
    pack.chmod(0o644)
    raw = bytearray(pack.read_bytes())
    raw[offset + 20] ^= 0xFF  # inside the commit's zlib stream
    pack.write_bytes(bytes(raw))
    fresh = GitStore.open(git.path)
    with pytest.raises(CorruptObjectError, match=f"{ids[0]} .*{pack.name}"):
        fresh.resolve("HEAD~2")
    assert fresh.resolve("HEAD~1") == ids[1]


def test_a_truncated_pack_names_the_index_that_lists_the_object(git: GitStore) -> None:
    ids = _chain(git, 2)
    subprocess.run(["git", "--git-dir", str(git.path), "repack", "-a", "-d", "-q"], check=True)
    pack = next((git.path / "objects" / "pack").glob("*.pack"))
    pack.chmod(0o644)
    pack.write_bytes(pack.read_bytes()[:-40])
    fresh = GitStore.open(git.path)
    with pytest.raises(CorruptObjectError, match=f"{ids[1]} .*{pack.stem}.idx lists it"):
        fresh.resolve("HEAD")


def _pack_offset(git_dir: Path, oid: str) -> int:
    out = subprocess.run(
        [
            "git",
            "--git-dir",
            str(git_dir),
            "verify-pack",
            "-v",
            *map(str, (git_dir / "objects" / "pack").glob("*.idx")),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith(oid))
    return int(line.split()[4])


def test_a_truncated_loose_commit_does_not_hang_a_reader(tmp_path: Path) -> None:
    """In a child process with a deadline: a regression would spin libgit2, not fail."""
    git = GitStore.init(tmp_path / "g.git")
    ids = _chain(git, 2)
    _damage(git, ids[0], "truncate")
    code = (
        "import sys; from pathlib import Path; from datagit.storage.git import GitStore\n"
        "g = GitStore.open(Path(sys.argv[1]))\n"
        "for call in (lambda: g.resolve('HEAD~1'), lambda: list(g.walk([g.resolve('HEAD')])),\n"
        "             lambda: g.check_objects()):\n"
        "    try:\n"
        "        r = call()\n"
        "        print('problems', r.problems)\n"
        "    except Exception as e:\n"
        "        print(type(e).__name__, e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(git.path)], capture_output=True, text=True, timeout=60
    ).stdout.splitlines()
    assert out[0].startswith("CorruptObjectError") and ids[0] in out[0] and "truncated" in out[0]
    assert out[1].startswith("CorruptObjectError") and ids[0] in out[1]
    assert out[2].startswith("problems") and ids[0] in out[2]


def test_a_packed_object_whose_content_is_not_its_id_is_refused(git: GitStore) -> None:
    # A well-formed pack entry (valid zlib, right size) holding other bytes: only the
    # SHA-1 check that libgit2 makes on every packed read can tell, and it must.
    from datagit.storage.gitpack import write_pack

    wanted = hash_blob(b"the real bytes")
    write_pack(git.path / "objects" / "pack", {wanted: ("blob", b"forged bytes!!")})
    with pytest.raises(CorruptObjectError, match=wanted):
        GitStore.open(git.path).read_blob(wanted)


def test_objects_packed_after_opening_are_read_and_loose_ones_still_are(git: GitStore) -> None:
    from datagit.storage.gitpack import write_pack

    loose = git.write_blob(b"written loose")
    packed = hash_blob(b"packed later")
    assert not git.has(packed)
    write_pack(git.path / "objects" / "pack", {packed: ("blob", b"packed later")})
    assert git.read_blob(packed) == b"packed later"
    assert git.read_blob(loose) == b"written loose"


def test_a_large_pack_compressed_on_threads_reads_back_and_verifies_with_git(
    tmp_path: Path,
) -> None:
    import random

    from datagit.storage.gitpack import PARALLEL_BYTES, write_pack

    rng = random.Random(3)
    blobs = [rng.randbytes(rng.randint(1, 64 << 10)) for _ in range(2 * PARALLEL_BYTES // 32768)]
    git = GitStore.init(tmp_path / "g.git")
    pack = write_pack(git.path / "objects" / "pack", {hash_blob(b): ("blob", b) for b in blobs})
    subprocess.run(
        ["git", "--git-dir", str(git.path), "verify-pack", str(pack.with_suffix(".idx"))],
        check=True,
    )
    fresh = GitStore.open(git.path)
    assert all(fresh.read_blob(hash_blob(b)) == b for b in blobs)


@pytest.mark.parametrize("count", [4, 40])  # loose (a small batch) and packed
def test_a_batch_compressed_while_staged_lands_whole(tmp_path: Path, count: int) -> None:
    import random

    rng = random.Random(count)
    blobs = [rng.randbytes(300_000) for _ in range(count)]  # past a compression task's size
    git = GitStore.init(tmp_path / "g.git")
    with git.batch():
        oids = [git.write_blob(b) for b in blobs]
        oids.append(git.write_blob(blobs[0]))  # staged twice: written once
    packs = list((git.path / "objects" / "pack").glob("*.idx"))
    assert len(packs) == (count >= 16)
    for idx in packs:
        subprocess.run(["git", "--git-dir", str(git.path), "verify-pack", str(idx)], check=True)
    fresh = GitStore.open(git.path)
    assert [fresh.read_blob(o) for o in oids] == [*blobs, blobs[0]]


def test_shard_like_blobs_deflated_by_the_fast_deflater_pass_git_fsck(tmp_path: Path) -> None:
    """Record lines (text around a random 32-hex-digit address) through a batch: whatever
    deflater packs them (ISA-L with the `fast` extra, zlib otherwise) writes streams that
    zlib, libgit2 and the git CLI all read."""
    import random

    from datagit.storage.gitpack import _entry

    rng = random.Random(7)
    blobs = [
        b"".join(
            b'{"id":"r%06d","label":"c%d","content":"%032x","size":20}\n'
            % (i * 300 + k, k % 10, rng.getrandbits(128))
            for k in range(rng.randint(1, 300))
        )
        for i in range(40)
    ]
    for b in blobs[:3]:
        entry = _entry("blob", b)
        header = next(i for i, c in enumerate(entry) if c < 0x80) + 1
        assert zlib.decompress(entry[header:]) == b
    git = GitStore.init(tmp_path / "g.git")
    with git.batch():
        oids = [git.write_blob(b) for b in blobs]
        tree = git.write_tree({f"s{i}.jsonl": Entry(o, BLOB) for i, o in enumerate(oids)})
    git.update_ref("refs/heads/main", git.create_commit(tree, [], "shards", SIG, SIG))
    subprocess.run(["git", "--git-dir", str(git.path), "fsck", "--full", "--strict"], check=True)
    show = ["git", "--git-dir", str(git.path), "cat-file", "blob", oids[5]]
    assert subprocess.run(show, capture_output=True, check=True).stdout == blobs[5]


def test_packs_are_deflated_by_isal_when_the_fast_extra_is_installed() -> None:
    """CI installs the `fast` extra, so the deflater measured is the one tested."""
    isal_zlib = pytest.importorskip("isal.isal_zlib")
    from datagit.storage import gitpack

    assert gitpack._deflate is isal_zlib.compress


def test_a_batch_writes_no_object_the_repository_already_has(tmp_path: Path) -> None:
    """Packed by an earlier batch, packed earlier in this one (past a flush), or loose:
    staged again, none is written again (the check reads the packs' indexes, not
    libgit2's rescanning lookup)."""
    from datagit.storage.gitpack import index_ids

    git = GitStore.init(tmp_path / "g.git")
    pack_dir = git.path / "objects" / "pack"
    first = [f"first {i}\n".encode() * 50 for i in range(20)]
    loose = b"loose\n"
    with git.batch():
        for b in first:
            git.write_blob(b)
    with git.batch():
        git.write_blob(loose)  # a batch of one: written loose
    assert (git.path / "objects" / hash_blob(loose)[:2] / hash_blob(loose)[2:]).exists()
    before = set(pack_dir.glob("*.idx"))
    second = [f"second {i}\n".encode() * 50 for i in range(20)]
    with git.batch():
        for b in first[:10]:
            git.write_blob(b)
        for b in second:
            git.write_blob(b)
        git.flush_batch()
        for b in [*second, *first, loose]:
            git.write_blob(b)
        third = [git.write_blob(f"third {i}\n".encode() * 50) for i in range(20)]
    new = sorted(set(pack_dir.glob("*.idx")) - before)
    written = [i.hex() for idx in new for i in index_ids(idx)]
    assert sorted(written) == sorted([hash_blob(b) for b in second] + third)
    subprocess.run(["git", "--git-dir", str(git.path), "fsck", "--full"], check=True)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
def test_batches_over_many_repositories_leave_no_descriptor_open(tmp_path: Path) -> None:
    """The batch's existence check reads the packs through the store's own backend: one
    of its own per batch kept a descriptor per pack open for the life of the process."""
    import gc

    def open_fds() -> int:
        return len(list(Path("/proc/self/fd").iterdir()))

    blobs = [f"row {i}\n".encode() * 40 for i in range(20)]
    before = open_fds()
    for n in range(12):
        git = GitStore.init(tmp_path / f"g{n}.git")
        for _ in range(2):  # the second batch finds every object packed by the first
            with git.batch():
                for b in blobs:
                    git.write_blob(b)
        del git
        gc.collect()
    assert open_fds() - before < 4


@pytest.mark.parametrize("batched", [False, True])
def test_an_empty_tree_is_stored_so_git_can_read_it(git: GitStore, batched: bool) -> None:
    """libgit2 says the empty tree exists without storing it; ours is on disk."""
    if batched:
        with git.batch():
            empty = git.write_tree({})
            assert git.write_tree_body(b"") == empty
    else:
        empty = git.write_tree({})
        assert git.write_tree_body(b"") == empty
    loose = git.path / "objects" / empty[:2] / empty[2:]
    assert zlib.decompress(loose.read_bytes()) == b"tree 0\0"
    if shutil.which("git") is not None:
        out = subprocess.run(
            ["git", "--git-dir", str(git.path), "cat-file", "-t", empty],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.stdout.strip() == "tree", out.stderr
