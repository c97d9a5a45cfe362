"""``/api/v1/prices``, ``/api/v1/prices/validate-min-amount``, ``/api/v1/portfolio/value``
(seed 004): token prices in USDT with their source and age, the 10 USDT minimum check
and the total asset value, in the envelopes of the market-data API.

``Accept-Language: zh`` gives the Chinese messages. Bodies are read here rather than
declared as models, so every flaw is a 400 naming its place (``holdings[2].balance``)
and JSON numbers keep their exact decimals. Prices and amounts travel as strings.

``install`` builds the price service into a running app (``scheduler/prices.py``, as
``klinewatch scheduler`` builds it; its sources' HTTP clients close with the app) and,
with ``background``, starts the refresh of tracked symbols.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from klinewatch.api.errors import ok
from klinewatch.api.requests import json_body
from klinewatch.api.schemas import responses
from klinewatch.clock import ms_to_datetime
from klinewatch.domain.price_text import Lang, Notice, message, pick_language, plain
from klinewatch.domain.prices import MAX_HOLDINGS, MIN_USDT, parse_holding
from klinewatch.errors import InvalidInput
from klinewatch.scheduler.prices import build_price_service, start_refresh
from klinewatch.services.prices import MinAmountResult, PortfolioValue, PriceAnswer, PriceService

if TYPE_CHECKING:
    from klinewatch.api.app import AppContext

router = APIRouter(prefix="/api/v1", tags=["prices"])
MAX_BODY_BYTES = 256 * 1024
LanguageH = Annotated[
    str | None,
    Header(
        alias="Accept-Language",
        description="zh for Chinese messages (zh-CN, zh;q=0.9, ...); English otherwise.",
    ),
]


# --- documented shapes (the contract test checks every answer against them) -----------


class QuoteModel(BaseModel):
    symbol: str
    network: str | None
    status: Literal["ok", "unavailable", "unknown"]
    price: str | None = Field(description="USDT per token, a decimal string.")
    source: str | None = Field(description="cache, debank, coingecko, exchange or par.")
    origin: str | None = Field(description="Where the price came from (for cache answers).")
    as_of: datetime | None = Field(description="When the price held.")
    age_s: float | None
    is_stale: bool = Field(description="Older than the fresh limit (30 s).")
    message: str | None = Field(description="Why there is no price, when there is none.")


class NoticeModel(BaseModel):
    code: Literal["PRICES_STALE", "PRICE_FETCH_FAILED", "NETWORK_DEGRADED"]
    message: str


class PricesData(BaseModel):
    prices: list[QuoteModel]
    notice: NoticeModel | None


class PricesEnvelope(BaseModel):
    success: Literal[True]
    data: PricesData


class MinAmountData(BaseModel):
    symbol: str
    network: str | None
    amount: str
    valid: bool
    min_usdt: str
    usdt_equivalent: str | None
    display: str = Field(description="The line under the input: ≈ 2.47 USDT, or ≈ --.")
    error: str | None
    price: QuoteModel | None


class MinAmountEnvelope(BaseModel):
    success: Literal[True]
    data: MinAmountData


class HoldingValueModel(BaseModel):
    symbol: str
    network: str | None
    balance: str
    status: Literal["priced", "failed", "unknown"]
    price: str | None
    value_usdt: str | None
    display: str = Field(description="≈ $2,469.13; ≈ -- without a price; ≈ $0.00 for zero.")


class PortfolioData(BaseModel):
    total_usdt: str | None = Field(description="Null when every price failed.")
    display: str = Field(description="$12,345.67; $12,345.67 * when some failed; -- when all.")
    has_error: bool
    error_message: str | None
    failed: list[str]
    unknown: list[str]
    holdings: list[HoldingValueModel]
    notice: NoticeModel | None


class PortfolioEnvelope(BaseModel):
    success: Literal[True]
    data: PortfolioData


MIN_AMOUNT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["amount", "symbol"],
    "properties": {
        "amount": {
            "type": ["string", "number"],
            "description": "Send a string for exact decimals.",
        },
        "symbol": {"type": "string", "description": "ETH, USDT, ..."},
        "network": {"type": ["string", "null"], "description": "eth, bsc, tron, ..."},
    },
    "example": {"amount": "0.001", "symbol": "ETH", "network": "eth"},
}
PORTFOLIO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["holdings"],
    "properties": {
        "holdings": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_HOLDINGS,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["symbol", "balance"],
                "properties": {
                    "symbol": {"type": "string"},
                    "balance": {"type": ["string", "number"]},
                    "network": {"type": ["string", "null"]},
                },
            },
        }
    },
    "example": {"holdings": [{"symbol": "ETH", "balance": "1.2345678", "network": "eth"}]},
}


def _body_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


# --- wiring ---------------------------------------------------------------------------


def install(app: FastAPI, stack: AsyncExitStack, ctx: AppContext, *, background: bool) -> None:
    """Build the price service on the app's cache, database and clock; with
    ``background``, refresh the tracked symbols every ``price_refresh_s``."""
    service = build_price_service(ctx.runtime, ctx.cache, ctx.market.clock, stack)
    app.state.prices = service
    if background:
        ctx.tasks["price_refresh"] = start_refresh(service, stack)


def _service(request: Request) -> PriceService:
    service: PriceService = request.app.state.prices
    return service


# --- routes ---------------------------------------------------------------------------


@router.get(
    "/prices",
    summary="Token prices in USDT with source, age and stale flag",
    response_class=Response,
    responses=responses(400, ok=PricesEnvelope),
)
async def get_prices(
    request: Request,
    symbols: Annotated[
        str, Query(description="Comma list, at most 500: BTC,ETH,PEPE", examples=["BTC,ETH"])
    ],
    network: Annotated[str | None, Query(description="eth, bsc, tron, ...")] = None,
    accept_language: LanguageH = None,
) -> Response:
    """Cache (30 s) -> DeBank -> CoinGecko -> exchange data -> stale cache (5 min). A
    symbol no source and no registry knows is a 400; a known one without a price has
    ``status: unavailable``."""
    lang = pick_language(accept_language)
    service = _service(request)
    answers = await service.get_prices(symbols, network)
    service.require_known(answers, "symbols", lang)
    return ok(
        {
            "prices": [_quote(a, lang) for a in answers],
            "notice": _notice(service.notice(answers, lang)),
        }
    )


@router.post(
    "/prices/validate-min-amount",
    summary="Is an amount worth at least 10 USDT at the current price?",
    response_class=Response,
    responses=responses(400, ok=MinAmountEnvelope),
    openapi_extra=_body_of(MIN_AMOUNT_SCHEMA),
)
async def validate_min_amount(request: Request, accept_language: LanguageH = None) -> Response:
    """USDT is compared directly, other tokens through the price; without a price the
    amount is invalid ("cannot get the current price")."""
    lang = pick_language(accept_language)
    body = await _json_object(request, {"amount", "symbol", "network"})
    for name in ("amount", "symbol"):
        if name not in body:
            raise InvalidInput(f"{name}: required", field=name)
    symbol, network = _text(body, "symbol"), body.get("network")
    if network is not None and not isinstance(network, str):
        raise InvalidInput("network: a string or null", field="network")
    amount = body["amount"]
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise InvalidInput("amount: a number or a string", field="amount")
    result = await _service(request).validate_min_amount(amount, symbol, network, lang)
    return ok(_min_amount(result, lang))


@router.post(
    "/portfolio/value",
    summary="Total asset value in USDT; failed prices are listed, not fatal",
    response_class=Response,
    responses=responses(400, ok=PortfolioEnvelope),
    openapi_extra=_body_of(PORTFOLIO_SCHEMA),
)
async def portfolio_value(request: Request, accept_language: LanguageH = None) -> Response:
    """Sum of balance x price; ``display`` follows seed 004 section 7.2."""
    lang = pick_language(accept_language)
    body = await _json_object(request, {"holdings"})
    items = body.get("holdings")
    if not isinstance(items, list) or not items:
        raise InvalidInput("holdings: a non-empty list of holdings", field="holdings")
    if len(items) > MAX_HOLDINGS:
        raise InvalidInput(
            f"holdings: at most {MAX_HOLDINGS} per request, got {len(items)}", field="holdings"
        )
    holdings = []
    for index, item in enumerate(items):
        where = f"holdings[{index}]"
        if not isinstance(item, dict) or set(item) - {"symbol", "balance", "network"}:
            raise InvalidInput(f"{where}: an object of symbol, balance, network", field=where)
        if "symbol" not in item or "balance" not in item:
            raise InvalidInput(f"{where}: symbol and balance are required", field=where)
        holdings.append(parse_holding(item["symbol"], item["balance"], item.get("network"), index))
    value = await _service(request).total_asset_value(holdings, lang)
    return ok(_portfolio(value))


# --- parsing and rendering ------------------------------------------------------------


async def _json_object(request: Request, allowed: set[str]) -> dict[str, Any]:
    body = await json_body(request, MAX_BODY_BYTES, loads=_decimal_json)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="(root)")
    extra = sorted(set(body) - allowed)
    if extra:
        raise InvalidInput(f"{extra[0]}: unknown field", field=extra[0])
    return body


def _decimal_json(raw: bytes) -> Any:
    """Amounts stay exact: floats parse as ``Decimal``; NaN and Infinity are refused."""
    return json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: a string", field=name)
    return value


def _quote(answer: PriceAnswer, lang: Lang) -> dict[str, Any]:
    q = answer.quote
    return {
        "symbol": answer.symbol,
        "network": answer.network,
        "status": answer.status,
        "price": plain(q.price) if q else None,
        "source": q.source if q else None,
        "origin": q.origin if q else None,
        "as_of": ms_to_datetime(q.as_of_ms).isoformat() if q else None,
        "age_s": q.age_ms / 1000 if q else None,
        "is_stale": q.is_stale if q else False,
        "message": None if q else message("no_price", lang),
    }


def _notice(notice: Notice | None) -> dict[str, str] | None:
    return None if notice is None else {"code": notice.code, "message": notice.message}


def _min_amount(result: MinAmountResult, lang: Lang) -> dict[str, Any]:
    check, answer = result.check, result.answer
    return {
        "symbol": result.symbol,
        "network": result.network,
        "amount": plain(result.amount),
        "valid": check.valid,
        "min_usdt": plain(MIN_USDT),
        "usdt_equivalent": None if check.usdt_equivalent is None else plain(check.usdt_equivalent),
        "display": check.display,
        "error": check.error,
        "price": _quote(answer, lang) if answer else None,
    }


def _portfolio(value: PortfolioValue) -> dict[str, Any]:
    total = value.total
    return {
        "total_usdt": None if total.total_usdt is None else plain(total.total_usdt),
        "display": total.display,
        "has_error": total.has_error,
        "error_message": total.error_message,
        "failed": total.failed,
        "unknown": total.unknown,
        "holdings": [
            {
                "symbol": v.holding.symbol,
                "network": v.holding.network,
                "balance": plain(v.holding.balance),
                "status": v.status.value,
                "price": None if v.price is None else plain(v.price),
                "value_usdt": None if v.value_usdt is None else plain(v.value_usdt),
                "display": v.display,
            }
            for v in total.holdings
        ],
        "notice": _notice(value.notice),
    }
