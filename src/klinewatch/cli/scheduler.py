"""``klinewatch scheduler``: keep the warehouse current, in the foreground or ``--once``.

Also what ``serve`` shares with it: which jobs to run (the setting, or the demo's
simulator when no exchange is configured) and how a scheduler is built on a runtime and
stopped. This module is the CLI's one door into ``klinewatch.scheduler`` (as
``serve`` is its door into the API app). Heavy imports stay inside functions so
``--help`` is instant.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from klinewatch.cli.errors import load_settings, reports_errors
from klinewatch.errors import InvalidInput

if TYPE_CHECKING:
    from klinewatch.cli.demo import Demo
    from klinewatch.scheduler.config import ConfigSource
    from klinewatch.scheduler.jobs import JobSpec, SchedulerSettings
    from klinewatch.scheduler.market_data import MarketDataScheduler
    from klinewatch.scheduler.runner import JobResult, ProgressFactory
    from klinewatch.services.system_config import SystemConfigService
    from klinewatch.settings import Settings
    from klinewatch.wiring import Runtime

console = Console(highlight=False)

DATA_OPTION_HELP = (
    "Demo only (no KLINEWATCH_BINANCE_*_URL set): recorded data folder for the built-in "
    "simulator (default KLINEWATCH_DEMO_DATA, else the bundled data/sample)."
)
JOBS_OPTION_HELP = (
    "Jobs to run, as exchange:market:intervals;... (default KLINEWATCH_SCHEDULER_JOBS, "
    "binance:spot:1h,4h,1d;binance:futures:1h,4h,1d). In the demo it picks among the "
    "recorded series."
)


@dataclass
class Plan:
    """What a scheduler process runs, against what."""

    settings: Settings
    jobs: list[JobSpec]
    demo: Demo | None = None

    def close(self) -> None:
        if self.demo is not None:
            self.demo.stop()


def prepare(settings: Settings, data: Path | None, jobs_text: str | None) -> Plan:
    """The jobs to run; with no exchange configured, start the demo's simulator first
    (and say so in one line)."""
    from klinewatch.cli.demo import exchange_configured, resolve_data_dir, start_demo
    from klinewatch.scheduler.jobs import jobs_for_series, parse_jobs
    from klinewatch.wiring import SUPPORTED_EXCHANGES

    known = SUPPORTED_EXCHANGES
    chosen = parse_jobs(jobs_text, "--jobs", known) if jobs_text is not None else None
    if exchange_configured(settings):
        if data is not None:
            raise InvalidInput(
                "--data only applies to the demo, when no KLINEWATCH_BINANCE_*_URL is set",
                field="data",
            )
        default = parse_jobs(scheduler_settings().scheduler_jobs, exchanges=known)
        return Plan(settings, chosen or default)
    demo = start_demo(settings, resolve_data_dir(data))
    jobs = jobs_for_series(demo.job_series())
    if chosen is not None:
        wanted = {spec.key for spec in chosen}
        jobs = [spec for spec in jobs if spec.key in wanted]
    console.print(demo.banner())
    return Plan(demo.settings, jobs, demo)


def scheduler_settings() -> SchedulerSettings:
    """``KLINEWATCH_SCHEDULER_*``; a malformed value is reported by its variable."""
    from pydantic import ValidationError

    from klinewatch.scheduler.jobs import SchedulerSettings

    try:
        return SchedulerSettings()
    except ValidationError as e:
        first = e.errors()[0]
        name = "KLINEWATCH_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise InvalidInput(f"{name}: {first['msg']}", field=name) from None


@asynccontextmanager
async def scheduler_for(
    runtime: Runtime,
    jobs: list[JobSpec],
    config_source: ConfigSource,
    progress: ProgressFactory | None = None,
) -> AsyncIterator[MarketDataScheduler]:
    """A scheduler whose jobs run on ``runtime`` (its engine and governors); on exit it
    stops (the running job finishes its write) and its exchange clients close."""
    from klinewatch.scheduler.market_data import MarketDataScheduler
    from klinewatch.scheduler.runner import UpdateRunner

    knobs = scheduler_settings()
    runner = UpdateRunner(runtime, config_source, progress=progress)
    scheduler = MarketDataScheduler(
        jobs,
        runner,
        config_source=config_source,
        close_delay_ms=int(knobs.scheduler_close_delay_s * 1000),
        contracts_every_ms=knobs.scheduler_contracts_every_s * 1000,
        grace_s=knobs.scheduler_grace_s,
    )
    from klinewatch.services.volume_trap import volume_trap_hook

    scheduler.on_update(volume_trap_hook(runtime.sessions))  # issue 6: scan after each update
    try:
        yield scheduler
    finally:
        await scheduler.stop()
        await runner.aclose()


def config_of(service: SystemConfigService, *, refresh: bool) -> ConfigSource:
    """The stored system config as the scheduler reads it, through a loaded service."""
    from klinewatch.scheduler.config import stored_config_source

    return stored_config_source(service, refresh=refresh)


def on_signals(loop: asyncio.AbstractEventLoop, handler: Callable[[], None]) -> None:
    """Call ``handler`` on SIGINT and SIGTERM (instead of raising KeyboardInterrupt)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handler)


