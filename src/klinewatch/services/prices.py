"""Token prices in USDT with fallbacks (seed 004), and the checks built on them.

``get_prices`` answers each (symbol, network) by the first step that has a price:

1. the cache, while the price is fresh (``price_fresh_s``, 30 s): this worker's copy,
   then the shared cache (Redis or in-process), then the ``cached_prices`` table;
2. the primary source (DeBank-shaped), every symbol of the call in one batched request;
3. CoinGecko ``simple/price``, symbols mapped to coin ids (reviewed ``token_mappings``,
   else the built-in majors), one request;
4. klinewatch's own exchange data: the cached ticker or the newest stored closed candle
   of ``<SYMBOL>USDT``, when no older than ``price_max_stale_s``;
5. the last cached price, when no older than ``price_max_stale_s`` (5 min): stale;
6. none: ``unavailable`` (a source may come back), or ``unknown`` when a source answered
   without it and klinewatch has never heard of the token.

Steps 2 to 4 live in ``price_chain.py``, the caches in ``price_cache.py``. Every quote
carries its price (``Decimal``), the step that served it (``source``: ``cache`` or the
origin), where the price came from (``origin``), its age and a stale flag (older than
the fresh limit). Concurrent callers missing the same key share one resolution; a token
the sources answered without is not asked for again while a price would be fresh. New
prices go to the caches and the table, so a restart or another worker still has a stale
fallback. USDT is 1 by definition (source ``par``). A database that cannot be read only
costs its steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from klinewatch.cache.port import Cache
from klinewatch.clock import Clock
from klinewatch.domain.price_text import Lang, Notice, message, notice_for
from klinewatch.domain.prices import (
    MAX_HOLDINGS,
    PAR,
    USDT,
    AssetTotal,
    Holding,
    MinAmountCheck,
    PricePoint,
    PricePolicy,
    PriceQuote,
    check_min_amount,
    parse_amount,
    parse_network,
    parse_symbol,
    parse_symbols,
    quote_of,
    total_assets,
)
from klinewatch.errors import InvalidInput
from klinewatch.logs import get_logger
from klinewatch.services.price_cache import MAX_LOCAL, PriceCache
from klinewatch.services.price_chain import (
    OwnMarkets,
    PriceSources,
    PrimarySource,
    SimplePrices,
    SourceRound,
    guarded,
)
from klinewatch.storage.prices import PriceKey

log = get_logger(__name__)

CACHE = "cache"
TRACK_FOR_MS = 3_600_000  # a symbol asked for in the last hour is refreshed in the background
MAX_TRACKED = 5_000
Status = Literal["ok", "unavailable", "unknown"]


@dataclass(frozen=True, slots=True)
class PriceAnswer:
    symbol: str
    network: str | None
    quote: PriceQuote | None
    status: Status


@dataclass(frozen=True, slots=True)
class MinAmountResult:
    symbol: str
    network: str | None
    amount: Decimal
    check: MinAmountCheck
    answer: PriceAnswer | None  # None for USDT, compared directly


@dataclass(frozen=True, slots=True)
class PortfolioValue:
    total: AssetTotal
    notice: Notice | None


@dataclass(frozen=True, slots=True)
class PriceOptions:
    policy: PricePolicy = field(default_factory=PricePolicy)
    timeout_s: float = 3.0
    refresh_s: float = 60.0
    tracked: tuple[str, ...] = ()  # always refreshed, besides the symbols asked for
    own: OwnMarkets = field(default_factory=OwnMarkets)


class PriceService:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        cache: Cache,
        clock: Clock,
        primary: PrimarySource | None,
        coingecko: SimplePrices | None,
        options: PriceOptions | None = None,
    ) -> None:
        self.cache = cache
        self.clock = clock
        self.options = options or PriceOptions()
        self.policy = self.options.policy
        self.sources = PriceSources(
            sessions=sessions,
            cache=cache,
            policy=self.policy,
            primary=primary,
            coingecko=coingecko,
            timeout_s=self.options.timeout_s,
            own=self.options.own,
        )
        self.kept = PriceCache(sessions, cache, self.policy)
        # Keys the sources answered without, until when that answer holds (fresh_ms).
        self._absent: dict[PriceKey, tuple[int, PriceAnswer]] = {}
        self._inflight: dict[PriceKey, asyncio.Future[dict[PriceKey, PriceAnswer]]] = {}
        self._tracked: dict[PriceKey, int] = {}
        self._failing_since_ms: int | None = None

    # --- use cases ----------------------------------------------------------------------

    async def get_price(self, symbol: str, network: str | None = None) -> PriceAnswer:
        return (await self.get_prices([symbol], network))[0]

    async def get_prices(
        self, symbols: str | Sequence[str], network: str | None = None
    ) -> list[PriceAnswer]:
        """One answer per distinct symbol, in the order given (``InvalidInput`` names
        ``symbols`` or ``network`` when they are malformed or too many)."""
        wanted = parse_symbols(symbols)
        chain = parse_network(network)
        found = await self.lookup([(symbol, chain) for symbol in wanted])
        return [found[(symbol, chain)] for symbol in wanted]

    async def validate_min_amount(
        self, amount: Decimal | str | float, symbol: str, network: str | None, lang: Lang = "en"
    ) -> MinAmountResult:
        """Seed 004 section 6: at least 10 USDT, others through the current price."""
        value = parse_amount(amount)
        token = parse_symbol(symbol)
        chain = parse_network(network)
        if token == USDT:
            check = check_min_amount(value, token, None, lang)
            return MinAmountResult(token, chain, value, check, None)
        answer = (await self.lookup([(token, chain)]))[(token, chain)]
        self.require_known([answer], "symbol", lang)
        price = answer.quote.price if answer.quote else None
        check = check_min_amount(value, token, price, lang)
        return MinAmountResult(token, chain, value, check, answer)

    async def total_asset_value(
        self, holdings: Sequence[Holding], lang: Lang = "en"
    ) -> PortfolioValue:
        """Seed 004 section 7: the USDT total; a holding without a price (or of an
        unknown token) is reported in the result, never fatal."""
        if not holdings:
            raise InvalidInput("holdings: give at least one holding", field="holdings")
        if len(holdings) > MAX_HOLDINGS:
            raise InvalidInput(
                f"holdings: at most {MAX_HOLDINGS} per request, got {len(holdings)}",
                field="holdings",
            )
        wanted = list(dict.fromkeys((h.symbol, h.network) for h in holdings if h.symbol != USDT))
        found = await self.lookup(wanted)
        prices = {k: a.quote.price if a.quote else None for k, a in found.items()}
        unknown = [k for k, a in found.items() if a.status == "unknown"]
        total = total_assets(holdings, prices, unknown, lang)
        return PortfolioValue(total, self.notice(found.values(), lang))

    def require_known(self, answers: Iterable[PriceAnswer], field: str, lang: Lang) -> None:
        """``InvalidInput`` naming ``field`` and the tokens no one knows."""
        unknown = [a.symbol for a in answers if a.status == "unknown"]
        if unknown:
            text = message("unknown_token", lang, symbols=", ".join(unknown))
            raise InvalidInput(f"{field}: {text}", field=field, unknown=unknown)

    def notice(self, answers: Iterable[PriceAnswer], lang: Lang) -> Notice | None:
        """Seed 004 section 8.2's prompt for these answers (None when all is well)."""
        listed = list(answers)
        stale = sum(1 for a in listed if a.quote is not None and a.quote.is_stale)
        missing = sum(1 for a in listed if a.status == "unavailable")
        since = self._failing_since_ms
        failing_for = None if since is None else self.clock.now_ms() - since
        return notice_for(stale, missing, failing_for, self.policy.max_stale_ms, lang)

    # --- the chain ----------------------------------------------------------------------

    async def lookup(self, wanted: Sequence[PriceKey]) -> dict[PriceKey, PriceAnswer]:
        """Answers for already validated keys: cache first, the rest resolved once."""
        now = self.clock.now_ms()
        answers: dict[PriceKey, PriceAnswer] = {}
        cached: dict[PriceKey, PricePoint] = {}
        remote: list[PriceKey] = []
        for key in wanted:
            if key[0] == USDT:
                answers[key] = self._answer(key, PricePoint(Decimal(1), PAR, now), PAR, now)
            elif not self._fresh_local(key, now, answers, cached):
                absent = self._absent.get(key)
                if absent is not None and now <= absent[0]:
                    answers[key] = absent[1]
                else:
                    remote.append(key)
        if remote:
            cached.update(await self.kept.shared(remote))
        misses = [key for key in remote if not self._fresh(key, cached, now, answers)]
        if misses:
            answers.update(await self._shared(misses, cached, now))
        self._track([k for k in wanted if k[0] != USDT and answers[k].status != "unknown"], now)
        return answers

    def _fresh_local(
        self,
        key: PriceKey,
        now: int,
        answers: dict[PriceKey, PriceAnswer],
        cached: dict[PriceKey, PricePoint],
    ) -> bool:
        point = self.kept.local(key)
        if point is None:
            return False
        cached[key] = point
        return self._fresh(key, cached, now, answers)

    def _fresh(
        self,
        key: PriceKey,
        cached: dict[PriceKey, PricePoint],
        now: int,
        answers: dict[PriceKey, PriceAnswer],
    ) -> bool:
        point = cached.get(key)
        if point is None or now - point.observed_ms > self.policy.fresh_ms:
            return False
        answers[key] = self._answer(key, point, CACHE, now)
        return True

    async def _shared(
        self, misses: list[PriceKey], cached: dict[PriceKey, PricePoint], now: int
    ) -> dict[PriceKey, PriceAnswer]:
        """Resolve ``misses``; keys another caller is already resolving are waited for."""
        own = [key for key in misses if key not in self._inflight]
        if own:
            task = asyncio.ensure_future(self.resolve(own, cached, now))
            for key in own:
                self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(own, done))
        pending = {id(self._inflight[key]): self._inflight[key] for key in misses}
        answers: dict[PriceKey, PriceAnswer] = {}
        for future in pending.values():
            answers.update(await asyncio.shield(future))
        return {key: answers[key] for key in misses}

    def _finished(
        self, own: list[PriceKey], task: asyncio.Future[dict[PriceKey, PriceAnswer]]
    ) -> None:
        for key in own:
            if self._inflight.get(key) is task:
                del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning without waiters

    async def resolve(
        self,
        wanted: list[PriceKey],
        cached: dict[PriceKey, PricePoint],
        now: int,
        *,
        force: bool = False,
    ) -> dict[PriceKey, PriceAnswer]:
        """Steps 1 (the table) to 6 for keys the caches did not answer fresh; with
        ``force`` the sources are asked even when the table holds a fresh price."""
        stored = await self.kept.stored(wanted)
        for key, kept in stored.items():
            if key not in cached or cached[key].observed_ms < kept.observed_ms:
                cached[key] = kept
        answers: dict[PriceKey, PriceAnswer] = {}
        missing = [k for k in wanted if force or not self._fresh(k, cached, now, answers)]
        by_network: dict[str | None, list[str]] = {}
        for symbol, network in missing:
            by_network.setdefault(network, []).append(symbol)
        rounds = await asyncio.gather(
            *(self.sources.fetch(symbols, network, now) for network, symbols in by_network.items())
        )
        new: dict[PriceKey, PricePoint] = {}
        unanswered: list[PriceKey] = []
        for (network, symbols), round_ in zip(by_network.items(), rounds, strict=True):
            self._note_health(round_, now)
            for key in [(symbol, network) for symbol in symbols]:
                point = round_.points.get(key[0])
                if point is not None:
                    new[key] = point
                    answers[key] = self._answer(key, point, point.origin, now)
                    continue
                stale = cached.get(key)
                quote = None if stale is None else self._quote(key, stale, CACHE, now)
                if quote is not None:
                    answers[key] = PriceAnswer(key[0], key[1], quote, "ok")
                elif round_.answered:
                    unanswered.append(key)
                else:
                    answers[key] = PriceAnswer(key[0], key[1], None, "unavailable")
        answers.update(await self._unknown_or_unavailable(unanswered, now))
        for key in new:
            self._absent.pop(key, None)
        await self.kept.save(new)
        return answers

    async def _unknown_or_unavailable(
        self, keys_: list[PriceKey], now: int
    ) -> dict[PriceKey, PriceAnswer]:
        """Keys a source answered without: unknown unless klinewatch knows the token.
        The answer is kept as long as a price would be (fresh_ms), so a token without a
        price does not send every request to the sources."""
        if not keys_:
            return {}
        symbols = sorted({key[0] for key in keys_})
        known = await guarded("known_symbols_read", set(), self.sources.known, symbols)
        answers = {
            key: PriceAnswer(key[0], key[1], None, "unavailable" if key[0] in known else "unknown")
            for key in keys_
        }
        for key, answer in answers.items():
            self._absent.pop(key, None)
            self._absent[key] = (now + self.policy.fresh_ms, answer)
        while len(self._absent) > MAX_LOCAL:
            del self._absent[next(iter(self._absent))]
        return answers

    # --- background refresh -------------------------------------------------------------

    async def refresh_tracked(self) -> int:
        """Ask the sources again for every tracked key (configured, or asked for in the
        last hour), whatever the cache holds; how many got a price."""
        now = self.clock.now_ms()
        cutoff = now - TRACK_FOR_MS
        for key in [k for k, at in self._tracked.items() if at < cutoff]:
            del self._tracked[key]
        configured = [(s, None) for s in self.options.tracked if s != USDT]
        wanted = list(dict.fromkeys([*configured, *self._tracked]))
        if not wanted:
            return 0
        answers = await self.resolve(wanted, {}, now, force=True)
        fresh = sum(1 for a in answers.values() if a.quote and a.quote.source != CACHE)
        log.info("prices_refreshed", tracked=len(wanted), fresh=fresh)
        return fresh

    async def run_refresh(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Refresh every ``refresh_s`` until cancelled; a failed round is logged."""
        while True:
            try:
                await self.refresh_tracked()
            except Exception as e:  # the next round may succeed; never end the loop
                log.exception("prices_refresh_failed", error=repr(e))
            await sleep(self.options.refresh_s)

    # --- plumbing -----------------------------------------------------------------------

    def _answer(self, key: PriceKey, point: PricePoint, source: str, now: int) -> PriceAnswer:
        quote = self._quote(key, point, source, now)
        return PriceAnswer(key[0], key[1], quote, "ok" if quote else "unavailable")

    def _quote(self, key: PriceKey, point: PricePoint, source: str, now: int) -> PriceQuote | None:
        return quote_of(point, key[0], key[1], source, now, self.policy)

    def _note_health(self, round_: SourceRound, now: int) -> None:
        """Remember since when every source has been failing (for the banner)."""
        if round_.answered:
            if self._failing_since_ms is not None:
                log.info("price_sources_recovered")
            self._failing_since_ms = None
        elif round_.failed and self._failing_since_ms is None:
            self._failing_since_ms = now

    def _track(self, wanted: Sequence[PriceKey], now: int) -> None:
        for key in wanted:
            self._tracked.pop(key, None)
            self._tracked[key] = now
        while len(self._tracked) > MAX_TRACKED:
            del self._tracked[next(iter(self._tracked))]
