"""``klinewatch serve``: the API (and, as later parts land, the scheduler and web pages)."""

from __future__ import annotations

import typer

from klinewatch.cli.errors import load_settings, reports_errors


@reports_errors
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default KLINEWATCH_HOST)."),
    port: int | None = typer.Option(None, help="Port (default KLINEWATCH_PORT, 8000)."),
    upgrade_db: bool = typer.Option(
        True,
        "--upgrade-db/--no-upgrade-db",
        help="Migrate the schema to the newest revision first.",
    ),
) -> None:
    """Serve the klinewatch API on HOST:PORT until interrupted."""
    import uvicorn

    from klinewatch.logs import configure_logging
    from klinewatch.storage import migrate
    from klinewatch.storage.engine import build_engine

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    build_engine(settings.database_url).dispose()
    if upgrade_db:
        migrate.upgrade(settings.database_url)
    from klinewatch.api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
    )
