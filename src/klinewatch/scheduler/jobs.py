"""What the scheduler runs: job keys, job specs, and the setting that lists them.

A job is keyed ``(exchange, market_type, interval)``: one kline update of every tracked
pair of one market at one interval, or, with ``interval == CONTRACTS``, the sync of that
market's contract list. The key is what the queue leases, so one key never runs twice at
once.

``KLINEWATCH_SCHEDULER_JOBS`` lists the updates as ``exchange:market:intervals`` groups
separated by ``;`` (``binance:spot:1h,4h,1d;binance:futures:1h``); every market named
also gets its contract-sync job, which runs first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from klinewatch.domain.intervals import INTERVALS, Interval, parse_interval, parse_market_type
from klinewatch.errors import InvalidInput

CONTRACTS = "contracts"
DEFAULT_JOBS = "binance:spot:1h,4h,1d;binance:futures:1h,4h,1d"
_SETTING = "KLINEWATCH_SCHEDULER_JOBS"


class JobKey(NamedTuple):
    exchange: str
    market_type: str
    interval: str  # a kline interval name, or CONTRACTS

    def __str__(self) -> str:
        return f"{self.exchange} {self.market_type} {self.interval}"

    @property
    def kline_interval(self) -> Interval | None:
        return None if self.interval == CONTRACTS else parse_interval(self.interval)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job: its key, and optionally which symbols and from when (default: every
    active contract, over the config's ``historical_data_days`` for the interval).

    ``starts`` gives some symbols their own start, ``(symbol, since_ms)`` pairs (a
    series is not asked for the years before its listing); the other ``symbols`` start
    at ``since_ms``.
    """

    key: JobKey
    symbols: tuple[str, ...] = ()
    since_ms: int | None = None
    starts: tuple[tuple[str, int], ...] = ()

    def groups(self) -> list[tuple[list[str], int | None]]:
        """The symbols by start: one update per group, oldest start first."""
        by_start: dict[int | None, list[str]] = {}
        own = dict(self.starts)
        for symbol in dict.fromkeys([*self.symbols, *own]):
            by_start.setdefault(own.get(symbol, self.since_ms), []).append(symbol)
        if not by_start:
            return [([], self.since_ms)]
        ordered = sorted(by_start.items(), key=lambda item: -1 if item[0] is None else item[0])
        return [(symbols, since) for since, symbols in ordered]


class SchedulerSettings(BaseSettings):
    """The scheduler's own settings (``KLINEWATCH_SCHEDULER_*``, environment or ``.env``)."""

    model_config = SettingsConfigDict(
        env_prefix="KLINEWATCH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    scheduler_jobs: str = Field(
        default=DEFAULT_JOBS, description="Updates to run: exchange:market:intervals;..."
    )
    scheduler_close_delay_s: float = Field(
        default=2.0, ge=0.0, le=300.0, description="n_periods mode: wait after a close."
    )
    scheduler_contracts_every_s: int = Field(
        default=86_400, ge=60, description="How often contract lists are synced again."
    )
    scheduler_grace_s: float = Field(
        default=5.0, ge=0.0, description="On stop, how long the running job may finish."
    )


def parse_jobs(
    text: str, setting: str = _SETTING, exchanges: Iterable[str] | None = None
) -> list[JobSpec]:
    """Job specs from the setting's text: the contract syncs first, then the updates in
    the order given; ``InvalidInput`` names the setting and the bad part (an exchange
    not in ``exchanges`` too, when given)."""
    known = None if exchanges is None else tuple(exchanges)
    contracts: list[JobSpec] = []
    updates: list[JobSpec] = []
    for group in (part.strip() for part in text.split(";")):
        if not group:
            continue
        pieces = [piece.strip() for piece in group.split(":")]
        if len(pieces) != 3 or not all(pieces):
            raise InvalidInput(
                f"{setting}: {group!r} is not exchange:market:intervals (e.g. binance:spot:1h,4h)",
                field=setting,
            )
        exchange, market, intervals = pieces[0].lower(), pieces[1], pieces[2]
        if known is not None and exchange not in known:
            raise InvalidInput(
                f"{setting}: unknown exchange {exchange!r}; expected one of {', '.join(known)}",
                field=setting,
            )
        try:
            market_type = parse_market_type(market, field=setting).value
            names = [parse_interval(i.strip(), setting).name for i in intervals.split(",")]
        except InvalidInput as e:
            raise InvalidInput(f"{setting}: {e.message}", field=setting) from None
        sync = JobSpec(JobKey(exchange, market_type, CONTRACTS))
        if sync not in contracts:
            contracts.append(sync)
        for name in names:
            spec = JobSpec(JobKey(exchange, market_type, name))
            if spec not in updates:
                updates.append(spec)
    if not updates:
        raise InvalidInput(f"{setting}: no job given", field=setting)
    return [*contracts, *updates]


def jobs_for_series(series: Iterable[tuple[str, str, str, str, int]]) -> list[JobSpec]:
    """Jobs that track exactly the given ``(exchange, market_type, interval, symbol,
    since_ms)`` series, each from its own start: the contract syncs of their markets,
    then one update per (exchange, market, interval), longer intervals first (they are
    small: a backfill has something to show within seconds)."""
    syncs: list[JobSpec] = []
    starts: dict[JobKey, dict[str, int]] = {}
    for exchange, market_type, interval, symbol, since_ms in series:
        sync = JobSpec(JobKey(exchange, market_type, CONTRACTS))
        if sync not in syncs:
            syncs.append(sync)
        name = parse_interval(interval).name
        starts.setdefault(JobKey(exchange, market_type, name), {})[symbol] = since_ms
    updates = [JobSpec(key, starts=tuple(firsts.items())) for key, firsts in starts.items()]
    updates.sort(key=lambda job: -INTERVALS[job.key.interval].nominal_ms)
    return [*syncs, *updates]
