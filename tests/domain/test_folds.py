"""SeqRanges against a plain set of ints; FoldBatch's checks."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.folds import FoldBatch, FoldOutcome, SeqRanges

SEQ = st.integers(min_value=1, max_value=40)
SPANS = st.lists(st.tuples(SEQ, st.integers(min_value=0, max_value=6)), max_size=12)


def _build(spans: list[tuple[int, int]]) -> tuple[SeqRanges, set[int]]:
    """The same spans added to a SeqRanges and to a set (the model)."""
    ranges, model = SeqRanges(), set[int]()
    for first, length in spans:
        ranges = ranges.add(first, first + length)
        model.update(range(first, first + length + 1))
    return ranges, model


@given(SPANS)
def test_add_holds_exactly_the_added_numbers_in_canonical_spans(
    spans: list[tuple[int, int]],
) -> None:
    ranges, model = _build(spans)
    held = {n for first, last in ranges.spans for n in range(first, last + 1)}
    assert held == model
    for (_, last), (first, _) in zip(ranges.spans, ranges.spans[1:], strict=False):
        assert first > last + 1  # sorted, disjoint, never adjacent


@given(SPANS, SEQ, st.integers(min_value=0, max_value=10))
def test_covers_and_overlaps_agree_with_the_set(
    spans: list[tuple[int, int]], first: int, length: int
) -> None:
    ranges, model = _build(spans)
    wanted = set(range(first, first + length + 1))
    assert ranges.covers(first, first + length) == (wanted <= model)
    assert ranges.overlaps(first, first + length) == bool(wanted & model)


@given(SPANS)
def test_folded_through_is_the_longest_run_from_one(spans: list[tuple[int, int]]) -> None:
    ranges, model = _build(spans)
    run = 0
    while run + 1 in model:
        run += 1
    assert ranges.folded_through() == run


@given(SPANS)
def test_parse_reads_what_str_writes(spans: list[tuple[int, int]]) -> None:
    ranges, _ = _build(spans)
    assert SeqRanges.parse(str(ranges)) == ranges


@given(SPANS, SPANS)
def test_add_leaves_the_original_alone(
    spans: list[tuple[int, int]], more: list[tuple[int, int]]
) -> None:
    ranges, model = _build(spans)
    before = str(ranges)
    for first, length in more:
        ranges.add(first, first + length)
    assert str(ranges) == before
    assert {n for a, b in ranges.spans for n in range(a, b + 1)} == model


def test_examples() -> None:
    ranges = SeqRanges.parse("1-57,60,62-70")
    assert str(ranges) == "1-57,60,62-70"
    assert ranges.folded_through() == 57
    assert ranges.covers(62, 70) and not ranges.covers(57, 60)
    assert ranges.overlaps(58, 60) and not ranges.overlaps(58, 59)
    assert str(ranges.add(58, 59)) == "1-60,62-70"
    assert str(ranges.add(61, 61).add(58, 59)) == "1-70"
    assert str(SeqRanges()) == "" and SeqRanges.parse("") == SeqRanges()
    assert SeqRanges().folded_through() == 0
    assert SeqRanges.parse("2-5").folded_through() == 0
    assert str(SeqRanges.parse("5,3-4,1")) == "1,3-5"  # merged, whatever the order


@pytest.mark.parametrize(
    "garbage", ["x", "1,", ",1", "1,,2", "0", "3-2", "1-", "-1", " 1", "1 ", "+1", "1-2-3", "½"]
)
def test_parse_refuses_garbage(garbage: str) -> None:
    with pytest.raises(ValueError):
        SeqRanges.parse(garbage)


def test_ranges_of_nothing_are_refused() -> None:
    with pytest.raises(ValueError):
        SeqRanges().add(0, 3)
    with pytest.raises(ValueError):
        SeqRanges().covers(4, 3)
    with pytest.raises(ValueError):
        SeqRanges(((3, 4), (5, 6)))  # adjacent spans: not the canonical form


def test_batch_checks_its_range_and_ids() -> None:
    deltas = (UsageDelta(1, None, 10), UsageDelta(2, 1, -5), UsageDelta(3, 1, 7))
    batch = FoldBatch("node-a", 3, 5, date(2026, 11, 20), deltas, "g1")
    assert batch.nbytes == 17  # negative deltas are not usage
    with pytest.raises(ValueError):
        FoldBatch("node-a", 5, 3, date(2026, 11, 20), (), None)
    with pytest.raises(ValueError):
        FoldBatch("", 1, 1, date(2026, 11, 20), (), None)
    with pytest.raises(ValueError):
        FoldBatch("n" * 65, 1, 1, date(2026, 11, 20), (), None)
    assert FoldOutcome().folded_through == {}
