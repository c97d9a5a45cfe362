"""The offline demo: with no exchange configured, ``serve`` and ``scheduler`` start the
exchange simulator in-process on recorded real data and point klinewatch at it.

"Not configured" is explicit: neither ``KLINEWATCH_BINANCE_SPOT_URL`` nor
``KLINEWATCH_BINANCE_FUTURES_URL`` was given (environment or ``.env``), so their
defaults (the real Binance) are not silently replaced once a user sets one.

The recorded history is shifted by whole days so that most series end now; their
candles then keep closing as time passes. The demo's jobs are the recorded series
themselves, each at its own interval and from its first candle: syncing the contracts of
the recorded exchangeInfo lists hundreds of pairs, and updating all of them would ask
for hundreds of empty series.

Only the CLI (a composition root) may import ``klinewatch.sim``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

import klinewatch
from klinewatch.domain.intervals import DAY_MS, INTERVALS
from klinewatch.errors import InvalidInput
from klinewatch.settings import Settings
from klinewatch.sim.app import url_settings
from klinewatch.sim.clock import SimClock
from klinewatch.sim.context import SimContext
from klinewatch.sim.server import BackgroundServer
from klinewatch.sim.store import SeriesStore

DATA_SETTING = "KLINEWATCH_DEMO_DATA"
EXCHANGE_URL_FIELDS = frozenset({"binance_spot_url", "binance_futures_url"})
MARKETS = ("spot", "futures")
STALE_DAYS = 30


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KLINEWATCH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    demo_data: Path | None = None


def exchange_configured(settings: Settings) -> bool:
    """True when a Binance URL was set explicitly (environment, ``.env`` or code)."""
    return bool(EXCHANGE_URL_FIELDS & settings.model_fields_set)


def bundled_data_dir() -> Path:
    """``data/sample`` of the source tree the package runs from."""
    return Path(klinewatch.__file__).resolve().parents[2] / "data" / "sample"


def resolve_data_dir(option: Path | None) -> Path:
    """``--data``, else ``KLINEWATCH_DEMO_DATA``, else the bundled sample; it must hold
    recorded Binance candles (``binance/<market>/klines/...``)."""
    if option is not None:
        folder, name = option, "--data"
    else:
        configured = DemoSettings().demo_data
        folder, name = (configured, DATA_SETTING) if configured else (bundled_data_dir(), "")
    if not any(folder.glob("binance/*/klines/*/*.csv.gz")):
        where = f"{name} " if name else "the bundled demo data "
        raise InvalidInput(
            f"{where}{folder} holds no recorded Binance candles "
            "(binance/<market>/klines/<SYMBOL>/<interval>.csv.gz); "
            f"pass --data DIR or set {DATA_SETTING}",
            field=name or DATA_SETTING,
        )
    return folder.resolve()


@dataclass
class Demo:
    """A running simulator and the settings and jobs that point klinewatch at it."""

    settings: Settings
    series: list[Series]  # tracked, shifted
    url: str
    data_dir: Path
    shift_ms: int
    server: BackgroundServer

    def banner(self) -> str:
        return (
            f"demo: no exchange configured (KLINEWATCH_BINANCE_SPOT_URL unset), so Binance "
            f"is simulated at {self.url} from {self.data_dir} ({len(self.series)} recorded "
            "series tracked, "
            f"history shifted {self.shift_ms / DAY_MS:+.0f} days to end now)"
        )

    def job_series(self) -> list[tuple[str, str, str, str, int]]:
        """``(exchange, market_type, interval, symbol, since_ms)`` of every tracked series."""
        return [("binance", s.market, s.interval, s.symbol, s.first_ms) for s in self.series]

    def stop(self) -> None:
        self.server.stop()


def start_demo(settings: Settings, data_dir: Path) -> Demo:
    """Serve ``data_dir`` on a free loopback port, shifted to end now; the returned
    settings have every exchange URL pointing at it."""
    store = SeriesStore(data_dir)
    clock = SimClock()
    now = clock.now_ms()
    series = recorded_series(store)
    shift = demo_shift(series, now, store.shift_step_ms())
    store.set_shift(shift)
    server = BackgroundServer(SimContext(store, clock))
    url = server.start()
    overrides: dict[str, object] = {
        name.removeprefix("KLINEWATCH_").lower(): value for name, value in url_settings(url).items()
    }
    for key in ("coingecko_api_key", "price_source_api_key"):
        if getattr(settings, key) is None:  # the simulated sources want a key, any key
            overrides[key] = SecretStr("demo")
    return Demo(
        settings=settings.model_copy(update=overrides),
        series=tracked(series, shift, now),
        url=url,
        data_dir=data_dir,
        shift_ms=shift,
        server=server,
    )


@dataclass(frozen=True, slots=True)
class Series:
    """One recorded Binance series and the open times of its first and last candles."""

    market: str
    symbol: str
    interval: str
    first_ms: int
    last_ms: int


def recorded_series(store: SeriesStore) -> list[Series]:
    """Every recorded Binance series at a known interval (each is parsed once here and
    stays in the store for serving)."""
    found: list[Series] = []
    for market in MARKETS:
        for symbol in store.symbols("binance", market):
            for interval in store.intervals("binance", market, symbol):
                if interval not in INTERVALS:
                    continue
                candles = store.get("binance", market, symbol, interval)
                if len(candles):
                    first, last = candles.open_time_ms[0], candles.open_time_ms[-1]
                    found.append(Series(market, symbol, interval, int(first), int(last)))
    return found


def demo_shift(series: list[Series], now_ms: int, step_ms: int) -> int:
    """Whole steps that bring the median series end to within a step after now.

    The median rather than the newest end (the simulator's own ``shift_to``): one long
    history running months past the others would leave all the others months behind.
    """
    if not series:
        return 0
    ends = sorted(s.last_ms for s in series)
    end = ends[(len(ends) - 1) // 2]
    return -((end - now_ms) // step_ms) * step_ms


def tracked(series: list[Series], shift_ms: int, now_ms: int) -> list[Series]:
    """The series the demo keeps current, their times shifted: all but those whose
    recording ends more than ``STALE_DAYS`` before now (served, but not tracked: they
    would only be asked for months of nothing)."""
    return [
        replace(item, first_ms=item.first_ms + shift_ms, last_ms=item.last_ms + shift_ms)
        for item in series
        if item.last_ms + shift_ms >= now_ms - STALE_DAYS * DAY_MS
    ]
