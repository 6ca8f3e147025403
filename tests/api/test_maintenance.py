"""fsck proves every committed byte is present and intact; gc drops only what nothing names."""

from __future__ import annotations

import shutil

import pytest
from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.api import branches, maintenance, workspace
from datagit.errors import CorruptObjectError
from datagit.storage.content import ContentStore, address


def all_records_read_back(repo: Repo) -> int:
    """Read every record of every commit (verified) and return how many were read."""
    n = 0
    fresh = Repo.open(repo.workdir)
    for c in fresh.git.walk(maintenance.reachable_roots(fresh)):
        for name in fresh.datasets_at(c.id):
            for r in fresh.records(name, c.id):
                fresh.read(r)
                n += 1
    fresh.close()
    return n


@pytest.fixture
def history3(digits_repo: Repo) -> Repo:
    ws = digits_repo.workdir
    digits_repo.commit("digits", all=True)
    shutil.move(ws / "train/0/img_0000.png", ws / "train/6/img_0000.png")
    digits_repo.commit("relabel", all=True)
    write_tree(ws, {"train/4/more.png": digits_pngs(301)[300][0]})
    digits_repo.commit("more", all=True)
    return digits_repo


def test_fsck_clean(history3: Repo) -> None:
    report = maintenance.fsck(history3)
    assert report.ok and report.problems == [] and report.commits == 3
    assert report.objects >= 290


def test_fsck_names_a_flipped_byte(history3: Repo) -> None:
    pack = next((history3.dotdir / "content" / "packs").glob("pack-*.pack"))
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    pack.write_bytes(bytes(raw))
    report = maintenance.fsck(Repo.open(history3.workdir))
    assert not report.ok
    assert any("corrupt" in p and pack.name in p for p in report.problems)


def test_fsck_names_missing_content_and_the_record_needing_it(history3: Repo) -> None:
    rec = history3.record("train", "more.png")
    store = history3.store
    keep = set(store.index) - {rec.content}
    from datagit.storage.content import rewrite_packs

    rewrite_packs(store, keep)
    report = maintenance.fsck(Repo.open(history3.workdir))
    assert any(rec.content in p and "train/more.png" in p for p in report.problems)


def test_gc_keeps_everything_reachable(history3: Repo) -> None:
    branches.create_tag(history3, "v0", "HEAD~2")
    before = all_records_read_back(history3)
    report = maintenance.gc(history3)
    assert report.removed == 0
    assert all_records_read_back(history3) == before
    assert maintenance.fsck(Repo.open(history3.workdir)).ok


def test_gc_drops_unreachable_content(history3: Repo) -> None:
    ws = history3.workdir
    stray = b"\x89PNG stray bytes that were staged then dropped"
    write_tree(ws, {"train/1/stray.png": stray})
    history3.add()
    (ws / "train/1/stray.png").unlink()
    history3.add()  # the stage no longer names the stray bytes
    side_png = digits_pngs(302)[301][0]
    workspace.switch(history3, "side", create=True)
    write_tree(ws, {"train/2/side.png": side_png})
    history3.commit("side", all=True)
    workspace.switch(history3, "main")
    branches.delete_branch(history3, "side", force=True)
    assert history3.store.has(address(stray)) and history3.store.has(address(side_png))
    # HEAD's reflog still names the side commit: expire it now, or gc keeps its bytes
    history3.git.config_set("gc.reflogExpire", "now")
    report = maintenance.gc(history3)
    assert report.removed == 2
    fresh = ContentStore(history3.dotdir / "content")
    assert not fresh.has(address(stray)) and not fresh.has(address(side_png))
    assert all_records_read_back(history3) == 300 + 300 + 301
    assert maintenance.fsck(Repo.open(ws)).ok


def test_gc_keeps_what_only_the_stage_names(history3: Repo) -> None:
    staged = b"staged but not committed"
    write_tree(history3.workdir, {"train/3/staged.png": staged})
    history3.add()
    maintenance.gc(history3)
    assert Repo.open(history3.workdir).store.read(address(staged)) == staged


