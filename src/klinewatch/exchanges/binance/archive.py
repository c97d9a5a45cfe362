"""Binance's public-data archive (data.binance.vision): paths, checked downloads, parsing.

Paths are the archive's own (``<base>`` is ``KLINEWATCH_BINANCE_ARCHIVE_URL``)::

    <base>/data/spot/monthly/klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<YYYY-MM>.zip
    <base>/data/spot/daily/klines/<SYMBOL>/<interval>/<SYMBOL>-<interval>-<YYYY-MM-DD>.zip
    <base>/data/futures/um/{monthly,daily}/klines/...         (USDT-M futures)
    <any of those>.CHECKSUM       "<sha256>  <file name>"

Every zip is checked against its ``.CHECKSUM`` before it is read; a mismatch is tried
once more (a transfer can be cut short) and then refused as ``ArchiveFileError``. The
CSV inside has 12 columns, a header line on newer futures files only, and spot times in
microseconds from 2025-01-01: both are detected per file. Parsing is pyarrow's
multithreaded CSV reader straight into the columnar ``Candles`` (a month of 1m candles
in a few tens of milliseconds), never a Python loop per row.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import zipfile
import zlib
from datetime import UTC, datetime
from typing import Literal

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv

from klinewatch.domain.candles import COLUMNS, INT_COLUMNS, Candles
from klinewatch.errors import ExchangeRejected, ExchangeUnavailable, RateLimited
from klinewatch.exchanges.retry import exchange_retrying

Freq = Literal["monthly", "daily"]
MARKET_FOLDERS = {"spot": "data/spot", "futures": "data/futures/um"}
# Epoch times at or above this are microseconds (as milliseconds it is the year 5138).
MICROS_THRESHOLD = 10**14
_CSV_NAMES = [*COLUMNS, "ignore"]
_CSV_TYPES = {name: (pa.int64() if name in INT_COLUMNS else pa.float64()) for name in COLUMNS}
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class ArchiveFileError(ExchangeRejected):
    """An archive file that cannot be used: unreadable, not a kline CSV, or failing its
    checksum. Retrying does not help; the caller takes the period from elsewhere."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}", file=name, reason=reason)
        self.name = name
        self.reason = reason


def period_label(freq: Freq, start_ms: int) -> str:
    """``2025-11`` for a month, ``2025-11-03`` for a day, as in the archive's file names."""
    moment = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m" if freq == "monthly" else "%Y-%m-%d")


def file_name(symbol: str, interval: str, freq: Freq, start_ms: int) -> str:
    return f"{symbol}-{interval}-{period_label(freq, start_ms)}.zip"


def file_path(market: str, symbol: str, interval: str, freq: Freq, start_ms: int) -> str:
    """The zip's path under the archive root (no leading slash)."""
    folder = MARKET_FOLDERS[market]
    name = file_name(symbol, interval, freq, start_ms)
    return f"{folder}/{freq}/klines/{symbol}/{interval}/{name}"


def expected_checksum(text: str, name: str) -> str:
    """The sha256 named by a ``.CHECKSUM`` file's ``<sha256>  <file name>`` line."""
    digest = text.split()[0] if text.split() else ""
    if not _SHA256.match(digest):
        raise ArchiveFileError(name, "its CHECKSUM file is malformed")
    return digest.lower()


def verify_checksum(data: bytes, checksum_text: str, name: str) -> None:
    if hashlib.sha256(data).hexdigest() != expected_checksum(checksum_text, name):
        raise ArchiveFileError(name, "checksum mismatch (the file is corrupt or incomplete)")


def parse_kline_csv(data: bytes, name: str) -> Candles:
    """Binance's 12-column kline CSV, with or without a header, ms or µs times."""
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not body:
        return Candles.empty()
    skip = 0 if body[:1].isdigit() else 1
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=_CSV_NAMES, skip_rows=skip),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=_CSV_TYPES, include_columns=list(COLUMNS)
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        reason = str(e).splitlines()[0][:160]
        raise ArchiveFileError(name, f"not a Binance kline CSV ({reason})") from e
    columns = {
        column: table.column(column).fill_null(0).to_numpy(zero_copy_only=False)
        for column in COLUMNS
    }
    for column in ("open_time_ms", "close_time_ms"):
        times = columns[column]
        if len(times) and int(times.max()) >= MICROS_THRESHOLD:
            columns[column] = times // 1000
    if len(columns["open_time_ms"]) and int(columns["open_time_ms"].min()) < 0:
        raise ArchiveFileError(name, "negative open time")
    return Candles.from_columns(**columns)


