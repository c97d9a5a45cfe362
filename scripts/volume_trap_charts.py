"""Run the volume-trap scan over the real series in ../shared/data and write what it
found to docs/volume-trap-findings.md, with SVG charts of a few monitors in docs/images/.

    .venv/bin/python scripts/volume_trap_charts.py [--data DIR]

Every Binance 1h, 4h and 1d series there is stored in a throwaway SQLite database as an
active contract and scanned with the default thresholds, exactly as
``klinewatch scan-volume-traps`` does; the list and the charts come from the same
use cases the API serves (``services.volume_trap_views``). The charts are drawn by hand
as SVG, so no plotting library is needed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from klinewatch.domain.candles import Candles
from klinewatch.domain.volume_trap import VolumeTrapParams
from klinewatch.services import volume_trap_views as views
from klinewatch.services.volume_trap import scan
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.sim.store import SeriesStore
from klinewatch.storage import migrate
from klinewatch.storage.engine import build_engine, session_factory, transaction
from klinewatch.storage.models import Contract
from klinewatch.storage.volume_trap_queries import MonitorFilter

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "volume-trap-findings.md"
IMAGES = REPO / "docs" / "images"
INTERVALS = ("1h", "4h", "1d")
AFTER = (24, 72)  # candles after the trigger whose close is compared with the trigger's
# The charted monitors: (market, symbol, interval, trigger open time), each chosen for
# what it shows; see the captions in ``CHARTS_TEXT``.
CHARTS = (
    ("spot", "OMUSDT", "1h", "2025-04-13T18:00"),
    ("spot", "OMUSDT", "1h", "2025-04-18T16:00"),
    ("futures", "RIVERUSDT", "1h", "2025-11-28T21:00"),
    ("spot", "OMUSDT", "1h", "2025-12-16T17:00"),
)
COLORS = {
    "pending": "#ef6c00",
    "suspected_abandonment": "#8e24aa",
    "confirmed_abandonment": "#c62828",
    "invalidated": "#2e7d32",
    "expired": "#616161",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = REPO.parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default if default.is_dir() else None)
    data: Path = parser.parse_args().data or REPO / "data" / "sample"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/findings.sqlite3"
        migrate.upgrade(url)
        engine = build_engine(url)
        sessions = session_factory(engine)
        series = load(sessions, data)
        for market in ("spot", "futures"):
            for interval in INTERVALS:
                summary = scan(sessions, "binance", market, interval)
                assert not summary.errors, summary.errors
        monitors = every_monitor(sessions)
        stats = views.statistics(sessions, MonitorFilter())
        charts = draw_charts(sessions, monitors)
        DOC.write_text(render(data, series, monitors, stats, charts))
        engine.dispose()
    print(f"{len(monitors)} monitors; wrote {DOC.relative_to(REPO)} and {len(charts)} charts")


def load(sessions: Any, root: Path) -> dict[tuple[str, str, str], Candles]:
    store = SeriesStore(root)
    found: dict[tuple[str, str, str], Candles] = {}
    for market in ("spot", "futures"):
        for symbol in store.symbols("binance", market):
            intervals = [i for i in store.intervals("binance", market, symbol) if i in INTERVALS]
            if not intervals:
                continue
            with transaction(sessions) as session:
                session.add(
                    Contract(
                        exchange="binance",
                        market_type=market,
                        symbol=symbol,
                        base_asset=symbol.removesuffix("USDT"),
                        quote_asset="USDT",
                        status="TRADING",
                    )
                )
                for interval in intervals:
                    candles = store.get("binance", market, symbol, interval)
                    write_candles(session, SeriesKey("binance", market, symbol, interval), candles)
                    found[(market, symbol, interval)] = candles
    return found


def every_monitor(sessions: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        query = views.ListQuery(ordering="trigger_time", page=page, page_size=views.MAX_PAGE_SIZE)
        found = views.list_monitors(sessions, query)
        for row in found["results"]:
            out.append(views.monitor_detail(sessions, row["id"], before=0, after=max(AFTER)))
        if page >= found["pages"]:
            return out
        page += 1


def draw_charts(sessions: Any, monitors: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    IMAGES.mkdir(parents=True, exist_ok=True)
    drawn = []
    for market, symbol, interval, trigger in CHARTS:
        match = [
            m
            for m in monitors
            if (m["market_type"], m["symbol"], m["interval"]) == (market, symbol, interval)
            and m["trigger_time"].startswith(trigger)
        ]
        if not match:
            print(f"not found, not charted: {market} {symbol} {interval} {trigger}")
            continue
        detail = views.monitor_detail(sessions, match[0]["id"], before=48, after=48)
        name = f"volume-trap-{symbol.lower()}-{interval}-{trigger[:10]}.svg"
        (IMAGES / name).write_text(svg_chart(detail))
        drawn.append((name, detail))
    return drawn


# --- the chart -------------------------------------------------------------------------

W, H, LEFT, RIGHT, TOP = 980, 470, 78, 24, 58
PRICE_H, VOL_TOP, VOL_H = 290, 372, 70


def _time(value: str) -> str:
    return value.replace(".000Z", "Z")


def svg_chart(d: dict[str, Any]) -> str:
    candles = d["candles"]
    index = {_time(c["open_time"]): i for i, c in enumerate(candles)}
    step = (W - LEFT - RIGHT) / max(len(candles), 1)
    trigger_high = d["trigger_candle"]["high"]
    low = min([c["low"] for c in candles] + [d["key_level"]])
    high = max([c["high"] for c in candles] + [trigger_high])
    pad = (high - low) * 0.04 or 1.0
    low, high = low - pad, high + pad
    vmax = max(c["volume"] for c in candles) or 1.0

    def x(i: float) -> float:
        return LEFT + (i + 0.5) * step

    def y(price: float) -> float:
        return TOP + (high - price) / (high - low) * PRICE_H

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{_title(d)}</text>',
        f'<text x="{LEFT}" y="38" fill="#555">{_subtitle(d)}</text>',
    ]
    out += _axes(candles, low, high, x, y)
    trigger = index.get(_time(d["trigger_candle"]["open_time"]), 0)
    end = len(candles) - 0.5
    out.append(_hline(d["key_level"], trigger - 0.5, end, x, y, "#1e88e5", "6,4", "key level"))
    out.append(_hline(trigger_high, trigger - 0.5, end, x, y, "#9e9e9e", "2,3", "trigger high"))
    for i, c in enumerate(candles):
        up = c["close"] >= c["open"]
        color = "#26a69a" if up else "#ef5350"
        top, bottom = y(max(c["open"], c["close"])), y(min(c["open"], c["close"]))
        width = max(step * 0.7, 1.0)
        out.append(
            f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(c["high"]):.1f}" '
            f'y2="{y(c["low"]):.1f}" stroke="{color}"/>'
        )
        out.append(
            f'<rect x="{x(i) - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
            f'height="{max(bottom - top, 0.8):.1f}" fill="{color}"/>'
        )
        bar = c["volume"] / vmax * VOL_H
        out.append(
            f'<rect x="{x(i) - width / 2:.1f}" y="{VOL_TOP + VOL_H - bar:.1f}" '
            f'width="{width:.1f}" height="{bar:.1f}" fill="{color}" opacity="0.55"/>'
        )
    out.append(
        f'<rect x="{x(trigger) - step * 0.6:.1f}" y="{TOP - 4}" width="{step * 1.2:.1f}" '
        f'height="{VOL_TOP + VOL_H - TOP + 4}" fill="none" stroke="#ef6c00" stroke-width="1.5"/>'
    )
    out += _transitions(d, index, x)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _title(d: dict[str, Any]) -> str:
    status = d["status"].replace("_", " ")
    return (
        f"{d['symbol']} {d['market_type']} {d['interval']}: trigger {_short(d['trigger_time'])}"
        f" UTC, now {status}"
    )


def _subtitle(d: dict[str, Any]) -> str:
    rvol = "n/a" if d["rvol"] is None else f"{d['rvol']:.1f}"
    return (
        f"RVOL {rvol}, amplitude {d['amplitude_pct']:.1f} %, key level "
        f"{d['key_level']:.6g}; later bursts: {len(d['later_bursts'])}. Orange box: the "
        "trigger candle. Vertical lines: transitions."
    )


def _short(iso: str) -> str:
    return iso[:16].replace("T", " ")


def _axes(candles: list[dict[str, Any]], low: float, high: float, x: Any, y: Any) -> list[str]:
    out = [
        f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{TOP + PRICE_H}" y2="{TOP + PRICE_H}" '
        'stroke="#ccc"/>',
        f'<text x="8" y="{VOL_TOP + 12}" fill="#555">volume</text>',
    ]
    for k in range(6):
        price = low + (high - low) * k / 5
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(price):.1f}" y2="{y(price):.1f}" '
            'stroke="#eee"/>'
        )
        out.append(f'<text x="8" y="{y(price) + 4:.1f}" fill="#555">{price:.5g}</text>')
    every = max(len(candles) // 7, 1)
    for i in range(0, len(candles), every):
        if x(i) > W - RIGHT - 60:  # no room for a whole label at the right edge
            break
        label = _short(_time(candles[i]["open_time"]))
        out.append(
            f'<text x="{x(i):.1f}" y="{H - 8}" text-anchor="middle" fill="#555">{label}</text>'
        )
    return out


def _hline(
    price: float, start: float, end: float, x: Any, y: Any, color: str, dash: str, label: str
) -> str:
    return (
        f'<line x1="{x(start):.1f}" x2="{x(end):.1f}" y1="{y(price):.1f}" y2="{y(price):.1f}" '
        f'stroke="{color}" stroke-width="1.4" stroke-dasharray="{dash}"/>'
        + _label(x(end) - 4, y(price) - 4, f"{label} {price:.6g}", color, 'text-anchor="end"')
    )


def _label(x: float, y: float, text: str, color: str, extra: str) -> str:
    """Text over a white outline of itself, so it stays readable over the candles."""
    at = f'x="{x:.1f}" y="{y:.1f}" {extra}'
    return (
        f'<text {at} fill="#fff" stroke="#fff" stroke-width="3">{text}</text>'
        f'<text {at} fill="{color}">{text}</text>'
    )


def _transitions(d: dict[str, Any], index: dict[str, int], x: Any) -> list[str]:
    out = []
    for n, t in enumerate(d["transitions"]):
        i = index.get(_time(t["open_time"]))
        if i is None:
            continue
        color = COLORS[t["to_status"]]
        label = t["to_status"].replace("_abandonment", "").replace("_", " ")
        out.append(
            f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{TOP}" y2="{VOL_TOP + VOL_H}" '
            f'stroke="{color}" stroke-width="1.2" stroke-dasharray="3,2"/>'
        )
        out.append(_label(x(i) + 3, TOP + 10 + 12 * (n % 3), label, color, 'font-weight="bold"'))
    for burst in d["later_bursts"]:
        i = index.get(_time(burst))
        if i is not None:
            out.append(
                f'<text x="{x(i):.1f}" y="{VOL_TOP - 2}" text-anchor="middle" '
                'fill="#ef6c00">▲</text>'
            )
    return out


# --- the document ----------------------------------------------------------------------


def _after(d: dict[str, Any], n: int) -> str:
    """The close ``n`` candles after the trigger against the trigger's close, in %."""
    candles = d["candles"]
    times = [_time(c["open_time"]) for c in candles]
    k = times.index(_time(d["trigger_candle"]["open_time"]))
    if len(candles) <= k + n:
        return "–"
    change = candles[k + n]["close"] / d["trigger_candle"]["close"] * 100 - 100
    return f"{change:+.1f}"


