"""``export-klines``: one stored series to CSV (replayable by the simulator), Parquet or
freqtrade's feather."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from klinewatch.cli.errors import load_settings, reports_errors
from klinewatch.cli.progress import progress_bar
from klinewatch.cli.verify import parse_span
from klinewatch.domain.intervals import parse_market_type

console = Console(highlight=False)


@reports_errors
def export_klines(
    symbol: str = typer.Option(..., "--symbol", "-s", help="The exchange's symbol, BTCUSDT."),
    interval: str = typer.Option(..., "--interval", "-i", help="Kline interval, 1m to 1M."),
    market_type: str = typer.Option("spot", "--market-type", "-m", help="spot or futures."),
    exchange: str = typer.Option("binance", "--exchange", help="Exchange of the series."),
    since: str | None = typer.Option(None, help="From this UTC date (default: first candle)."),
    until: str | None = typer.Option(None, help="Before this UTC date (default: last candle)."),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv, parquet or feather."),
    out: Path = typer.Option(
        Path("export"),
        "--out",
        "-o",
        help="A file (.csv, .csv.gz, .parquet, .feather) or a folder: csv/parquet then go "
        "to <exchange>/<market>/klines/<SYMBOL>/<interval>.csv.gz (the simulator's layout), "
        "feather to freqtrade's names (BTC_USDT-1h.feather, futures/...-futures.feather).",
    ),
) -> None:
    """Export one stored series. csv is the recorded-data layout (12 columns, no header,
    ms times), so an export replays in `klinewatch sim serve`; feather loads in freqtrade."""
    from klinewatch.services.export import ExportRequest, check_request
    from klinewatch.services.export import export_klines as run_export
    from klinewatch.storage.engine import build_engine, session_factory

    start, end = parse_span(since, until)
    request = ExportRequest(
        exchange=exchange.lower(),
        market_type=parse_market_type(market_type).value,
        symbol=symbol.strip().upper(),
        interval=interval,
        fmt=fmt.lower(),
        out=out,
        since_ms=start,
        until_ms=end,
    )
    check_request(request)
    engine = build_engine(load_settings().database_url)
    try:
        with progress_bar(console) as progress:
            task = progress.add_task(f"export {request.symbol} {interval}", total=None)
            result = run_export(
                session_factory(engine),
                request,
                lambda done, total: progress.update(task, completed=done, total=total),
            )
    finally:
        engine.dispose()
    table = Table(
        title=f"export-klines {exchange} {request.market_type} {request.symbol}",
        show_header=False,
    )
    table.add_column("", style="bold")
    table.add_column("", overflow="fold")
    rows = {
        "file": str(result.path),
        "format": request.fmt,
        "candles": str(result.rows),
        "first open": _utc(result.first_ms),
        "last open": _utc(result.last_ms),
        "bytes": str(result.size_bytes),
    }
    for name, value in rows.items():
        table.add_row(name, value)
    console.print(table)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
