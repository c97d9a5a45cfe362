"""Warehouse commands: contracts and kline updates (seed 002 flows 1 and 2)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from klinewatch.cli.errors import load_settings, reports_errors
from klinewatch.cli.progress import progress_bar
from klinewatch.domain.intervals import parse_interval, parse_market_type
from klinewatch.errors import InvalidInput

if TYPE_CHECKING:
    from klinewatch.services.ingestion import UpdateSummary

console = Console(highlight=False)

EXCHANGE = typer.Option("binance", "--exchange", help="Exchange to read from.")


def parse_since(since: str | None, days: int | None, now_ms: int) -> int | None:
    """``--since`` (ISO date or datetime, UTC) or ``--days`` back from now, as ms."""
    if since is not None and days is not None:
        raise InvalidInput("give --since or --days, not both", field="since")
    if days is not None:
        if days <= 0:
            raise InvalidInput(f"--days must be positive, got {days}", field="days")
        return now_ms - days * 86_400_000
    if since is None:
        return None
    try:
        moment = datetime.fromisoformat(since)
    except ValueError:
        raise InvalidInput(
            f"--since {since!r} is not a date like 2024-01-31", field="since"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    value = int(moment.timestamp() * 1000)
    if value > now_ms:
        raise InvalidInput(f"--since {since} is in the future", field="since")
    return value


def _sync(market_type: str, exchange: str) -> None:
    from klinewatch.services.contracts import sync_contracts
    from klinewatch.wiring import build_runtime

    settings = load_settings()
    runtime = build_runtime(settings)

    async def go() -> None:
        client = runtime.exchange_client(exchange, market_type)
        try:
            result = await sync_contracts(runtime.sessions, client, set(settings.quote_assets))
        finally:
            await client.aclose()
        table = Table(
            title=f"{exchange} {market_type} contracts ({', '.join(settings.quote_assets)})"
        )
        for column in ("new", "updated", "delisted", "unchanged"):
            table.add_column(column, justify="right")
        table.add_row(
            str(len(result.new)),
            str(len(result.updated)),
            str(len(result.delisted)),
            str(result.unchanged),
        )
        console.print(table)
        if result.delisted:
            console.print("delisted (kept, with their candles): " + ", ".join(result.delisted))

    try:
        asyncio.run(go())
    finally:
        runtime.close()


@reports_errors
def fetch_spot_contracts(exchange: str = EXCHANGE) -> None:
    """Sync TRADING spot pairs of the configured quote assets (KLINEWATCH_QUOTE_ASSETS)."""
    _sync("spot", exchange)


@reports_errors
def fetch_futures_contracts(exchange: str = EXCHANGE) -> None:
    """Sync TRADING perpetual futures of the configured quote assets."""
    _sync("futures", exchange)


@reports_errors
def update_klines(
    interval: str = typer.Option("4h", "--interval", "-i", help="Kline interval, 1m to 1M."),
    market_type: str = typer.Option("spot", "--market-type", "-m", help="spot or futures."),
    exchange: str = EXCHANGE,
    symbols: list[str] | None = typer.Option(
        None, "--symbols", "-s", help="Only these symbols (repeat or comma-separate)."
    ),
    since: str | None = typer.Option(None, help="Backfill from this UTC date (2024-01-31)."),
    days: int | None = typer.Option(None, help="Backfill this many days back from now."),
    concurrency: int = typer.Option(8, min=1, max=64, help="Requests in flight at once."),
    archive: bool | None = typer.Option(
        None,
        "--archive/--no-archive",
        help="Take whole ended months and days from the public-data archive first "
        "(default: KLINEWATCH_ARCHIVE_ENABLED).",
        show_default=False,
    ),
) -> None:
    """Fetch every missing closed candle of every active contract (holes in the middle too),
    within the weight budget; without --since/--days the span is the config's history."""
    from klinewatch.services.warehouse_update import UpdateOptions, run_update
    from klinewatch.wiring import build_runtime

    settings = load_settings()
    wanted = [s.strip().upper() for item in symbols or [] for s in item.split(",") if s.strip()]
    parse_interval(interval)
    market = parse_market_type(market_type).value
    runtime = build_runtime(settings)
    try:
        client = runtime.exchange_client(exchange, market)
        archive_client = runtime.archive_client(exchange, archive)
        with progress_bar(console) as progress:
            task = progress.add_task(f"{exchange} {market} {interval}", total=None)
            options = UpdateOptions(
                interval=interval,
                symbols=wanted,
                concurrency=concurrency,
                since_parser=lambda now: parse_since(since, days, now),
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )

            async def go() -> UpdateSummary:
                try:
                    return await run_update(
                        runtime.sessions,
                        client,
                        runtime.clock,
                        set(settings.quote_assets),
                        options,
                        archive=archive_client,
                    )
                finally:
                    await client.aclose()
                    if archive_client is not None:
                        await archive_client.aclose()

            summary = asyncio.run(go())
    finally:
        runtime.close()
    print_summary(summary)
    if summary.errors and len(summary.errors) == summary.pairs:
        raise typer.Exit(1)


def print_summary(summary: UpdateSummary) -> None:
    table = Table(
        title=f"update-klines {summary.exchange} {summary.market_type} {summary.interval}"
    )
    columns = (
        "pairs",
        "requests",
        "weight",
        "candles added",
        "empty ranges",
        "rejected",
        "errors",
        "seconds",
    )
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(
        str(summary.pairs),
        str(summary.requests),
        str(summary.weight),
        str(summary.candles_added),
        str(summary.empty_ranges),
        str(summary.rejected),
        str(len(summary.errors)),
        f"{summary.duration_s:.1f}",
    )
    console.print(table)
    for symbol, error in sorted(summary.errors.items()):
        console.print(f"[red]{symbol}[/red]: {error}")
