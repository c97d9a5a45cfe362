"""Archive backfill: one year of 1m candles for one symbol into PostgreSQL, from the
simulator's public-data archive, through the real ``KlineUpdater`` (issue 4.5, target
100k candles/s or more).

No recorded 1m series covers a year, so the year is built: the 30 real days of
DOTUSDT futures 1m (November 2025) are repeated day by day over 2025-01-01..2025-12-31
(525,600 candles, each day shifted in time, values untouched), written to a temporary
data folder in the recorded layout and served by ``klinewatch sim serve`` in its own
process with its clock at 2026-01-01 00:05 UTC. Each monthly zip and its checksum, and
one REST page, are fetched once before timing: the simulator builds a zip, and encodes a
series for REST, on first request, while the real hosts serve them ready-made.

The timed run is one ``update`` of that symbol since 2025-01-01: 12 monthly files
downloaded, checksum-verified, parsed, spot-checked against the REST API and written
(binary COPY), plus the REST requests for the first candle and the last minutes.

    .venv/bin/python bench/archive_backfill.py

Last line printed: ``{"archive_candles_per_s": <float>, ...}``.
"""

from __future__ import annotations

import asyncio
import gzip
import secrets
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script or as python -m bench.archive_backfill

from bench.common import print_figures, shared_data_dir, start_sim, throwaway_pg_database  # noqa: E402
from klinewatch.domain.intervals import DAY_MS, parse_interval  # noqa: E402
from klinewatch.exchanges.binance.archive import build_binance_archive, file_path  # noqa: E402
from klinewatch.services.ingestion import KlineUpdater, UpdateSummary  # noqa: E402
from klinewatch.settings import Settings  # noqa: E402
from klinewatch.storage import migrate  # noqa: E402
from klinewatch.wiring import build_runtime  # noqa: E402

SOURCE = ("futures", "DOTUSDT", "1m")
YEAR_START = 1_735_689_600_000  # 2025-01-01
YEAR_END = 1_767_225_600_000  # 2026-01-01
CLOCK = "2026-01-01T00:05:00Z"


def build_year(data_dir: Path, out: Path, symbol: str) -> int:
    """A data folder serving the source month's days over a whole year as ``symbol``."""
    market, real, interval = SOURCE
    path = data_dir / "binance" / market / "klines" / real / f"{interval}.csv.gz"
    if not path.is_file():
        path = (
            REPO / "data" / "sample" / "binance" / market / "klines" / real / f"{interval}.csv.gz"
        )
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    days: dict[int, list[list[str]]] = {}
    for line in lines:
        fields = line.split(",")
        days.setdefault(int(fields[0]) // DAY_MS, []).append(fields)
    source_days = [days[d] for d in sorted(days) if len(days[d]) == 1440]
    rows: list[str] = []
    for index in range((YEAR_END - YEAR_START) // DAY_MS):
        day = source_days[index % len(source_days)]
        shift = YEAR_START + index * DAY_MS - int(day[0][0]) // DAY_MS * DAY_MS
        for fields in day:
            opened, closed = int(fields[0]) + shift, int(fields[6]) + shift
            rows.append(",".join([str(opened), *fields[1:6], str(closed), *fields[7:]]))
    folder = out / "binance" / market / "klines" / symbol
    folder.mkdir(parents=True)
    (folder / f"{interval}.csv.gz").write_bytes(gzip.compress("\n".join(rows).encode() + b"\n", 1))
    return len(rows)


def warm_sim(base: str, symbol: str) -> None:
    """Have the simulator build what it builds on first use (every monthly zip and its
    checksum, the series' REST encoding) before timing: the real hosts serve these
    ready-made."""
    interval = parse_interval("1M")
    urls = [f"{base}/fapi/v1/klines?symbol={symbol}&interval={SOURCE[2]}&limit=1"]
    month = YEAR_START
    while month < YEAR_END:
        path = file_path(SOURCE[0], symbol, SOURCE[2], "monthly", month)
        urls += [f"{base}/archive/{path}", f"{base}/archive/{path}.CHECKSUM"]
        month = interval.next_open(month)
    for url in urls:
        with urllib.request.urlopen(url, timeout=120) as answer:
            answer.read()


async def backfill(pg_url: str, base: str, symbol: str) -> tuple[UpdateSummary, float]:
    settings = Settings(
        database_url=pg_url,
        binance_spot_url=base,
        binance_futures_url=base,
        binance_archive_url=f"{base}/archive",
    )
    runtime = build_runtime(settings)
    client = runtime.binance_client(SOURCE[0])
    archive = build_binance_archive(settings.binance_archive_url)
    try:
        updater = KlineUpdater(runtime.sessions, client, runtime.clock, archive=archive)
        started = time.perf_counter()
        summary = await updater.update([symbol], parse_interval(SOURCE[2]), YEAR_START)
        return summary, time.perf_counter() - started
    finally:
        await client.aclose()
        await archive.aclose()
        runtime.close()


def measure(pg_url: str, data_dir: Path) -> dict[str, float]:
    """Backfill one year of 1m candles of a fresh symbol into ``pg_url`` (migrated here
    if needed) from a simulator over ``data_dir``'s DOTUSDT month; candles per second."""
    migrate.upgrade(pg_url)
    symbol = f"DOT{secrets.token_hex(3).upper()}USDT"  # a new series, even in a used database
    with tempfile.TemporaryDirectory(prefix="kw_archive_bench_") as tmp:
        expected = build_year(data_dir, Path(tmp), symbol)
        proc, base = start_sim(Path(tmp), "--clock", CLOCK)
        try:
            warm_sim(base, symbol)
            summary, elapsed = asyncio.run(backfill(pg_url, base, symbol))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if summary.errors or summary.candles_added != expected:
        raise RuntimeError(f"backfill incomplete: {summary}")
    return {
        "archive_candles_per_s": round(summary.candles_added / elapsed),
        "archive_backfill_s": round(elapsed, 3),
        "archive_candles": summary.candles_added,
        "archive_files": summary.archive_files,
        "archive_rest_requests": summary.requests,
    }


def main() -> None:
    with throwaway_pg_database("kw_bench_archive") as url:
        figures = measure(url, shared_data_dir())
    print_figures(figures)


if __name__ == "__main__":
    main()