def _moves(d: dict[str, Any]) -> str:
    parts = [
        f"{_short(t['open_time'])[5:]} {t['to_status'].replace('_abandonment', '')}"
        for t in d["transitions"][1:]
    ]
    return "; ".join(parts) or "–"


def render(
    data: Path,
    series: dict[tuple[str, str, str], Candles],
    monitors: list[dict[str, Any]],
    stats: dict[str, Any],
    charts: list[tuple[str, dict[str, Any]]],
) -> str:
    p = VolumeTrapParams()
    now = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        "# Volume-trap findings on the recorded real series",
        "",
        f"Generated {now} by `scripts/volume_trap_charts.py` from `{_shown(data)}`: every "
        "Binance series at 1h, 4h and 1d stored as an active contract and scanned once "
        "from its first candle with the default thresholds (a replay; a live run reaches "
        "the same states). Discovery: RVOL >= "
        f"{p.rvol_min:g} and amplitude >= {p.amplitude_min_pct:g} % and >= "
        f"{p.amplitude_ratio_min:g}x its mean; confirmation: volume retention <= "
        f"{p.retention_max:g} and a close {p.breach_min_pct:g} % under the key level, and "
        f"efficiency <= {p.efficiency_max:g} or a net fall; validation: MA{p.ma_fast} under "
        f"MA{p.ma_slow}, and OBV divergence or ATR ratio <= {p.atr_ratio_max:g}; "
        f"invalidation: a close above the trigger's high; expiry: {p.expiry_candles} "
        "candles without a transition (spec: shared/spec/volume-trap.md).",
        "",
        "How to read a row: the trigger is the burst candle; *+24* and *+72* are the "
        "close 24 and 72 candles later against the trigger's close, in %, so a reader can "
        "see whether the price did bleed after a confirmed abandonment and did not after "
        "an invalidation. None of the labelled pump events in `events/` (2017-2021, other "
        "coins) fall on these series, so there is no ground truth to score against: judge "
        "by the charts and the returns.",
        "",
        "## Totals",
        "",
        "| market | interval | series | candles | monitors | confirmed | invalidated "
        "| expired | active |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for market in ("spot", "futures"):
        for interval in INTERVALS:
            keys = [k for k in series if k[0] == market and k[2] == interval]
            if not keys:
                continue
            mine = [m for m in monitors if (m["market_type"], m["interval"]) == (market, interval)]
            count = {s: sum(m["status"] == s for m in mine) for s in COLORS}
            active = count["pending"] + count["suspected_abandonment"]
            lines.append(
                f"| {market} | {interval} | {len(keys)} | {sum(len(series[k]) for k in keys):,} "
                f"| {len(mine)} | {count['confirmed_abandonment']} | {count['invalidated']} "
                f"| {count['expired']} | {active} |"
            )
    lines += ["", "Per phase (all series), as `GET /api/volume-trap/statistics/` reports it:", ""]
    lines += ["| phase | entered | went on | ended (invalidated / expired) | active | share |"]
    lines += ["|---|---:|---:|---:|---:|---:|"]
    for ph in stats["phases"]:
        share = "–" if ph["share"] is None else f"{ph['share'] * 100:.0f} %"
        lines.append(
            f"| {ph['phase']} ({ph['from_status']} -> {ph['to_status']}) | {ph['entered']} "
            f"| {ph['advanced']} | {ph['ended']} | {ph['active']} | {share} |"
        )
    lines += ["", *_returns(monitors), "", "## Charts", "", CHARTS_TEXT, ""]
    for name, d in charts:
        lines += [f"### {_title(d)}", "", f"![{d['symbol']}](images/{name})", "", _caption(d), ""]
    lines += ["## Every monitor", ""]
    for market, symbol, interval in sorted(series):
        mine = [
            m
            for m in monitors
            if (m["market_type"], m["symbol"], m["interval"]) == (market, symbol, interval)
        ]
        if not mine:
            continue
        lines += [f"### {symbol} {market} {interval} ({len(mine)})", ""]
        lines += ["| trigger (UTC) | RVOL | ampl. % | key level | then | status | +24 | +72 |"]
        lines += ["|---|---:|---:|---:|---|---|---:|---:|"]
        for m in mine:
            rvol = "∞" if m["rvol"] is None else f"{m['rvol']:.1f}"
            lines.append(
                f"| {_short(m['trigger_time'])} | {rvol} | {m['amplitude_pct']:.1f} "
                f"| {m['key_level']:.6g} | {_moves(m)} | {m['status']} | {_after(m, 24)} "
                f"| {_after(m, 72)} |"
            )
        lines.append("")
    quiet = sorted(
        f"{s} {mk} {iv}"
        for (mk, s, iv) in series
        if not any((m["market_type"], m["symbol"], m["interval"]) == (mk, s, iv) for m in monitors)
    )
    lines += ["Series with no burst at all: " + ", ".join(quiet) + ".", ""]
    return "\n".join(lines)


