"""A filesystem monitor: which workspace paths changed since a token, without a stat of each.

A scan of 100,000 files costs 100,000 ``stat`` calls however fast the loop
around them; git answers this with ``core.fsmonitor``, a daemon that watches
the worktree and tells ``status`` which paths to look at. This is datagit's:
an inotify watcher (Linux; ctypes, no dependency) per workspace, serving on a
Unix socket file in ``.datagit/fsmonitor/`` (a 0700 folder).

An answer is trusted only from the monitor datagit started: the client checks
the peer's credentials (``SO_PEERCRED``: same uid, and the pid the monitor
recorded in ``fsmonitor/pid`` once it held ``fsmonitor/lock`` and bound the
socket). A process that merely binds a socket, as a predictable abstract name
once allowed, cannot make ``status`` say "clean".

Protocol: one JSON line each way. ``{"op": "query", "since": TOKEN}`` answers
``{"token": NEW, "paths": [...]}`` — every path created, written, moved or
deleted after ``since`` — or ``"paths": null`` when it cannot say (first
query, a restarted daemon, a kernel queue overflow, or too many changes); the
caller then scans everything, as it would with no daemon. Before answering,
the daemon creates a cookie file and reads events until it sees the cookie's,
so every change made before the query is in the answer (the inotify queue is
one FIFO).

Symlinks are reported as changed on every query: a link's target may change
where no watch sees it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_DONT_FOLLOW = 0x2000000
IN_EXCL_UNLINK = 0x4000000
IN_ISDIR = 0x40000000
WATCH_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
)
_EVENT = struct.Struct("iIII")
MAX_TRACKED = 500_000  # past this many changed paths, forget them: callers scan in full once
COOKIE_WAIT_S = 2.0
IDLE_EXIT_S = 6 * 3600  # unasked this long, the monitor exits; the next scan restarts it
DIRNAME = "fsmonitor"


def supported() -> bool:
    return sys.platform.startswith("linux")


SOCKET = "sock"
PIDFILE = "pid"
LOCKFILE = "lock"
_UCRED = struct.Struct("3i")  # pid, uid, gid
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes with the NUL


def monitor_dir(dotdir: Path) -> Path:
    """``.datagit/fsmonitor``, created private (0700) so no other user can reach the socket."""
    folder = dotdir / DIRNAME
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    return folder


@contextlib.contextmanager
def _socket_address(dotdir: Path) -> Iterator[str]:
    """The socket file's address; through ``/proc/self/fd`` when the path is too long
    for ``sun_path`` (deep workspaces), which Linux resolves for bind and connect alike."""
    folder = monitor_dir(dotdir)
    path = str(folder / SOCKET)
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield path
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{SOCKET}"
    finally:
        os.close(fd)


def recorded_pid(dotdir: Path) -> int | None:
    """The pid the running monitor recorded once it owned the socket."""
    try:
        text = (dotdir / DIRNAME / PIDFILE).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def peer_is_ours(conn: socket.socket, dotdir: Path) -> bool:
    """Whether the process at the other end is our user's monitor: the recorded pid."""
    try:
        pid, uid, _gid = _UCRED.unpack(
            conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
    except OSError:
        return False
    return uid == os.getuid() and pid == recorded_pid(dotdir)


@dataclass
class Answer:
    token: str
    paths: list[str] | None  # None: everything may have changed


# -- client ------------------------------------------------------------------
Reply = dict[str, Any]


def _request(dotdir: Path, message: dict[str, object], timeout: float = 5.0) -> Reply | None:
    if not supported():
        return None
    if not (dotdir / DIRNAME / SOCKET).exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            with _socket_address(dotdir) as address:
                s.connect(address)
            if not peer_is_ours(s, dotdir):
                return None  # not the monitor we started: never trust its answer
            s.sendall(orjson.dumps(message) + b"\n")
            chunks = []
            while chunk := s.recv(1 << 20):
                chunks.append(chunk)
        except OSError:
            return None
    try:
        reply = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        return None
    return reply if isinstance(reply, dict) else None


def query(dotdir: Path, since: str | None) -> Answer | None:
    """Paths changed since ``since``; None when no monitor runs for this repository."""
    reply = _request(dotdir, {"op": "query", "since": since})
    if reply is None or not isinstance(reply.get("token"), str):
        return None
    paths = reply.get("paths")
    return Answer(reply["token"], paths if isinstance(paths, list) else None)


def status(dotdir: Path) -> Reply | None:
    """The running monitor's pid, watch count and uptime, or None."""
    reply = _request(dotdir, {"op": "status"})
    return reply if reply is not None and "pid" in reply else None


def stop(dotdir: Path) -> bool:
    return _request(dotdir, {"op": "stop"}) is not None


def start(workdir: Path, dotdir: Path, wait: float = 10.0) -> bool:
    """Start a monitor for ``workdir`` unless one runs; True once it answers."""
    if not supported():
        return False
    if status(dotdir) is not None:
        return True
    log = monitor_dir(dotdir) / "log"
    with open(log, "ab") as err:
        subprocess.Popen(
            [sys.executable, "-m", "datagit.storage.fsmonitor", str(workdir), str(dotdir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if status(dotdir) is not None:
            return True
        time.sleep(0.02)
    return False


# -- daemon ------------------------------------------------------------------
class Watcher:
    """inotify watches on every non-hidden folder of a workspace, and what changed when."""

    def __init__(self, workdir: Path, dotdir: Path) -> None:
        import ctypes  # here, not at the top: only the daemon needs it, not every status
        import secrets

        self.workdir = str(workdir)
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.instance = secrets.token_hex(6)
        self.seq = 0
        self.floor = 0  # answers for tokens at or below this are "everything"
        self.changed: dict[str, int] = {}
        self.links: set[str] = set()
        self.blind = False  # True once a folder could not be watched: answer "everything"
        self.dirs: dict[int, str] = {}  # wd → folder relative to the workspace ("" = root)
        self.cookie_dir = dotdir / DIRNAME
        self.cookie_dir.mkdir(exist_ok=True)
        self.cookie_wd = self._add(str(self.cookie_dir), None)
        self.cookies_seen: set[str] = set()
        self.started = time.time()
        self.identity = _identity(workdir, dotdir)
        self._watch_tree("")

    def token(self) -> str:
        return f"{self.instance}:{self.seq}"

    def _add(self, abspath: str, rel: str | None) -> int:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(abspath), WATCH_MASK)
        if wd >= 0 and rel is not None:
            self.dirs[wd] = rel
        return int(wd)

    @staticmethod
    def _errno() -> int:
        import ctypes

        return ctypes.get_errno()

    def _watch_tree(self, rel: str) -> None:
        """Watch ``rel`` and every folder under it; note the links found on the way."""
        stack = [rel]
        while stack:
            folder = stack.pop()
            abspath = os.path.join(self.workdir, folder) if folder else self.workdir
            if self._add(abspath, folder) < 0:
                if self._errno() == errno.ENOSPC:
                    self.blind = True  # out of watches: a folder goes unseen from now on
                continue
            try:
                entries = list(os.scandir(abspath))
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = f"{folder}/{entry.name}" if folder else entry.name
                if entry.is_symlink():
                    self.links.add(path)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(path)

    def _forget_tree(self, rel: str) -> None:
        prefix = rel + "/"
        for wd, path in list(self.dirs.items()):
            if path == rel or path.startswith(prefix):
                self.libc.inotify_rm_watch(self.fd, wd)
                del self.dirs[wd]
        self.links = {p for p in self.links if p != rel and not p.startswith(prefix)}

    def _mark(self, path: str) -> None:
        self.seq += 1
        self.changed[path] = self.seq
        if len(self.changed) > MAX_TRACKED:
            self.changed.clear()
            self.floor = self.seq

    def pump(self) -> None:
        """Read every queued event."""
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            pos = 0
            while pos < len(buf):
                wd, mask, _cookie, length = _EVENT.unpack_from(buf, pos)
                name = buf[pos + _EVENT.size : pos + _EVENT.size + length].rstrip(b"\0")
                pos += _EVENT.size + length
                self._event(wd, mask, os.fsdecode(name))

    def _event(self, wd: int, mask: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:
            self.changed.clear()
            self.seq += 1
            self.floor = self.seq
            return
        if wd == self.cookie_wd:
            if mask & (IN_CREATE | IN_MOVED_TO):
                self.cookies_seen.add(name)
            return
        folder = self.dirs.get(wd)
        if folder is None:
            return
        if mask & IN_IGNORED:
            del self.dirs[wd]
            return
        if not name:  # the watched folder itself went away or moved: its parent reports it
            return
        if name.startswith("."):
            return
        path = f"{folder}/{name}" if folder else name
        self._mark(path)
        if mask & IN_ISDIR:
            if mask & (IN_CREATE | IN_MOVED_TO):
                self._watch_tree(path)
            elif mask & (IN_MOVED_FROM | IN_DELETE):
                self._forget_tree(path)
        elif mask & (IN_CREATE | IN_MOVED_TO):
            if os.path.islink(os.path.join(self.workdir, path)):
                self.links.add(path)
        elif mask & (IN_MOVED_FROM | IN_DELETE):
            self.links.discard(path)

    def sync(self) -> bool:
        """Wait until every event queued before now has been read (cookie file)."""
        name = f"cookie-{os.getpid()}-{self.seq}-{os.urandom(4).hex()}"
        path = self.cookie_dir / name
        path.write_bytes(b"")
        deadline = time.monotonic() + COOKIE_WAIT_S
        try:
            while name not in self.cookies_seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                select.select([self.fd], [], [], left)
                self.pump()
            return True
        finally:
            self.cookies_seen.discard(name)
            path.unlink(missing_ok=True)

    def moved(self) -> bool:
        """True once the workspace or repository at our paths is not the one we watch
        (renamed away, and perhaps a new one made in its place): we must not answer."""
        try:
            return _identity(Path(self.workdir), self.cookie_dir.parent) != self.identity
        except OSError:
            return True

    def answer(self, since: object) -> dict[str, object]:
        if self.moved():
            return {"token": self.token(), "paths": None}
        synced = self.sync()
        token = self.token()
        paths: list[str] | None = None
        if synced and not self.blind and isinstance(since, str) and since.count(":") == 1:
            instance, _, seq_s = since.partition(":")
            seq = int(seq_s) if seq_s.isdigit() else -1
            if instance == self.instance and seq >= self.floor and seq <= self.seq:
                paths = [p for p, s in self.changed.items() if s > seq]
                paths.extend(self.links)
        return {"token": token, "paths": paths}


def _identity(workdir: Path, dotdir: Path) -> tuple[int, int, int, int]:
    a, b = os.stat(workdir), os.stat(dotdir)
    return a.st_dev, a.st_ino, b.st_dev, b.st_ino


def serve(workdir: Path, dotdir: Path) -> None:
    """Run the monitor until asked to stop, the repository disappears, or nobody has
    asked anything for IDLE_EXIT_S (an enabled monitor is restarted on demand)."""
    folder = monitor_dir(dotdir)
    lock = os.open(folder / LOCKFILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        return  # another monitor already serves this repository
    # Holding the lock, any socket file left is a dead monitor's: replace it.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(folder / SOCKET)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        with _socket_address(dotdir) as address:
            server.bind(address)
    finally:
        os.umask(old_umask)
    watcher = Watcher(workdir, dotdir)
    server.listen(16)
    _write_pid(folder)
    running = True
    asked = time.monotonic()
    while running:
        ready, _, _ = select.select([server, watcher.fd], [], [], 30.0)
        if watcher.moved() or time.monotonic() - asked > IDLE_EXIT_S:
            break
        if watcher.fd in ready:
            watcher.pump()
        if server not in ready:
            continue
        conn, _ = server.accept()
        asked = time.monotonic()
        with conn:
            conn.settimeout(5.0)
            try:
                line = conn.makefile("rb").readline()
                request = orjson.loads(line)
            except (OSError, orjson.JSONDecodeError):
                continue
            op = request.get("op") if isinstance(request, dict) else None
            if watcher.moved():
                reply: dict[str, object] = {"token": watcher.token(), "paths": None}
                running = False  # the repository we watched is gone from this path
            elif op == "query":
                reply = watcher.answer(request.get("since"))
            elif op == "status":
                reply = {
                    "pid": os.getpid(),
                    "blind": watcher.blind,
                    "watches": len(watcher.dirs),
                    "tracked": len(watcher.changed),
                    "uptime_s": round(time.time() - watcher.started, 1),
                    "token": watcher.token(),
                }
            elif op == "stop":
                reply = {"stopped": os.getpid()}
                running = False
            else:
                reply = {"error": f"unknown op {op!r}"}
            with contextlib.suppress(OSError):
                conn.sendall(orjson.dumps(reply))
    if recorded_pid(dotdir) == os.getpid():
        with contextlib.suppress(OSError):
            os.unlink(folder / PIDFILE)
    server.close()
    os.close(lock)


def _write_pid(folder: Path) -> None:
    tmp = folder / f"{PIDFILE}.{os.getpid()}"
    tmp.write_text(str(os.getpid()))
    os.replace(tmp, folder / PIDFILE)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), Path(sys.argv[2]))
