"""Market cap commands: ``generate-mappings``, ``mappings list|confirm`` and
``update-market-data`` (issue 7). Heavy imports stay inside the commands so ``--help``
is fast."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from klinewatch.cli.errors import load_settings, reports_errors
from klinewatch.cli.progress import progress_bar
from klinewatch.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from klinewatch.exchanges.coingecko import CoingeckoClient
    from klinewatch.services.mapping import MappingRunResult
    from klinewatch.services.market_cap import MarketUpdateResult

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
app = typer.Typer(
    help="Review the Binance base asset -> CoinGecko coin mappings.", no_args_is_help=True
)
T = TypeVar("T")
SHOWN_ERRORS = 10
SHOWN_CANDIDATES = 6


def _run(work: Callable[[sessionmaker[Session], CoingeckoClient], Awaitable[T]]) -> T:
    """Settings, logging, the database and a CoinGecko client around one piece of work."""
    from klinewatch.exchanges.coingecko import coingecko_client_from_settings
    from klinewatch.logs import configure_logging
    from klinewatch.storage.engine import build_engine, session_factory

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    engine = build_engine(settings.database_url)

    async def main() -> T:
        client = coingecko_client_from_settings(settings)
        try:
            return await work(session_factory(engine), client)
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    finally:
        engine.dispose()


@reports_errors
def generate_mappings() -> None:
    """Map the base asset of every active Binance spot and futures contract to its
    CoinGecko coin: CoinGecko's own Binance tickers first, then a unique symbol, then
    24h volume over twice the runner-up, then the best market-cap rank; anything else
    needs review. Futures prefixes (1000PEPE, 1MBABYDOGE) keep their multiplier. A
    manually confirmed mapping is never changed. Run fetch-spot-contracts and
    fetch-futures-contracts first."""
    from klinewatch.services.mapping import generate_mappings as generate

    result = _run(lambda sessions, client: generate(sessions, client))
    _print_mapping_totals(result)
    if result.total == 0:
        console.print("no active contracts: run fetch-spot-contracts / fetch-futures-contracts")


def _print_mapping_totals(r: MappingRunResult) -> None:
    table = Table(title="generate-mappings")
    table.add_column("figure")
    table.add_column("count", justify="right")
    rows: list[tuple[str, object]] = [("base assets", r.total)]
    rows += [(f"status {k}", v) for k, v in sorted(r.statuses.items())]
    rows += [(f"rule {k}", v) for k, v in sorted(r.rules.items())]
    rows += [(f"rows {k}", v) for k, v in sorted(r.changes.items())]
    rows += [("coingecko binance tickers", r.venue_tickers), ("failed batches", r.failed_batches)]
    rows.append(("seconds", f"{r.duration_s:.1f}"))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)


@app.command("list")
@reports_errors
def list_command(
    status: str | None = typer.Option(
        None, "--status", help="needs_review, auto_matched or manual_confirmed."
    ),
    market_type: str | None = typer.Option(None, "--market-type", "-m", help="spot or futures."),
    symbol: str | None = typer.Option(None, "--symbol", "-s", help="A base asset or pair."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """List mappings with their evidence; needs_review rows show their candidates with
    24h volume and market-cap rank."""
    from klinewatch.services.mapping import list_mappings

    if fmt not in ("table", "json"):
        raise InvalidInput(f"--format {fmt!r}: table or json", field="format")
    rows = _run(lambda sessions, _client: asyncio.to_thread(
        list_mappings, sessions, status, market_type, symbol))  # fmt: skip
    if fmt == "json":
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    _print_mappings(rows)


def _print_mappings(rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"{len(rows)} mappings")
    for column in ("base asset", "x", "coingecko id", "status", "evidence", "candidates"):
        table.add_column(column, overflow="fold")
    for row in rows:
        candidates = ", ".join(
            f"{c['coingecko_id']} (vol {_short(c.get('volume_24h'))}, "
            f"rank {c.get('market_cap_rank') or '-'})"
            for c in row["candidates"][:SHOWN_CANDIDATES]
        )
        if len(row["candidates"]) > SHOWN_CANDIDATES:
            candidates += f" +{len(row['candidates']) - SHOWN_CANDIDATES} more (--format json)"
        table.add_row(
            row["base_asset"],
            str(row["multiplier"]) if row["multiplier"] != 1 else "",
            row["coingecko_id"] or "-",
            row["status"],
            str(row["evidence"].get("rule", "")),
            candidates if row["status"] == "needs_review" else "",
        )
    console.print(table)


def _short(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


@app.command("confirm")
@reports_errors
def confirm_command(
    symbol: str = typer.Argument(..., help="Base asset (PEPE) or pair (PEPEUSDT)."),
    coingecko_id: str | None = typer.Argument(
        None, help="The CoinGecko id to set; omit it to confirm the current one."
    ),
) -> None:
    """Confirm a mapping (or set its CoinGecko id): it becomes manual_confirmed, and no
    later generate-mappings run changes it. An id CoinGecko does not know is refused."""
    from klinewatch.services.mapping import CoinListIds, confirm_mapping, mapping_view

    record = _run(
        lambda sessions, client: confirm_mapping(
            sessions, CoinListIds(client), symbol, coingecko_id
        )
    )
    _print_mappings([mapping_view(record)])


@reports_errors
def update_market_data(
    symbols: str | None = typer.Option(
        None, "--symbols", "-s", help="Only these (BTC,ETHUSDT); default every ready mapping."
    ),
) -> None:
    """Fetch market cap, FDV, 24h volume and rank from CoinGecko for every ready
    mapping (auto_matched or manual_confirmed), in batches of 250 ids paced under
    CoinGecko's calls per minute. A failed batch is logged per symbol and the others go
    on; a rejected API key stops the run (exit 1)."""
    from klinewatch.services.market_cap import parse_symbols, update_all

    wanted = parse_symbols(symbols) if symbols is not None else None
    with progress_bar(console) as bar:
        task = bar.add_task("coingecko markets", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = _run(
            lambda sessions, client: update_all(
                sessions, client, symbols=wanted, on_progress=report
            )
        )
    _print_update(result)
    if result.total and not result.succeeded:
        raise typer.Exit(1)


def _print_update(r: MarketUpdateResult) -> None:
    table = Table(title="update-market-data")
    for column in ("symbols", "coins", "updated", "failed", "batches", "failed batches", "secs"):
        table.add_column(column, justify="right")
    table.add_row(
        str(r.total),
        str(r.coins),
        str(r.succeeded),
        str(len(r.failed)),
        str(r.batches),
        str(r.failed_batches),
        f"{r.duration_s:.1f}",
    )
    console.print(table)
    for base, why in list(r.failed.items())[:SHOWN_ERRORS]:
        console.print(f"  {base}: {why}")
    if len(r.failed) > SHOWN_ERRORS:
        console.print(f"  ... and {len(r.failed) - SHOWN_ERRORS} more (update_log_errors)")
    if r.total == 0:
        console.print("no ready mappings: run generate-mappings (and review) first")
