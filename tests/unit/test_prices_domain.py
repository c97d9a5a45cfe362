"""Seed 004 (real-time prices) in the pure domain: freshness, the 10 USDT minimum, the
total asset value, the display strings and the messages in English and Chinese.

Each point of the seed's acceptance list (section 9) has a test named after it; the
comment above it quotes the point. The same points against the simulator over real
HTTP: ``tests/integration/test_price_service.py`` and ``tests/api/test_prices_api.py``.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from klinewatch.domain.price_text import (
    notice_for,
    pick_language,
    plain,
    total_display,
    usd,
    value_display,
)
from klinewatch.domain.prices import (
    MAX_SYMBOLS,
    Freshness,
    Holding,
    HoldingStatus,
    PricePoint,
    PricePolicy,
    check_min_amount,
    parse_amount,
    parse_holding,
    parse_network,
    parse_symbols,
    quote_of,
    total_assets,
    valid_price,
)
from klinewatch.errors import InvalidInput

POLICY = PricePolicy(fresh_ms=30_000, max_stale_ms=300_000)
NOW = 1_748_781_030_500
D = Decimal


def point(age_ms: int, price: str = "2000.5", origin: str = "debank") -> PricePoint:
    return PricePoint(D(price), origin, NOW - age_ms)


# --- section 9: the acceptance list ---------------------------------------------------


# [ ] 代币价格每 30 秒自动刷新 (prices refresh every 30 seconds)
def test_acceptance_prices_refresh_every_30_seconds() -> None:
    """A price is fresh up to 30 s old (served from the cache); one millisecond more and
    it is no longer fresh, so the sources are asked again."""
    assert POLICY.freshness(0) is Freshness.FRESH
    assert POLICY.freshness(30_000) is Freshness.FRESH
    assert POLICY.freshness(30_001) is Freshness.STALE


# [ ] 缓存机制正常工作 (the cache works)
def test_acceptance_cache_serves_a_fresh_price_with_its_age() -> None:
    quote = quote_of(point(12_000), "ETH", None, "cache", NOW, POLICY)
    assert quote is not None
    assert (quote.price, quote.source, quote.origin) == (D("2000.5"), "cache", "debank")
    assert quote.age_ms == 12_000
    assert not quote.is_stale


# [ ] 网络异常时使用缓存数据 (on network failure the cached data is used)
def test_acceptance_network_failure_uses_cached_price_up_to_5_minutes_marked_stale() -> None:
    at_limit = quote_of(point(300_000), "ETH", None, "cache", NOW, POLICY)
    assert at_limit is not None and at_limit.is_stale and at_limit.age_ms == 300_000
    assert quote_of(point(300_001), "ETH", None, "cache", NOW, POLICY) is None


# [ ] 最小金额验证使用实时汇率 (the minimum check uses the live rate)
def test_acceptance_min_amount_uses_the_live_rate() -> None:
    at_2470 = check_min_amount(D("0.001"), "ETH", D("2470"), "zh")
    assert not at_2470.valid
    assert at_2470.usdt_equivalent == D("2.470")
    assert at_2470.error == "最小金额不能低于 10 USDT 等值（当前约 2.47 USDT）"
    assert at_2470.display == "≈ 2.47 USDT"
    at_12000 = check_min_amount(D("0.001"), "ETH", D("12000"), "zh")
    assert at_12000.valid and at_12000.error is None and at_12000.usdt_equivalent == D("12")


# [ ] 总资产正确计算 (the total asset value is right)
def test_acceptance_total_assets_sum_balance_times_price_exactly() -> None:
    holdings = [
        Holding("ETH", D("1.2345678"), "eth"),
        Holding("BTC", D("0.1")),
        Holding("USDT", D("100.10")),
    ]
    prices = {("ETH", "eth"): D("2000.1"), ("BTC", None): D("67000.3")}
    total = total_assets(holdings, prices)
    assert total.total_usdt == D("1.2345678") * D("2000.1") + D("6700.03") + D("100.10")
    assert total.total_usdt == D("9269.38905678")
    assert total.display == "$9,269.39"
    assert not total.has_error and total.error_message is None


# [ ] 价格获取失败时显示 "--" (a failed price shows "--")
def test_acceptance_failed_price_shows_dashes() -> None:
    total = total_assets([Holding("ETH", D("1"))], {("ETH", None): None})
    assert total.display == "--"
    assert total.total_usdt is None
    assert total.holdings[0].display == "≈ --"


# [ ] 错误状态有明确提示 (error states have a clear message)
def test_acceptance_error_states_have_clear_messages_in_both_languages() -> None:
    partial = total_assets(
        [Holding("ETH", D("1")), Holding("FOO", D("1"))], {("ETH", None): D("2")}, lang="zh"
    )
    assert partial.error_message == "部分代币价格获取失败"
    assert check_min_amount(D("5"), "ETH", None, "zh").error == "无法获取当前价格，请稍后重试"
    no_price = check_min_amount(D("5"), "ETH", None, "en").error
    assert no_price == "Cannot get the current price, please try again later"
    toast = notice_for(stale=1, unavailable=0, failing_for_ms=60_000, max_stale_ms=300_000,
                       lang="zh")  # fmt: skip
    assert toast is not None and toast.message == "价格获取失败，显示数据可能不准确"
    banner = notice_for(0, 1, 300_001, 300_000, "zh")
    assert banner is not None and banner.code == "NETWORK_DEGRADED"
    assert banner.message == "网络异常，部分数据无法更新"
    failed = notice_for(0, 1, 1_000, 300_000, "en")
    assert failed is not None and failed.message == "Failed to get prices, please check the network"
    assert notice_for(0, 0, None, 300_000, "en") is None  # recovery is silent


# --- section 6: the minimum amount ----------------------------------------------------


def test_usdt_is_compared_directly_without_a_price() -> None:
    below = check_min_amount(D("9.99"), "USDT", None, "zh")
    assert not below.valid and below.usdt_equivalent == D("9.99")
    assert below.error == "最小金额不能低于 10 USDT"
    assert check_min_amount(D("10"), "USDT", None).valid
    assert check_min_amount(D("9.99"), "USDT", None).error == "The amount must be at least 10 USDT"


def test_exactly_10_usdt_worth_is_enough() -> None:
    assert check_min_amount(D("0.005"), "ETH", D("2000"), "en").valid


def test_the_equivalent_in_an_error_is_cut_not_rounded_up_to_the_minimum() -> None:
    check = check_min_amount(D("0.004998"), "ETH", D("2000"), "en")  # worth 9.996
    assert not check.valid
    assert check.error == ("The amount must be worth at least 10 USDT (currently about 9.99 USDT)")


def test_no_price_means_invalid_with_no_equivalent() -> None:
    check = check_min_amount(D("100"), "ETH", None, "en")
    assert not check.valid and check.usdt_equivalent is None and check.display == "≈ --"


# --- section 7: totals ----------------------------------------------------------------


def test_some_failed_prices_mark_the_total_with_a_star_and_list_them() -> None:
    holdings = [Holding("ETH", D("2")), Holding("FOO", D("3")), Holding("BAR", D("1"))]
    total = total_assets(
        holdings, {("ETH", None): D("6172.835"), ("BAR", None): None}, unknown=[("FOO", None)]
    )
    assert total.display == "$12,345.67 *"
    assert total.total_usdt == D("12345.670")
    assert total.failed == ["BAR"] and total.unknown == ["FOO"]
    assert [v.status for v in total.holdings] == [
        HoldingStatus.PRICED,
        HoldingStatus.UNKNOWN,
        HoldingStatus.FAILED,
    ]


def test_a_zero_total_shows_zero_dollars() -> None:
    total = total_assets([Holding("ETH", D("0"))], {("ETH", None): D("2000")})
    assert total.display == "$0.00" and total.total_usdt == D("0")
    assert total.holdings[0].display == "≈ $0.00"


def test_display_strings_of_section_7_2() -> None:
    assert total_display(D("12345.67"), priced=3, failed=0) == "$12,345.67"
    assert total_display(D("12345.67"), priced=2, failed=1) == "$12,345.67 *"
    assert total_display(D("0"), priced=0, failed=3) == "--"
    assert total_display(D("0"), priced=1, failed=0) == "$0.00"


def test_value_display_of_section_5() -> None:
    assert value_display(D("2469.125")) == "≈ $2,469.13"  # half up
    assert value_display(None) == "≈ --"  # loading or failed
    assert value_display(D("0")) == "≈ $0.00"
    assert value_display(D("NaN")) == "≈ $0.00"  # invalid
    assert usd(D("1234567.891")) == "$1,234,567.89"


# --- input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("-1", "negative"), ("abc", "not a number"), ("NaN", "finite"), ("Infinity", "finite"),
     ("1e24", "below"), ("0.0000000000000000001", "decimals")],
)  # fmt: skip
def test_bad_amounts_are_refused_naming_the_field(raw: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        parse_amount(raw, "amount")
    assert caught.value.field == "amount"


def test_amounts_keep_their_exact_decimals() -> None:
    assert parse_amount("0.000000000000000001") == D("1e-18")
    assert parse_amount(0.1) == D("0.1")
    assert parse_amount("0") == 0


def test_symbols_are_upper_cased_deduplicated_and_limited() -> None:
    assert parse_symbols("btc, ETH,btc") == ["BTC", "ETH"]
    with pytest.raises(InvalidInput, match="at most 500") as caught:
        parse_symbols(",".join(f"T{i}" for i in range(10_000)))
    assert caught.value.field == "symbols"
    assert len(parse_symbols([f"T{i}" for i in range(MAX_SYMBOLS)])) == MAX_SYMBOLS
    for bad in ("", " , ", "BTC,ETH$", "A" * 21):
        with pytest.raises(InvalidInput):
            parse_symbols(bad)


def test_networks_are_known_names() -> None:
    assert parse_network("ERC20") == "erc20"
    assert parse_network(None) is None and parse_network("") is None
    with pytest.raises(InvalidInput, match="unknown network") as caught:
        parse_network("mars")
    assert caught.value.field == "network"


def test_a_bad_holding_is_named_by_its_place() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_holding("ETH", "-3", None, 2)
    assert caught.value.field == "holdings[2].balance"
    with pytest.raises(InvalidInput) as caught:
        parse_holding(7, "1", None, 0)
    assert caught.value.field == "holdings[0].symbol"
    assert parse_holding("eth", "1.5", "ETH", 0) == Holding("ETH", D("1.5"), "eth")


def test_only_positive_finite_prices_are_prices() -> None:
    assert valid_price(2.5) == D("2.5") and valid_price("0.00001234") == D("0.00001234")
    for bad in (0, -1, None, True, "x", float("nan"), float("inf")):
        assert valid_price(bad) is None


def test_prices_travel_as_plain_decimal_strings() -> None:
    assert plain(D("1.2E-8")) == "0.000000012"
    assert plain(D("100.00")) == "100"
    assert plain(D("0")) == "0"


@pytest.mark.parametrize(
    ("header", "lang"),
    [(None, "en"), ("zh-CN", "zh"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("en-US,zh;q=0.5", "en"),
     ("fr, zh;q=0.3", "zh"), ("zh;q=0, en", "en"), ("de", "en"), ("zh;q=abc", "en")],
)  # fmt: skip
def test_accept_language_picks_chinese_only_when_preferred(header: str | None, lang: str) -> None:
    assert pick_language(header) == lang


def test_a_policy_fresh_longer_than_stale_is_refused() -> None:
    with pytest.raises(ValueError, match="fresh_ms"):
        PricePolicy(fresh_ms=60_000, max_stale_ms=30_000)
