"""CoinGecko's public v3 API (demo plan) from the recorded snapshots in ``coingecko/``.

``/api/v3/ping``, ``/coins/list``, ``/coins/markets``, ``/simple/price`` and
``/exchanges/{id}/tickers``. Every call needs ``x-cg-demo-api-key`` (header, or the
``x_cg_demo_api_key`` query parameter as CoinGecko also accepts): 401 without it, or
with another value than ``SimOptions.coingecko_api_key`` when that is set). Each client
(the simulator's client identity: ``X-Sim-Client`` or the peer host) may make
``SimOptions.coingecko_calls_per_min`` calls per clock-aligned minute (shortened by
``time_scale``); the next gets 429 with ``Retry-After`` until the window turns.

Market data comes from the ``coins_markets_usd_top250_<date>`` snapshots: the newest one
dated at or before the clock's now answers first, the others fill in coins it lacks.
Only ``usd`` was recorded, so another ``vs_currency`` is refused as CoinGecko refuses an
unknown one. An id no snapshot holds is simply absent, as on CoinGecko.
"""

from __future__ import annotations

import gzip
import math
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from klinewatch.sim.context import SimContext
from klinewatch.sim.limits import WINDOW_MS, FixedWindowCounter
from klinewatch.sim.stats import client_of
from klinewatch.sim.venues.wire import json_response

MAX_IDS, MAX_PER_PAGE, DEFAULT_PER_PAGE, TICKERS_PER_PAGE = 250, 250, 100, 100
KEY_HEADER, KEY_QUERY = "x-cg-demo-api-key", "x_cg_demo_api_key"
MARKETS_PREFIX = "coins_markets_usd_top250_"
EXCHANGE_NAMES = {"binance": "Binance"}
RATE_LIMITED = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
    "to subscribe to a plan."
)
ORDERS: dict[str, tuple[str, bool]] = {
    "market_cap_desc": ("market_cap", True), "market_cap_asc": ("market_cap", False),
    "volume_desc": ("total_volume", True), "volume_asc": ("total_volume", False),
    "id_desc": ("id", True), "id_asc": ("id", False),
}  # fmt: skip

Handler = Callable[[Request], Response]


def _status_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"status": {"error_code": code, "error_message": message}}
    return json_response(body, status=status, headers=headers)


def _bad_request(message: str) -> Response:
    return json_response({"error": message}, status=400)


def _load(path: Path) -> Any:
    return orjson.loads(gzip.decompress(path.read_bytes()))


def _snapshot_ms(path: Path) -> int:
    day = date.fromisoformat(path.name.removeprefix(MARKETS_PREFIX).removesuffix(".json.gz"))
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


