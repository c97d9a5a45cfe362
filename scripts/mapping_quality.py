"""Mapping quality on the recorded real data (issue 7): the table of docs/mapping-quality.md.

The simulator serves the recorded Binance exchangeInfo snapshots (the newest spot and
futures ones, plus the recorded candle symbols) and CoinGecko's recorded coin list and
top-250 markets. A throwaway SQLite database gets the contracts (``sync_contracts``),
then ``generate_mappings`` and a full ``update_all`` run at CoinGecko's real limit
(50 calls per minute) through the real client.

The 100 largest base assets by volume are those with the largest USDT quote volume in
the recorded Binance spot 24h tickers (``binance/spot/ticker24hr``), among the assets
that were mapped. Each automatic mapping among them is compared with ``REFERENCE``, the
coin each asset is, checked by hand against the coin's name (see the doc).

    .venv/bin/python scripts/mapping_quality.py [--data ../shared/data] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from klinewatch.clock import SystemClock
from klinewatch.exchanges.binance.client import build_binance_client
from klinewatch.exchanges.coingecko import build_coingecko_client
from klinewatch.exchanges.ratelimit import WeightGovernor
from klinewatch.services.contracts import sync_contracts
from klinewatch.services.mapping import generate_mappings, list_mappings
from klinewatch.services.market_cap import update_all
from klinewatch.sim.testing import running_sim
from klinewatch.storage import migrate
from klinewatch.storage.engine import build_engine, session_factory

REPO = Path(__file__).resolve().parents[1]
TOP = 100
# The coin each of the 100 largest assets is, checked by hand (coin name and project);
# None: no coin in the recorded 2024-01 list is it (fiat, leveraged tokens, renamed).
REFERENCE: dict[str, str | None] = {
    "BTC": "bitcoin", "ETH": "ethereum", "EOS": "eos", "XRP": "ripple",
    "BUSD": "binance-usd", "LINK": "chainlink", "UNI": "uniswap", "BNB": "binancecoin",
    "YFI": "yearn-finance", "DOT": "polkadot", "BCH": "bitcoin-cash", "USDC": "usd-coin",
    "LTC": "litecoin", "SUSHI": "sushi", "ADA": "cardano", "TRX": "tron", "SXP": "swipe",
    "VET": "vechain", "XMR": "monero", "XVS": "venus", "BAND": "band-protocol",
    "NEO": "neo", "ATOM": "cosmos", "THETA": "theta-token", "ZEC": "zcash",
    "XTZ": "tezos", "OMG": "omisego", "CRV": "curve-dao-token", "XLM": "stellar",
    "REN": "republic-protocol", "ETC": "ethereum-classic", "FLM": "flamingo-finance",
    "WING": "wing-finance", "ZIL": "zilliqa", "QTUM": "qtum",
    "COMP": "compound-governance-token", "ONT": "ontology", "SOL": "solana",
    "ICX": "icon", "ALGO": "algorand", "TUSD": "true-usd", "FTM": "fantom",
    "KAVA": "kava", "IOST": "iostoken", "EGLD": "elrond-erd-2", "DASH": "dash",
    "AVAX": "avalanche-2", "LRC": "loopring", "TOMO": "tomochain", "BAL": "balancer",
    "COTI": "coti", "SNX": "havven", "MKR": "maker", "DIA": "dia-data",
    "ETHDOWN": "ethdown", "BEL": "bella-protocol", "STORJ": "storj",
    "MATIC": "matic-network", "TRB": "tellor", "WAVES": "waves", "RUNE": "thorchain",
    "BAT": "basic-attention-token", "KNC": "kyber-network-crystal", "ANKR": "ankr",
    "IOTA": "iota", "DOGE": "dogecoin", "BNBDOWN": None, "BNT": "bancor",
    "SAND": "the-sandbox", "ZRX": "0x", "OCEAN": "ocean-protocol", "EUR": None,
    "FET": "fetch-ai", "JST": "just", "KSM": "kusama", "WNXM": "wrapped-nxm",
    "RLC": "iexec-rlc", "RSR": "reserve-rights-token", "ENJ": "enjincoin",
    "ONE": "harmony", "OGN": "origin-protocol", "BTCDOWN": None, "RVN": "ravencoin",
    "BNBUP": None, "ONG": "ong", "GBP": None, "UMA": "uma", "WIN": "wink",
    "ANT": "aragon", "MANA": "decentraland", "TFUEL": "theta-fuel", "CHZ": "chiliz",
    "BLZ": "bluzelle", "ORN": "orion-protocol", "DATA": "streamr",
    "OXT": "orchid-protocol", "DGB": "digibyte", "ARPA": "arpa", "DOCK": "dock",
    "CELR": "celer-network",
}  # fmt: skip
# Automatic mappings outside the top 100 found wrong when reading the whole list: the
# coin Binance lists was created on CoinGecko after the recorded 2024-01 coin list, and
# an older namesake is the only coin of that symbol in it.
LATER_LISTINGS = {
    "BIO": "Bio Protocol", "DOGS": "DOGS (TON)", "IO": "io.net", "PIXEL": "Pixels",
    "SAGA": "Saga", "ZETA": "ZetaChain",
}  # fmt: skip


def spot_volumes(data: Path) -> dict[str, float]:
    """USDT quote volume per base asset from the newest recorded spot 24h tickers."""
    files = sorted((data / "binance" / "spot" / "ticker24hr").glob("*.json.gz"))
    volumes: dict[str, float] = {}
    for row in json.loads(gzip.decompress(files[-1].read_bytes())):
        if row["symbol"].endswith("USDT"):
            base = row["symbol"][: -len("USDT")]
            volumes[base] = volumes.get(base, 0.0) + float(row["quoteVolume"])
    return volumes


def coin_names(data: Path) -> dict[str, str]:
    files = sorted((data / "coingecko").glob("coins_list_include_platform_*.json.gz"))
    return {c["id"]: c["name"] for c in json.loads(gzip.decompress(files[-1].read_bytes()))}


async def measure(url: str, database_url: str) -> dict[str, Any]:
    sessions = session_factory(build_engine(database_url))
    for market in ("spot", "futures"):
        governor = WeightGovernor(key=f"quality-{market}", budget_per_min=2400)
        client = build_binance_client(market, url, governor, SystemClock())
        try:
            await sync_contracts(sessions, client, {"USDT"})
        finally:
            await client.aclose()
    coingecko = build_coingecko_client(f"{url}/coingecko/api/v3", "demo-key")
    try:
        run = await generate_mappings(sessions, coingecko)
        update = await update_all(sessions, coingecko)
    finally:
        await coingecko.aclose()
    return {
        "run": run,
        "update": update,
        "calls": coingecko.calls,
        "rows": list_mappings(sessions),
        "spot": {r["base_asset"] for r in list_mappings(sessions, market_type="spot")},
        "futures": {r["base_asset"] for r in list_mappings(sessions, market_type="futures")},
    }


def evidence_text(row: dict[str, Any]) -> str:
    ev = dict(row["evidence"])
    rule = ev.pop("rule", "")
    if rule == "volume_over_2x_runner_up":
        runner = ev["runner_up_volume_24h"]
        figure = "no figures" if runner is None else f"{runner:.3g}"
        return f"volume {ev['volume_24h']:.3g} > 2x {ev['runner_up']} ({figure})"
    if rule == "unique_symbol":
        return "the only coin with this symbol"
    if rule == "best_market_cap_rank":
        return f"best rank {ev['market_cap_rank']}"
    names = ", ".join(c["coingecko_id"] for c in row["candidates"][:4])
    more = len(row["candidates"]) - 4
    return f"{rule}: {names}{f' +{more}' if more > 0 else ''}" if names else rule


def verdict(row: dict[str, Any]) -> str:
    expected = REFERENCE.get(row["base_asset"], "?")
    if row["status"] == "needs_review":
        listed = {c["coingecko_id"] for c in row["candidates"]}
        if expected is None:
            return "review (no such coin listed)"
        return "review, right coin offered" if expected in listed else "review"
    if expected == "?":
        return "not checked"
    return "correct" if row["coingecko_id"] == expected else f"WRONG (is {expected})"


def report(found: dict[str, Any], volumes: dict[str, float], names: dict[str, str]) -> str:
    rows = {r["base_asset"]: r for r in found["rows"]}
    statuses = Counter(r["status"] for r in rows.values())
    rules = Counter(str(r["evidence"].get("rule")) for r in rows.values())
    review = [r for r in rows.values() if r["status"] == "needs_review"]
    top = sorted((b for b in rows if b in volumes), key=lambda b: -volumes[b])[:TOP]
    lines = [
        f"- base assets: {len(rows)} (spot {len(found['spot'])}, futures "
        f"{len(found['futures'])}, both {len(found['spot'] & found['futures'])})",
        f"- statuses: {dict(sorted(statuses.items()))}",
        f"- rules: {dict(sorted(rules.items()))}",
        f"- needs_review: {len(review)} ({len(review) / len(rows):.1%}); with candidates "
        f"{sum(1 for r in review if r['candidates'])}, without any coin of that symbol or "
        f"name in the recorded list {sum(1 for r in review if not r['candidates'])}",
        f"- CoinGecko calls for the mapping and a full update: {found['calls']}; 429 "
        f"received: {found['update_429']}; update: {found['update'].succeeded} of "
        f"{found['update'].total} mapped symbols got figures",
        "",
        "| # | asset | 24h USDT volume | coingecko id | coin name | status | evidence | check |",
        "|---|---|---:|---|---|---|---|---|",
    ]
    for i, base in enumerate(top, 1):
        r = rows[base]
        lines.append(
            f"| {i} | {base} | {volumes[base]:,.0f} | {r['coingecko_id'] or '-'} | "
            f"{names.get(r['coingecko_id'] or '', '-')} | {r['status']} | "
            f"{evidence_text(r)} | {verdict(r)} |"
        )
    checks = Counter(verdict(rows[b]) for b in top)
    auto = sum(1 for b in top if rows[b]["status"] != "needs_review")
    lines += [
        "",
        f"Top {len(top)}: {auto} automatic, {dict(sorted(checks.items()))}; left for "
        f"review {len(top) - auto} ({(len(top) - auto) / len(top):.0%}).",
        "",
        "| asset | mapped to | coin name | rule | the asset is |",
        "|---|---|---|---|---|",
    ]
    for base, truth in LATER_LISTINGS.items():
        r = rows.get(base)
        if r is not None:
            lines.append(
                f"| {base} | {r['coingecko_id'] or '-'} | "
                f"{names.get(r['coingecko_id'] or '', '-')} | {r['evidence'].get('rule')} | "
                f"{truth} |"
            )
    lines += [
        "",
        "| asset | coin | multiplier | coingecko id | status |",
        "|---|---|---:|---|---|",
    ]
    for r in sorted(rows.values(), key=lambda r: r["base_asset"]):
        if r["multiplier"] != 1:
            lines.append(
                f"| {r['base_asset']} | {r['coin_symbol']} | {r['multiplier']:,} | "
                f"{r['coingecko_id'] or '-'} | {r['status']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, help="write the report here (default: stdout)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_sim(args.data.resolve()) as sim:
        database_url = f"sqlite:///{Path(tmp) / 'quality.sqlite3'}"
        migrate.upgrade(database_url)
        found = asyncio.run(measure(sim.url, database_url))
        found["update_429"] = sim.ctx.stats.snapshot()["totals"]["429"]
    text = report(found, spot_volumes(args.data), coin_names(args.data))
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
