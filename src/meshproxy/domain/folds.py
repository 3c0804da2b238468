"""Folding metered usage into the store, each flush once: what a batch says and what a fold did.

A proxy node's meter has an id and numbers its flushes 1, 2, 3...; a batch names the meter
and the flushes it holds (first..last, inclusive), and the store keeps per meter the set of
flushes it has folded (`SeqRanges`), refusing any it holds already.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.stats import StatDelta

MAX_ID_LENGTH = 64  # of a meter id and of a generation (the store's columns)

_SPAN = re.compile(r"([0-9]+)(?:-([0-9]+))?")


def _check_range(first: int, last: int) -> None:
    if not 1 <= first <= last:
        raise ValueError(f"not a range of sequence numbers: {first}..{last}")


@dataclass(frozen=True)
class SeqRanges:
    """An immutable set of positive ints: sorted, disjoint inclusive spans, never adjacent
    (adjacent ones are merged), so "1-57,60,62-70" is the one way to write its set."""

    spans: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        previous = -1
        for first, last in self.spans:
            _check_range(first, last)
            if first <= previous + 1:
                raise ValueError(f"spans not sorted, disjoint and apart: {self.spans}")
            previous = last

    @classmethod
    def parse(cls, text: str) -> SeqRanges:
        """The set written by `str`; spans in any order are merged, anything else is a
        ValueError."""
        ranges = cls()
        if not text:
            return ranges
        for part in text.split(","):
            match = _SPAN.fullmatch(part)
            if match is None:
                raise ValueError(f"not a sequence number or range: {part!r}")
            first = int(match[1])
            last = first if match[2] is None else int(match[2])
            ranges = ranges.add(first, last)
        return ranges

    def __str__(self) -> str:
        return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in self.spans)

    def covers(self, first: int, last: int) -> bool:
        """Every n in first..last is in the set (spans are never adjacent: one span holds it)."""
        _check_range(first, last)
        return any(a <= first and last <= b for a, b in self.spans)

    def overlaps(self, first: int, last: int) -> bool:
        """Some n in first..last is in the set."""
        _check_range(first, last)
        return any(a <= last and first <= b for a, b in self.spans)

    def add(self, first: int, last: int) -> SeqRanges:
        _check_range(first, last)
        kept: list[tuple[int, int]] = []
        for a, b in self.spans:
            if b < first - 1 or a > last + 1:
                kept.append((a, b))
            else:  # overlapping or adjacent: merged into the new span
                first, last = min(first, a), max(last, b)
        kept.append((first, last))
        return SeqRanges(tuple(sorted(kept)))

    def folded_through(self) -> int:
        """The largest n such that 1..n are all in the set; 0 if 1 is not."""
        if self.spans and self.spans[0][0] == 1:
            return self.spans[0][1]
        return 0


@dataclass(frozen=True)
class FoldBatch:
    """Usage of one day counted by one meter's flushes first_seq..last_seq (inclusive)."""

    meter_id: str
    first_seq: int
    last_seq: int
    day: date
    deltas: tuple[UsageDelta, ...]
    # The shared-counter generation the bytes were counted in; None: bytes that never went
    # into the shared counters (a node's own journal, written when Redis lost them).
    generation: str | None
    # The request statistics counted by the same flushes (domain/stats.py).
    stats: tuple[StatDelta, ...] = ()

    def __post_init__(self) -> None:
        _check_range(self.first_seq, self.last_seq)
        if not 0 < len(self.meter_id) <= MAX_ID_LENGTH:
            raise ValueError(f"a meter id has 1 to {MAX_ID_LENGTH} characters")
        if self.generation is not None and len(self.generation) > MAX_ID_LENGTH:
            raise ValueError(f"a generation has at most {MAX_ID_LENGTH} characters")

    @property
    def nbytes(self) -> int:
        return sum(delta.nbytes for delta in self.deltas if delta.nbytes > 0)


@dataclass
class FoldOutcome:
    folded: int = 0  # batches added
    skipped: int = 0  # batches wholly folded before
    # Batches partly folded before, added anyway (only after a node's journal overflowed).
    overlapping: int = 0
    nbytes: int = 0  # bytes added
    # For every meter touched: the largest n such that its flushes 1..n are all folded.
    folded_through: dict[str, int] = field(default_factory=dict)
