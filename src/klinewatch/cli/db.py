"""``klinewatch db ...``: schema migrations on the configured database.

SQLAlchemy and Alembic are imported inside the commands so ``--help`` stays instant."""

from __future__ import annotations

import typer
from rich.console import Console

from klinewatch.cli.errors import load_settings, reports_errors

app = typer.Typer(help="Create or migrate the database schema.", no_args_is_help=True)
console = Console(highlight=False)


@app.command()
@reports_errors
def upgrade(
    revision: str = typer.Argument("head", help="Target revision (default: the newest)."),
) -> None:
    """Create the schema or migrate it up to REVISION on KLINEWATCH_DATABASE_URL."""
    from klinewatch.storage import migrate
    from klinewatch.storage.engine import build_engine, redact

    settings = load_settings()
    build_engine(settings.database_url).dispose()  # one clear line if it is unreachable
    migrate.upgrade(settings.database_url, revision)
    console.print(
        f"database {redact(settings.database_url)} is at revision "
        f"{migrate.current(settings.database_url)}"
    )


@app.command()
@reports_errors
def downgrade(
    revision: str = typer.Argument("-1", help="Target revision: -1 for one step, base for none."),
) -> None:
    """Migrate the schema down to REVISION (data in dropped tables is lost)."""
    from klinewatch.storage import migrate
    from klinewatch.storage.engine import build_engine, redact

    settings = load_settings()
    build_engine(settings.database_url).dispose()
    migrate.downgrade(settings.database_url, revision)
    console.print(
        f"database {redact(settings.database_url)} is at revision "
        f"{migrate.current(settings.database_url) or 'base (empty)'}"
    )


@app.command()
@reports_errors
def current() -> None:
    """Show the schema revision of the configured database."""
    from klinewatch.storage import migrate

    settings = load_settings()
    console.print(migrate.current(settings.database_url) or "base (empty)")
