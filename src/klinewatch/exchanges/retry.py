"""The one retry policy for every exchange call (tenacity).

Retry with exponential backoff and jitter on ``ExchangeUnavailable`` (5xx, timeouts,
resets, truncated bodies); after a ``RateLimited`` / ``IpBanned`` wait exactly what the
exchange asked (the governor also goes silent meanwhile); never retry
``ExchangeRejected`` or invalid input.
"""

from __future__ import annotations

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from klinewatch.errors import ExchangeUnavailable, RateLimited

_backoff = wait_exponential_jitter(multiplier=0.2, max=10.0, jitter=0.5)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, RateLimited):
        return max(error.retry_after_s, 0.0)
    return _backoff(state)


def exchange_retrying(attempts: int = 6) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type((ExchangeUnavailable, RateLimited)),
        wait=_wait,
        stop=stop_after_attempt(attempts),
        reraise=True,
    )
