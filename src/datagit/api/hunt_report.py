"""The auditor's report of a hunt, and its verification against the repository.

`report` is the one function producing the report's JSON (the shape the CLI
and the web viewer share; documented in docs/history.md). Its ``evidence``
holds a SHA-256 over every record and every example's bytes that each tested
commit's train and eval data hold (xxh3 addresses are not collision-resistant,
so the bytes are hashed again), over the harness config, and over each run's
weights file. ``sha256`` covers the whole report, so an edit shows.
Markdown and HTML renderings embed the JSON; `verify` re-renders them and
compares every byte.
"""

from __future__ import annotations

import hashlib
import html
import importlib.metadata
import json
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from datagit.api import harness, hunt
from datagit.core.records import encode_lines
from datagit.errors import DatagitError, InvalidInputError

if TYPE_CHECKING:
    from datagit.api.repo import Repo

FORMAT = "datagit-bisect-report/1"
_EMBED = re.compile(r"<!-- datagit-report\n(.*?)\n-->", re.S)
_HTML_EMBED = re.compile(
    r'<script type="application/json" id="datagit-report">(.*?)</script>', re.S
)


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class _Hasher:
    """SHA-256 of a dataset tree's records and bytes, each content hashed once."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.content: dict[str, bytes] = {}
        self.trees: dict[str, tuple[int, str]] = {}

    def dataset(self, name: str, commit: str) -> dict[str, Any]:
        tree = self.repo.dataset_tree(name, commit)
        if tree.oid not in self.trees:
            h = hashlib.sha256()
            records = sorted(tree.records(), key=lambda r: r.id)
            for r in records:
                h.update(encode_lines([r]))
                key = r.content if r.text is None else f"text:{r.content}"
                if key not in self.content:
                    self.content[key] = hashlib.sha256(self.repo.read(r)).digest()
                h.update(self.content[key])
            self.trees[tree.oid] = (len(records), h.hexdigest())
        count, digest = self.trees[tree.oid]
        return {
            "dataset": name,
            "commit": commit,
            "tree": tree.oid,
            "records": count,
            "sha256": digest,
        }


def _file_sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def report(repo: Repo) -> dict[str, Any]:
    """The report of the last hunt as a JSON-ready dict (stable shape: ``format``)."""
    state = hunt.load(repo)
    if not state or not state.get("result"):
        raise DatagitError(
            "no finished hunt to report", hint="run `datagit bisect run --harness` first"
        )
    cfg = state["config"]
    hasher = _Hasher(repo)
    runs, commits, evidence = [], [], []
    seen: set[str] = set()
    store = harness.store(repo)
    for t in state["tested"]:
        values = t["values"]
        commits.append(
            {
                "commit": t["commit"],
                "summary": repo.git.commit(t["commit"]).summary,
                "role": t["role"],
                "round": t["round"],
                "values": values,
                "mean": sum(values) / len(values),
                "verdict": t["verdict"],
                "cached": t["cached"],
                "trained": t["trained"],
            }
        )
        for r, value in zip(t["runs"], values, strict=True):  # one value per run, in order
            run = store.get(r["run_id"])
            runs.append(
                {
                    "commit": r["commit"],
                    "seed": r["seed"],
                    "run_id": r["run_id"],
                    "train_tree": r["train_tree"],
                    "eval_tree": r["eval_tree"],
                    "config_digest": state["config_digest"],
                    "value": value,
                    "metrics": r["metrics"],
                    "weights_sha256": r["weights_sha256"],
                    "weights_file_sha256": _file_sha(run.weights_path) if run else None,
                    "cached": r["cached"],
                }
            )
        if t["commit"] not in seen:
            seen.add(t["commit"])
            evidence += _commit_evidence(hasher, cfg, t["commit"])
    result = dict(state["result"])
    first_bad = result.get("first_bad")
    narrowing = state.get("narrow")
    if first_bad:
        result.update(_culprit(repo, cfg["train"], first_bad))
    if narrowing and narrowing.get("parent") not in seen:
        seen.add(narrowing["parent"])
        evidence += _commit_evidence(hasher, cfg, narrowing["parent"])
    out = {
        "format": FORMAT,
        "tool": {
            "datagit": _version("datagit"),
            "torch": _version("torch"),
            "python": platform.python_version(),
        },
        "question": {
            "rule": state["rule"],
            "seeds": state["seeds"],
            "max_seeds": state["max_seeds"],
            "good": state["good"],
            "bad": state["bad"],
            "config": cfg,
            "config_digest": state["config_digest"],
            "config_source": state["config_source"],
            "config_sha256": hashlib.sha256(canonical(cfg)).hexdigest(),
            "jobs": state.get("jobs", 1),
            "executor": state.get("executor", "local"),
        },
        "commits": commits,
        "runs": runs,
        "rounds": state.get("rounds", 0),
        "skipped": [c["commit"] for c in commits if c["verdict"] == "skip"],
        "result": result,
        "narrow": _narrow_summary(narrowing) if narrowing else None,
        "evidence": evidence,
    }
    out["sha256"] = hashlib.sha256(canonical(out)).hexdigest()
    return out


def _commit_evidence(hasher: _Hasher, cfg: dict[str, Any], commit: str) -> list[dict[str, Any]]:
    out = []
    for role in ("train", "eval"):
        rev = commit if role == "train" or not cfg.get("eval_rev") else cfg["eval_rev"]
        out.append({"role": role, **hasher.dataset(cfg[role], hasher.repo.resolve(rev))})
    return out


def _culprit(repo: Repo, dataset: str, oid: str) -> dict[str, Any]:
    from datagit.api import history

    c = repo.git.commit(oid)
    parent = c.parents[0] if c.parents else None
    table: list[dict[str, Any]] = []
    summary: dict[str, int] = {}
    if parent:
        for d in history.diff(repo, parent, oid, datasets=[dataset]).datasets:
            summary = {k: v for k, v in d.summary().items() if v}
            table = [{"from": a, "to": b, "count": n} for a, b, n in d.transitions()]
    return {
        "summary": c.summary,
        "message": c.message,
        "author": {"name": c.author.name, "email": c.author.email, "time": c.author.time},
        "annotator": c.trailer("Annotator"),
        "parent": parent,
        "changes": summary,
        "label_changes": table,
    }


def _narrow_summary(n: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "culprit",
        "parent",
        "dataset",
        "metric",
        "parent_value",
        "bad_value",
        "changes",
        "trials",
        "reproduced",
        "retrains",
        "status",
        "harmful",
    )
    return {k: n.get(k) for k in keys}


# -- rendering ----------------------------------------------------------------
def render(rep: dict[str, Any], fmt: str = "json") -> str:
    """The report as JSON, Markdown or HTML (the last two embed the JSON)."""
    if fmt == "json":
        return json.dumps(rep, indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        return _markdown(rep) + f"\n<!-- datagit-report\n{canonical(rep).decode()}\n-->\n"
    if fmt == "html":
        body = html.escape(_markdown(rep))
        blob = canonical(rep).decode().replace("</", "<\\/")
        return (
            '<!doctype html>\n<html><head><meta charset="utf-8"><title>datagit bisect report'
            f"</title></head>\n<body><pre>{body}</pre>\n"
            f'<script type="application/json" id="datagit-report">{blob}</script>\n'
            "</body></html>\n"
        )
    raise InvalidInputError(f"unknown report format {fmt!r}", hint="use --json, --md or --html")


def _markdown(rep: dict[str, Any]) -> str:
    q, res = rep["question"], rep["result"]
    rule = q["rule"]
    lines = [
        "# datagit bisect report",
        "",
        f"- question: is `{rule['metric']}` ({rule['direction']}) good, by rule `{rule['mode']}`"
        f" threshold {rule['threshold']:.4f}, noise σ {rule['noise']:.4f} × z {rule['z']}",
        f"- seeds {q['seeds']} (up to {q['max_seeds']} in the noise band); config "
        f"{q['config_source']} (digest {q['config_digest'][:16]})",
        f"- tool: datagit {rep['tool']['datagit']}, torch {rep['tool']['torch']}, "
        f"python {rep['tool']['python']}",
        "",
        "## Verdict",
        "",
    ]
    if res.get("first_bad"):
        a = res["author"]
        lines += [
            f"First bad commit **{res['first_bad']}** — {res['summary']}",
            f"by {a['name']} <{a['email']}>, annotator {res.get('annotator') or '-'}; "
            + ", ".join(f"{v} {k}" for k, v in res.get("changes", {}).items()),
            "",
            "| from | to | count |",
            "|---|---|---|",
            *[f"| {t['from']} | {t['to']} | {t['count']} |" for t in res["label_changes"]],
        ]
    else:
        lines.append("No single first bad commit; skipped: " + ", ".join(res["only_skipped"]))
    lines += [
        "",
        "## Commits tested",
        "",
        "| commit | role | mean | seeds | verdict | runs |",
        "|---|---|---|---|---|---|",
    ]
    for c in rep["commits"]:
        lines.append(
            f"| {c['commit'][:10]} | {c['role']} (round {c['round']}) | {c['mean']:.4f} | "
            f"{len(c['values'])} | {c['verdict']} | {c['cached']} cached, {c['trained']} trained |"
        )
    if rep["narrow"]:
        n = rep["narrow"]
        lines += [
            "",
            f"## Harmful examples ({n['status']}, {n['retrains']} retrains)",
            "",
            "| id | old → new | annotator | confidence |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {e['id']} | {e['old_label']} → {e['new_label']} | {e['annotator'] or '-'} | "
            f"{e['confidence']:.2f} |"
            for e in n["harmful"]
        ]
    lines += ["", f"Report sha256 `{rep['sha256']}`; verify with `datagit bisect verify FILE`."]
    return "\n".join(lines) + "\n"


# -- verification -------------------------------------------------------------
@dataclass(frozen=True)
class Verified:
    datasets: int
    runs_checked: int
    runs_absent: int
    first_bad: str | None


def _parse(path: Path) -> tuple[dict[str, Any], str, str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    m = _EMBED.search(text) or _HTML_EMBED.search(text)
    fmt = "json" if m is None else ("md" if m.re is _EMBED else "html")
    blob = text if m is None else m.group(1).replace("<\\/", "</")
    try:
        rep = orjson.loads(blob)
    except orjson.JSONDecodeError:
        raise InvalidInputError(
            f"{path} is not a datagit bisect report (no readable JSON)",
            hint="write one with `datagit bisect report -o FILE`",
        ) from None
    if not isinstance(rep, dict) or rep.get("format") != FORMAT:
        raise InvalidInputError(f"{path} is not a {FORMAT} report")
    return rep, text, fmt


def verify(repo: Repo, path: Path) -> Verified:
    """Check that ``path`` is unedited and that the repository still holds its evidence."""
    rep, text, fmt = _parse(path)
    claimed = rep.pop("sha256", None)
    if claimed != hashlib.sha256(canonical(rep)).hexdigest():
        raise DatagitError(
            f"{path} was edited: its content no longer matches its sha256",
            hint="regenerate it with `datagit bisect report` or use the original file",
        )
    rep["sha256"] = claimed
    if fmt != "json" and render(rep, fmt) != text:
        raise DatagitError(
            f"{path} was edited: the {fmt} text differs from the report it embeds",
            hint="regenerate it with `datagit bisect report` or use the original file",
        )
    if (
        hashlib.sha256(canonical(rep["question"]["config"])).hexdigest()
        != rep["question"]["config_sha256"]
    ):
        raise DatagitError(f"{path}: the harness config does not match its sha256")
    hasher = _Hasher(repo)
    for e in rep["evidence"]:
        try:
            now = hasher.dataset(e["dataset"], e["commit"])
        except DatagitError as exc:
            raise DatagitError(
                f"{path}: the repository no longer holds {e['dataset']} at {e['commit'][:10]} "
                f"({exc.message})",
                hint="fetch the commits the report names, or verify in the original repository",
            ) from None
        if now["sha256"] != e["sha256"] or now["tree"] != e["tree"]:
            raise DatagitError(
                f"{path}: {e['dataset']} at {e['commit'][:10]} differs from the report "
                f"(sha256 {now['sha256'][:16]} ≠ {e['sha256'][:16]})",
                hint="the repository's data changed since the report was written",
            )
    store = harness.store(repo)
    checked = absent = 0
    for r in rep["runs"]:
        run = store.get(r["run_id"])
        if run is None:
            absent += 1
            continue
        if r["weights_file_sha256"] and _file_sha(run.weights_path) != r["weights_file_sha256"]:
            raise DatagitError(
                f"{path}: run {r['run_id']} ({r['commit'][:10]}, seed {r['seed']}) has other "
                "weights than the report's",
                hint="the run cache was rewritten; retrain with `datagit train --no-cache`",
            )
        checked += 1
    return Verified(len(rep["evidence"]), checked, absent, rep["result"].get("first_bad"))
