"""The simulator as a test fixture, for every test folder: ``running_sim`` starts it on
a free loopback port in a background thread and yields a ``RunningSim`` whose ``ctx``
lets a test move the clock or set faults directly (no HTTP round trip needed).

Series parsed once are kept for the whole test session (one store per data folder), so
a second server over the same data starts warm; each start resets the shift and the
aliases a previous test may have set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from klinewatch.sim.clock import SimClock
from klinewatch.sim.context import SimContext, SimOptions
from klinewatch.sim.server import BackgroundServer
from klinewatch.sim.store import SeriesStore

REPO_ROOT = Path(__file__).resolve().parents[3]
_STORES: dict[Path, SeriesStore] = {}


def default_data_dir() -> Path:
    """Recorded data for tests: ``tests/data`` or ``data/sample`` in the repo when they
    exist (small copies), else the shared data set next to the repo."""
    for candidate in (REPO_ROOT / "tests" / "data", REPO_ROOT / "data" / "sample"):
        if candidate.is_dir():
            return candidate
    return (REPO_ROOT.parent / "shared" / "data").resolve()


def shared_store(data_dir: Path) -> SeriesStore:
    """The session's store for ``data_dir``, unshifted and without aliases."""
    key = data_dir.resolve()
    store = _STORES.setdefault(key, SeriesStore(key))
    store.clear_aliases()
    if store.shift_ms:
        store.set_shift(0)
    return store


@dataclass
class RunningSim:
    url: str
    ctx: SimContext
    server: BackgroundServer

    def reset(self, now_ms: int | None = None, options: SimOptions | None = None) -> None:
        """Back to a fresh state for the next test on a shared server: no faults, stats,
        weight used, bans, shift or aliases; ``options`` (default: the real limits); the
        clock frozen at ``now_ms``, or real time when None."""
        ctx = self.ctx
        ctx.faults.clear()
        ctx.stats.reset()
        ctx.options = options or SimOptions()
        ctx.reset_limits()
        ctx.store.clear_aliases()
        if ctx.store.shift_ms:
            ctx.store.set_shift(0)
        ctx.clock.reset()
        if now_ms is not None:
            ctx.clock.set(now_ms, speed=0.0)


def from_fixture_param(param: object) -> AbstractContextManager[RunningSim]:
    """``running_sim`` for a pytest fixture's ``request.param``: None, ``SimOptions``, or
    a dict of ``running_sim`` keyword arguments."""
    if param is None:
        return running_sim()
    if isinstance(param, SimOptions):
        return running_sim(options=param)
    if isinstance(param, dict):
        return running_sim(**param)
    raise TypeError(f"sim_server takes SimOptions or a dict, not {type(param).__name__}")


@contextmanager
def running_sim(
    data_dir: Path | None = None,
    options: SimOptions | None = None,
    clock: SimClock | None = None,
) -> Iterator[RunningSim]:
    """Serve ``data_dir`` (default: ``default_data_dir()``) until the block ends."""
    store = shared_store(data_dir or default_data_dir())
    ctx = SimContext(store=store, clock=clock or SimClock(), options=options or SimOptions())
    server = BackgroundServer(ctx)
    url = server.start()
    try:
        yield RunningSim(url, ctx, server)
    finally:
        server.stop()
