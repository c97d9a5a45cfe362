"""import-klines: Binance public-data kline files from disk into the warehouse.

A file's series comes from its name, ``<SYMBOL>-<interval>-<YYYY-MM>[-DD].zip|csv`` as
Binance publishes them; the market type is the caller's, since names do not say it. Each
file is read whole and checked before anything of it is written: its ``.CHECKSUM`` when
one sits beside it, the CSV's shape (ms or µs times, with or without a header), and that
every candle lies in the month or day its name says. Its valid candles are then added
in one transaction (stored ones are skipped), so a bad file is reported by name with
nothing of it written, other files still go in, and a rerun changes nothing.

Imports add candles only: no ledger rows, because a local file may be partial; the next
``update-klines`` fills (and settles) whatever is still missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.candles import Candles, validate
from klinewatch.domain.gaps import Range
from klinewatch.domain.intervals import INTERVALS, parse_market_type
from klinewatch.errors import InvalidInput, KlinewatchError
from klinewatch.exchanges.binance.archive import ArchiveFileError, read_kline_file
from klinewatch.logs import get_logger
from klinewatch.services.warehouse import SeriesKey, write_candles
from klinewatch.storage.engine import transaction

log = get_logger(__name__)
SUFFIXES = (".zip", ".csv")
_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\w+)-(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$"
)
_MONTH, _DAY = INTERVALS["1M"], INTERVALS["1d"]


@dataclass
class FileResult:
    """What became of one file; ``error`` set means nothing of it was written."""

    path: Path
    symbol: str = ""
    interval: str = ""
    rows: int = 0
    added: int = 0
    rejected: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FileName:
    symbol: str
    interval: str
    period: Range
    label: str


def collect_files(paths: Sequence[Path]) -> list[Path]:
    """The files given, and the ``.zip``/``.csv`` files inside folders given (sorted).
    ``.CHECKSUM`` files are read beside their zip, never imported themselves."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES))
        elif path.name.endswith(".CHECKSUM"):
            continue
        else:
            out.append(path)
    return list(dict.fromkeys(out))


def parse_file_name(name: str) -> FileName:
    """Series and period of a Binance file name, or ``InvalidInput`` saying what is off."""
    match = _NAME.match(name)
    if match is None:
        raise InvalidInput(
            "not a Binance kline file name (<SYMBOL>-<interval>-<YYYY-MM[-DD]>.zip or .csv)",
            field="path",
        )
    interval, label = match["interval"], match["period"]
    if interval not in INTERVALS:
        raise InvalidInput(f"unknown interval {interval!r} in the file name", field="path")
    daily = len(label) == 10
    try:
        moment = datetime.strptime(label, "%Y-%m-%d" if daily else "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"{label!r} in the file name is not a date", field="path") from None
    start = int(moment.timestamp() * 1000)
    end = _DAY.next_open(start) if daily else _MONTH.next_open(start)
    return FileName(match["symbol"], interval, (start, end), label)


def read_file(path: Path, name: FileName) -> Candles:
    """The file's candles once every check has passed (else a ``KlinewatchError``)."""
    checksum_path = path.with_name(path.name + ".CHECKSUM")
    try:
        data = path.read_bytes()
        checksum = checksum_path.read_text() if checksum_path.is_file() else None
    except OSError as e:
        raise ArchiveFileError(path.name, f"cannot be read ({e.strerror or e})") from e
    candles = read_kline_file(data, path.name, checksum)
    valid, rejected = validate(candles, INTERVALS[name.interval])
    if len(candles) and not len(valid):
        raise ArchiveFileError(path.name, f"no candle is valid ({rejected[0].reason})")
    times = candles.open_time_ms
    outside = (times < name.period[0]) | (times >= name.period[1])
    if np.any(outside):
        first = datetime.fromtimestamp(int(times[outside][0]) / 1000, tz=UTC)
        raise ArchiveFileError(
            path.name, f"holds a candle of {first:%Y-%m-%d %H:%M}, outside {name.label}"
        )
    return candles


def import_file(
    sessions: sessionmaker[Session], path: Path, exchange: str, market_type: str
) -> FileResult:
    """Check one file, then add its valid candles in one transaction."""
    result = FileResult(path)
    try:
        name = parse_file_name(path.name)
        result.symbol, result.interval = name.symbol, name.interval
        if not path.is_file():
            raise InvalidInput("no such file", field="path")
        candles = read_file(path, name)
    except ArchiveFileError as e:
        result.error = e.reason
    except KlinewatchError as e:
        result.error = e.message
    if result.error is not None:
        log.warning("kline_file_refused", path=str(path), error=result.error)
        return result
    key = SeriesKey(exchange, market_type, name.symbol, name.interval)
    with transaction(sessions) as session:
        written = write_candles(session, key, candles)
    result.rows, result.added, result.rejected = len(candles), written.added, len(written.rejected)
    log.info(
        "kline_file_imported",
        exchange=exchange,
        market_type=market_type,
        symbol=name.symbol,
        interval=name.interval,
        path=str(path),
        rows=result.rows,
        added=result.added,
        rejected=result.rejected,
    )
    return result


def import_files(
    sessions: sessionmaker[Session],
    paths: Sequence[Path],
    exchange: str,
    market_type: str,
    on_file: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Import every file in turn; one bad file never stops or spoils the others."""
    if exchange != "binance":
        raise InvalidInput(
            f"--exchange {exchange!r}: only binance publishes these files", field="exchange"
        )
    market = parse_market_type(market_type).value
    results: list[FileResult] = []
    for path in paths:
        results.append(import_file(sessions, path, exchange, market))
        if on_file:
            on_file(results[-1])
    return results
