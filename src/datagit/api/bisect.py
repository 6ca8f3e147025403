"""git-style bisect over data commits: state in ``.datagit/BISECT_*`` and ``refs/bisect/``.

Like git, the marks live as refs (so the commits stay reachable and any git
tool can see them) and every command is appended to ``BISECT_LOG`` in a form
``bisect replay`` can run again. Each step checks the candidate out through
`api.workspace.checkout`, so bisect never has its own copy of checkout.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from datagit.api import workspace
from datagit.core import bisect as core
from datagit.core.bisect import Step
from datagit.errors import DatagitError, InvalidInputError

if TYPE_CHECKING:
    from datagit.api.repo import Repo

START, TERMS, LOG = "BISECT_START", "BISECT_TERMS", "BISECT_LOG"
REFS = "refs/bisect/"
RESERVED = {"start", "good", "bad", "old", "new", "skip", "run", "log", "replay", "reset", "terms"}
RESERVED |= {"narrow", "report", "verify"}  # the metric hunt's verbs


@dataclass(frozen=True)
class Terms:
    """The words for the two states: git's good/bad by default, or e.g. fast/slow."""

    old: str = "good"
    new: str = "bad"

    def canonical(self, word: str) -> str | None:
        """'old', 'new', 'skip' or None for a word the user typed."""
        if word in (self.old, "old") or (word == "good" and self.old == "good"):
            return "old"
        if word in (self.new, "new") or (word == "bad" and self.new == "bad"):
            return "new"
        return "skip" if word == "skip" else None


def in_progress(repo: Repo) -> bool:
    return (repo.dotdir / START).exists()


def terms(repo: Repo) -> Terms:
    path = repo.dotdir / TERMS
    if not path.exists():
        return Terms()
    new, old = path.read_text().split("\n")[:2]
    return Terms(old, new)


def start(
    repo: Repo,
    bad: str | None = None,
    good: Sequence[str] = (),
    *,
    term_old: str = "good",
    term_new: str = "bad",
) -> Step | None:
    """Begin bisecting (resetting any bisect in progress); returns the first step, if any."""
    for word in (term_old, term_new):
        if word in RESERVED - {"good", "bad", "old", "new"} or not word.isidentifier():
            raise InvalidInputError(f"{word!r} cannot be a bisect term", hint="pick another word")
    if term_old == term_new:
        raise InvalidInputError("--term-old and --term-new must differ")
    revs = [repo.resolve(r) for r in ([bad] if bad else []) + list(good)]
    if in_progress(repo):
        reset(repo)
    if repo.head() is None:
        raise DatagitError("cannot bisect: there are no commits yet")
    if not repo.status().clean:
        raise DatagitError(
            "bisect start would overwrite uncommitted changes",
            hint="commit them first, or discard them with `datagit checkout -f HEAD`",
        )
    (repo.dotdir / START).write_text((repo.branch() or repo.head() or "") + "\n")
    (repo.dotdir / TERMS).write_text(f"{term_new}\n{term_old}\n")
    words = (
        ""
        if (term_old, term_new) == ("good", "bad")
        else (f" --term-old {term_old} --term-new {term_new}")
    )
    _log(repo, f"datagit bisect start{words}")
    if revs:
        _mark_one(repo, "new", revs[0])
    for oid in revs[1:]:
        _mark_one(repo, "old", oid)
    return next_step(repo)


def mark(repo: Repo, word: str, revs: Sequence[str] = ()) -> Step | None:
    """``good``/``bad``/``skip`` (or the custom terms) for ``revs`` (default: HEAD)."""
    _require(repo)
    which = terms(repo).canonical(word)
    if which is None:
        t = terms(repo)
        raise InvalidInputError(
            f"{word!r} is not a bisect term here",
            hint=f"use {t.old}, {t.new} or skip",
        )
    oids = [repo.resolve(r) for r in revs] or [repo.head() or ""]
    if which == "new" and len(oids) > 1:
        raise InvalidInputError(f"only one revision can be marked {word}")
    for oid in oids:
        _mark_one(repo, which, oid)
    return next_step(repo)


