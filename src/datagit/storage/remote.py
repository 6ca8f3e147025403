"""Content remotes: example bytes in an object store, one object per content address.

Layout: ``<url>/ab/cdef…`` (the address split after two hex digits), so one
listing pass tells what the remote holds and a push sends only what is
missing. Transfers go through fsspec: a local directory, ``s3://`` via s3fs,
and whatever other backend is installed (gs://, az://, ssh://). For the
async backends, fsspec's ``pipe``/``cat`` of many paths run the requests
concurrently in batches, so there is no thread pool here. Storage options
(an endpoint, a profile, ``anon``) are passed to the backend as given;
credentials best come from the backend's own sources (environment, config files).

Every downloaded object is verified against its address before anyone sees it.
"""

from __future__ import annotations

import builtins
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datagit.errors import CorruptObjectError, RemoteError
from datagit.storage.content import address

BATCH = 256  # objects per fsspec call: bounded memory, enough to keep a connection pool busy
_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{30}$")
RUNS_DIR = "runs"  # runs/<id>.json: a shared run's files by content address
RUN_ID = re.compile(r"^[0-9a-f]{8,64}$")
# Backends whose single PUT is atomic: a killed upload leaves no torn object behind.
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"}

# Called with the number of objects just transferred: `datagit.progress.Reporter.advance`.
Advance = Callable[[int], None]


class MissingObjectError(RemoteError):
    """The remote has no object under an address someone asked for."""


@dataclass
class TransferStats:
    """What a remote was asked to do, for tests and benchmarks (not a server's count)."""

    list_calls: int = 0
    uploaded: int = 0
    upload_calls: int = 0
    downloaded: int = 0
    download_calls: int = 0


