"""``klinewatch import-klines``: Binance public-data kline files into the warehouse."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from klinewatch.cli.errors import EXIT_INVALID_INPUT, load_settings, reports_errors, stderr
from klinewatch.cli.progress import progress_bar
from klinewatch.domain.intervals import parse_market_type
from klinewatch.errors import InvalidInput

if TYPE_CHECKING:
    from klinewatch.services.archive_import import FileResult

console = Console(highlight=False)


@reports_errors
def import_klines(
    paths: list[Path] = typer.Argument(
        ...,
        help="Kline files as data.binance.vision publishes them "
        "(<SYMBOL>-<interval>-<YYYY-MM[-DD]>.zip or .csv), or folders of them.",
        show_default=False,
    ),
    market_type: str = typer.Option(
        ...,
        "--market-type",
        "-m",
        help="spot or futures: the file names do not say which.",
        show_default=False,
    ),
    exchange: str = typer.Option("binance", "--exchange", help="Exchange the files are from."),
) -> None:
    """Import Binance public-data kline files (monthly or daily, zip or CSV, ms or µs
    times, with or without a header). A file with a .CHECKSUM beside it must match it.
    A file that cannot be read, fails its checksum or holds candles outside the period
    its name says is reported by name and nothing of it is written; stored candles are
    never changed, so importing a file twice is harmless. Exit 2 if any file was refused."""
    from klinewatch.services.archive_import import collect_files, import_files
    from klinewatch.wiring import build_runtime

    try:
        market = parse_market_type(market_type).value
    except InvalidInput:
        raise InvalidInput(
            f"--market-type {market_type!r}: expected spot or futures", field="market_type"
        ) from None
    if exchange != "binance":
        raise InvalidInput(
            f"--exchange {exchange!r}: only binance publishes these files", field="exchange"
        )
    files = collect_files(paths)
    if not files:
        raise InvalidInput("no .zip or .csv kline files in the paths given", field="paths")
    settings = load_settings()
    runtime = build_runtime(settings)
    try:
        with progress_bar(console) as progress:
            task = progress.add_task(f"import {exchange} {market}", total=len(files))
            results = import_files(
                runtime.sessions,
                files,
                exchange,
                market,
                on_file=lambda result: progress.update(
                    task, advance=1, description=f"import {result.path.name}"
                ),
            )
    finally:
        runtime.close()
    print_results(results, exchange, market)
    refused = [r for r in results if r.error is not None]
    for result in refused:
        stderr.print(f"[red]error:[/red] {result.path}: {result.error}")
    if refused:
        raise typer.Exit(EXIT_INVALID_INPUT)


def print_results(results: list[FileResult], exchange: str, market: str) -> None:
    table = Table(title=f"import-klines {exchange} {market}")
    widest = max((len(r.path.name) for r in results), default=4)
    table.add_column("file", no_wrap=True, min_width=widest)
    table.add_column("series", no_wrap=True)
    for column in ("rows", "added", "rejected"):
        table.add_column(column, justify="right")
    table.add_column("error")
    for r in results:
        table.add_row(
            r.path.name,
            f"{r.symbol} {r.interval}".strip(),
            str(r.rows),
            str(r.added),
            str(r.rejected),
            f"[red]{r.error}[/red]" if r.error else "",
        )
    if len(results) > 1:
        table.add_row(
            f"[bold]{len(results)} files[/bold]",
            "",
            str(sum(r.rows for r in results)),
            str(sum(r.added for r in results)),
            str(sum(r.rejected for r in results)),
            f"{sum(r.error is not None for r in results)} refused",
        )
    console.print(table)
