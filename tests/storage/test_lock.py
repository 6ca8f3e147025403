"""WriteLock: one writer at a time, with the holder's pid in the message; dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from datagit.errors import LockedError
from datagit.storage.lock import WriteLock

HOLD = """
import sys, time
from pathlib import Path
from datagit.storage.lock import WriteLock
lock = WriteLock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def _hold(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_reentrant_and_released(tmp_path: Path) -> None:
    lock = WriteLock(tmp_path / "lock")
    with lock, lock:
        assert (tmp_path / "lock").read_text() == str(os.getpid())
    with WriteLock(tmp_path / "lock"):  # free again
        pass


def test_second_lock_object_in_same_process_is_refused(tmp_path: Path) -> None:
    with WriteLock(tmp_path / "lock"), pytest.raises(LockedError):
        WriteLock(tmp_path / "lock").acquire()


def test_other_process_holds_it_then_dies_with_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    proc = _hold(path)
    try:
        with pytest.raises(LockedError) as exc:
            WriteLock(path).acquire()
        assert f"pid {proc.pid}" in str(exc.value) and str(path) in str(exc.value)
        assert exc.value.hint
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert path.exists()  # a stale file, but no stale lock
    with WriteLock(path):
        pass


ORPHAN = """
import os, sys, time
from pathlib import Path
from datagit.storage.lock import WriteLock
lock = WriteLock(Path(sys.argv[1]))
lock.acquire()
if os.fork() == 0:  # a helper that outlives its parent a moment, holding the lock
    time.sleep(0.5)
    os._exit(0)
os._exit(0)
"""


def test_a_lock_whose_holder_died_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    dead = subprocess.run([sys.executable, "-c", ORPHAN, str(path)], check=True)
    assert dead.returncode == 0
    lock = WriteLock(path)
    lock.acquire()  # the named pid is gone; the helper let go within the wait
    assert path.read_text() == str(os.getpid())
    lock.release()
