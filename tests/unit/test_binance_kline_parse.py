"""A Binance klines body straight to columns: the fast path reads exactly what the general
one reads, and a body that is cut or malformed never passes for fewer candles."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from klinewatch.domain.candles import Candles
from klinewatch.exchanges.binance.parse import parse_kline_body, parse_klines

ROWS = (
    b'[[1735689600000,"93576.00000000","93610.93000000","93537.50000000","93610.93000000",'
    b'"8.21827000",1735689659999,"769067.26000000",1234,"4.50000000","421137.00000000","0"],'
    b'[1735689660000,"93610.93000000","93652.00000000","93606.00000000","93640.00000000",'
    b'"11.50000000",1735689719999,"1077000.50000000",2000,"6.25000000","585000.25000000","0"]]'
)


def test_a_recorded_futures_page_reads_the_same_as_through_json(sample_dir: Path) -> None:
    body = (
        sample_dir / "raw_api_responses" / "binance_fapi_v1_klines_BTCUSDT_1h.json"
    ).read_bytes()
    fast = parse_kline_body(body)
    rows = orjson.loads(body)
    assert len(fast) == len(rows) > 0
    assert fast.equals(parse_klines(rows))
    assert fast.equals(Candles.from_rows(rows))  # float(str) of every field, row by row


def test_every_field_lands_in_its_column_with_its_type() -> None:
    c = parse_kline_body(ROWS)
    assert c.open_time_ms.tolist() == [1735689600000, 1735689660000]
    assert c.close_time_ms.tolist() == [1735689659999, 1735689719999]
    assert c.trade_count.tolist() == [1234, 2000]
    assert c.high.tolist() == [93610.93, 93652.0]
    assert c.taker_buy_quote_volume.tolist() == [421137.0, 585000.25]
    assert str(c.open_time_ms.dtype) == "int64" and str(c.close.dtype) == "float64"


def test_an_empty_page_is_no_candles() -> None:
    assert len(parse_kline_body(b"[]")) == 0


def test_blank_fields_take_the_general_path_and_read_as_zero() -> None:
    body = ROWS.replace(b'"769067.26000000"', b'""')
    c = parse_kline_body(body)
    assert c.quote_volume.tolist() == [0.0, 1077000.5]
    assert c.equals(parse_klines(orjson.loads(body)))


def test_a_body_cut_anywhere_is_refused_never_read_as_fewer_candles() -> None:
    for cut in range(len(ROWS)):
        with pytest.raises(orjson.JSONDecodeError):
            parse_kline_body(ROWS[:cut])


@pytest.mark.parametrize(
    "body",
    [
        b'{"code":-1121,"msg":"Invalid symbol."}',
        b"[[1735689600000,1,2,3]]",  # too few fields
        b'[[1735689600000,"abc","1","1","1","1",1735689659999,"1",1,"1","1","0"]]',
        b"[1,2,3]",
        b"<html>bad gateway</html>",
    ],
)
def test_a_malformed_body_is_refused(body: bytes) -> None:
    with pytest.raises((ValueError, TypeError, IndexError)):
        parse_kline_body(body)