class CoinGecko:
    """The CoinGecko routes over one simulator context; snapshots load on first use."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self._calls = FixedWindowCounter()
        self.folder = ctx.store.root / "coingecko"
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    def calls(self) -> FixedWindowCounter:
        """Calls per client in clock-aligned minutes, shortened by ``time_scale`` as the
        Binance weight windows are (so a client obeying Retry-After sees the same story)."""
        window = max(1, round(WINDOW_MS * self.ctx.options.time_scale))
        if self._calls.window_ms != window:
            self._calls = FixedWindowCounter(window)
        return self._calls

    def gate(self, handler: Handler) -> Handler:
        """API key, then the per-client calls-per-minute limit, before ``handler`` runs."""

        def endpoint(request: Request) -> Response:
            key = request.headers.get(KEY_HEADER) or request.query_params.get(KEY_QUERY)
            expected = self.ctx.options.coingecko_api_key
            if not key:
                return _status_error(401, 10002, "API Key Missing")
            if expected is not None and key != expected:
                return _status_error(401, 10002, "Invalid API Key")
            now, calls = self.ctx.clock.now_ms(), self.calls()
            used = calls.add(client_of(request.scope), 1, now)
            if used > self.ctx.options.coingecko_calls_per_min:
                wait_s = max(1, math.ceil(calls.ms_to_reset(now) / 1000))
                return _status_error(429, 429, RATE_LIMITED, {"Retry-After": str(wait_s)})
            return handler(request)

        endpoint.__name__ = handler.__name__
        return endpoint

    def ping(self, request: Request) -> Response:
        return json_response({"gecko_says": "(V3) To the Moon!"})

    def coins_list(self, request: Request) -> Response:
        platforms = request.query_params.get("include_platform", "false").lower() == "true"
        body: bytes = self.cached(f"coins_list:{platforms}", lambda: self._coins_list(platforms))
        return Response(body, media_type="application/json")

    def _coins_list(self, platforms: bool) -> bytes:
        files = sorted(self.folder.glob("coins_list_include_platform_*.json.gz"))
        coins: list[dict[str, Any]] = _load(files[-1]) if files else []
        if not platforms:
            coins = [{k: v for k, v in c.items() if k != "platforms"} for c in coins]
        return orjson.dumps(coins)

    def markets(self) -> dict[str, dict[str, Any]]:
        """Every recorded coin by id, each from the snapshot the clock prefers."""
        files = sorted(self.folder.glob(f"{MARKETS_PREFIX}*.json.gz"))
        now = self.ctx.clock.now_ms()
        past = [f for f in files if _snapshot_ms(f) <= now]
        future = [f for f in files if _snapshot_ms(f) > now]
        merged: dict[str, dict[str, Any]] = {}
        for path in [*reversed(past), *future]:
            for coin in self.cached(path.name, partial(_load, path)):
                merged.setdefault(coin["id"], coin)
        return merged

    def coins_markets(self, request: Request) -> Response:
        q = request.query_params
        vs = q.get("vs_currency", "")
        if not vs:
            return _bad_request("Missing parameter vs_currency")
        if vs.lower() != "usd":
            return _bad_request("invalid vs_currency")
        ids = [i for i in q.get("ids", "").lower().split(",") if i]
        if len(ids) > MAX_IDS:
            return _bad_request(f"Too many ids: {len(ids)} given, at most {MAX_IDS} per request")
        order = ORDERS.get(q.get("order", "market_cap_desc"))
        per_page, page = _positive(q.get("per_page"), DEFAULT_PER_PAGE), _positive(q.get("page"), 1)
        if order is None or per_page is None or page is None:
            return _bad_request("invalid order, per_page or page")
        markets = self.markets()
        coins = (
            [markets[i] for i in dict.fromkeys(ids) if i in markets]
            if ids
            else list(markets.values())
        )
        field, descending = order
        present = sorted((c for c in coins if c.get(field) is not None),
                         key=lambda c: c[field], reverse=descending)  # fmt: skip
        ordered = present + [c for c in coins if c.get(field) is None]
        size = min(per_page, MAX_PER_PAGE)
        return json_response(ordered[(page - 1) * size : page * size])

    def simple_price(self, request: Request) -> Response:
        q = request.query_params
        ids = [i for i in q.get("ids", "").lower().split(",") if i]
        currencies = [c for c in q.get("vs_currencies", "").lower().split(",") if c]
        if not ids or not currencies:
            return _bad_request("Missing parameter ids or vs_currencies")
        markets, flags = self.markets(), {k for k, v in q.items() if v.lower() == "true"}
        body = {i: _price(markets[i], flags) for i in dict.fromkeys(ids) if i in markets}
        return json_response(body if "usd" in currencies else {i: {} for i in body})

    def exchange_tickers(self, request: Request) -> Response:
        exchange_id = request.path_params["exchange_id"]
        if not exchange_id.replace("_", "").replace("-", "").isalnum():
            return json_response({"error": "exchange not found"}, status=404)
        files = sorted(self.folder.glob(f"exchanges_{exchange_id}_tickers*.json.gz"))
        if not files and exchange_id not in EXCHANGE_NAMES:
            return json_response({"error": "exchange not found"}, status=404)
        if not files:
            return json_response({"name": EXCHANGE_NAMES[exchange_id], "tickers": []})
        snapshot: dict[str, Any] = self.cached(files[-1].name, lambda: _load(files[-1]))
        page = _positive(request.query_params.get("page"), 1) or 1
        tickers = snapshot.get("tickers", [])[
            (page - 1) * TICKERS_PER_PAGE : page * TICKERS_PER_PAGE
        ]
        return json_response({**snapshot, "tickers": tickers})


def _positive(raw: str | None, default: int) -> int | None:
    """A positive integer parameter, the default when absent, ``None`` when invalid."""
    if raw is None or raw == "":
        return default
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def _price(coin: dict[str, Any], flags: set[str]) -> dict[str, Any]:
    """One ``/simple/price`` entry in usd, with the extras the query asked for."""
    entry: dict[str, Any] = {"usd": coin.get("current_price")}
    if "include_market_cap" in flags:
        entry["usd_market_cap"] = coin.get("market_cap")
    if "include_24hr_vol" in flags:
        entry["usd_24h_vol"] = coin.get("total_volume")
    if "include_24hr_change" in flags:
        entry["usd_24h_change"] = coin.get("price_change_percentage_24h")
    if "include_last_updated_at" in flags and coin.get("last_updated"):
        updated = datetime.fromisoformat(str(coin["last_updated"]).replace("Z", "+00:00"))
        entry["last_updated_at"] = int(updated.timestamp())
    return entry


def routes(ctx: SimContext) -> list[BaseRoute]:
    """CoinGecko's paths without the simulator's ``/coingecko`` prefix."""
    cg = CoinGecko(ctx)
    return [
        Route("/api/v3/ping", cg.gate(cg.ping)),
        Route("/api/v3/coins/list", cg.gate(cg.coins_list)),
        Route("/api/v3/coins/markets", cg.gate(cg.coins_markets)),
        Route("/api/v3/simple/price", cg.gate(cg.simple_price)),
        Route("/api/v3/exchanges/{exchange_id}/tickers", cg.gate(cg.exchange_tickers)),
    ]
