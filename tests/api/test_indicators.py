"""``GET /api/v1/market/indicators``: on the real BTCUSDT 1h series (8 years, with real
outage holes), every value of every window equals TA-Lib run over the full stored
history, wherever the window starts; lookback points are null; answers are cached per
parameter hash; bad parameters name the field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import talib
from structlog.testing import capture_logs

from klinewatch.clock import ms_to_datetime
from klinewatch.domain.candles import Candles
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.storage.engine import transaction
from tests.api.conftest import NOW_MS, Api

F64 = npt.NDArray[np.float64]
RTOL = 1e-9


def full_history(stored: Candles, params: dict[str, Any] | None = None) -> dict[str, F64]:
    """Every default indicator (or with ``params``) by TA-Lib over the whole series."""
    p = {"ma": (5, 10, 20, 30), "ema": (12, 26), "rsi": 14, "boll": 20, "vol": 20}
    p.update(params or {})
    close, volume = stored.close.astype(np.float64), stored.volume.astype(np.float64)
    out = {f"ma{n}": talib.SMA(close, timeperiod=n) for n in p["ma"]}
    out |= {f"ema{n}": talib.EMA(close, timeperiod=n) for n in p["ema"]}
    out["macd"], out["macd_signal"], out["macd_histogram"] = talib.MACD(close, 12, 26, 9)
    out["rsi"] = talib.RSI(close, timeperiod=p["rsi"])
    out["boll_upper"], out["boll_middle"], out["boll_lower"] = talib.BBANDS(
        close, timeperiod=p["boll"], nbdevup=2.0, nbdevdn=2.0
    )
    out["volume"], out["volume_ma"] = volume, talib.SMA(volume, timeperiod=p["vol"])
    return out


def assert_equal_to_full_history(
    data: dict[str, Any], stored: Candles, expected: dict[str, F64]
) -> None:
    times = [int(datetime.fromisoformat(t).timestamp() * 1000) for t in data["open_times"]]
    index = np.searchsorted(stored.open_time_ms, times)
    assert stored.open_time_ms[index].tolist() == times
    checked = 0
    for family in data["indicators"].values():
        for name, values in family.items():
            want = expected[name][index]
            got = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            assert np.array_equal(np.isnan(got), np.isnan(want)), name
            ok = ~np.isnan(want)
            assert np.allclose(got[ok], want[ok], rtol=RTOL, atol=0), name
            checked += int(ok.sum())
    assert checked > 0


@pytest.fixture
def history(api: Api) -> Candles:
    return api.seed("BTCUSDT", "1h", until_ms=NOW_MS)


def test_windows_anywhere_in_the_history_equal_talib_over_all_of_it(
    api: Api, history: Candles
) -> None:
    expected = full_history(history)
    n = len(history)
    starts = [0, 3, 25, 40, 300, 700, 4_000, 4_990, 5_020, 12_345, n // 2, n - 1_000, n - 150]
    for index in starts:
        start = int(history.open_time_ms[index])
        answer = api.indicators(symbol="BTCUSDT", timeframe="1h", start=start, limit=150)
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        assert data["open_times"][0] == ms_to_datetime(start).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert len(data["open_times"]) == 150
        assert_equal_to_full_history(data, history, expected)


def test_the_series_start_shows_nulls_for_the_lookback(api: Api, history: Candles) -> None:
    start = int(history.open_time_ms[0])
    data = api.indicators(symbol="BTCUSDT", timeframe="1h", start=start, limit=40).json()["data"]
    assert data["indicators"]["MA"]["ma5"][:4] == [None] * 4
    assert data["indicators"]["MA"]["ma5"][4] is not None
    assert data["indicators"]["MACD"]["macd_signal"][:33] == [None] * 33
    assert_equal_to_full_history(data, history, full_history(history))


def test_the_latest_window_with_its_own_parameters(api: Api, history: Candles) -> None:
    params = {
        "indicators": "MA,RSI,BOLL,VOL,EMA",
        "ma_periods": "7,25,99",
        "ema_periods": "9",
        "rsi_period": 6,
        "boll_period": 30,
        "vol_ma_period": 5,
    }
    answer = api.indicators(symbol="BTC/USDT", timeframe="1h", limit=1000, **params)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert set(data["indicators"]) == {"MA", "EMA", "RSI", "BOLL", "VOL"}
    assert data["params"]["MA"] == {"periods": [7, 25, 99]}
    assert data["data_source"] == "database"
    assert data["open_times"][-1] == "2025-06-01T11:00:00Z"
    expected = full_history(history, {"ma": (7, 25, 99), "ema": (9,), "rsi": 6, "boll": 30})
    expected["volume_ma"] = talib.SMA(history.volume.astype(np.float64), timeperiod=5)
    assert_equal_to_full_history(data, history, expected)

    cached = api.indicators(symbol="BTCUSDT", timeframe="1h", limit=1000, **params)
    assert cached.json()["data"]["data_source"] == "cache"
    assert cached.json()["data"]["indicators"] == data["indicators"]
    other = api.indicators(symbol="BTCUSDT", timeframe="1h", limit=1000, rsi_period=7)
    assert other.json()["data"]["data_source"] == "database"  # another parameter hash


def test_a_flat_stretch_before_the_window_makes_the_service_load_more_history(
    api: Api,
) -> None:
    """RSI forgets its seed only while the price moves: 700 flat candles just before the
    window make the static warm-up too short, and the values still equal TA-Lib."""
    series = api.sim.ctx.store.get("binance", "spot", "BTCUSDT", "1h")
    candles = series.take(series.close_time_ms < NOW_MS).take(slice(0, 9_000))
    window = 8_000
    level = float(candles.close[window - 701])
    for column in (candles.open, candles.high, candles.low, candles.close):
        column[window - 700 : window] = level
    with transaction(api.ctx.runtime.sessions) as session:
        write_candles(session, SeriesKey("binance", "spot", "BTCUSDT", "1h"), candles)
    start = int(candles.open_time_ms[window])
    with capture_logs() as logs:
        answer = api.indicators(symbol="BTCUSDT", timeframe="1h", start=start, limit=150)
    assert answer.status_code == 200, answer.text
    assert any(e["event"] == "indicator_warmup_extended" for e in logs)
    assert_equal_to_full_history(answer.json()["data"], candles, full_history(candles))


def test_a_short_series_is_computed_from_its_first_candle(api: Api) -> None:
    stored = api.seed("BTCUSDT", "1d", until_ms=NOW_MS)
    data = api.indicators(symbol="BTCUSDT", timeframe="1d", limit=300).json()["data"]
    assert_equal_to_full_history(data, stored, full_history(stored))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"indicators": "MA,FOO"}, "indicators"),
        ({"macd_fast": 26, "macd_slow": 12}, "macd_slow"),
        ({"ma_periods": "5,x"}, "ma_periods"),
        ({"rsi_period": 0}, "rsi_period"),
        ({"boll_std": "nan"}, "boll_std"),
        ({"limit": 1001}, "limit"),
    ],
)
def test_bad_parameters_name_the_field(api: Api, params: dict[str, Any], field: str) -> None:
    answer = api.indicators(symbol="BTCUSDT", timeframe="1h", **params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"]["field"] == field
