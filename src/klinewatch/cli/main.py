"""The ``klinewatch`` console script: a composition root that builds settings and wires
commands to services. Commands stay thin: parse, call a service, print a summary."""

from __future__ import annotations

import typer

from klinewatch.cli import db as db_commands
from klinewatch.cli import mappings as mapping_commands
from klinewatch.cli import sim as sim_commands
from klinewatch.cli.archive import import_klines
from klinewatch.cli.export import export_klines
from klinewatch.cli.scheduler import scheduler
from klinewatch.cli.serve import serve
from klinewatch.cli.verify import verify_klines
from klinewatch.cli.volume_trap import check_invalidations, scan_volume_traps
from klinewatch.cli.warehouse import fetch_futures_contracts, fetch_spot_contracts, update_klines

app = typer.Typer(
    name="klinewatch",
    help="Self-hosted crypto market data: candle warehouse, indicators, volume-trap "
    "monitor, market cap / FDV and prices. Settings come from KLINEWATCH_* variables "
    "and .env.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_commands.app, name="db")
app.add_typer(sim_commands.app, name="sim")
app.add_typer(mapping_commands.app, name="mappings")
app.command()(serve)
app.command("scheduler")(scheduler)
app.command("fetch-spot-contracts")(fetch_spot_contracts)
app.command("fetch-futures-contracts")(fetch_futures_contracts)
app.command("update-klines")(update_klines)
app.command("import-klines")(import_klines)
app.command("verify-klines")(verify_klines)
app.command("export-klines")(export_klines)
app.command("scan-volume-traps")(scan_volume_traps)
app.command("check-invalidations")(check_invalidations)
app.command("generate-mappings")(mapping_commands.generate_mappings)
app.command("update-market-data")(mapping_commands.update_market_data)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
