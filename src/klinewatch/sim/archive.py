"""Binance's public-data archive (data.binance.vision), built from the same candles.

Served under ``/archive``, so ``KLINEWATCH_BINANCE_ARCHIVE_URL=<base>/archive`` and the
paths are the real ones::

    data/spot/monthly/klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<YYYY-MM>.zip
    data/spot/daily/klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<YYYY-MM-DD>.zip
    data/futures/um/{monthly,daily}/klines/...                     (USDT-M futures)
    <any of those>.zip.CHECKSUM     "<sha256>  <file name>\\n"

A month (a day) exists once it has ended at the clock's time and holds candles. The zip
holds one CSV named like it, in the real format: no header on spot, the header line on
futures; spot times in microseconds for data from 2025-01-01 on, milliseconds before.
Anything else is a 404 with the archive's ``NoSuchKey`` XML body. Zips are deterministic
(fixed member timestamp), so a checksum fetched twice agrees.

Defects, as fault kinds matched on the zip's path (``faults.py``): ``archive_missing``
(404 for the file and its checksum), ``archive_truncated`` (the zip cut short, the
checksum of the whole file: a mismatch), ``archive_replaced`` (a valid zip whose volumes
differ from the candles, with its own matching checksum).
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from klinewatch.domain.candles import Candles
from klinewatch.domain.intervals import DAY_MS, INTERVALS
from klinewatch.sim.context import SimContext
from klinewatch.sim.faults import ARCHIVE_KINDS, FaultKind
from klinewatch.sim.kline_rows import decimals_for

PREFIX = "/archive"
MICROS_FROM_MS = 1_735_689_600_000  # 2025-01-01: spot files switch to microseconds
FUTURES_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore\n"
)
_PATH = re.compile(
    r"^data/(?P<market>spot|futures/um)/(?P<freq>monthly|daily)/klines/"
    r"(?P<symbol>[A-Z0-9\-_.]+)/(?P<interval>\w+)/"
    r"(?P<name>(?P=symbol)-(?P=interval)-(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.zip)"
    r"(?P<checksum>\.CHECKSUM)?$"
)
_CACHE_FILES = 256


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One requested archive object, parsed from its path."""

    market: str  # spot | futures
    symbol: str
    interval: str
    name: str
    start_ms: int
    end_ms: int
    zip_path: str  # the .zip path under the archive root, with a leading slash


def parse_path(path: str) -> ArchiveFile | None:
    match = _PATH.match(path)
    if match is None or match["interval"] not in INTERVALS:
        return None
    period, freq = match["period"], match["freq"]
    if (freq == "daily") != (len(period) == 10):
        return None
    try:
        pattern = "%Y-%m-%d" if freq == "daily" else "%Y-%m"
        start = datetime.strptime(period, pattern).replace(tzinfo=UTC)
    except ValueError:
        return None
    start_ms = int(start.timestamp() * 1000)
    end_ms = start_ms + DAY_MS if freq == "daily" else INTERVALS["1M"].next_open(start_ms)
    market = "spot" if match["market"] == "spot" else "futures"
    zip_path = "/" + path.removesuffix(".CHECKSUM")
    return ArchiveFile(
        market, match["symbol"], match["interval"], match["name"], start_ms, end_ms, zip_path
    )


def kline_csv(candles: Candles, market: str, start_ms: int, decimals_from: Candles) -> bytes:
    """The CSV inside an archive zip, in data.binance.vision's format."""
    d = decimals_for(decimals_from, market)
    micros = market == "spot" and start_ms >= MICROS_FROM_MS
    scale, close_add = (1000, 999) if micros else (1, 0)
    p, b, q = (f"{{:.{x}f}}" for x in (d.price, d.base, d.quote))
    row = f"{{}},{p},{p},{p},{p},{b},{{}},{q},{{}},{b},{q},0\n".format
    c = candles
    lines = [
        row(ot * scale, *vals[:5], ct * scale + close_add, *vals[5:])
        for ot, ct, *vals in zip(
            c.open_time_ms.tolist(), c.close_time_ms.tolist(), c.open.tolist(),
            c.high.tolist(), c.low.tolist(), c.close.tolist(), c.volume.tolist(),
            c.quote_volume.tolist(), c.trade_count.tolist(),
            c.taker_buy_base_volume.tolist(), c.taker_buy_quote_volume.tolist(),
            strict=True,
        )
    ]  # fmt: skip
    header = FUTURES_HEADER if market == "futures" else ""
    return (header + "".join(lines)).encode()


def build_zip(member: str, content: bytes) -> bytes:
    """A zip with one member and a fixed timestamp, so the bytes are reproducible."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, content)
    return out.getvalue()


def _replaced(candles: Candles) -> Candles:
    """Same candles with doubled volumes: sane on its own, wrong against the REST API."""
    return Candles(
        candles.open_time_ms, candles.open, candles.high, candles.low, candles.close,
        candles.volume * 2, candles.close_time_ms, candles.quote_volume * 2,
        candles.trade_count, candles.taker_buy_base_volume * 2,
        candles.taker_buy_quote_volume * 2,
    )  # fmt: skip


def not_found(key: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
        f"<Key>{key}</Key></Error>"
    )
    return Response(body, 404, media_type="application/xml")


@dataclass
class Archive:
    ctx: SimContext
    _zips: OrderedDict[tuple[str, bool, int], bytes] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def routes(self) -> list[BaseRoute]:
        return [Route(PREFIX + "/{path:path}", self.serve, methods=["GET"])]

    async def serve(self, request: Request) -> Response:
        path = request.path_params["path"]
        file = parse_path(path)
        if file is None or file.end_ms > self.ctx.clock.now_ms():
            return not_found(path)
        route = PREFIX + file.zip_path
        checksum = path.endswith(".CHECKSUM")
        # A checksum request sees the zip's defects but does not use up their counts.
        faults = self.ctx.faults
        fired = faults.peek(route, ARCHIVE_KINDS) if checksum else faults.take(route, ARCHIVE_KINDS)
        kinds = {f.kind for f in fired}
        if FaultKind.ARCHIVE_MISSING in kinds:
            return not_found(path)
        replaced = FaultKind.ARCHIVE_REPLACED in kinds
        data = self._zip(file, replaced)
        if data is None:
            return not_found(path)
        if checksum:
            digest = hashlib.sha256(data).hexdigest()
            return Response(f"{digest}  {file.name}\n", media_type="text/plain")
        if FaultKind.ARCHIVE_TRUNCATED in kinds:
            data = data[: len(data) * 3 // 5]
        return Response(data, media_type="application/zip")

    def _zip(self, file: ArchiveFile, replaced: bool) -> bytes | None:
        key = (file.zip_path, replaced, self.ctx.store.generation)
        with self._lock:
            if key in self._zips:
                self._zips.move_to_end(key)
                return self._zips[key]
        store = self.ctx.store
        if not store.has("binance", file.market, file.symbol, file.interval):
            return None
        series = store.get("binance", file.market, file.symbol, file.interval)
        candles = series.between(file.start_ms, file.end_ms)
        if len(candles) == 0:
            return None
        if replaced:
            candles = _replaced(candles)
        csv = kline_csv(candles, file.market, file.start_ms, series)
        data = build_zip(file.name.removesuffix(".zip") + ".csv", csv)
        with self._lock:
            self._zips[key] = data
            while len(self._zips) > _CACHE_FILES:
                self._zips.popitem(last=False)
        return data


def routes(ctx: SimContext) -> list[BaseRoute]:
    return Archive(ctx).routes()
