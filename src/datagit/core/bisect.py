"""Bisection over the commit graph with git's rules, as pure functions.

The candidates are the commits reachable from the bad commit and from no good
one; the next commit to test is the one whose ancestors among the candidates
split them most evenly (git's ``find_bisection``), skipping commits marked
skip. Works across merges because reachability, not a list, decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from datagit.errors import InvalidInputError
from datagit.storage.git import GitStore

# git's run exit codes
GOOD_EXIT = 0
SKIP_EXIT = 125


@dataclass(frozen=True, slots=True)
class Step:
    """What bisect does next: test ``commit`` or report ``first_bad`` (or ``only_skipped``)."""

    commit: str | None = None
    left: int = 0  # revisions left to test after this one
    steps: int = 0  # roughly how many more steps
    first_bad: str | None = None
    only_skipped: tuple[str, ...] = ()


def verdict(exit_code: int) -> str:
    """git's reading of a `bisect run` exit status: 'old', 'new', 'skip' or 'abort'."""
    if exit_code == GOOD_EXIT:
        return "old"
    if exit_code == SKIP_EXIT:
        return "skip"
    if 1 <= exit_code <= 127:
        return "new"
    return "abort"


def estimate_steps(n: int) -> int:
    """git's estimate_bisect_steps: about log2(n), rounded by where n sits between powers."""
    if n < 3:
        return 0
    k = n.bit_length() - 1
    e = 1 << k
    x = n - e
    return k if e < 3 * x else k - 1


def candidates(git: GitStore, bad: str, good: Iterable[str]) -> list[str]:
    """Commits reachable from ``bad`` and from no ``good`` commit, newest first (topological)."""
    excluded: set[str] = set()
    good = list(good)
    if good:
        excluded = {c.id for c in git.walk(good)}
    out = []
    for c in git.walk([bad]):
        if c.id not in excluded:
            out.append(c.id)
    return out


def next_step(git: GitStore, bad: str, good: Iterable[str], skip: Iterable[str]) -> Step:
    """The next commit to test, or the answer when one remains."""
    cands = candidates(git, bad, good)
    skipped = set(skip)
    if not cands:
        raise InvalidInputError(
            f"the bad commit {bad[:10]} is reachable from a good commit",
            hint="good and bad are swapped? check with `datagit bisect log`, then `bisect reset`",
        )
    if cands == [bad]:
        return Step(first_bad=bad)
    index = {c: i for i, c in enumerate(cands)}
    masks = [0] * len(cands)
    for i in range(len(cands) - 1, -1, -1):  # oldest first: parents come later in the list
        m = 1 << i
        for p in git.commit(cands[i]).parents:
            j = index.get(p)
            if j is not None:
                m |= masks[j]
        masks[i] = m
    testable = [c for c in cands if c != bad and c not in skipped]
    if not testable:
        return Step(only_skipped=tuple(c for c in cands if c in skipped or c == bad))
    total = len([c for c in cands if c not in skipped])
    best, best_score, best_reach = None, -1, 0
    for c in testable:
        reach = _popcount_unskipped(masks[index[c]], cands, skipped)
        score = min(reach, total - reach)
        if score > best_score:
            best, best_score, best_reach = c, score, reach
    return Step(commit=best, left=max(total - best_reach - 1, 0), steps=estimate_steps(total))


def _popcount_unskipped(mask: int, cands: list[str], skipped: set[str]) -> int:
    n = mask.bit_count()
    if skipped:
        n -= sum(1 for i, c in enumerate(cands) if c in skipped and mask >> i & 1)
    return n
