"""The symbol -> CoinGecko id rules (domain/mapping.py), on coins from the real list."""

from __future__ import annotations

from decimal import Decimal

import pytest

from klinewatch.domain.mapping import (
    CoinListing,
    CoinMarket,
    Evidence,
    MatchStatus,
    candidates_by_symbol,
    decide,
    name_candidates,
    split_multiplier,
)

BITCOIN = CoinListing("bitcoin", "btc", "Bitcoin")
BTC_WRAPPED = CoinListing("bitcoin-wormhole", "btc", "Bitcoin (Wormhole)")
PEPE = CoinListing("pepe", "pepe", "Pepe")
PEPE_SOL = CoinListing("pepe-on-solana", "pepe", "Pepe on Solana")
SHIB = CoinListing("shiba-inu", "shib", "Shiba Inu")
SHIB_1000 = CoinListing("1000shib", "1000shib", "1000SHIB")
KNOWN = frozenset({"BTC", "PEPE", "SHIB", "1000SHIB", "SATS", "MOG", "BABYDOGE", "1INCH"})


def market(coin: CoinListing, volume: str | None, rank: int | None) -> CoinMarket:
    return CoinMarket(
        id=coin.id,
        symbol=coin.symbol,
        name=coin.name,
        price=None,
        market_cap=None,
        fdv=None,
        volume_24h=None if volume is None else Decimal(volume),
        market_cap_rank=rank,
        last_updated=None,
    )


@pytest.mark.parametrize(
    ("asset", "expected"),
    [
        ("1000PEPE", ("PEPE", 1000)),
        ("1000SHIB", ("SHIB", 1000)),
        ("1MBABYDOGE", ("BABYDOGE", 1_000_000)),
        ("10000SATS", ("SATS", 10_000)),
        ("1000000MOG", ("MOG", 1_000_000)),
        ("1INCH", ("1INCH", 1)),
        ("BTC", ("BTC", 1)),
        ("1000UNKNOWNCOIN", ("1000UNKNOWNCOIN", 1)),
    ],
)
def test_multiplier_prefixes_split_into_coin_and_units(
    asset: str, expected: tuple[str, int]
) -> None:
    assert split_multiplier(asset, KNOWN) == expected


def test_multiplier_prefix_splits_without_a_symbol_list() -> None:
    assert split_multiplier("1000PEPE") == ("PEPE", 1000)


def test_venue_ticker_coin_id_wins_over_every_other_rule() -> None:
    markets = {BITCOIN.id: market(BITCOIN, "1", 1), BTC_WRAPPED.id: market(BTC_WRAPPED, "9e9", 9)}
    d = decide("BTC", [BITCOIN, BTC_WRAPPED], markets, venue_coin_id="bitcoin")
    assert (d.coingecko_id, d.status) == ("bitcoin", MatchStatus.AUTO_MATCHED)
    assert d.evidence == {"rule": Evidence.VENUE_TICKER.value}


def test_a_unique_symbol_is_matched() -> None:
    d = decide("PEPE", [PEPE], {})
    assert (d.coingecko_id, d.status, d.evidence["rule"]) == (
        "pepe",
        MatchStatus.AUTO_MATCHED,
        Evidence.UNIQUE_SYMBOL.value,
    )


def test_volume_over_twice_the_runner_up_decides_a_collision() -> None:
    markets = {
        BITCOIN.id: market(BITCOIN, "20000000000", 1),
        BTC_WRAPPED.id: market(BTC_WRAPPED, "500000000", 30),
    }
    d = decide("BTC", [BTC_WRAPPED, BITCOIN], markets)
    assert (d.coingecko_id, d.status) == ("bitcoin", MatchStatus.AUTO_MATCHED)
    assert d.evidence["rule"] == Evidence.VOLUME_DOMINANT.value
    assert d.evidence["runner_up"] == "bitcoin-wormhole"
    assert {c.coingecko_id for c in d.candidates} == {"bitcoin", "bitcoin-wormhole"}


def test_close_volumes_fall_back_to_the_best_rank() -> None:
    markets = {PEPE.id: market(PEPE, "100", 40), PEPE_SOL.id: market(PEPE_SOL, "150", 900)}
    d = decide("PEPE", [PEPE, PEPE_SOL], markets)
    assert (d.coingecko_id, d.evidence["rule"]) == ("pepe", Evidence.BEST_RANK.value)
    assert d.evidence["market_cap_rank"] == 40


def test_volume_exactly_twice_is_not_enough() -> None:
    markets = {PEPE.id: market(PEPE, "200", None), PEPE_SOL.id: market(PEPE_SOL, "100", None)}
    d = decide("PEPE", [PEPE, PEPE_SOL], markets)
    assert d.status == MatchStatus.NEEDS_REVIEW


def test_a_collision_without_figures_needs_review_with_every_candidate() -> None:
    d = decide("PEPE", [PEPE, PEPE_SOL], {})
    assert (d.coingecko_id, d.status) == (None, MatchStatus.NEEDS_REVIEW)
    assert d.evidence == {"rule": Evidence.AMBIGUOUS.value, "count": 2}
    assert [c.coingecko_id for c in d.candidates] == ["pepe", "pepe-on-solana"]


def test_no_coin_with_the_symbol_needs_review_and_offers_name_matches() -> None:
    fallback = name_candidates("TOMO", [CoinListing("tomochain", "vic", "Viction"), PEPE])
    d = decide("TOMO", [], {}, fallback=fallback)
    assert (d.status, d.evidence["rule"]) == (MatchStatus.NEEDS_REVIEW, "no_candidate")
    assert [c.coingecko_id for c in d.candidates] == ["tomochain"]


def test_a_futures_prefix_maps_to_the_coin_not_a_namesake_of_the_whole_asset() -> None:
    grouped = candidates_by_symbol([SHIB, SHIB_1000, BITCOIN])
    coin, units = split_multiplier("1000SHIB", frozenset(grouped))
    d = decide("1000SHIB", grouped[coin], {}, known_symbols=frozenset(grouped))
    assert (d.coingecko_id, d.coin_symbol, d.multiplier) == ("shiba-inu", "SHIB", 1000)
    assert units == 1000


def test_candidates_carry_volume_and_rank_for_review() -> None:
    markets = {PEPE.id: market(PEPE, "1234.5", 7)}
    d = decide("PEPE", [PEPE, PEPE_SOL], markets)
    first = d.candidates[0].as_dict()
    assert first == {
        "coingecko_id": "pepe",
        "name": "Pepe",
        "symbol": "pepe",
        "volume_24h": 1234.5,
        "market_cap_rank": 7,
    }
