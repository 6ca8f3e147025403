"""Remote transfer speed and request counts, measured against baselines in the same run.

    .venv/bin/python benchmarks/bench_remotes.py [--objects 10000] [--s3-objects 1000]

Rows:
- push of N small (2–8 KB) objects to a local-directory remote vs ``shutil.copytree``
  of the same files (target: ratio ≤ 2×);
- a second push with nothing new: listing calls and per-object calls made;
- push to a moto S3 server on 127.0.0.1: requests per pushed object, counted by
  the server (target: ≤ 1), and what a no-op second push sends.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from datagit import DatasetConfig, Repo
from datagit.api import remotes
from datagit.storage.remote import ContentRemote


def make_repo(root: Path, n: int) -> Repo:
    os.environ.setdefault("GIT_AUTHOR_NAME", "Bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    repo = Repo.init(root / "ws")
    rng = random.Random(0)
    for i in range(n):
        path = repo.workdir / "train" / f"c{i % 10}" / f"{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(2048, 8192)))
    repo.add_dataset(DatasetConfig(name="train", layout="imagefolder", path="train"))
    repo.commit(f"{n} objects", all=True)
    return repo


def bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return str(path)


def bench_local(root: Path, n: int, rounds: int = 3) -> list[tuple[str, str, str]]:
    """Copy and push alternate, ``rounds`` times each; medians, so a busy machine hurts both."""
    repo = make_repo(root, n)
    url = bare(root / "origin.git")
    remotes.add_remote(repo, "origin", url)
    content_dir = Path(remotes.get_remote(repo, "origin").content or "")
    copies, pushes = [], []
    for i in range(rounds):
        os.sync()
        t = time.perf_counter()
        shutil.copytree(repo.workdir / "train", root / f"plain-copy-{i}")
        copies.append(time.perf_counter() - t)
        shutil.rmtree(content_dir, ignore_errors=True)  # every round pushes all n objects
        os.sync()
        t = time.perf_counter()
        first = remotes.push(repo, "origin")
        pushes.append(time.perf_counter() - t)
        assert first.uploaded == n
    copy_s, push_s = statistics.median(copies), statistics.median(pushes)

    again = ContentRemote(str(content_dir))
    t = time.perf_counter()
    second = remotes.push(repo, "origin", content=again)
    noop_s = time.perf_counter() - t
    assert second.uploaded == 0
    s = again.stats
    return [
        (f"copytree of {n} files (2–8 KB)", f"{copy_s:.2f} s", f"baseline (median of {rounds})"),
        (
            f"push {n} objects → local dir",
            f"{push_s:.2f} s",
            f"{push_s / copy_s:.2f}× copytree (target ≤ 2×; median of {rounds})",
        ),
        (
            "second push, nothing new",
            f"{noop_s:.2f} s",
            f"{s.list_calls} listing pass, {s.upload_calls} upload calls, {s.downloaded} downloads",
        ),
    ]


class CountingS3Server:
    """moto's S3 on 127.0.0.1 behind a WSGI wrapper that counts requests by kind."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self.requests: Counter[str] = Counter()
        app = DomainDispatcherApplication(create_backend_app)

        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            method = environ["REQUEST_METHOD"]
            path = environ.get("PATH_INFO", "").strip("/")
            listing = method == "GET" and (
                "/" not in path or "list-type" in environ.get("QUERY_STRING", "")
            )
            self.requests["LIST" if listing else method] += 1
            return app(environ, start_response)

        self._server = make_server("127.0.0.1", 0, counting, threaded=True, request_handler=Quiet)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def bench_s3(root: Path, n: int) -> list[tuple[str, str, str]]:
    server = CountingS3Server()
    try:
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=server.endpoint,
        )
        import boto3

        boto3.client("s3", endpoint_url=server.endpoint).create_bucket(Bucket="bench-bucket")
        repo = make_repo(root, n)
        remotes.add_remote(repo, "origin", bare(root / "origin.git"), "s3://bench-bucket/data")
        server.requests.clear()
        t = time.perf_counter()
        remotes.push(repo, "origin")
        push_s = time.perf_counter() - t
        first = Counter(server.requests)
        server.requests.clear()
        remotes.push(repo, "origin")
        second = Counter(server.requests)
    finally:
        server.stop()
    total = sum(first.values())
    return [
        (
            f"push {n} objects → moto S3",
            f"{push_s:.2f} s",
            f"{first['PUT'] / n:.3f} PUT/object, {total / n:.3f} requests/object "
            f"incl. listing ({dict(first)})",
        ),
        ("second push to S3, nothing new", "", f"requests: {dict(second)}"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--s3-objects", type=int, default=1_000)
    args = ap.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += bench_local(Path(tmp) / "local", args.objects)
    if args.s3_objects:
        with tempfile.TemporaryDirectory() as tmp:
            rows += bench_s3(Path(tmp) / "s3", args.s3_objects)
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'time':>8}  result")
    print("-" * (width + 60))
    for name, secs, result in rows:
        print(f"{name:<{width}}  {secs:>8}  {result}")


if __name__ == "__main__":
    main()
