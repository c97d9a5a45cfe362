"""Bad input gets Binance's own error codes and HTTP status, never a 500, and still
carries the weight header."""

from __future__ import annotations

import httpx
import pytest

MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."
ILLEGAL_NUMBER = "Illegal characters found in parameter '{}'; legal range is '^[0-9]{{1,20}}$'."
OK = {"symbol": "BTCUSDT", "interval": "1h"}


@pytest.mark.parametrize(
    ("path", "params", "code", "msg"),
    [
        ("/api/v3/klines", {"symbol": "NOPEUSDT", "interval": "1h"}, -1121, "Invalid symbol."),
        ("/fapi/v1/klines", {"symbol": "NOPEUSDT", "interval": "1h"}, -1121, "Invalid symbol."),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "7m"}, -1120, "Invalid interval."),
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1s"}, -1120, "Invalid interval."),
        ("/api/v3/klines", {"interval": "1h"}, -1102, MANDATORY.format("symbol")),
        ("/api/v3/klines", {"symbol": "BTCUSDT"}, -1102, MANDATORY.format("interval")),
        ("/api/v3/klines", {"symbol": "", "interval": "1h"}, -1102, MANDATORY.format("symbol")),
        ("/api/v3/klines", {**OK, "limit": 1001}, -1130,
         "Data sent for parameter 'limit' is not valid."),
        ("/fapi/v1/klines", {**OK, "limit": 1501}, -1130,
         "Data sent for parameter 'limit' is not valid."),
        ("/api/v3/klines", {**OK, "limit": 0}, -1130,
         "Data sent for parameter 'limit' is not valid."),
        ("/api/v3/klines", {**OK, "limit": -5}, -1100, ILLEGAL_NUMBER.format("limit")),
        ("/api/v3/klines", {**OK, "startTime": "abc"}, -1100, ILLEGAL_NUMBER.format("startTime")),
        ("/fapi/v1/klines", {**OK, "endTime": "1.5e12"}, -1100, ILLEGAL_NUMBER.format("endTime")),
        ("/api/v3/klines", {**OK, "startTime": 5, "endTime": 4}, -1023,
         "Start time is greater than end time."),
        ("/api/v3/klines", {**OK, "fromId": 1}, -1104,
         "Not all sent parameters were read; read '2' parameter(s) but was sent '3'."),
        ("/api/v3/klines", [("symbol", "BTCUSDT"), ("symbol", "ETHUSDT"), ("interval", "1h")],
         -1101, "Duplicate values for a parameter detected."),
        ("/api/v3/klines", {"symbol": "btc usdt", "interval": "1h"}, -1100,
         "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'."),
        ("/api/v3/exchangeInfo", {"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        ("/api/v3/exchangeInfo", {"symbol": "BTCUSDT", "symbols": '["ETHUSDT"]'}, -1128,
         "Combination of optional parameters invalid."),
        ("/api/v3/ticker/24hr", {"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        ("/fapi/v1/ticker/price", {"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        ("/fapi/v1/ticker/24hr", {"symbols": '["BTCUSDT"]'}, -1104,
         "Not all sent parameters were read; read '0' parameter(s) but was sent '1'."),
    ],
)  # fmt: skip
def test_bad_input_gets_binance_error_codes(
    http: httpx.Client, path: str, params: object, code: int, msg: str
) -> None:
    response = http.get(path, params=params)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert response.json() == {"code": code, "msg": msg}
    assert int(response.headers["X-MBX-USED-WEIGHT-1M"]) > 0


def test_malformed_symbols_list_is_illegal_characters(http: httpx.Client) -> None:
    response = http.get("/api/v3/ticker/price", params={"symbols": "[BTCUSDT"})
    assert response.status_code == 400
    assert response.json()["code"] == -1100
    assert "'symbols'" in response.json()["msg"]


def test_unknown_paths_are_404_not_500(http: httpx.Client) -> None:
    assert http.get("/api/v3/nope").status_code == 404
    assert http.get("/archive/data/spot/monthly/klines/BTCUSDT/1h/nope.zip").status_code == 404
