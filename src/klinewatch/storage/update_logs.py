"""Batch logs: one row per run of a job, one error row per symbol that failed in it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from klinewatch.storage.models import UpdateLog, UpdateLogError


class UpdateLogRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def start(self, kind: str, details: dict[str, Any] | None = None) -> int:
        log = UpdateLog(kind=kind, details=details or {})
        self.session.add(log)
        self.session.flush()
        return log.id

    def symbol_error(self, log_id: int, symbol: str, error: str) -> None:
        self.session.add(UpdateLogError(log_id=log_id, symbol=symbol, error=error[:2000]))

    def finish(
        self,
        log_id: int,
        *,
        total: int,
        succeeded: int,
        failed: int,
        duration_s: float,
        details: dict[str, Any],
    ) -> None:
        log = self.session.get_one(UpdateLog, log_id)
        log.status = "failed" if failed and not succeeded else "completed"
        log.total, log.succeeded, log.failed = total, succeeded, failed
        log.duration_s = duration_s
        log.details = {**log.details, **details}
        log.finished_at = datetime.now(UTC)
