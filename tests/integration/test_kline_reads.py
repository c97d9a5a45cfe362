"""Several spans of a series read in one statement, as NumPy columns (both backends)."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.candles import Candles
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.sim.store import SeriesStore
from klinewatch.storage.engine import transaction
from klinewatch.storage.kline_reads import Span, read_spans
from klinewatch.storage.klines import KlineRepository

KEY = SeriesKey("binance", "spot", "BTCUSDT", "1h")
NAMES = (KEY.exchange, KEY.market_type, KEY.symbol, KEY.interval)


@pytest.fixture(scope="module")
def btc_1h(sample_dir: object) -> Candles:
    candles = SeriesStore(sample_dir).get("binance", "spot", "BTCUSDT", "1h")  # type: ignore[arg-type]
    return candles.take(slice(0, 3000))


def stored(sessions: sessionmaker[Session], candles: Candles) -> int:
    with transaction(sessions) as session:
        write_candles(session, KEY, candles)
        sid = KlineRepository(session).find_series(*NAMES)
    assert sid is not None
    return sid


def test_each_span_comes_back_oldest_first_with_every_column(
    sessions: sessionmaker[Session], btc_1h: Candles
) -> None:
    sid = stored(sessions, btc_1h)
    t = btc_1h.open_time_ms
    spans = [
        Span(start_ms=int(t[1000]), end_ms=int(t[2500]), limit=200),
        Span(end_ms=int(t[1000]), limit=300, newest=True),
        Span(limit=1),
        Span(end_ms=int(t[1100]), limit=150, newest=True),  # overlaps the first
        Span(start_ms=int(t[-1]) + 1),  # after the newest: nothing
    ]
    with transaction(sessions) as session:
        window, before, oldest, overlap, none = read_spans(session, sid, spans)
    assert window.equals(btc_1h.take(slice(1000, 1200)))
    assert before.equals(btc_1h.take(slice(700, 1000)))
    assert oldest.equals(btc_1h.take(slice(0, 1)))
    assert overlap.equals(btc_1h.take(slice(950, 1100)))
    assert len(none) == 0


def test_spans_of_an_empty_series_are_empty(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        sid = KlineRepository(session).ensure_series(*NAMES)
        spans = read_spans(session, sid, [Span(limit=10), Span(limit=5, newest=True)])
    assert [len(s) for s in spans] == [0, 0]


def test_only_the_columns_asked_for_are_read_the_others_are_zero(
    sessions: sessionmaker[Session], btc_1h: Candles
) -> None:
    sid = stored(sessions, btc_1h)
    with transaction(sessions) as session:
        (part,) = read_spans(session, sid, [Span(limit=500)], columns=("close", "volume"))
    expected = btc_1h.take(slice(0, 500))
    assert np.array_equal(part.open_time_ms, expected.open_time_ms)
    assert np.array_equal(part.close, expected.close)
    assert np.array_equal(part.volume, expected.volume)
    assert not part.high.any() and not part.trade_count.any()
