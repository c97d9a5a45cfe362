"""Group commit for fetched candles: many answers, one transaction.

Fetch tasks hand their answer (candles, the span asked for, the settled empty holes) to
the sink and await the outcome; a single writer drains what has piled up and stores it
in one transaction: candles through ``insert_many``, ledger rows through ``record_many``.
One answer's rows and ledger entries always land together, so a killed process loses at
most the answers not yet committed, never half of one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from klinewatch.domain.candles import Candles, Rejection
from klinewatch.domain.gaps import Range
from klinewatch.domain.intervals import Interval
from klinewatch.services.warehouse import SeriesKey, validated
from klinewatch.storage.batch_write import insert_many, record_many
from klinewatch.storage.engine import transaction


@dataclass
class Answer:
    series_id: int
    symbol: str
    interval: Interval
    candles: Candles
    span: Range
    holes: list[Range]
    source: str = "rest"
    done: asyncio.Future[tuple[int, list[Rejection]]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CandleSink:
    """One writer; ``submit`` returns (candles added, rejections) once committed."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        exchange: str,
        market_type: str,
        max_rows: int = 50_000,
        linger_s: float = 0.02,
    ) -> None:
        self.sessions = sessions
        self.exchange = exchange
        self.market_type = market_type
        self.max_rows = max_rows
        self.linger_s = linger_s
        self._queue: asyncio.Queue[Answer] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, answer: Answer) -> tuple[int, list[Rejection]]:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await self._queue.put(answer)
        return await answer.done

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _drain(self) -> None:
        while True:
            batch = [await self._queue.get()]
            rows = len(batch[0].candles)
            if rows < self.max_rows:
                # Answers come back a few at a time: a short wait lets those in flight
                # join this transaction (a commit costs about as much for 1 as for 50).
                await asyncio.sleep(self.linger_s)
            while not self._queue.empty() and rows < self.max_rows:
                batch.append(self._queue.get_nowait())
                rows += len(batch[-1].candles)
            try:
                outcomes = await asyncio.to_thread(self._store, batch)
            except Exception as e:
                for answer in batch:
                    if not answer.done.done():
                        answer.done.set_exception(e)
                continue
            for answer, outcome in zip(batch, outcomes, strict=True):
                if not answer.done.done():
                    answer.done.set_result(outcome)

    def _store(self, batch: list[Answer]) -> list[tuple[int, list[Rejection]]]:
        parts: list[tuple[int, Candles]] = []
        rejected: list[list[Rejection]] = []
        for answer in batch:
            key = SeriesKey(self.exchange, self.market_type, answer.symbol, answer.interval.name)
            valid, refused = validated(key, answer.candles)
            parts.append((answer.series_id, valid))
            rejected.append(refused)
        ledger: dict[tuple[str, str], dict[int, list[Range]]] = {}
        for answer in batch:
            fetched = ledger.setdefault(("fetched", answer.source), {})
            fetched.setdefault(answer.series_id, []).append(answer.span)
            empty = ledger.setdefault(("empty", answer.source), {})
            empty.setdefault(answer.series_id, []).extend(answer.holes)
        with transaction(self.sessions) as session:
            # Every answer covers a range planned as missing: nothing to look up first.
            added = insert_many(session, parts, expect_new=True)
            for (kind, source), ranges in ledger.items():
                record_many(session, kind, ranges, source=source)
        return list(zip(added, rejected, strict=True))