def migrate_first(settings: Settings) -> None:
    from klinewatch.storage import migrate
    from klinewatch.storage.engine import build_engine

    build_engine(settings.database_url).dispose()  # one clear line if it is unreachable
    migrate.upgrade(settings.database_url)


@reports_errors
def scheduler(
    once: bool = typer.Option(
        False, "--once", help="Run every job once (the catch-up), print a summary and exit."
    ),
    data: Path | None = typer.Option(None, "--data", file_okay=False, help=DATA_OPTION_HELP),
    jobs: str | None = typer.Option(None, "--jobs", help=JOBS_OPTION_HELP),
    upgrade_db: bool = typer.Option(
        True, "--upgrade-db/--no-upgrade-db", help="Migrate the schema to the newest first."
    ),
) -> None:
    """Keep the candle warehouse current: every job runs once at start (catching up on
    what was missed), then as the system config's update_mode says (every
    update_interval_seconds, or just after each interval's candles close). Beside them
    (not with --once) it refreshes market cap / FDV (KLINEWATCH_MARKET_DATA_REFRESH_S)
    and the prices of KLINEWATCH_PRICE_SYMBOLS (KLINEWATCH_PRICE_REFRESH_S) into the
    cache the API reads. Ctrl-C stops it after the running job's write. With no
    exchange configured it runs the demo on the built-in simulator."""
    from klinewatch.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    plan = prepare(settings, data, jobs)
    try:
        if upgrade_db:
            migrate_first(plan.settings)
        results = asyncio.run(_standalone(plan, once))
    finally:
        plan.close()
    if once:
        print_results(results)
        if not results or not all(result.ok for result in results):
            raise typer.Exit(1)


async def _standalone(plan: Plan, once: bool) -> list[JobResult]:
    """The scheduler on its own runtime and the stored config (re-read at every step)."""
    from klinewatch.services.system_config import SystemConfigService
    from klinewatch.wiring import build_runtime

    runtime = build_runtime(plan.settings)
    try:
        service = SystemConfigService(runtime.sessions, plan.settings.secret_key)
        await service.load()
        source = config_of(service, refresh=True)
        if once:
            return await _once(runtime, plan.jobs, source)
        await _foreground(runtime, plan.jobs, source)
        return []
    finally:
        runtime.close()


async def _foreground(runtime: Runtime, jobs: list[JobSpec], source: ConfigSource) -> None:
    from klinewatch.scheduler.market_cap import market_cap_refresh
    from klinewatch.scheduler.prices import price_refresh

    stop = asyncio.Event()
    on_signals(asyncio.get_running_loop(), stop.set)
    async with (
        scheduler_for(runtime, jobs, source) as sched,
        market_cap_refresh(runtime),
        price_refresh(runtime),
    ):
        await sched.start(catch_up=True)
        console.print(f"scheduler running {len(jobs)} jobs; Ctrl-C stops it")
        await stop.wait()
        console.print("stopping: the running job finishes its write first")


async def _once(runtime: Runtime, jobs: list[JobSpec], source: ConfigSource) -> list[JobResult]:

    from klinewatch.cli.progress import progress_bar
    from klinewatch.scheduler.jobs import JobKey

    with progress_bar(console) as bars:

        def progress(key: JobKey) -> Callable[[int, int], None]:
            task = bars.add_task(str(key), total=None)
            return lambda done, total: bars.update(task, completed=done, total=total)

        async with scheduler_for(runtime, jobs, source, progress) as sched:
            return await sched.run_once()


def print_results(results: list[JobResult]) -> None:
    """One row per job (a failed job's name in red), then every error in full."""
    from rich.table import Table

    exchanges = sorted({r.key.exchange for r in results})
    table = Table(title=f"scheduler: one run of every job ({', '.join(exchanges)})")
    table.add_column("job", no_wrap=True)
    for column in ("pairs", "reqs", "weight", "added", "empty", "errs", "secs"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in results:
        label = f"{r.key.market_type} {r.key.interval}"
        if len(exchanges) > 1:
            label = f"{r.key.exchange} {label}"
        name = label if r.ok else f"[red]{label}[/red]"
        if r.summary is not None:
            s = r.summary
            figures = [s.pairs, s.requests, s.weight, s.candles_added, s.empty_ranges]
            cells = [str(v) for v in figures] + [str(len(s.errors))]
        elif r.contracts is not None:
            c = r.contracts
            listed = len(c.new) + len(c.updated) + c.unchanged
            cells = [str(listed), "", "", str(len(c.new)), "", "0"]
        else:
            cells = ["", "", "", "", "", "1"]
        table.add_row(name, *cells, f"{r.duration_s:.1f}")
    console.print(table)
    console.print(
        "added: candles stored (contracts: new pairs); empty: ranges the exchange "
        "confirmed empty; errs: pairs that failed"
    )
    for r in results:
        if r.error:
            console.print(f"[red]{r.key}[/red]: {r.error}")
        for symbol, error in sorted((r.summary.errors if r.summary else {}).items()):
            console.print(f"[red]{r.key} {symbol}[/red]: {error}")
