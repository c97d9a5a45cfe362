"""``klinewatch serve``: the API and the scheduler in one process, one event loop.

The scheduler runs as a lifespan hook of the app, on the app's own runtime: its
requests go through the same weight governors as the API's, it reads the stored config
the app keeps fresh, and each update it stores is pushed to the live WebSocket
subscribers (``LiveHub.publish_update``).

Signals are handled here rather than by uvicorn (which would re-raise SIGINT after its
shutdown): the first Ctrl-C stops the API, then the scheduler lets its running job
finish its write; a second one stops at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from klinewatch.cli.errors import load_settings, reports_errors
from klinewatch.cli.scheduler import DATA_OPTION_HELP, JOBS_OPTION_HELP, Plan

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from klinewatch.api.app import AppContext, LifespanHook


@reports_errors
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default KLINEWATCH_HOST)."),
    port: int | None = typer.Option(
        None, min=1, max=65535, help="Port (default KLINEWATCH_PORT, 8000)."
    ),
    upgrade_db: bool = typer.Option(
        True,
        "--upgrade-db/--no-upgrade-db",
        help="Migrate the schema to the newest revision first.",
    ),
    with_scheduler: bool = typer.Option(
        True,
        "--scheduler/--no-scheduler",
        help="Also keep the warehouse current (see `klinewatch scheduler --help`).",
    ),
    data: Path | None = typer.Option(None, "--data", file_okay=False, help=DATA_OPTION_HELP),
    jobs: str | None = typer.Option(None, "--jobs", help=JOBS_OPTION_HELP),
) -> None:
    """Serve the klinewatch API on HOST:PORT (OpenAPI at /docs) and run the scheduler
    next to it until interrupted. With no exchange configured (no
    KLINEWATCH_BINANCE_*_URL), it first starts the built-in exchange simulator on the
    bundled real data, then backfills from it and keeps it current: the offline demo."""
    from klinewatch.cli.scheduler import migrate_first, prepare
    from klinewatch.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    plan = prepare(settings, data, jobs)
    if not with_scheduler:
        plan.jobs = []
    try:
        if upgrade_db:
            migrate_first(plan.settings)
        asyncio.run(_serve(plan, host or settings.host, port or settings.port))
    finally:
        plan.close()


async def _serve(plan: Plan, host: str, port: int) -> None:
    from klinewatch.api.app import create_app

    hooks = [_scheduler_hook(plan)] if plan.jobs else []
    app = create_app(plan.settings, lifespan_hooks=hooks)
    # In the demo the simulator's uvicorn shares the access logger: its lines would drown
    # the API's, so the access log is off there.
    server = _server(app, host, port, access_log=plan.demo is None)

    def interrupted() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    from klinewatch.cli.scheduler import on_signals

    on_signals(asyncio.get_running_loop(), interrupted)
    await server.serve()


def _scheduler_hook(plan: Plan) -> LifespanHook:
    from klinewatch.cli.scheduler import config_of, scheduler_for
    from klinewatch.scheduler.market_cap import market_cap_refresh

    @asynccontextmanager
    async def run_scheduler(ctx: AppContext) -> AsyncIterator[None]:
        source = config_of(ctx.config, refresh=False)  # the app polls the stored config
        async with (
            scheduler_for(ctx.runtime, plan.jobs, source) as scheduler,
            market_cap_refresh(ctx.runtime),
        ):
            scheduler.on_update(ctx.live.publish_update)
            await scheduler.start(catch_up=True)
            yield

    return run_scheduler


def _server(app: FastAPI, host: str, port: int, *, access_log: bool) -> uvicorn.Server:
    import uvicorn

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # ``_serve`` owns SIGINT and SIGTERM

    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", lifespan="on", access_log=access_log
    )
    return Server(config)
