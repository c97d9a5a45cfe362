"""What the price features say to a person (seed 004 sections 5, 7.2 and 8.2): the
messages in English and Chinese, the language an ``Accept-Language`` header prefers, the
display strings of fiat values and totals, and the notice an answer deserves.

Pure: no I/O. Amounts are ``Decimal``; display rounds half up to cents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Lang = Literal["en", "zh"]
CENT = Decimal("0.01")

MESSAGES: Mapping[str, Mapping[Lang, str]] = {
    "min_usdt": {
        "en": "The amount must be at least {min} USDT",
        "zh": "最小金额不能低于 {min} USDT",
    },
    "min_equivalent": {
        "en": "The amount must be worth at least {min} USDT (currently about {eq} USDT)",
        "zh": "最小金额不能低于 {min} USDT 等值（当前约 {eq} USDT）",
    },
    "no_price": {
        "en": "Cannot get the current price, please try again later",
        "zh": "无法获取当前价格，请稍后重试",
    },
    "partial_total": {
        "en": "Some token prices could not be fetched",
        "zh": "部分代币价格获取失败",
    },
    "fetch_failed": {
        "en": "Failed to get prices, please check the network",
        "zh": "价格获取失败，请检查网络",
    },
    "stale_shown": {
        "en": "Prices could not be refreshed; the figures shown may be inaccurate",
        "zh": "价格获取失败，显示数据可能不准确",
    },
    "degraded": {
        "en": "Network problem: some data cannot be updated",
        "zh": "网络异常，部分数据无法更新",
    },
    "unknown_token": {
        "en": "Unsupported token: {symbols}",
        "zh": "不支持的代币：{symbols}",
    },
}


def message(key: str, lang: Lang, **values: object) -> str:
    return MESSAGES[key][lang].format(**values)


def pick_language(accept_language: str | None) -> Lang:
    """``zh`` when Chinese is the most preferred of English and Chinese in an
    ``Accept-Language`` header (``zh-CN,zh;q=0.9,en;q=0.8``), else ``en``; on equal
    weights the first listed wins."""
    best: Lang = "en"
    best_weight = 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("en", "zh"):
            continue
        match = re.search(r"q\s*=\s*([^;,\s]*)", params)
        try:
            weight = float(match.group(1)) if match else 1.0
        except ValueError:
            continue
        if weight > best_weight:
            best, best_weight = ("zh" if primary == "zh" else "en"), weight
    return best


# --- display (sections 5 and 7.2) -----------------------------------------------------


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros (``0.0000123``, ``100``): JSON
    carries money as such strings, never as floats."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def usd(value: Decimal) -> str:
    """``$12,345.67``: two decimals, half up, thousands separated."""
    return f"${value.quantize(CENT, ROUND_HALF_UP):,.2f}"


def value_display(value: Decimal | None) -> str:
    """One token's fiat value beside its amount: ``≈ $2,469.13``; ``≈ --`` while
    loading or when the price failed (None); ``≈ $0.00`` for zero or an invalid value."""
    if value is None:
        return "≈ --"
    if not value.is_finite() or value <= 0:
        return "≈ $0.00"
    return f"≈ {usd(value)}"


def total_display(total: Decimal, priced: int, failed: int) -> str:
    """Section 7.2: ``$12,345.67``; ``$12,345.67 *`` when some prices failed; ``--``
    when all failed."""
    if priced == 0 and failed > 0:
        return "--"
    return f"{usd(total)} *" if failed else usd(total)


# --- notices (section 8.2) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notice:
    code: str
    message: str


def notice_for(
    stale: int, unavailable: int, failing_for_ms: int | None, max_stale_ms: int, lang: Lang
) -> Notice | None:
    """What to tell the user about an answer: a banner once the sources have failed for
    longer than the stale limit, a toast when stale or no prices are shown, else nothing
    (recovery is silent)."""
    if not stale and not unavailable:
        return None
    if failing_for_ms is not None and failing_for_ms > max_stale_ms:
        return Notice("NETWORK_DEGRADED", message("degraded", lang))
    if stale:
        return Notice("PRICES_STALE", message("stale_shown", lang))
    return Notice("PRICE_FETCH_FAILED", message("fetch_failed", lang))
