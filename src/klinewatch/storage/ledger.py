"""The per-series ledger of ranges fetched and ranges the exchange confirmed empty."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from klinewatch.domain.gaps import Range, merge_ranges
from klinewatch.storage.models import KlineRange

Kind = Literal["fetched", "empty"]


class LedgerRepository:
    """Ranges are kept merged per (series, kind) so the ledger stays a few rows a series."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def ranges(self, series_id: int, kind: Kind) -> list[Range]:
        rows = self.session.execute(
            select(KlineRange.start_ms, KlineRange.end_ms)
            .where(KlineRange.series_id == series_id, KlineRange.kind == kind)
            .order_by(KlineRange.start_ms)
        ).all()
        return [(int(start), int(end)) for start, end in rows]

    def record(self, series_id: int, kind: Kind, ranges: list[Range], source: str = "rest") -> None:
        """Add ranges, merging them with touching or overlapping ones of the same kind."""
        new = [r for r in ranges if r[0] < r[1]]
        if not new:
            return
        lo = min(r[0] for r in new)
        hi = max(r[1] for r in new)
        touching = self.session.execute(
            select(KlineRange.id, KlineRange.start_ms, KlineRange.end_ms).where(
                KlineRange.series_id == series_id,
                KlineRange.kind == kind,
                KlineRange.start_ms <= hi,
                KlineRange.end_ms >= lo,
            )
        ).all()
        merged = merge_ranges([*new, *((int(s), int(e)) for _, s, e in touching)])
        if touching:
            self.session.execute(
                delete(KlineRange).where(KlineRange.id.in_([t[0] for t in touching]))
            )
        self.session.add_all(
            KlineRange(series_id=series_id, kind=kind, start_ms=s, end_ms=e, source=source)
            for s, e in merged
        )
        self.session.flush()
