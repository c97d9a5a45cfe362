"""Writing candles into the warehouse: validate, then add only what is new."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from klinewatch.domain.candles import Candles, Rejection, validate
from klinewatch.domain.intervals import parse_interval
from klinewatch.logs import get_logger
from klinewatch.storage.klines import KlineRepository

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SeriesKey:
    exchange: str
    market_type: str
    symbol: str
    interval: str


@dataclass
class WriteResult:
    added: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def validated(key: SeriesKey, candles: Candles) -> tuple[Candles, list[Rejection]]:
    """The candles that pass every sanity rule, and the rejections (the first few logged
    with their series and reason). One bad candle never sinks the batch."""
    valid, rejected = validate(candles, parse_interval(key.interval))
    for rejection in rejected[:20]:
        log.warning(
            "candle_rejected",
            exchange=key.exchange,
            market_type=key.market_type,
            symbol=key.symbol,
            interval=key.interval,
            open_time_ms=rejection.open_time_ms,
            reason=rejection.reason,
        )
    return valid, rejected


def write_candles(session: Session, key: SeriesKey, candles: Candles) -> WriteResult:
    """Store the valid new candles of a batch; each invalid one is reported with its
    reason and the rest are written. Runs in the caller's transaction."""
    valid, rejected = validated(key, candles)
    repo = KlineRepository(session)
    series_id = repo.ensure_series(key.exchange, key.market_type, key.symbol, key.interval)
    return WriteResult(added=repo.insert_new(series_id, valid), rejected=rejected)
