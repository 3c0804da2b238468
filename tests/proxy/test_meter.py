"""The in-process meter: sums, batches, and no usage lost when the store fails."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pytest

from meshproxy.domain import stats
from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.stats import StatDelta
from meshproxy.meter import LocalMeter, UsageBuffer
from support.polling import wait_until_async

DAY = date(2026, 3, 15)


class FlakySink:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[list[UsageDelta]] = []
        self.stats: list[list[StatDelta]] = []

    def record(
        self, deltas: Sequence[UsageDelta], day: date, stats: Sequence[StatDelta] = ()
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database down")
        self.batches.append(list(deltas))
        self.stats.append(list(stats))

    def total(self, account_id: int) -> int:
        return sum(d.nbytes for b in self.batches for d in b if d.account_id == account_id)


def test_buffer_rolls_up_parents_and_restores_failed_batches() -> None:
    buffer = UsageBuffer()
    buffer.add(2, 1, 100)
    buffer.add(2, 1, 50)
    buffer.add(1, None, 7)
    assert buffer.pending_totals() == {2: 150, 1: 157}
    batch = buffer.take()
    assert sorted(batch, key=lambda d: d.account_id) == [UsageDelta(1, None, 7),
                                                          UsageDelta(2, 1, 150)]
    buffer.add(2, 1, 1)
    assert buffer.pending_totals() == {2: 151, 1: 158}  # in flight still counts as pending
    buffer.failed()
    assert buffer.pending_totals() == {2: 151, 1: 158}
    buffer.take()
    buffer.committed()
    assert not buffer and buffer.pending_totals() == {}


async def test_failed_flush_keeps_bytes_and_the_next_one_writes_them() -> None:
    sink = FlakySink(failures=2)
    meter = LocalMeter(sink, interval=0.02, today=lambda: DAY)
    meter.add(5, None, 1000)
    with pytest.raises(OSError):
        await meter.flush()
    meter.add(5, None, 1)
    await meter.start()
    await wait_until_async(lambda: sink.batches, 2, "no flush written")
    await meter.stop()
    assert sink.total(5) == 1001


async def test_stop_flushes_everything() -> None:
    sink = FlakySink()
    meter = LocalMeter(sink, interval=60, today=lambda: DAY)
    await meter.start()
    meter.add(3, 1, 42)
    await meter.stop()
    assert sink.batches == [[UsageDelta(3, 1, 42)]]


async def test_stop_retries_a_failing_store() -> None:
    sink = FlakySink(failures=2)
    meter = LocalMeter(sink, interval=60, today=lambda: DAY)
    meter.add(3, None, 9)
    await meter.stop()
    assert sink.total(3) == 9


async def test_request_statistics_ride_the_flush_and_survive_a_failed_one() -> None:
    sink = FlakySink(failures=1)
    meter = LocalMeter(sink, interval=3600)
    meter.count_request(7, stats.ORIGIN_2XX, "a.example", 100)
    meter.count_request(7, stats.PROXY_4XX, "b.example", 0)  # no bytes: no host figure
    with pytest.raises(OSError):
        await meter.flush()
    meter.count_request(7, stats.ORIGIN_2XX, "a.example", 50)
    await meter.flush()  # the failed flush's statistics and the new ones, together
    assert len(sink.stats) == 1
    written = {(s.account_id, s.name): s.value for s in sink.stats[0]}
    assert written == {
        (7, stats.REQUESTS): 3,
        (7, stats.ORIGIN_2XX): 2,
        (7, stats.PROXY_4XX): 1,
        (7, stats.BYTES): 150,
        (7, "host:a.example"): 150,
    }
    await meter.flush()
    assert len(sink.stats) == 1  # nothing counted since: nothing written


def test_hosts_are_bounded_per_account_and_flush() -> None:
    buffer = UsageBuffer()
    for i in range(stats.MAX_HOSTS + 20):
        buffer.count_request(1, stats.ORIGIN_2XX, f"h{i}.example", 10)
    buffer.count_request(1, stats.ORIGIN_2XX, "h0.example", 5)  # one already counted
    buffer.count_request(2, stats.ORIGIN_2XX, "other.example", 7)  # another account's own
    buffer.take()
    taken = {(s.account_id, s.name): s.value for s in buffer.taken_stats()}
    hosts = [name for (account, name) in taken if account == 1 and name.startswith(stats.HOST)]
    assert len(hosts) == stats.MAX_HOSTS and taken[(1, "host:h0.example")] == 15
    assert taken[(1, stats.OTHER_HOSTS)] == 20 * 10
    assert taken[(1, stats.BYTES)] == sum(v for (a, n), v in taken.items()
                                          if a == 1 and (n in hosts or n == stats.OTHER_HOSTS))
    assert taken[(2, "host:other.example")] == 7
    buffer.committed()
    buffer.count_request(1, stats.ORIGIN_2XX, "new.example", 1)  # a new flush, a new bound
    buffer.take()
    assert {s.name for s in buffer.taken_stats()} >= {"host:new.example"}
