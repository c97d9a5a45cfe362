"""Binance's request validation and error bodies, as the real REST API answers them.

Errors are ``{"code": <int>, "msg": "<text>"}`` with HTTP 400, checked in this order:
duplicate parameter (-1101), missing mandatory parameter (-1102), unknown parameter
(-1104), malformed number or symbol (-1100), bad interval (-1120), unknown symbol
(-1121), limit out of range (-1130), startTime after endTime (-1023). Messages are the
ones Binance sends (spot error-code docs and bodies recorded from api.binance.com).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import orjson
from starlette.datastructures import QueryParams
from starlette.responses import Response

_NUMBER = re.compile(r"^[0-9]{1,20}$")
_SYMBOL = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
_SYMBOL_RANGE = "^[A-Z0-9-_.]{1,20}$"
_SYMBOLS_RANGE = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'


class BinanceError(Exception):
    """An error Binance answers with a JSON body; ``response()`` renders it."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def response(self) -> Response:
        return json_response({"code": self.code, "msg": self.msg}, self.status)


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal(name: str, legal: str) -> BinanceError:
    return BinanceError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def invalid_interval() -> BinanceError:
    return BinanceError(-1120, "Invalid interval.")


def invalid_limit() -> BinanceError:
    return BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")


def start_after_end() -> BinanceError:
    return BinanceError(-1023, "Start time is greater than end time.")


def bad_combination() -> BinanceError:
    return BinanceError(-1128, "Combination of optional parameters invalid.")


@dataclass(frozen=True, slots=True)
class Params:
    """A request's query, checked for duplicates and unknown names up front."""

    query: QueryParams

    @classmethod
    def check(
        cls, query: QueryParams, allowed: Collection[str], required: Iterable[str] = ()
    ) -> Params:
        keys = query.keys()
        if any(len(query.getlist(k)) > 1 for k in keys):
            raise BinanceError(-1101, "Duplicate values for a parameter detected.")
        for name in required:
            if not query.get(name):
                raise mandatory(name)
        read = [k for k in keys if k in allowed]
        if len(read) != len(keys):
            raise BinanceError(
                -1104,
                "Not all sent parameters were read; "
                f"read '{len(read)}' parameter(s) but was sent '{len(keys)}'.",
            )
        return cls(query)

    def get(self, name: str) -> str | None:
        value = self.query.get(name)
        return value if value else None

    def number(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if not _NUMBER.match(value):
            raise illegal(name, "^[0-9]{1,20}$")
        return int(value)

    def symbol(self, name: str = "symbol") -> str | None:
        value = self.get(name)
        if value is not None and not _SYMBOL.match(value):
            raise illegal(name, _SYMBOL_RANGE)
        return value

    def symbols(self, name: str = "symbols") -> list[str] | None:
        """A JSON array of symbols, as ``symbols=["BTCUSDT","ETHUSDT"]``."""
        value = self.get(name)
        if value is None:
            return None
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, list) or not all(
            isinstance(s, str) and _SYMBOL.match(s) for s in parsed
        ):
            raise illegal(name, _SYMBOLS_RANGE)
        return [str(s) for s in parsed]

    def symbol_or_symbols(self) -> list[str] | None:
        """``symbol`` or ``symbols`` (never both); None means every symbol."""
        one, many = self.symbol(), self.symbols()
        if one is not None and many is not None:
            raise bad_combination()
        return [one] if one is not None else many


def lenient_int(query: QueryParams, name: str, default: int) -> int:
    """A number for weighing a request before it is validated (bad values weigh default)."""
    value = query.get(name, "")
    return int(value) if _NUMBER.match(value) else default


def too_much_weight(limit: int) -> str:
    return (
        f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API."
    )


def banned_until(until_ms: int) -> str:
    return (
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans."
    )
