"""``klinewatch sim ...``: the exchange simulator."""

from __future__ import annotations

import typer

app = typer.Typer(help="The exchange simulator: recorded real markets served offline.", no_args_is_help=True)
