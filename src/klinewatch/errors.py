"""The klinewatch error tree, grouped by what the caller should do.

    KlinewatchError
    ├── InvalidInput            bad input from a user or caller: HTTP 400, CLI exit 2
    │   └── InvalidCandle       one candle fails a sanity rule (the batch goes on)
    ├── NotFound                the thing asked for does not exist: HTTP 404
    ├── ConfigurationError      the process cannot run as configured: stop
    │   └── DatabaseUnreachable
    ├── ExchangeError           base of everything an exchange or data source says
    │   ├── ExchangeUnavailable 5xx, timeouts, resets: retry with backoff
    │   ├── RateLimited         429: retry after ``retry_after_s``
    │   │   └── IpBanned        418: silent until ``retry_after_s`` has passed
    │   └── ExchangeRejected    4xx that will fail again: do not retry
    └── StorageError            the database refused a write: roll back

Each layer translates foreign exceptions at its boundary with ``raise ... from e``.
"""

from __future__ import annotations

from typing import Any


class KlinewatchError(Exception):
    """Root of every error klinewatch raises on purpose."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(KlinewatchError):
    code = "INVALID_PARAMS"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        if field is not None:
            details["field"] = field
        super().__init__(message, **details)
        self.field = field


class InvalidCandle(InvalidInput):
    """A candle that breaks a sanity rule; carries its open time and the reason."""


class NotFound(KlinewatchError):
    code = "DATA_NOT_AVAILABLE"


class ConfigurationError(KlinewatchError):
    code = "INVALID_CONFIG"


class DatabaseUnreachable(ConfigurationError):
    code = "DATABASE_UNREACHABLE"


class ExchangeError(KlinewatchError):
    code = "EXCHANGE_ERROR"


class ExchangeUnavailable(ExchangeError):
    code = "EXCHANGE_UNAVAILABLE"


class RateLimited(ExchangeError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after_s: float, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, **details)
        self.retry_after_s = retry_after_s


class IpBanned(RateLimited):
    code = "IP_BANNED"


class ExchangeRejected(ExchangeError):
    code = "EXCHANGE_REJECTED"


class StorageError(KlinewatchError):
    code = "STORAGE_ERROR"
