"""`split_run`: the second half in a forked child, results in order, failures redone here."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from datagit.storage import parallel


def test_results_keep_order_and_the_child_really_ran() -> None:
    def run(part: Sequence[int], in_child: bool) -> list[tuple[int, int]]:
        return [(x * x, os.getpid()) for x in part]

    got, helped = parallel.split_run(list(range(100)), run, minimum=10)
    assert [sq for sq, _ in got] == [x * x for x in range(100)]
    assert helped
    assert {pid for _, pid in got[:50]} == {os.getpid()}
    assert os.getpid() not in {pid for _, pid in got[50:]}


def test_small_inputs_stay_in_this_process() -> None:
    got, helped = parallel.split_run([1, 2, 3], lambda part, _c: [os.getpid()] * len(part))
    assert got == [os.getpid()] * 3 and not helped


def test_a_failing_child_is_redone_here_so_the_error_is_ours() -> None:
    """The child's exception never escapes it; the parent re-runs that half and raises."""

    def run(part: Sequence[int], in_child: bool) -> list[int]:
        if 77 in part:
            raise ValueError("item 77 is bad")
        return list(part)

    with pytest.raises(ValueError, match="item 77"):
        parallel.split_run(list(range(100)), run, minimum=10)


def test_a_child_that_only_fails_in_the_child_is_recovered() -> None:
    def run(part: Sequence[int], in_child: bool) -> list[int]:
        if in_child:
            os._exit(3)  # a helper killed mid-way
        return list(part)

    got, helped = parallel.split_run(list(range(100)), run, minimum=10)
    assert got == list(range(100)) and not helped


def test_results_that_cannot_cross_the_pipe_are_computed_here() -> None:
    def run(part: Sequence[int], in_child: bool) -> list[object]:
        return [object() if in_child else x for x in part]  # marshal refuses object()

    got, helped = parallel.split_run(list(range(20)), run, minimum=10)
    assert got == list(range(20)) and not helped


def test_large_git_packs_compress_on_both_cores_and_git_reads_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Past PARALLEL_BYTES the pack entries are compressed by two processes; the pack
    must be byte-for-byte what one process writes, and `git verify-pack` must accept it."""
    import shutil
    import subprocess

    from datagit.storage import gitpack

    objects = {}
    for i in range(40):
        data = (b"shard %d\n" % i) * 20_000  # ~200 KB each, 8 MB in all
        oid = gitpack.object_id("blob", data)
        objects[oid] = ("blob", data)
    one = gitpack.write_pack_stream(
        tmp_path / "one", len(objects), ((o, k, d) for o, (k, d) in objects.items())
    )
    two = gitpack.write_pack(tmp_path / "two", objects)
    assert one.read_bytes() == two.read_bytes()
    if shutil.which("git"):
        subprocess.run(["git", "verify-pack", str(two.with_suffix(".idx"))], check=True)


KILLED_PARENT = """
import os, sys, time
from datagit.storage import parallel

def run(part, in_child):
    if in_child:
        with open(sys.argv[1], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    else:
        time.sleep(60)
    return list(part)

parallel.split_run(list(range(40)), run, minimum=10)
"""


def test_the_helper_dies_with_its_killed_parent(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    pidfile = tmp_path / "child"
    parent = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, str(pidfile)])
    while not pidfile.exists() or not pidfile.read_text():
        time.sleep(0.01)
    child = int(pidfile.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    gone = False
    for _ in range(500):  # the kernel delivers SIGKILL at once; this only bounds a failure
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            gone = True
            break
        time.sleep(0.01)
    assert gone


# -- Shared: items taken one at a time by this process and a forked child ------------


def test_shared_results_keep_order_and_both_processes_take_items(tmp_path: Path) -> None:
    me = os.getpid()
    started = tmp_path / "child-started"

    def run(item: int) -> tuple[int, int]:
        if os.getpid() != me:
            started.touch()  # the parent joins only once the child has begun
        return item * item, os.getpid()

    shared = parallel.Shared.start(list(range(200)), run)
    while not started.exists():
        os.sched_yield()
    got = shared.finish()
    assert [sq for sq, _ in got] == [x * x for x in range(200)]
    assert {pid for _, pid in got} - {me}, "the child took no item"


def test_shared_without_a_fork_runs_everything_here() -> None:
    shared: parallel.Shared[int, int] = parallel.Shared([1, 2, 3], lambda x: os.getpid())
    assert shared.finish() == [os.getpid()] * 3
    assert parallel.Shared.start([5], lambda x: x + 1).finish() == [6]  # one item: no child


def test_shared_item_failing_in_the_child_fails_here_naming_it() -> None:
    def run(item: int) -> int:
        if item == 7:
            raise ValueError("item 7 is bad")
        return item

    shared = parallel.Shared.start(list(range(20)), run)
    with pytest.raises(ValueError, match="item 7"):
        shared.finish()


def test_shared_items_of_a_killed_child_are_redone_here() -> None:
    me = os.getpid()

    def run(item: int) -> int:
        if os.getpid() != me:
            os._exit(3)  # a helper killed mid-way, holding the item it took
        return item

    assert parallel.Shared.start(list(range(50)), run).finish() == list(range(50))


def test_shared_results_that_cannot_cross_the_pipe_are_computed_here() -> None:
    me = os.getpid()

    def run(item: int) -> object:
        return object() if os.getpid() != me else item  # marshal refuses object()

    assert parallel.Shared.start(list(range(20)), run).finish() == list(range(20))


def test_shared_cancel_stops_and_reaps_the_child(tmp_path: Path) -> None:
    import time

    pidfile = tmp_path / "child"
    me = os.getpid()

    def run(item: int) -> int:
        if os.getpid() != me:
            pidfile.write_text(str(os.getpid()))
            time.sleep(60)
        return item

    shared = parallel.Shared.start(list(range(4)), run)
    while not pidfile.exists() or not pidfile.read_text():
        os.sched_yield()
    child = int(pidfile.read_text())
    shared.cancel()
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # killed and reaped: not even a zombie is left


def test_shared_takes_more_items_than_a_pipe_holds_indexes_in_pieces() -> None:
    me = os.getpid()
    got = parallel.Shared.start(list(range(5000)), lambda x: (x, os.getpid())).finish()
    assert [x for x, _ in got] == list(range(5000))
    assert {pid for _, pid in got} - {me}, "the child took no piece"


def test_shared_stops_the_child_when_an_item_fails_here() -> None:
    me = os.getpid()

    def run(item: int) -> int:
        if os.getpid() == me:
            raise ValueError(f"item {item} is bad here")
        import time

        time.sleep(60)  # a child left running would hold the test for a minute
        return item

    shared = parallel.Shared.start(list(range(4)), run)
    with pytest.raises(ValueError, match="is bad here"):
        shared.finish()