def read_zip(data: bytes, name: str) -> Candles:
    """The candles of a zip holding one kline CSV."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if m.filename.lower().endswith(".csv")]
            if len(members) != 1:
                raise ArchiveFileError(name, f"expected one CSV inside, found {len(members)}")
            content = archive.read(members[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error) as e:
        raise ArchiveFileError(name, f"not a readable zip ({e})") from e
    return parse_kline_csv(content, name)


def read_kline_file(data: bytes, name: str, checksum_text: str | None = None) -> Candles:
    """A ``.zip`` or ``.csv`` kline file's candles, checked against its checksum if any."""
    if checksum_text is not None:
        verify_checksum(data, checksum_text, name)
    if name.lower().endswith(".zip"):
        return read_zip(data, name)
    return parse_kline_csv(data, name)


class BinanceArchive:
    """Downloads from the archive host with the exchange retry policy and a cap on
    downloads in flight (the host is not weight-limited, but a good citizen)."""

    exchange = "binance"

    def __init__(
        self, base_url: str, http: httpx.AsyncClient, concurrency: int = 4, attempts: int = 6
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.concurrency = concurrency
        self.attempts = attempts  # of the shared retry policy, per download
        # One file is parsed at a time: pyarrow already spreads a file over every core,
        # and files finishing one by one let the first write start early.
        self._parsing = asyncio.Semaphore(1)
        self._slots = asyncio.Semaphore(concurrency)

    async def fetch_klines(
        self, market: str, symbol: str, interval: str, freq: Freq, start_ms: int
    ) -> Candles | None:
        """The candles of one monthly or daily file, checksum verified; ``None`` when
        the archive has no such file (not published, or nothing traded)."""
        path = file_path(market, symbol, interval, freq, start_ms)
        name = path.rsplit("/", 1)[1]
        for attempt in (1, 2):
            data, checksum = await asyncio.gather(self._get(path), self._get(path + ".CHECKSUM"))
            if data is None:
                return None
            if checksum is None:
                raise ArchiveFileError(name, "the archive has no CHECKSUM for it")
            try:
                async with self._parsing:
                    return await asyncio.to_thread(read_kline_file, data, name, checksum.decode())
            except ArchiveFileError as e:
                if attempt == 2 or "checksum" not in e.reason.lower():
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _get(self, path: str) -> bytes | None:
        async for attempt in exchange_retrying(self.attempts):
            with attempt:
                async with self._slots:
                    return await self._get_once(path)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_once(self, path: str) -> bytes | None:
        where = f"binance archive {path.rsplit('/', 1)[-1]}"
        try:
            response = await self.http.get(f"{self.base_url}/{path}")
        except httpx.TimeoutException as e:
            raise ExchangeUnavailable(f"{where}: timed out") from e
        except httpx.TransportError as e:
            raise ExchangeUnavailable(f"{where}: {type(e).__name__}") from e
        status = response.status_code
        if status == 200:
            return response.content
        if status == 404:
            return None
        if status == 429:
            raise RateLimited(f"{where}: rate limited", retry_after_s=_retry_after(response))
        if status >= 500:
            raise ExchangeUnavailable(f"{where}: HTTP {status}", status=status)
        raise ExchangeRejected(f"{where}: HTTP {status}", status=status)


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("retry-after", "5"))
    except ValueError:
        return 5.0


def build_binance_archive(
    base_url: str,
    timeout_s: float = 30.0,
    proxy: str | None = None,
    concurrency: int = 4,
    attempts: int = 6,
) -> BinanceArchive:
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        proxy=proxy,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        headers={"User-Agent": "klinewatch"},
    )
    return BinanceArchive(base_url, http, concurrency, attempts)