class ContentRemote:
    """The content objects under one fsspec URL."""

    def __init__(self, url: str, fs: Any = None, **storage_options: Any) -> None:
        self.url = url
        if fs is None:
            try:
                import fsspec
            except ImportError as exc:
                raise RemoteError(
                    "content remotes need fsspec",
                    hint="pip install 'datagit[remote]' (or 'datagit[s3]' for s3://)",
                ) from exc
            options = {**storage_options, "skip_instance_cache": True}
            try:
                fs, root = fsspec.core.url_to_fs(url, **options)
            except (ImportError, ValueError) as exc:
                raise RemoteError(
                    f"cannot use content remote {url}: {_first_line(exc)}",
                    hint="install the fsspec backend for this URL (s3fs for s3://, gcsfs for gs://)",
                ) from exc
            except TypeError as exc:  # an option the backend does not take
                raise RemoteError(
                    f"cannot use content remote {url} with its options: {_first_line(exc)}",
                    hint="see them with `datagit remote list -v`; fix one with "
                    "`datagit remote modify NAME KEY VALUE` or `--unset KEY`",
                ) from exc
        else:
            root = fs._strip_protocol(url)
        self.fs = fs
        self.root = str(root).rstrip("/")
        protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
        self.local = "file" in protocols or "local" in protocols
        self.atomic = bool(set(protocols) & _ATOMIC_PUT)
        self.stats = TransferStats()
        self._made_dirs: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.root}/{key[:2]}/{key[2:]}"

    # -- listing -----------------------------------------------------------
    def list(self) -> set[str]:
        """Every content address the remote holds (one listing pass)."""
        self.stats.list_calls += 1
        if self.local:
            return set(_scan_local(Path(self.root)))
        try:
            self.fs.invalidate_cache()
            found = self.fs.find(self.root)
        except FileNotFoundError:
            return set()
        except Exception as exc:
            raise self._unreachable(exc) from exc
        prefix = self.root + "/"
        out = set()
        for p in found:
            rel = p[len(prefix) :] if p.startswith(prefix) else p
            if _KEY.match(rel):
                out.add(rel.replace("/", ""))
        return out

    # -- upload --------------------------------------------------------------
    def upload(self, objects: Iterable[tuple[str, bytes]], progress: Advance | None = None) -> int:
        """Store (address, bytes) pairs; each object becomes visible whole or not at all."""
        n = 0
        for batch in _batches(objects, BATCH):
            if self.local:
                for key, data in batch:
                    self._put_local(key, data)
            elif self.atomic:
                self._call(self.fs.pipe, {self.path(k): d for k, d in batch})
            else:  # write beside, then rename, so a killed push leaves no torn object
                tmp = {self.path(k) + f".tmp-{os.getpid()}": d for k, d in batch}
                self._call(self.fs.pipe, tmp)
                for (k, _), t in zip(batch, tmp, strict=True):
                    self._call(self.fs.mv, t, self.path(k))
            self.stats.upload_calls += 1
            self.stats.uploaded += len(batch)
            n += len(batch)
            if progress:
                progress(len(batch))
        return n

    def _put_local(self, key: str, data: bytes) -> None:
        folder = f"{self.root}/{key[:2]}"
        if folder not in self._made_dirs:
            os.makedirs(folder, exist_ok=True)
            self._made_dirs.add(folder)
        final = f"{folder}/{key[2:]}"
        tmp = f"{final}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, final)

    # -- download --------------------------------------------------------------
    def download(
        self, keys: Iterable[str], progress: Advance | None = None
    ) -> Iterator[tuple[str, bytes]]:
        """Yield (address, bytes) for ``keys``, each verified against its address.

        A missing object or one whose bytes do not match raises before it is
        yielded, so the caller never stores anything it has not checked.
        """
        for batch in _batches(keys, BATCH):
            if self.local:
                got: dict[str, Any] = {}
                for k in batch:
                    try:
                        got[k] = Path(self.path(k)).read_bytes()
                    except FileNotFoundError as exc:
                        got[k] = exc
            else:
                raw = self._call(self.fs.cat, [self.path(k) for k in batch], on_error="return")
                got = {k: raw.get(self._strip(self.path(k)), FileNotFoundError()) for k in batch}
            self.stats.download_calls += 1
            for k in batch:
                data = got[k]
                if isinstance(data, FileNotFoundError):
                    raise MissingObjectError(
                        f"content {k} is not on the remote {self.url}",
                        hint="push it from a repository that has it, then pull again",
                    )
                if isinstance(data, BaseException):
                    raise self._unreachable(data)
                if address(data) != k:
                    raise CorruptObjectError(
                        f"content {k} on the remote {self.url} is corrupt "
                        f"(its bytes hash to {address(data)})",
                        hint="delete that object on the remote and push it again "
                        "from a repository that has it intact",
                    )
                self.stats.downloaded += 1
                yield k, data
            if progress:
                progress(len(batch))

    def check(self, keys: Iterable[str]) -> builtins.list[str]:  # `list` is a method here
        """Download ``keys`` and return one line per object that is missing or corrupt."""
        problems: list[str] = []
        pending = list(keys)
        while pending:
            done = 0
            try:
                for _ in self.download(pending):
                    done += 1
            except (CorruptObjectError, MissingObjectError) as exc:
                problems.append(exc.message)
                done += 1  # skip the bad one and go on with the rest
            pending = pending[done:]
        return problems

    # -- run indexes: runs/<id>.json beside the objects -----------------------------
    def run_ids(self) -> set[str]:
        """Ids of the runs whose index is on the remote (one listing of ``runs/``)."""
        folder = f"{self.root}/{RUNS_DIR}"
        if self.local:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                return set()
        else:
            try:
                names = [p.rsplit("/", 1)[-1] for p in self._call(self.fs.ls, folder, detail=False)]
            except RemoteError as exc:
                if isinstance(exc.__cause__, FileNotFoundError):
                    return set()
                raise
        return {n[:-5] for n in names if n.endswith(".json") and RUN_ID.match(n[:-5])}

    def put_run_index(self, run_id: str, data: bytes) -> None:
        """Publish a run's index after every file it names was uploaded."""
        path = f"{self.root}/{RUNS_DIR}/{run_id}.json"
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            Path(tmp).write_bytes(data)
            os.replace(tmp, path)
        else:
            self._call(self.fs.pipe, {path: data})

    def get_run_index(self, run_id: str) -> bytes:
        path = f"{self.root}/{RUNS_DIR}/{run_id}.json"
        if self.local:
            try:
                return Path(path).read_bytes()
            except FileNotFoundError as exc:
                raise self._unreachable(exc) from exc
        return bytes(self._call(self.fs.cat_file, path))

    def delete(self, keys: Iterable[str]) -> None:
        """Remove objects (tests and repair; push never deletes)."""
        paths = [self.path(k) for k in keys]
        if paths:
            self._call(self.fs.rm, paths)

    # -- errors ------------------------------------------------------------------
    def _strip(self, path: str) -> str:
        return str(self.fs._strip_protocol(path))

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: BaseException) -> RemoteError:
        return RemoteError(
            f"content remote {self.url} failed: {_first_line(exc)}",
            hint="check the URL, the endpoint and credentials (AWS_* environment variables, "
            "the remote's options in `datagit remote list -v`); nothing was changed locally",
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _scan_local(root: Path) -> Iterator[str]:
    try:
        subs = list(os.scandir(root))
    except FileNotFoundError:
        return
    for sub in subs:
        if len(sub.name) != 2 or not sub.is_dir():
            continue
        for f in os.scandir(sub.path):
            key = sub.name + f.name
            if len(key) == 32 and _KEY.match(f"{sub.name}/{f.name}"):
                yield key


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