def test_gc_keeps_annotated_and_light_tags_content(history3: Repo) -> None:
    ws = history3.workdir
    workspace.switch(history3, "tmp", create=True)
    write_tree(ws, {"train/2/tagged.png": b"only a tag keeps me"})
    history3.commit("tagged", all=True)
    branches.create_tag(history3, "keep", "HEAD", "annotated")
    workspace.switch(history3, "main")
    branches.delete_branch(history3, "tmp", force=True)
    maintenance.gc(history3)
    assert Repo.open(ws).store.read(address(b"only a tag keeps me")) == b"only a tag keeps me"


def test_read_of_corrupt_content_raises(history3: Repo) -> None:
    rec = history3.record("train", "more.png")
    loc = history3.store.index[rec.content]
    with open(loc.path, "r+b") as f:
        f.seek(loc.offset + 3)
        b = f.read(1)
        f.seek(loc.offset + 3)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(CorruptObjectError, match=rec.content):
        Repo.open(history3.workdir).read(rec)


def test_large_objects_round_trip_through_commit_checkout_fsck_and_gc(tmp_repo: Repo) -> None:
    import os

    ws = tmp_repo.workdir
    big_a, big_b = os.urandom(3 << 19), os.urandom(3 << 19)  # 1.5 MiB: stored loose
    write_tree(ws, {"train/scan/big.bin": big_a, "train/scan/small.png": digits_pngs(1)[0][0]})
    first = tmp_repo.commit("big", all=True).id
    (ws / "train/scan/big.bin").write_bytes(big_b)
    tmp_repo.commit("bigger", all=True)
    assert (tmp_repo.dotdir / "content/loose" / address(big_a)[:2]).is_dir()
    workspace.checkout(tmp_repo, first)
    assert (ws / "train/scan/big.bin").read_bytes() == big_a
    workspace.checkout(tmp_repo, "main")
    assert maintenance.gc(tmp_repo).removed == 0
    assert all_records_read_back(tmp_repo) == 4
    workspace.checkout(tmp_repo, first)
    branches.delete_branch(tmp_repo, "main", force=True)
    assert maintenance.gc(tmp_repo).removed == 0  # HEAD's reflog still names big_b's commit
    tmp_repo.git.config_set("gc.reflogExpire", "now")
    assert maintenance.gc(tmp_repo).removed == 1  # big_b is no longer reachable
    assert not Repo.open(ws).store.has(address(big_b))
    assert maintenance.fsck(Repo.open(ws)).ok


def test_gc_after_a_dataset_was_emptied_keeps_the_empty_tree_readable(tmp_repo: Repo) -> None:
    """An emptied dataset names git's empty tree, which libgit2 never stores but gc must copy."""
    import subprocess

    write_tree(tmp_repo.workdir, {"train/3/a.png": digits_pngs(1)[0][0]})
    tmp_repo.commit("one", all=True)
    (tmp_repo.workdir / "train/3/a.png").unlink()
    tmp_repo.commit("none", all=True)
    maintenance.gc(tmp_repo)  # raised "git object 4b825dc… is missing" before
    assert maintenance.fsck(Repo.open(tmp_repo.workdir)).ok
    git = subprocess.run(["git", "--git-dir", str(tmp_repo.dotdir), "fsck"], capture_output=True)
    assert git.returncode == 0, git.stderr


def test_gc_drops_a_killed_writes_stale_loose_temporaries_only(history3: Repo) -> None:
    """A kill mid-`write_loose` leaves `<key>.tmp` beside the objects: never listed as an
    object, it is only wasted space, which gc reclaims once it is clearly stale (a
    lazy fetch outside the write lock may be writing a fresh one)."""
    import os
    import time

    folder = history3.store.loose / "ab"
    folder.mkdir(parents=True, exist_ok=True)
    stale, fresh = folder / ("c" * 30 + ".tmp"), folder / ("d" * 30 + ".tmp")
    stale.write_bytes(b"half an object")
    fresh.write_bytes(b"being written")
    hours_ago = time.time() - 7200
    os.utime(stale, (hours_ago, hours_ago))
    maintenance.gc(history3)
    assert not stale.exists() and fresh.exists()
    assert maintenance.fsck(history3).ok
