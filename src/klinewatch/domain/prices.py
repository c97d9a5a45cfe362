"""Token prices in USDT (seed 004): quotes and their freshness, the 10 USDT minimum,
the total asset value and the display strings, in English and Chinese.

Pure: no I/O, no clock (callers pass "now"). Money is ``Decimal`` throughout; floats
from a wire format are converted through their shortest ``str`` so ``0.1`` stays ``0.1``.

Freshness (section 4.2): a price observed at most ``fresh_ms`` (30 s) ago is fresh; up
to ``max_stale_ms`` (5 min) it may still be served, marked stale; older it is expired
and never served. Both bounds are inclusive: at exactly 30 s a price is still fresh.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

from klinewatch.domain.price_text import Lang, message, total_display, value_display
from klinewatch.errors import InvalidInput

USDT = "USDT"
MIN_USDT = Decimal(10)
MAX_SYMBOLS = 500  # per call: DeBank takes 100 ids a request, so at most 5 requests
MAX_HOLDINGS = 500
MAX_AMOUNT_DECIMALS = 18  # the finest ERC-20 unit
MAX_AMOUNT = Decimal("1e24")
CENT = Decimal("0.01")
PAR = "par"  # the source of USDT's own price: 1 by definition

# Symbol -> CoinGecko id when no reviewed mapping exists (the majors; ids checked
# against CoinGecko's recorded coins list).
MAJOR_COINGECKO_IDS: Mapping[str, str] = {
    "BTC": "bitcoin", "ETH": "ethereum", "USDT": "tether", "USDC": "usd-coin",
    "BNB": "binancecoin", "XRP": "ripple", "SOL": "solana", "ADA": "cardano",
    "DOGE": "dogecoin", "TRX": "tron", "DOT": "polkadot", "MATIC": "matic-network",
    "AVAX": "avalanche-2", "LINK": "chainlink", "LTC": "litecoin", "DAI": "dai",
    "SHIB": "shiba-inu", "WBTC": "wrapped-bitcoin", "WETH": "weth", "PEPE": "pepe",
    "OM": "mantra-dao", "ATOM": "cosmos", "BCH": "bitcoin-cash", "UNI": "uniswap",
}  # fmt: skip

# A wallet's network names -> DeBank chain id (None: a chain DeBank does not serve,
# so the primary source is skipped and CoinGecko answers).
NETWORKS: Mapping[str, str | None] = {
    "eth": "eth", "ethereum": "eth", "erc20": "eth",
    "bsc": "bsc", "bep20": "bsc", "bnb": "bsc",
    "arb": "arb", "arbitrum": "arb", "op": "op", "optimism": "op",
    "matic": "matic", "polygon": "matic", "base": "base",
    "avax": "avax", "avalanche": "avax", "ftm": "ftm", "fantom": "ftm",
    "tron": None, "trc20": None, "sol": None, "solana": None, "btc": None, "bitcoin": None,
}  # fmt: skip
DEFAULT_CHAIN = "eth"

_SYMBOL = re.compile(r"^[A-Z0-9]{1,20}$")

# --- input ----------------------------------------------------------------------------


def parse_symbol(raw: str, field: str = "symbol") -> str:
    """A token symbol, upper-cased: 1 to 20 letters or digits."""
    symbol = raw.strip().upper()
    if not _SYMBOL.match(symbol):
        raise InvalidInput(
            f"{field}: {raw[:40]!r} is not a token symbol (1 to 20 letters or digits)",
            field=field,
        )
    return symbol


def parse_symbols(raw: str | Sequence[str], field: str = "symbols") -> list[str]:
    """A comma list (or list) of symbols, in order, without repeats; 1 to MAX_SYMBOLS."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    items = [item for item in items if item.strip()]
    if not items:
        raise InvalidInput(f"{field}: give at least one symbol, e.g. BTC,ETH", field=field)
    if len(items) > MAX_SYMBOLS:
        raise InvalidInput(
            f"{field}: at most {MAX_SYMBOLS} symbols per request, got {len(items)}",
            field=field,
        )
    return list(dict.fromkeys(parse_symbol(item, field) for item in items))


