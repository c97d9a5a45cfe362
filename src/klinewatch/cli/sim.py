"""``klinewatch sim ...``: the exchange simulator."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from klinewatch.sim.admin import parse_time_ms
from klinewatch.sim.app import url_settings
from klinewatch.sim.clock import SimClock
from klinewatch.sim.context import SimContext, SimOptions
from klinewatch.sim.faults import Fault, parse_fault_spec
from klinewatch.sim.server import bind, serve_forever
from klinewatch.sim.store import SeriesStore, replicate_symbols

app = typer.Typer(
    help="The exchange simulator: recorded real markets served offline.", no_args_is_help=True
)

_FAULT_HELP = (
    "Inject a fault, as comma-separated key=value pairs; repeatable. "
    "kind: 500|502|503|timeout|reset|truncate|latency|down|duplicate|out_of_order|missing|"
    "archive_missing|archive_truncated|archive_replaced. route: path prefix or glob "
    "(default /). count=N: the next N matching requests; prob=P: each with probability P; "
    "neither: every request until cleared. Extra keys: sleep_s (timeout), latency_ms, "
    "exchange and mode=503|reset (down), start_ms, end_ms, until_ms (missing), symbol, "
    "interval. Example: --fault 'route=/api/v3/klines,kind=500,prob=0.05'."
)


def _faults(specs: list[str]) -> list[Fault]:
    try:
        return [parse_fault_spec(spec) for spec in specs]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--fault") from error


def _clock(value: str, speed: float) -> SimClock:
    clock = SimClock()
    if value != "now":
        try:
            clock.set(parse_time_ms(value), speed)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--clock") from error
    elif speed != 1.0:
        clock.set_speed(speed)
    return clock


@app.command()
def serve(
    data: Path = typer.Option(
        ...,
        "--data",
        exists=True,
        file_okay=False,
        help="Folder of recorded data "
        "(layout of shared/data/README.md); read lazily, so large folders start fast.",
    ),
    port: int = typer.Option(8900, help="TCP port; 0 picks a free one (printed)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
    latency_ms: float = typer.Option(0.0, help="Latency added to every exchange response."),
    clock: str = typer.Option(
        "now",
        help="Start time of the simulated clock: 'now' (real time) or ISO 8601 "
        "with zone, e.g. 2025-04-13T00:00:00Z. Nothing after it exists.",
    ),
    speed: float = typer.Option(1.0, help="Clock speed: 60 makes a minute pass per second."),
    shift_to_now: bool = typer.Option(
        False,
        help="Shift all recorded history by whole days so the newest series ends at "
        "the clock's time; candles then keep closing as the clock moves.",
    ),
    replicate_symbols_: int = typer.Option(
        0,
        "--replicate-symbols",
        help="Also serve each market's BTC series under N names "
        "(SIM0001USDT...), listed in exchangeInfo, for benchmarks over many pairs.",
    ),
    fault: list[str] = typer.Option([], "--fault", help=_FAULT_HELP),
    spot_weight_per_min: int = typer.Option(6000, help="Binance spot weight budget per IP."),
    futures_weight_per_min: int = typer.Option(2400, help="Binance futures weight budget."),
    time_scale: float = typer.Option(
        1.0, help="Multiply weight windows, Retry-After and ban durations (0.01: 100x faster)."
    ),
    ban_base_s: float = typer.Option(120.0, help="First 418 ban; doubles per repeat, max 3d."),
) -> None:
    """Serve Binance spot and futures, the Binance archive and the other venues from
    recorded data, with Binance's weights and limits, and print the settings that point
    klinewatch at it. Admin endpoints (clock, faults, stats) live under /__sim/."""
    faults = _faults(fault)
    options = SimOptions(
        spot_weight_per_min=spot_weight_per_min,
        futures_weight_per_min=futures_weight_per_min,
        ban_base_s=ban_base_s,
        time_scale=time_scale,
        latency_ms=latency_ms,
    )
    ctx = SimContext(SeriesStore(data.resolve()), _clock(clock, speed), options)
    _prepare(ctx, replicate_symbols_, shift_to_now, faults)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    for name, url in url_settings(f"http://{bound_host}:{bound_port}").items():
        typer.echo(f"export {name}={url}")
    sys.stdout.flush()  # a parent process waits for these lines before it connects
    serve_forever(ctx, sock, log_level="warning")


def _prepare(ctx: SimContext, replicate: int, shift_to_now: bool, faults: list[Fault]) -> None:
    """Aliases first, so the shift and listings see them; then the shift, then faults."""
    if replicate:
        replicate_symbols(ctx.store, replicate)
    if shift_to_now:
        shift = ctx.store.shift_to(ctx.clock.now_ms())
        typer.echo(f"# history shifted by {shift / 86_400_000:+.0f} days", err=True)
    for item in faults:
        ctx.faults.add(item)
