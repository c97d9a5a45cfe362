"""``verify-klines``: seed 003's validation layer as a command (holes, insane candles,
per-day count and volume against the exchange), with ``--repair``."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from klinewatch.cli.errors import load_settings, reports_errors
from klinewatch.cli.progress import progress_bar
from klinewatch.domain.intervals import parse_interval, parse_market_type
from klinewatch.errors import InvalidInput

if TYPE_CHECKING:
    from klinewatch.services.verification import SeriesReport, VerifyReport

# Piped output (logs, CI) gets room for the whole table instead of rich's 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
SHOWN_REASONS = 20  # differing days listed per series under the table


def parse_utc(value: str | None, option: str) -> int | None:
    """An ISO date or datetime (UTC unless it says otherwise) as epoch ms."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--{option} {value!r} is not a date like 2024-01-31 or 2024-01-31T12:00",
            field=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_span(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """``--since`` / ``--until`` as ms; refuses an empty or reversed span."""
    start, end = parse_utc(since, "since"), parse_utc(until, "until")
    if start is not None and end is not None and start >= end:
        raise InvalidInput(f"--since {since} is not before --until {until}", field="since")
    return start, end


def split_symbols(symbols: list[str] | None) -> list[str]:
    """``--symbols`` repeated or comma-separated, upper-cased."""
    return [s.strip().upper() for item in symbols or [] for s in item.split(",") if s.strip()]


@reports_errors
def verify_klines(
    interval: str = typer.Option("4h", "--interval", "-i", help="Kline interval, 1m to 1M."),
    market_type: str = typer.Option("spot", "--market-type", "-m", help="spot or futures."),
    exchange: str = typer.Option("binance", "--exchange", help="Exchange to compare with."),
    symbols: list[str] | None = typer.Option(
        None, "--symbols", "-s", help="Only these stored series (repeat or comma-separate)."
    ),
    since: str | None = typer.Option(None, help="From this UTC date (default: first candle)."),
    until: str | None = typer.Option(None, help="Before this UTC date (default: last candle)."),
    repair: bool = typer.Option(
        False, "--repair", help="Re-fetch exactly the differing days and replace their rows."
    ),
    output: str = typer.Option("table", "--format", "-f", help="table or json."),
) -> None:
    """Check stored series: holes not in the empty ledger, insane candles (OHLC sanity),
    and per UTC day the candle count and volume sum against the exchange's daily candle.
    Exit 0 when all is consistent (or repaired), 1 when differences remain."""
    from klinewatch.logs import configure_logging
    from klinewatch.services.verification import KlineVerifier
    from klinewatch.wiring import build_runtime

    step = parse_interval(interval)
    market = parse_market_type(market_type).value
    span = parse_span(since, until)
    if output not in ("table", "json"):
        raise InvalidInput(f"--format {output!r}: expected table or json", field="format")
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    runtime = build_runtime(settings)
    try:
        client = runtime.exchange_client(exchange, market)
        with progress_bar(Console(stderr=True), disable=output == "json") as progress:
            task = progress.add_task(f"verify {exchange} {market} {interval}", total=None)
            verifier = KlineVerifier(
                runtime.sessions,
                client,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )

            async def go() -> VerifyReport:
                try:
                    return await verifier.verify(step, split_symbols(symbols), span, repair)
                finally:
                    await client.aclose()

            report = asyncio.run(go())
    finally:
        runtime.close()
    if output == "json":
        typer.echo(json.dumps(report_dict(report), indent=2))
    else:
        print_report(report)
    if not report.consistent:
        raise typer.Exit(1)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _range_dict(rng: tuple[int, int]) -> dict[str, Any]:
    return {"start": _iso(rng[0]), "end": _iso(rng[1]), "start_ms": rng[0], "end_ms": rng[1]}


def series_dict(s: SeriesReport) -> dict[str, Any]:
    from klinewatch.services.verification import day_label

    return {
        "symbol": s.symbol,
        "span": _range_dict(s.span) if s.span else None,
        "consistent": s.consistent,
        "holes": {"count": len(s.holes), "ranges": [_range_dict(h) for h in s.holes]},
        "insane": [
            {"open_time": _iso(r.open_time_ms), "open_time_ms": r.open_time_ms, "reason": r.reason}
            for r in s.insane
        ],
        "days_checked": s.days_checked,
        "days_unchecked": s.days_unchecked,
        "differing": [
            {"day": day_label(day), "start_ms": day, "reasons": reasons}
            for day, reasons in sorted(s.differing.items())
        ],
        "repaired": [day_label(day) for day in s.repaired],
        "remaining": [day_label(day) for day in s.remaining],
        "error": s.error,
    }


def report_dict(report: VerifyReport) -> dict[str, Any]:
    return {
        "exchange": report.exchange,
        "market_type": report.market_type,
        "interval": report.interval,
        "repair": report.repair,
        "consistent": report.consistent,
        "requests": report.requests,
        "duration_s": round(report.duration_s, 3),
        "series": [series_dict(s) for s in report.series],
    }


def print_report(report: VerifyReport) -> None:
    from klinewatch.services.verification import day_label

    table = Table(
        title=f"verify-klines {report.exchange} {report.market_type} {report.interval}"
        + (" (repair)" if report.repair else ""),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="days: compared with the exchange · n/a: no exchange candle · "
        "left: still differing",
    )
    table.add_column("symbol", no_wrap=True)
    table.add_column("span", no_wrap=True)
    for column in ("holes", "insane", "days", "n/a", "differ", "repaired", "left"):
        table.add_column(column, justify="right")
    for s in report.series:
        span = f"{day_label(s.span[0])}..{day_label(s.span[1])}" if s.span else "-"
        table.add_row(
            s.symbol,
            span,
            *(
                str(n)
                for n in (
                    len(s.holes),
                    len(s.insane),
                    s.days_checked,
                    s.days_unchecked,
                    len(s.differing),
                    len(s.repaired),
                    len(s.remaining),
                )
            ),
            style="" if s.consistent else "red",
        )
    console.print(table)
    for s in report.series:
        if s.error:
            console.print(f"[red]{s.symbol}[/red]: {s.error}")
        for day, reasons in sorted(s.differing.items())[:SHOWN_REASONS]:
            mark = "repaired" if day in s.repaired else "differs"
            console.print(f"{s.symbol} {day_label(day)} {mark}: {'; '.join(reasons)}")
        if len(s.differing) > SHOWN_REASONS:
            console.print(f"{s.symbol}: {len(s.differing) - SHOWN_REASONS} more (--format json)")
    verdict = "consistent" if report.consistent else "differences remain"
    console.print(f"{verdict}; {report.requests} requests, {report.duration_s:.1f}s")
