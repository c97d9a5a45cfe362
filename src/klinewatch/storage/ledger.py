"""The per-series ledger of ranges fetched and ranges the exchange confirmed empty."""

from __future__ import annotations

from typing import Literal

from sqlalchemy.orm import Session

from klinewatch.domain.gaps import Range
from klinewatch.storage.batch_write import ledger_ranges_many, record_many

Kind = Literal["fetched", "empty"]


class LedgerRepository:
    """One series' view of the ledger; the merging lives in ``batch_write`` (one code
    path whether one series is recorded or hundreds)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def ranges(self, series_id: int, kind: Kind) -> list[Range]:
        return ledger_ranges_many(self.session, [series_id], kind)[series_id]

    def record(self, series_id: int, kind: Kind, ranges: list[Range], source: str = "rest") -> None:
        """Add ranges, merging them with touching or overlapping ones of the same kind."""
        record_many(self.session, kind, {series_id: ranges}, source=source)
