"""Admin endpoints under ``/__sim/``: steer the clock, faults, limits, options; read stats.

For tests in another process (in-process tests can use ``SimContext`` directly)::

    GET  /__sim/clock                 {"now_ms", "now", "speed", "shift_ms"}
    POST /__sim/clock                 {"now_ms"|"now": ISO, "advance_ms", "speed",
                                       "shift_to_now": true, "shift_ms", "reset": true}
    GET  /__sim/faults                {"faults": [...]}
    POST /__sim/faults                a fault, a list, or {"faults": [...], "seed": n}
    DELETE /__sim/faults[/{id}]       clear all faults (or one)
    GET  /__sim/stats                 per client and route counters
    POST /__sim/stats/reset
    GET  /__sim/limits                bans per market
    POST /__sim/limits/reset          forget weight used, warnings and bans
    GET|POST /__sim/options           read or change SimOptions fields
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from klinewatch.clock import ms_to_datetime
from klinewatch.sim.context import SimContext, SimOptions
from klinewatch.sim.faults import Fault

PREFIX = "/__sim"


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _error(message: str) -> Response:
    return _json({"error": message}, 400)


async def _body(request: Request) -> Any:
    raw = await request.body()
    return orjson.loads(raw) if raw.strip() else {}


def parse_time_ms(value: str | int) -> int:
    """Epoch ms, or an ISO 8601 time (``Z`` or an offset; naive means UTC)."""
    if isinstance(value, int) or str(value).lstrip("-").isdigit():
        return int(value)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("give the time zone, e.g. 2025-01-01T00:00:00Z")
    return int(moment.timestamp() * 1000)


class Admin:
    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/clock", self.clock, methods=["GET", "POST"]),
            Route(f"{PREFIX}/faults", self.faults, methods=["GET", "POST", "DELETE"]),
            Route(f"{PREFIX}/faults/{{fault_id:int}}", self.delete_fault, methods=["DELETE"]),
            Route(f"{PREFIX}/stats", self.stats, methods=["GET"]),
            Route(f"{PREFIX}/stats/reset", self.reset_stats, methods=["POST"]),
            Route(f"{PREFIX}/limits", self.limits, methods=["GET"]),
            Route(f"{PREFIX}/limits/reset", self.reset_limits, methods=["POST"]),
            Route(f"{PREFIX}/options", self.options, methods=["GET", "POST"]),
        ]

    def clock_state(self) -> dict[str, Any]:
        now = self.ctx.clock.now_ms()
        return {
            "now_ms": now,
            "now": ms_to_datetime(now).isoformat(),
            "speed": self.ctx.clock.speed,
            "shift_ms": self.ctx.store.shift_ms,
        }

    async def clock(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                apply_clock(self.ctx, await _body(request))
            except (ValueError, TypeError, orjson.JSONDecodeError) as error:
                return _error(str(error))
        return _json(self.clock_state())

    async def faults(self, request: Request) -> Response:
        faults = self.ctx.faults
        if request.method == "DELETE":
            faults.clear()
        elif request.method == "POST":
            try:
                created = add_faults(self.ctx, await _body(request))
            except (ValueError, TypeError, orjson.JSONDecodeError) as error:
                return _error(str(error))
            return _json({"faults": [f.to_dict() for f in created]}, 201)
        return _json({"faults": [f.to_dict() for f in faults.active()]})

    async def delete_fault(self, request: Request) -> Response:
        found = self.ctx.faults.remove(request.path_params["fault_id"])
        return _json({"deleted": found}, 200 if found else 404)

    async def stats(self, request: Request) -> Response:
        return _json(self.ctx.stats.snapshot())

    async def reset_stats(self, request: Request) -> Response:
        self.ctx.stats.reset()
        return _json(self.ctx.stats.snapshot())

    async def limits(self, request: Request) -> Response:
        now = self.ctx.clock.now_ms()
        return _json({market: {"bans": gate.bans(now)} for market, gate in self.ctx.gates.items()})

    async def reset_limits(self, request: Request) -> Response:
        self.ctx.reset_limits()
        return _json({"reset": True})

    async def options(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                update_options(self.ctx, await _body(request))
            except (ValueError, TypeError, orjson.JSONDecodeError) as error:
                return _error(str(error))
        return _json(dataclasses.asdict(self.ctx.options))


def apply_clock(ctx: SimContext, body: dict[str, Any]) -> None:
    """Apply a clock command; fields act in the order reset, now, advance, speed, shift."""
    known = {"now_ms", "now", "advance_ms", "speed", "shift_to_now", "shift_ms", "reset"}
    if not isinstance(body, dict) or set(body) - known:
        raise ValueError(f"expected an object with fields among {sorted(known)}")
    if body.get("reset"):
        ctx.clock.reset()
    if "now_ms" in body or "now" in body:
        ctx.clock.set(parse_time_ms(body["now_ms"] if "now_ms" in body else body["now"]))
    if "advance_ms" in body:
        ctx.clock.advance(int(body["advance_ms"]))
    if "speed" in body:
        ctx.clock.set_speed(float(body["speed"]))
    if body.get("shift_to_now"):
        ctx.store.shift_to(ctx.clock.now_ms())
    if "shift_ms" in body:
        ctx.store.set_shift(int(body["shift_ms"]))


def add_faults(ctx: SimContext, body: Any) -> list[Fault]:
    """Add the faults of a POST body (validated all first, so a bad one adds none)."""
    if isinstance(body, dict) and "faults" in body:
        if "seed" in body:
            ctx.faults.rng.seed(body["seed"])
        items = body["faults"]
    else:
        items = body if isinstance(body, list) else [body]
    parsed = [Fault.from_mapping(item) for item in items]
    return [ctx.faults.add(fault) for fault in parsed]


def update_options(ctx: SimContext, body: dict[str, Any]) -> None:
    names = {f.name: f for f in dataclasses.fields(SimOptions)}
    if not isinstance(body, dict) or set(body) - set(names):
        raise ValueError(f"expected an object with fields among {sorted(names)}")
    for name, value in body.items():
        current = getattr(ctx.options, name)
        kind = type(current) if current is not None else str
        setattr(ctx.options, name, None if value is None else kind(value))
    if {"time_scale", "ban_base_s"} & set(body):
        ctx.reset_limits()


def routes(ctx: SimContext) -> list[BaseRoute]:
    return Admin(ctx).routes()
