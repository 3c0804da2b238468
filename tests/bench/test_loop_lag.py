"""bench.loop_lag's split of an event loop's late ticks by cause."""

from __future__ import annotations

from bench.loop_lag import _causes


def test_late_ticks_are_split_by_what_ran_meanwhile() -> None:
    late = [
        [1.0, 10.0, 9.0, 9.5],  # the loop's own thread ran: busy
        [2.0, 20.0, 1.0, 12.0],  # another thread of the node ran
        [3.0, 40.0, 0.5, 1.0],  # nothing of the node ran: descheduled
        [4.0, 8.0, 0.2, 0.2],  # descheduled
    ]
    assert _causes(late) == (
        "late ticks 4: busy 1, threads 1, descheduled 2; longest 40 ms, "
        "most loop CPU in one 9.0 ms"
    )


def test_no_late_ticks() -> None:
    assert _causes([]).startswith("late ticks 0: busy 0, threads 0, descheduled 0; longest 0 ms")