def parse_network(raw: str | None, field: str = "network") -> str | None:
    """A known network name, lower-cased (None or empty: none given)."""
    if raw is None or not raw.strip():
        return None
    network = raw.strip().lower()
    if network not in NETWORKS:
        raise InvalidInput(
            f"{field}: unknown network {raw[:40]!r}; one of {', '.join(NETWORKS)}", field=field
        )
    return network


def chain_of(network: str | None) -> str | None:
    """The DeBank chain id for a network (the default chain when none is given)."""
    return DEFAULT_CHAIN if network is None else NETWORKS[network]


def parse_amount(raw: Decimal | str | int | float, field: str = "amount") -> Decimal:
    """A token amount: finite, not negative, at most 18 decimals and below 10^24."""
    try:
        amount = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{field}: {str(raw)[:40]!r} is not a number", field=field) from None
    if not amount.is_finite():
        raise InvalidInput(f"{field}: must be a finite number", field=field)
    if amount < 0:
        raise InvalidInput(f"{field}: must not be negative, got {amount}", field=field)
    if amount >= MAX_AMOUNT:
        raise InvalidInput(f"{field}: must be below {MAX_AMOUNT:,.0f}", field=field)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_AMOUNT_DECIMALS:
        raise InvalidInput(
            f"{field}: at most {MAX_AMOUNT_DECIMALS} decimals, got {-exponent}", field=field
        )
    return amount


def valid_price(raw: object) -> Decimal | None:
    """A source's price as ``Decimal`` when it is a positive finite number, else None
    (a zero or negative price of a listed token is a data error, not a price)."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        price = raw if isinstance(raw, Decimal) else Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return None
    return price if price.is_finite() and price > 0 else None


# --- quotes and freshness -------------------------------------------------------------


class Freshness(StrEnum):
    FRESH = "fresh"
    STALE = "stale"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PricePolicy:
    fresh_ms: int = 30_000
    max_stale_ms: int = 300_000

    def __post_init__(self) -> None:
        if not 0 < self.fresh_ms <= self.max_stale_ms:
            raise ValueError("need 0 < fresh_ms <= max_stale_ms")

    def freshness(self, age_ms: int) -> Freshness:
        if age_ms <= self.fresh_ms:
            return Freshness.FRESH
        return Freshness.STALE if age_ms <= self.max_stale_ms else Freshness.EXPIRED


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A price as one source gave it, and when it held (what the caches keep)."""

    price: Decimal
    origin: str  # the source that produced it: debank, coingecko, exchange, par
    observed_ms: int


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """An answer: the price, which step served it (``cache`` or the origin), its age."""

    symbol: str
    network: str | None
    price: Decimal
    source: str
    origin: str
    as_of_ms: int
    age_ms: int
    is_stale: bool


def quote_of(
    point: PricePoint,
    symbol: str,
    network: str | None,
    source: str,
    now_ms: int,
    policy: PricePolicy,
) -> PriceQuote | None:
    """The quote of ``point`` at ``now_ms``, or None when it is too old to serve."""
    age = max(0, now_ms - point.observed_ms)
    state = policy.freshness(age)
    if state is Freshness.EXPIRED:
        return None
    return PriceQuote(
        symbol, network, point.price, source, point.origin, point.observed_ms, age,
        state is Freshness.STALE,
    )  # fmt: skip


# --- minimum amount (section 6) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MinAmountCheck:
    valid: bool
    usdt_equivalent: Decimal | None
    error: str | None
    min_usdt: Decimal = MIN_USDT

    @property
    def display(self) -> str:
        """Section 6.3's line under the input: ``≈ 2.47 USDT`` (``≈ --`` without price)."""
        if self.usdt_equivalent is None:
            return "≈ --"
        return f"≈ {self.usdt_equivalent.quantize(CENT, ROUND_HALF_UP):,.2f} USDT"


