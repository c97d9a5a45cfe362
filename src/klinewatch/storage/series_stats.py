"""Cheap facts about stored series, so an incremental update plans without loading keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from klinewatch.storage.models import Kline


@dataclass(frozen=True, slots=True)
class SpanStats:
    count: int
    first_ms: int
    last_ms: int


def span_stats(
    session: Session, series_ids: list[int], start_ms: int, end_ms: int
) -> dict[int, SpanStats]:
    """Count, first and last open time per series inside ``[start_ms, end_ms)``."""
    if not series_ids:
        return {}
    rows = session.execute(
        select(
            Kline.series_id,
            func.count(),
            func.min(Kline.open_time_ms),
            func.max(Kline.open_time_ms),
        )
        .where(
            Kline.series_id.in_(series_ids),
            Kline.open_time_ms >= start_ms,
            Kline.open_time_ms < end_ms,
        )
        .group_by(Kline.series_id)
    ).all()
    return {int(sid): SpanStats(int(n), int(lo), int(hi)) for sid, n, lo, hi in rows}
