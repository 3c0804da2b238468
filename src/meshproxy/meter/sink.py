"""The store's side of shared usage (the meter must not import the store layer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from meshproxy.domain.folds import FoldBatch, FoldOutcome


class FoldSink(Protocol):
    def fold(
        self,
        batches: Sequence[FoldBatch],
        now: datetime,
        current_generation: str | None = None,
    ) -> FoldOutcome:
        """Add each batch's usage unless the store has its flush numbers already."""

    def prune(self, older_than: datetime) -> int:
        """Forget the flush numbers of meters not seen since `older_than`."""
