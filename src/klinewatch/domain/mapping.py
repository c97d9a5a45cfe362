"""Which CoinGecko coin a Binance base asset is: the rules, pure.

Thousands of CoinGecko coins share symbols (``pepe`` by 13), so a symbol alone is not an
identity. The rules, strongest evidence first:

1. CoinGecko's own Binance tickers name the coin of each Binance pair (``coin_id``);
2. exactly one coin carries the symbol;
3. one candidate's 24h volume is more than twice the runner-up's;
4. the best market-cap rank among the candidates;
5. otherwise ``needs_review``, the candidates kept as alternatives.

Binance futures quote some small-priced coins per 1000 (or 1M, 10000, ...) units:
``1000PEPE`` is PEPE with multiplier 1000, so per-unit values stay right.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class MatchStatus(StrEnum):
    AUTO_MATCHED = "auto_matched"
    NEEDS_REVIEW = "needs_review"
    MANUAL_CONFIRMED = "manual_confirmed"


class Evidence(StrEnum):
    """Which rule decided a mapping (stored with it, shown in review)."""

    VENUE_TICKER = "coingecko_binance_ticker"
    UNIQUE_SYMBOL = "unique_symbol"
    VOLUME_DOMINANT = "volume_over_2x_runner_up"
    BEST_RANK = "best_market_cap_rank"
    NO_CANDIDATE = "no_candidate"
    AMBIGUOUS = "ambiguous"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class CoinListing:
    """One row of CoinGecko's ``coins/list``."""

    id: str
    symbol: str
    name: str


@dataclass(frozen=True, slots=True)
class CoinMarket:
    """One coin's market figures from ``coins/markets`` (USD); any may be unknown."""

    id: str
    symbol: str
    name: str
    price: Decimal | None
    market_cap: Decimal | None
    fdv: Decimal | None
    volume_24h: Decimal | None
    market_cap_rank: int | None
    last_updated: datetime | None


@dataclass(frozen=True, slots=True)
class VenueTicker:
    """A pair of CoinGecko's exchange tickers: which coin the venue's base asset is."""

    base: str
    target: str
    coin_id: str


@dataclass(frozen=True, slots=True)
class Candidate:
    coingecko_id: str
    name: str
    symbol: str
    volume_24h: Decimal | None = None
    market_cap_rank: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "coingecko_id": self.coingecko_id,
            "name": self.name,
            "symbol": self.symbol,
            "volume_24h": None if self.volume_24h is None else float(self.volume_24h),
            "market_cap_rank": self.market_cap_rank,
        }


@dataclass(frozen=True, slots=True)
class MappingDecision:
    """The outcome of the rules for one base asset."""

    base_asset: str
    coin_symbol: str
    multiplier: int
    coingecko_id: str | None
    status: MatchStatus
    evidence: dict[str, object]
    candidates: tuple[Candidate, ...] = field(default=())


# 1000PEPE, 1000000MOG, 10000SATS, 1MBABYDOGE: a power of ten (or 1M) then the coin.
_MULTIPLIER = re.compile(r"^(1(?:0+)|1M)([A-Z][A-Z0-9]*)$")


def split_multiplier(
    base_asset: str, known_symbols: frozenset[str] | None = None
) -> tuple[str, int]:
    """``1000PEPE`` -> ``("PEPE", 1000)``; ``1INCH`` or ``BTC`` -> themselves with 1.

    With ``known_symbols`` (upper case) a prefix counts only when the rest is a known
    symbol. The prefix wins over a coin named like the whole asset: CoinGecko lists
    ``1000shib`` as a coin of its own, but the market cap a user wants is Shiba Inu's.
    """
    asset = base_asset.upper()
    match = _MULTIPLIER.match(asset)
    if match is None:
        return asset, 1
    prefix, rest = match.groups()
    if known_symbols is not None and rest not in known_symbols:
        return asset, 1
    return rest, 1_000_000 if prefix == "1M" else int(prefix)


