"""``klinewatch db ...``: schema migrations."""

from __future__ import annotations

import typer

app = typer.Typer(help="Create or migrate the database schema.", no_args_is_help=True)
