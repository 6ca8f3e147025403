"""bisect: git's step rules and exit codes, over synthetic graphs and a real 64-commit history."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.api import bisect, branches
from datagit.core.bisect import estimate_steps, next_step, verdict
from datagit.errors import DatagitError
from datagit.storage.git import GitStore, Signature


def chain(git: GitStore, n: int, parents: list[str] | None = None) -> list[str]:
    ids: list[str] = []
    tree = git.empty_tree()
    for k in range(n):
        sig = Signature("a", "a@example.com", 1_700_000_000 + k)
        p = [ids[-1]] if ids else list(parents or [])
        ids.append(git.create_commit(tree, p, f"c{k}\n", sig, sig))
    return ids


def drive(git: GitStore, ids: list[str], first_bad_index: int, skip: set[str] = frozenset()) -> str:
    """Answer each step truthfully until bisect names a commit; returns it."""
    bad, good, skipped = ids[-1], [ids[0]], set()
    for _ in range(64):
        step = next_step(git, bad, good, skipped)
        if step.first_bad:
            return step.first_bad
        assert step.commit is not None
        if step.commit in skip:
            skipped.add(step.commit)
        elif ids.index(step.commit) >= first_bad_index:
            bad = step.commit
        else:
            good.append(step.commit)
    raise AssertionError("bisect did not converge")


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 80), data=st.data())
def test_bisect_finds_the_first_bad_commit_in_a_chain(n: int, data: st.DataObject) -> None:
    git = GitStore.init(Path(tempfile.mkdtemp()) / "g")
    ids = chain(git, n)
    first_bad = data.draw(st.integers(1, n - 1))
    assert drive(git, ids, first_bad) == ids[first_bad]


def test_git_exit_codes_and_step_estimate() -> None:
    assert [verdict(c) for c in (0, 1, 124, 125, 126, 127, 128, 255, -9)] == [
        "old", "new", "new", "skip", "new", "new", "abort", "abort", "abort"
    ]  # fmt: skip
    # git's estimate_bisect_steps
    assert [estimate_steps(n) for n in (1, 2, 3, 4, 7, 8, 63, 64, 100, 1024)] == [
        0, 0, 1, 1, 2, 2, 5, 5, 6, 9
    ]  # fmt: skip


def test_skipped_neighbours_leave_a_list_of_suspects() -> None:
    git = GitStore.init(Path(tempfile.mkdtemp()) / "g")
    ids = chain(git, 6)
    step = next_step(git, ids[5], [ids[0]], set(ids[1:5]))
    assert step.commit is None and set(step.only_skipped) == set(ids[1:6])


def test_swapped_good_and_bad_is_an_error() -> None:
    git = GitStore.init(Path(tempfile.mkdtemp()) / "g")
    ids = chain(git, 4)
    with pytest.raises(DatagitError, match="reachable from a good commit"):
        next_step(git, ids[0], [ids[3]], set())


def test_bisect_across_a_merge() -> None:
    git = GitStore.init(Path(tempfile.mkdtemp()) / "g")
    trunk = chain(git, 5)
    side = chain(git, 6, parents=[trunk[1]])  # the bug enters on the side branch, at side[3]
    sig = Signature("a", "a@example.com", 1_800_000_000)
    merge = git.create_commit(git.empty_tree(), [trunk[-1], side[-1]], "merge\n", sig, sig)
    broken = set(side[3:]) | {merge}
    bad, good, skipped = merge, [trunk[0]], set()
    while True:
        step = next_step(git, bad, good, skipped)
        if step.first_bad:
            break
        if step.commit in broken:
            bad = step.commit
        else:
            good.append(step.commit)
    assert step.first_bad == side[3]


def _flip_history(repo: Repo, n: int, flip_at: int) -> tuple[list[str], list[str]]:
    """n commits adding real digits; commit ``flip_at`` also moves five 1s into folder 7."""
    pngs = digits_pngs(4 * n)
    ids, flipped = [], []
    for k in range(n):
        write_tree(
            repo.workdir,
            {f"train/{t}/img_{i:04d}.png": png for i, (png, t) in enumerate(pngs) if i // 4 == k},
        )
        if k == flip_at:
            ones = sorted((repo.workdir / "train" / "1").iterdir())[:5]
            for p in ones:
                (repo.workdir / "train" / "7").mkdir(exist_ok=True)
                p.rename(repo.workdir / "train" / "7" / p.name)
                flipped.append(p.name)
        ids.append(repo.commit(f"add batch {k}", all=True).id)
    return ids, flipped


def test_bisect_run_over_a_real_64_commit_history(tmp_repo: Repo, tmp_path: Path) -> None:
    ids, flipped = _flip_history(tmp_repo, 64, flip_at=37)
    assert len(flipped) == 5
    check = tmp_path / "check.py"
    check.write_text(
        "import pathlib, sys\n"
        f"names = {flipped!r}\n"
        "sys.exit(1 if any((pathlib.Path('train/7') / n).exists() for n in names) else 0)\n"
    )
    first = bisect.start(tmp_repo, "HEAD", [ids[0]])
    assert first is not None and first.commit is not None and first.steps == 5
    seen = []
    step = bisect.run(tmp_repo, [sys.executable, str(check)], lambda *a: seen.append(a))
    assert step.first_bad == ids[37]
    assert 5 <= len(seen) <= 7
    assert "datagit bisect bad" in bisect.log(tmp_repo)
    saved = tmp_path / "bisect.log"
    saved.write_text(bisect.log(tmp_repo))
    assert bisect.reset(tmp_repo) == "main"
    assert tmp_repo.branch() == "main" and tmp_repo.head() == ids[-1]
    assert not (tmp_repo.dotdir / "BISECT_LOG").exists()
    replayed = bisect.replay(tmp_repo, saved)
    assert replayed is not None and replayed.first_bad == ids[37]
    bisect.reset(tmp_repo)


def test_custom_terms_skip_and_abort(tmp_repo: Repo, tmp_path: Path) -> None:
    ids, _ = _flip_history(tmp_repo, 8, flip_at=5)
    bisect.start(tmp_repo, term_old="fast", term_new="slow")
    assert bisect.mark(tmp_repo, "slow", [ids[-1]]) is None  # waiting for a fast commit
    step = bisect.mark(tmp_repo, "fast", [ids[0]])
    assert step is not None and step.commit == tmp_repo.head()
    with pytest.raises(DatagitError, match="not a bisect term"):
        bisect.mark(tmp_repo, "good")
    bisect.mark(tmp_repo, "skip")
    crash = tmp_path / "crash.py"
    crash.write_text("import sys; sys.exit(200)\n")
    with pytest.raises(DatagitError, match="exited 200"):
        bisect.run(tmp_repo, [sys.executable, str(crash)])
    bisect.reset(tmp_repo)
    assert tmp_repo.branch() == "main"


def test_bisect_refuses_a_dirty_workspace(digits_repo: Repo) -> None:
    digits_repo.commit("all", all=True)
    branches.create_branch(digits_repo, "keep")
    next(iter((digits_repo.workdir / "train" / "3").iterdir())).unlink()
    with pytest.raises(DatagitError, match="uncommitted"):
        bisect.start(digits_repo, "HEAD")