def _returns(monitors: list[dict[str, Any]]) -> list[str]:
    """What the price did after the trigger, by where the monitor ended."""
    lines = [
        "What the price did after the trigger, by final status (close N candles after the "
        "trigger against the trigger's close). An invalidation is a close above the "
        "trigger's high, so that row's gains are partly the rule itself; the confirmed "
        "row is the one to read:",
        "",
        "| status | monitors | median +24 | median +72 | +72 below the trigger's close |",
        "|---|---:|---:|---:|---:|",
    ]
    for status in COLORS:
        mine = [m for m in monitors if m["status"] == status]
        later = [_change(m, 72) for m in mine]
        known = [v for v in later if v is not None]
        if not known:
            continue
        early = [v for v in (_change(m, 24) for m in mine) if v is not None]
        down = sum(v < 0 for v in known) / len(known) * 100
        lines.append(
            f"| {status} | {len(mine)} | {statistics.median(early):+.1f} % "
            f"| {statistics.median(known):+.1f} % | {down:.0f} % |"
        )
    return lines


def _change(d: dict[str, Any], n: int) -> float | None:
    text = _after(d, n)
    return None if text == "–" else float(text)


def _shown(data: Path) -> str:
    try:
        return str(data.resolve().relative_to(REPO.parent.resolve()))
    except ValueError:
        return str(data)


def _caption(d: dict[str, Any]) -> str:
    steps = "; ".join(
        f"{_short(t['open_time'])} {t['to_status']}: {t['reason']}" for t in d["transitions"]
    )
    return f"Transitions: {steps}. Close 24 candles later: {_after(d, 24)} %."


CHARTS_TEXT = (
    "Each chart shows 48 candles before the trigger and 48 after the last transition, the "
    "trigger candle boxed, the key level (the trigger's midpoint, dashed blue) and the "
    "trigger's high (the invalidation level, dotted grey), every transition as a vertical "
    "line and later bursts as triangles over the volume. Chosen to show one of each: the "
    "OM collapse of 2025-04-13 (a burst on a crash candle: the monitor follows it but the "
    "phases need the volume to dry up first), a burst that went through all three phases "
    "to confirmed abandonment, a futures monitor that collected later bursts and expired, "
    "and an invalidation followed by a new burst on the same candle."
)


if __name__ == "__main__":
    main()
