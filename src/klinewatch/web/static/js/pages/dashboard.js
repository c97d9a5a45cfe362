// Dashboard: watched pairs (the stored series) with price, 24h change, market cap and
// FDV; the latest monitor transitions; system health at a glance.
import { api, el, fmtMoney, fmtPct, fmtPrice, fmtTime, healthBadge, start, statusBadge, t, table } from "../app.js";

const MAX_PAIRS = 16;
const REFRESH_MS = 60_000;

start(async (main) => {
  const pairsBox = el("section", { class: "panel", id: "pairs" }, el("h2", {}, t("dash.pairs")));
  const healthBox = el("section", { class: "panel", id: "health" }, el("h2", {}, t("dash.health")));
  const transitionsBox = el("section", { class: "panel", id: "transitions" }, el("h2", {}, t("dash.transitions")));
  const countsBox = el("section", { class: "panel", id: "monitor-counts" }, el("h2", {}, t("dash.monitors")));
  main.replaceChildren(el("div", { class: "grid" }, pairsBox, el("div", {}, healthBox, el("p"), countsBox)), el("p"), transitionsBox);

  const refresh = () =>
    Promise.all([
      section(pairsBox, renderPairs),
      section(healthBox, renderHealth),
      section(transitionsBox, renderTransitions),
      section(countsBox, renderCounts),
    ]);
  await refresh();
  setInterval(refresh, REFRESH_MS);
});

/** Fill one panel below its title; an error stays inside the panel. */
async function section(box, render) {
  const title = box.firstChild;
  try {
    box.replaceChildren(title, await render());
  } catch (error) {
    box.replaceChildren(title, el("p", { class: "error" }, `${t("app.error")}: ${error.message}`));
  }
}

async function renderPairs() {
  const series = await api("/api/v1/series");
  const pairs = [];
  const seen = new Set();
  for (const s of series) {
    const key = `${s.exchange}:${s.market_type}:${s.symbol}`;
    if (seen.has(key)) continue;
    seen.add(key);
    pairs.push(s);
  }
  if (pairs.length === 0) return el("p", { class: "muted" }, t("dash.no_pairs"));
  const shown = pairs.slice(0, MAX_PAIRS);
  const [tickers, caps] = await Promise.all([
    Promise.all(shown.map((p) => ticker(p))),
    marketCaps(shown.map((p) => p.symbol)),
  ]);
  const rows = shown.map((p, i) => {
    const tick = tickers[i];
    const cap = caps.get(p.symbol) || caps.get(baseAsset(p.symbol)) || {};
    const href = `/chart?${new URLSearchParams({ exchange: p.exchange, market_type: p.market_type, symbol: p.symbol, interval: p.interval })}`;
    return el(
      "tr",
      { dataset: { symbol: p.symbol, market: p.market_type } },
      el("td", {}, el("a", { href }, p.symbol)),
      el("td", {}, t(`market.${p.market_type}`)),
      el("td", { class: "num" }, fmtPrice(tick?.last), tick?.is_stale ? el("span", { class: "badge stale-mark" }, t("app.stale")) : null),
      el("td", { class: `num ${tick?.change_24h >= 0 ? "up" : "down"}` }, fmtPct(tick?.change_24h)),
      el("td", { class: "num", dataset: { col: "market_cap" } }, fmtMoney(cap.market_cap)),
      el("td", { class: "num", dataset: { col: "fdv" } }, fmtMoney(cap.fdv ?? cap.fully_diluted_valuation)),
    );
  });
  const headers = ["col.pair", "col.market", "col.price", "col.change", "col.market_cap", "col.fdv"].map((k) =>
    el("th", { class: k === "col.pair" || k === "col.market" ? "" : "num" }, t(k)),
  );
  return table(headers, rows);
}

async function ticker(pair) {
  try {
    return await api("/api/v1/market/ticker", { params: { exchange: pair.exchange, market_type: pair.market_type, symbol: pair.symbol } });
  } catch {
    return null;
  }
}

/** Market cap and FDV by symbol; an empty map while the API has none (shown as --). */
async function marketCaps(symbols) {
  const found = new Map();
  try {
    const rows = await api("/api/v1/market-cap", { params: { symbols: [...new Set(symbols)].join(",") } });
    for (const row of rows || []) found.set(String(row.symbol).toUpperCase(), row);
  } catch {
    // absent or failing: every cell shows --
  }
  return found;
}

const QUOTES = ["USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH"];
function baseAsset(symbol) {
  const quote = QUOTES.find((q) => symbol.endsWith(q) && symbol.length > q.length);
  return quote ? symbol.slice(0, -quote.length) : symbol;
}

async function renderHealth() {
  const health = await api("/health/market-data");
  const chips = Object.entries(health.components).map(([name, c]) =>
    el("div", { class: "row", dataset: { component: name } }, healthBadge(c.status), el("span", {}, name.replace("exchange_", "")), c.error ? el("span", { class: "muted" }, c.error) : null),
  );
  return el(
    "div",
    {},
    el("p", { class: "row" }, el("strong", {}, t("health.overall")), healthBadge(health.status), el("span", { class: "muted" }, `${t("health.current_exchange")}: ${health.current_exchange}`), el("a", { href: "/status" }, t("dash.details"))),
    chips,
  );
}

async function renderTransitions() {
  const rows = await api("/api/volume-trap/transitions/", { params: { limit: 12 } });
  if (rows.length === 0) return el("p", { class: "muted" }, t("app.none"));
  const headers = ["col.time", "col.symbol", "col.market", "col.interval", "col.from", "col.to", "col.reason"].map((k) => t(k));
  return table(
    headers,
    rows.map((r) =>
      el(
        "tr",
        {},
        el("td", { class: "num" }, fmtTime(r.open_time)),
        el("td", {}, el("a", { href: `/monitors/${r.monitor_id}` }, r.symbol)),
        el("td", {}, t(`market.${r.market_type}`)),
        el("td", {}, r.interval),
        el("td", {}, r.from_status ? statusBadge(r.from_status) : statusBadge("new")),
        el("td", {}, statusBadge(r.to_status)),
        el("td", { class: "muted" }, r.reason),
      ),
    ),
  );
}

async function renderCounts() {
  const stats = await api("/api/volume-trap/statistics/");
  const markets = Object.keys(stats.by_market_type);
  const headers = [t("col.status"), ...markets.map((m) => el("th", { class: "num" }, t(`market.${m}`)))];
  const rows = Object.keys(stats.by_status).map((status) =>
    el(
      "tr",
      {},
      el("td", {}, statusBadge(status)),
      markets.map((m) => el("td", { class: "num" }, el("a", { href: `/monitors?${new URLSearchParams({ market_type: m, status })}` }, stats.by_market_type[m][status]))),
    ),
  );
  return table(headers, rows);
}
