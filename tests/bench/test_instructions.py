"""bench.instructions' sum of what callgrind counted, over every file a node dumped."""

from __future__ import annotations

from pathlib import Path

from bench.instructions import _total


def test_every_dump_and_thread_file_is_summed(tmp_path: Path) -> None:
    # callgrind's own layout: the program's total on a `summary:` (or `totals:`) line
    (tmp_path / "callgrind.out.41").write_text("events: Ir\nsummary: 1000\n")
    (tmp_path / "callgrind.out.41.1").write_text("events: Ir\nfn=x\n1 5\ntotals: 250000\n")
    (tmp_path / "callgrind.out.41.1-02").write_text("events: Ir\nsummary: 5000\n")
    (tmp_path / "node.log").write_text("summary: 99\n")  # not callgrind's
    assert _total(tmp_path) == 256_000