def name_candidates(
    symbol: str, coins: Iterable[CoinListing], limit: int = 10
) -> list[CoinListing]:
    """Coins whose id or name starts with ``symbol`` (``TOMO`` -> ``tomochain``): for a
    person to review when no coin carries the symbol; never matched automatically."""
    needle = symbol.lower()
    if len(needle) < 3:
        return []
    found = [
        c
        for c in coins
        if c.id == needle
        or c.id.startswith(needle)
        or c.name.lower().replace(" ", "").startswith(needle)
    ]
    found.sort(key=lambda c: (c.id != needle, len(c.id), c.id))
    return found[:limit]


def candidates_by_symbol(coins: Iterable[CoinListing]) -> dict[str, list[CoinListing]]:
    """Coins grouped by upper-case symbol, in list order."""
    grouped: dict[str, list[CoinListing]] = {}
    for coin in coins:
        grouped.setdefault(coin.symbol.upper(), []).append(coin)
    return grouped


def _candidate(coin: CoinListing, markets: Mapping[str, CoinMarket]) -> Candidate:
    market = markets.get(coin.id)
    return Candidate(
        coingecko_id=coin.id,
        name=coin.name,
        symbol=coin.symbol,
        volume_24h=market.volume_24h if market else None,
        market_cap_rank=market.market_cap_rank if market else None,
    )


def _rank_key(candidate: Candidate) -> tuple[int, str]:
    rank = candidate.market_cap_rank
    return (rank if rank is not None else 1 << 62, candidate.coingecko_id)


def _by_volume(candidates: Sequence[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (-(c.volume_24h or Decimal(0)), c.coingecko_id))


def decide(
    base_asset: str,
    coins: Sequence[CoinListing],
    markets: Mapping[str, CoinMarket],
    venue_coin_id: str | None = None,
    known_symbols: frozenset[str] | None = None,
    fallback: Sequence[CoinListing] = (),
) -> MappingDecision:
    """Apply the rules to one base asset; ``coins`` are all coins of its symbol,
    ``fallback`` coins to offer for review when none carries it."""
    symbol, multiplier = split_multiplier(base_asset, known_symbols)
    candidates = tuple(_candidate(c, markets) for c in (coins or fallback))

    def made(coin_id: str | None, status: MatchStatus, **evidence: object) -> MappingDecision:
        return MappingDecision(
            base_asset=base_asset.upper(),
            coin_symbol=symbol,
            multiplier=multiplier,
            coingecko_id=coin_id,
            status=status,
            evidence=evidence,
            candidates=candidates,
        )

    auto = MatchStatus.AUTO_MATCHED
    if venue_coin_id is not None:
        return made(venue_coin_id, auto, rule=Evidence.VENUE_TICKER.value)
    if not coins:
        return made(None, MatchStatus.NEEDS_REVIEW, rule=Evidence.NO_CANDIDATE.value)
    if len(candidates) == 1:
        return made(candidates[0].coingecko_id, auto, rule=Evidence.UNIQUE_SYMBOL.value)
    ranked = _by_volume(candidates)
    top, runner = ranked[0].volume_24h, ranked[1].volume_24h
    if top is not None and top > 0 and top > 2 * (runner or Decimal(0)):
        return made(
            ranked[0].coingecko_id,
            auto,
            rule=Evidence.VOLUME_DOMINANT.value,
            volume_24h=float(top),
            runner_up=ranked[1].coingecko_id,
            runner_up_volume_24h=None if runner is None else float(runner),  # None: no figures
        )
    best = min(candidates, key=_rank_key)
    if best.market_cap_rank is not None:
        return made(
            best.coingecko_id,
            auto,
            rule=Evidence.BEST_RANK.value,
            market_cap_rank=best.market_cap_rank,
        )
    return made(
        None, MatchStatus.NEEDS_REVIEW, rule=Evidence.AMBIGUOUS.value, count=len(candidates)
    )