def check_min_amount(
    amount: Decimal, symbol: str, price: Decimal | None, lang: Lang = "en"
) -> MinAmountCheck:
    """Seed 004 section 6.2: USDT compared directly, others through ``price``; no price
    means invalid. The equivalent in an error is cut (not rounded) to cents, so an
    amount worth 9.996 USDT never reads "currently about 10.00"."""
    if symbol == USDT:
        ok = amount >= MIN_USDT
        return MinAmountCheck(ok, amount, None if ok else message("min_usdt", lang, min=MIN_USDT))
    if price is None:
        return MinAmountCheck(False, None, message("no_price", lang))
    equivalent = amount * price
    if equivalent >= MIN_USDT:
        return MinAmountCheck(True, equivalent, None)
    shown = equivalent.quantize(CENT, ROUND_DOWN)
    return MinAmountCheck(
        False, equivalent, message("min_equivalent", lang, min=MIN_USDT, eq=f"{shown:.2f}")
    )


# --- total asset value (section 7) ----------------------------------------------------


class HoldingStatus(StrEnum):
    PRICED = "priced"
    FAILED = "failed"  # the token is known but no price could be had
    UNKNOWN = "unknown"  # no source and no registry knows the token


@dataclass(frozen=True, slots=True)
class Holding:
    symbol: str
    balance: Decimal
    network: str | None = None


def parse_holding(
    symbol: object, balance: object, network: object, index: int, field: str = "holdings"
) -> Holding:
    """One holding of a request, each flaw named by its place: ``holdings[2].balance``."""
    where = f"{field}[{index}]"
    if not isinstance(symbol, str):
        raise InvalidInput(f"{where}.symbol: a string, e.g. ETH", field=f"{where}.symbol")
    if network is not None and not isinstance(network, str):
        raise InvalidInput(f"{where}.network: a string or null", field=f"{where}.network")
    if isinstance(balance, bool) or not isinstance(balance, str | int | float | Decimal):
        raise InvalidInput(f"{where}.balance: a number or a string", field=f"{where}.balance")
    return Holding(
        parse_symbol(symbol, f"{where}.symbol"),
        parse_amount(balance, f"{where}.balance"),
        parse_network(network, f"{where}.network"),
    )


@dataclass(frozen=True, slots=True)
class HoldingValue:
    holding: Holding
    status: HoldingStatus
    price: Decimal | None
    value_usdt: Decimal | None

    @property
    def display(self) -> str:
        return value_display(self.value_usdt)


@dataclass(frozen=True, slots=True)
class AssetTotal:
    total_usdt: Decimal | None  # None when every price failed
    holdings: list[HoldingValue]
    failed: list[str]
    unknown: list[str]
    display: str
    error_message: str | None

    @property
    def has_error(self) -> bool:
        return bool(self.failed or self.unknown)


def total_assets(
    holdings: Iterable[Holding],
    prices: Mapping[tuple[str, str | None], Decimal | None],
    unknown: Iterable[tuple[str, str | None]] = (),
    lang: Lang = "en",
) -> AssetTotal:
    """Section 7.1: the sum of balance x price over the holdings that have a price; a
    holding without one (or of an unknown token) is listed, never fatal."""
    not_known = set(unknown)
    values: list[HoldingValue] = []
    total = Decimal(0)
    for holding in holdings:
        key = (holding.symbol, holding.network)
        price = Decimal(1) if holding.symbol == USDT else prices.get(key)
        if key in not_known:
            values.append(HoldingValue(holding, HoldingStatus.UNKNOWN, None, None))
        elif price is None:
            values.append(HoldingValue(holding, HoldingStatus.FAILED, None, None))
        else:
            value = holding.balance * price
            total += value
            values.append(HoldingValue(holding, HoldingStatus.PRICED, price, value))
    failed = _symbols(values, HoldingStatus.FAILED)
    unknown_symbols = _symbols(values, HoldingStatus.UNKNOWN)
    priced = sum(1 for v in values if v.status is HoldingStatus.PRICED)
    problems = len(values) - priced
    return AssetTotal(
        total_usdt=total if priced or not problems else None,
        holdings=values,
        failed=failed,
        unknown=unknown_symbols,
        display=total_display(total, priced, problems),
        error_message=message("partial_total", lang) if problems else None,
    )


def _symbols(values: list[HoldingValue], status: HoldingStatus) -> list[str]:
    return list(dict.fromkeys(v.holding.symbol for v in values if v.status is status))