def _mark_one(repo: Repo, which: str, oid: str) -> None:
    t = terms(repo)
    word = {"old": t.old, "new": t.new, "skip": "skip"}[which]
    if which == "new":
        repo.git.update_ref(f"{REFS}{t.new}", oid)
    else:
        repo.git.update_ref(f"{REFS}{word}-{oid}", oid)
    _log(repo, f"# {word}: [{oid}] {repo.git.commit(oid).summary}")
    _log(repo, f"datagit bisect {word} {oid}")


def _marks(repo: Repo) -> tuple[str | None, list[str], list[str]]:
    t = terms(repo)
    refs = repo.git.refs(REFS)
    bad = refs.get(f"{REFS}{t.new}")
    good = [o for n, o in refs.items() if n.startswith(f"{REFS}{t.old}-")]
    skip = [o for n, o in refs.items() if n.startswith(f"{REFS}skip-")]
    return bad, good, skip


def next_step(repo: Repo) -> Step | None:
    """Check out the next commit to test and describe it; None while marks are missing."""
    _require(repo)
    bad, good, skip = _marks(repo)
    if bad is None or not good:
        return None
    step = core.next_step(repo.git, bad, good, skip)
    if step.commit is not None:
        workspace.checkout(repo, step.commit)
    elif step.first_bad is not None:
        _log(repo, f"# first {terms(repo).new} commit: [{step.first_bad}]")
    return step


def reset(repo: Repo, rev: str | None = None) -> str:
    """Go back to where bisect started (or to ``rev``) and forget the bisect."""
    _require(repo)
    original = (repo.dotdir / START).read_text().strip()
    target = rev or original
    workspace.checkout(repo, target)
    for name in repo.git.refs(REFS):
        repo.git.delete_ref(name)
    for name in (START, TERMS, LOG):
        (repo.dotdir / name).unlink(missing_ok=True)
    return target


def log(repo: Repo) -> str:
    _require(repo)
    return (repo.dotdir / LOG).read_text()


def replay(repo: Repo, path: Path) -> Step | None:
    """Re-run the ``datagit bisect`` lines of a saved log (comments ignored)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    step: Step | None = None
    for n, line in enumerate(lines, start=1):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[:2] not in (["datagit", "bisect"], ["git", "bisect"]) or len(words) < 3:
            raise InvalidInputError(
                f"{path} line {n}: not a bisect command: {line!r}",
                hint="a log line reads `datagit bisect good|bad|skip REV`",
            )
        verb, args = words[2], words[3:]
        if verb == "start":
            opts = dict(zip(args[::2], args[1::2], strict=False))
            step = start(
                repo,
                term_old=opts.get("--term-old", "good"),
                term_new=opts.get("--term-new", "bad"),
            )
        else:
            step = mark(repo, verb, args)
    return step


Report = Callable[[str, int, str, Step | None], None]


def run(repo: Repo, argv: Sequence[str], report: Report | None = None) -> Step:
    """Test commits with a command until the first bad one is found (git's exit codes).

    ``report(commit, exit_code, verdict, next_step)`` is called after each test.
    """
    _require(repo)
    if not argv:
        raise InvalidInputError("bisect run needs a command", hint="e.g. `bisect run ./test.sh`")
    step = next_step(repo)
    if step is None:
        raise DatagitError(
            f"bisect run needs a {terms(repo).new} and a {terms(repo).old} commit first",
            hint=f"mark them with `datagit bisect {terms(repo).new} REV` and "
            f"`datagit bisect {terms(repo).old} REV`",
        )
    while step.commit is not None:
        commit = step.commit
        try:
            code = subprocess.run(list(argv), cwd=repo.workdir, check=False).returncode
        except OSError as exc:
            raise DatagitError(f"bisect run: cannot run {argv[0]}: {exc.strerror or exc}") from None
        result = core.verdict(code)
        if result == "abort":
            raise DatagitError(
                f"bisect run: {shlex.join(argv)} exited {code} on {commit[:10]}; stopping",
                hint="exit 0 for good, 1-127 (not 125) for bad, 125 to skip",
            )
        step = mark(repo, result, [commit])  # type: ignore[assignment]
        if report:
            report(commit, code, result, step)
        assert step is not None
    return step


def _log(repo: Repo, line: str) -> None:
    with open(repo.dotdir / LOG, "a") as f:
        f.write(line + "\n")


def _require(repo: Repo) -> None:
    if not in_progress(repo):
        raise DatagitError("not bisecting", hint="start with `datagit bisect start BAD GOOD`")
