"""Volume-trap commands: ``scan-volume-traps`` and ``check-invalidations`` (seed 002
flow 3). Heavy imports stay inside the commands so ``--help`` is fast."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from klinewatch.cli.errors import load_settings, reports_errors
from klinewatch.cli.progress import progress_bar
from klinewatch.cli.verify import parse_utc, split_symbols
from klinewatch.domain.intervals import parse_interval, parse_market_type
from klinewatch.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from klinewatch.services.volume_trap import ScanSummary

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
SHOWN_ERRORS = 10
SYMBOLS = typer.Option(
    None, "--symbols", "-s", help="Only these symbols (repeat or comma-separate)."
)
COLUMNS = (
    "pairs",
    "scanned",
    "candles",
    "discovered",
    "confirmed",
    "validated",
    "invalidated",
    "expired",
    "later bursts",
    "errors",
    "seconds",
)


def _exchange(value: str | None) -> str | None:
    from typing import get_args

    from klinewatch.domain.market_config import Exchange

    known = get_args(Exchange)
    if value is not None and value not in known:
        raise InvalidInput(f"--exchange {value!r}: one of {', '.join(known)}", field="exchange")
    return value


def _sessions() -> tuple[sessionmaker[Session], Callable[[], None]]:
    from klinewatch.logs import configure_logging
    from klinewatch.storage.engine import build_engine, session_factory

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    engine = build_engine(settings.database_url)
    return session_factory(engine), engine.dispose


@reports_errors
def scan_volume_traps(
    interval: str = typer.Option("4h", "--interval", "-i", help="Kline interval, e.g. 1h, 4h."),
    market_type: str = typer.Option("spot", "--market-type", "-m", help="spot or futures."),
    exchange: str = typer.Option("binance", "--exchange", help="Exchange whose candles to scan."),
    symbols: list[str] | None = SYMBOLS,
    from_date: str | None = typer.Option(
        None,
        "--from",
        help="Replay from this UTC date (2024-01-31): what the scan found from then on is "
        "discarded and found again candle by candle (after a backfill of candles).",
    ),
) -> None:
    """Scan the newest closed candles of every active contract: open monitors on bursts
    and move active ones through the phases (pending -> suspected -> confirmed
    abandonment, or invalidated / expired). A first scan of a series reads its whole
    history; the thresholds are the system config's volume_trap section."""
    from klinewatch.services.volume_trap import ScanOptions, scan

    parse_interval(interval)
    market = parse_market_type(market_type).value
    _exchange(exchange)
    from_ms = parse_utc(from_date, "from")
    sessions, close = _sessions()
    try:
        with _progress(f"{exchange} {market} {interval}") as report:
            options = ScanOptions(split_symbols(symbols) or None, from_ms, on_progress=report)
            summary = scan(sessions, exchange, market, interval, options)
    finally:
        close()
    _print(f"scan-volume-traps {exchange} {market} {interval}", [summary])
    if summary.pairs == 0:
        console.print(
            f"no active {market} contracts with {interval} candles on {exchange}: run "
            f"fetch-{market}-contracts and update-klines first"
        )
    if summary.errors and len(summary.errors) == summary.pairs:
        raise typer.Exit(1)


@reports_errors
def check_invalidations(
    interval: str | None = typer.Option(None, "--interval", "-i", help="Only this interval."),
    market_type: str | None = typer.Option(
        None, "--market-type", "-m", help="Only spot or futures."
    ),
    exchange: str | None = typer.Option(None, "--exchange", help="Only this exchange."),
    symbols: list[str] | None = SYMBOLS,
) -> None:
    """Apply only the invalidation rule (a close above the trigger's high) and the expiry
    rule (no transition within the configured candles) to the active monitors, where
    that is the monitor's next event; phase transitions are left to scan-volume-traps."""
    from klinewatch.services.volume_trap import ScanOptions, check_invalidations

    if interval is not None:
        parse_interval(interval)
    market = None if market_type is None else parse_market_type(market_type).value
    _exchange(exchange)
    sessions, close = _sessions()
    try:
        with _progress("active monitors") as report:
            options = ScanOptions(split_symbols(symbols) or None, on_progress=report)
            summaries = check_invalidations(sessions, exchange, market, interval, options)
    finally:
        close()
    _print("check-invalidations", summaries)
    if not summaries:
        console.print("no active monitors")


@contextmanager
def _progress(title: str) -> Iterator[Callable[[int, int], None]]:
    with progress_bar(console) as bar:
        task = bar.add_task(title, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print(title: str, summaries: Sequence[ScanSummary]) -> None:
    table = Table(title=title)
    table.add_column("group")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    for s in summaries:
        table.add_row(
            f"{s.exchange} {s.market_type} {s.interval}",
            *(
                str(v)
                for v in (
                    s.pairs,
                    s.scanned,
                    s.candles,
                    s.discovered,
                    s.confirmed,
                    s.validated,
                    s.invalidated,
                    s.expired,
                    s.later_bursts,
                    len(s.errors),
                )
            ),
            f"{s.duration_s:.2f}",
        )
    console.print(table)
    for s in summaries:
        for symbol, error in list(s.errors.items())[:SHOWN_ERRORS]:
            console.print(f"[red]{symbol}[/red] ({s.market_type} {s.interval}): {error}")
        if len(s.errors) > SHOWN_ERRORS:
            console.print(f"... and {len(s.errors) - SHOWN_ERRORS} more")
