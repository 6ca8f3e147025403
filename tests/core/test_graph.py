"""Graph lanes: a straight line, a branch that merges back, two root histories."""

from __future__ import annotations

from datagit.core.graph import Segment, layout


def test_linear_history_is_one_lane() -> None:
    rows = layout([("c", ["b"]), ("b", ["a"]), ("a", [])])
    assert [r.lane for r in rows] == [0, 0, 0]
    assert [r.width for r in rows] == [1, 1, 1]
    assert rows[0].segments == [Segment(0, 0, "bottom")]
    assert rows[1].segments == [Segment(0, 0, "top"), Segment(0, 0, "bottom")]
    assert rows[2].segments == [Segment(0, 0, "top")]


def test_branch_and_merge_use_a_second_lane_and_join_back() -> None:
    # m merges x (side branch) into d; both fork from a
    rows = layout([("m", ["d", "x"]), ("d", ["a"]), ("x", ["a"]), ("a", [])])
    m, d, x, a = rows
    assert (m.lane, d.lane, x.lane, a.lane) == (0, 0, 1, 0)
    assert Segment(0, 1, "bottom") in m.segments  # the merge's second parent opens lane 1
    assert Segment(1, 1, "through") in d.segments  # lane 1 passes d by
    assert Segment(1, 0, "bottom") in x.segments  # x's parent a is already awaited in lane 0
    assert a.segments == [Segment(0, 0, "top")] and a.width == 1


def test_unrelated_roots_get_their_own_lanes() -> None:
    rows = layout([("b2", ["b1"]), ("a2", ["a1"]), ("b1", []), ("a1", [])])
    assert [r.lane for r in rows] == [0, 1, 0, 1]
    assert Segment(0, 0, "through") in rows[1].segments
