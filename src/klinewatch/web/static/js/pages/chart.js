// Chart: any stored series with its indicators; the pickers come from /api/v1/series.
// URL: /chart?exchange=&market_type=&symbol=&interval=&overlays=MA,BOLL&panes=MACD,RSI&limit=
import { api, el, field, start, t } from "../app.js";
import { backfillPanel } from "../chart/backfill.js";
import { OVERLAYS, PANES } from "../chart/candles.js";
import { SeriesView, tickerLine } from "../chart/series_view.js";

const DEFAULT_LIMIT = 500;
const INTERVAL_ORDER = ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"];

start(async (main) => {
  const query = new URLSearchParams(location.search);
  // A URL naming its series draws at once; the pickers fill when the list arrives.
  const listed = api("/api/v1/series");
  const named = query.has("symbol");
  let stored = named ? [] : await listed;
  const state = initialState(query, stored);
  let view = null;

  const exchange = el("select", { id: "pick-exchange" });
  const market = el("select", { id: "pick-market" });
  const symbol = el("input", { id: "pick-symbol", list: "symbols", placeholder: t("chart.search"), autocomplete: "off", size: 14 });
  const symbols = el("datalist", { id: "symbols" });
  const interval = el("select", { id: "pick-interval" });
  const toggles = (families, chosen, name) =>
    families.map((f) =>
      el("label", {}, el("input", { type: "checkbox", name, value: f, checked: chosen.includes(f), onchange: redraw }), ` ${f}`),
    );
  const overlayBoxes = toggles(OVERLAYS, state.overlays, "overlay");
  const paneBoxes = toggles(PANES, state.panes, "pane");
  const head = el("div", { class: "chart-head" }, el("h1", { id: "chart-title" }), el("span", { id: "ticker" }), el("span", { id: "live-dot", class: "live-dot" }));
  const staleBanner = el("p", { id: "stale-banner", class: "banner warn", hidden: true }, t("app.stale_banner"));
  const container = el("div", { id: "chart", dataset: { state: "empty" } });
  const status = el("div", { class: "chart-status", id: "chart-status" });
  const legend = el("div", { class: "legend", id: "legend" });

  main.replaceChildren(
    el(
      "div",
      { class: "controls" },
      field(t("chart.exchange"), exchange),
      field(t("chart.market"), market),
      field(t("chart.symbol"), el("span", {}, symbol, symbols)),
      field(t("chart.interval"), interval),
      el("fieldset", {}, el("legend", {}, t("chart.overlays")), overlayBoxes),
      el("fieldset", {}, el("legend", {}, t("chart.panes")), paneBoxes),
    ),
    head,
    staleBanner,
    legend,
    container,
    status,
    el("p"),
    backfillPanel(state, async (job) => {
      stored = await api("/api/v1/series");
      Object.assign(state, { exchange: job.exchange, market_type: job.market_type, symbol: job.symbol, interval: job.interval });
      fillPickers();
      await redraw();
    }),
  );

  function fillPickers(keepInterval = false) {
    const exchanges = unique([state.exchange, ...stored.map((s) => s.exchange)]);
    options(exchange, exchanges, state.exchange);
    options(market, ["spot", "futures"], state.market_type, (m) => t(`market.${m}`));
    const here = stored.filter((s) => s.exchange === state.exchange && s.market_type === state.market_type);
    symbols.replaceChildren(...unique(here.map((s) => s.symbol)).map((s) => el("option", { value: s })));
    symbol.value = state.symbol;
    const own = here.filter((s) => s.symbol === state.symbol).map((s) => s.interval);
    let intervals = own.length ? sortIntervals(own) : INTERVAL_ORDER;
    if (keepInterval && !intervals.includes(state.interval)) intervals = sortIntervals([...intervals, state.interval]);
    if (!intervals.includes(state.interval)) state.interval = intervals.includes("1h") ? "1h" : intervals[0];
    options(interval, intervals, state.interval);
  }

  async function redraw() {
    state.overlays = overlayBoxes.map((l) => l.firstChild).filter((b) => b.checked).map((b) => b.value);
    state.panes = paneBoxes.map((l) => l.firstChild).filter((b) => b.checked).map((b) => b.value);
    view?.close();
    if (!state.symbol) {
      status.textContent = t("chart.no_series");
      return;
    }
    saveUrl(state);
    const key = { exchange: state.exchange, market_type: state.market_type, symbol: state.symbol, interval: state.interval };
    document.getElementById("chart-title").textContent = `${state.symbol} · ${t(`market.${state.market_type}`)} · ${state.interval}`;
    view = new SeriesView(container, status, key, [...state.overlays, ...state.panes], state.limit);
    view.onTicker = (ticker) => tickerLine(document.getElementById("ticker"), { ...ticker, is_stale: false });
    try {
      await view.open();
      view.renderLegend(legend);
    } catch (error) {
      container.dataset.state = "error";
      status.textContent = `${t("app.error")}: ${error.message}`;
    }
    loadTicker(key);
  }

  exchange.addEventListener("change", () => pick({ exchange: exchange.value }));
  market.addEventListener("change", () => pick({ market_type: market.value }));
  symbol.addEventListener("change", () => pick({ symbol: symbol.value.trim().toUpperCase().replace("/", "") }));
  interval.addEventListener("change", () => pick({ interval: interval.value }));

  function pick(change) {
    Object.assign(state, change);
    if (change.exchange || change.market_type) {
      const here = stored.filter((s) => s.exchange === state.exchange && s.market_type === state.market_type);
      if (!here.some((s) => s.symbol === state.symbol)) state.symbol = here[0]?.symbol ?? state.symbol;
    }
    fillPickers();
    redraw();
  }

  fillPickers(named);
  const drawn = redraw();
  if (named) {
    stored = await listed;
    fillPickers(true);
  }
  await drawn;
});

async function loadTicker(key) {
  const target = document.getElementById("ticker");
  try {
    const ticker = await api("/api/v1/market/ticker", { params: { exchange: key.exchange, market_type: key.market_type, symbol: key.symbol } });
    tickerLine(target, ticker);
  } catch {
    target.replaceChildren();
  }
}

function initialState(query, stored) {
  const first = stored.find((s) => s.symbol === "BTCUSDT" && s.interval === "1h") || stored[0] || {};
  const list = (name, fallback) => (query.has(name) ? query.get(name).split(",").filter(Boolean) : fallback);
  return {
    exchange: query.get("exchange") || first.exchange || "binance",
    market_type: query.get("market_type") || first.market_type || "spot",
    symbol: (query.get("symbol") || first.symbol || "").toUpperCase(),
    interval: query.get("interval") || first.interval || "1h",
    overlays: list("overlays", ["MA", "BOLL"]),
    panes: list("panes", ["MACD", "RSI"]),
    limit: Math.min(1000, Math.max(10, Number(query.get("limit")) || DEFAULT_LIMIT)),
  };
}

function saveUrl(state) {
  const params = new URLSearchParams({
    exchange: state.exchange,
    market_type: state.market_type,
    symbol: state.symbol,
    interval: state.interval,
    overlays: state.overlays.join(","),
    panes: state.panes.join(","),
  });
  if (state.limit !== DEFAULT_LIMIT) params.set("limit", state.limit);
  history.replaceState(null, "", `/chart?${params}`);
}

function options(select, values, chosen, label = (v) => v) {
  select.replaceChildren(...values.map((v) => el("option", { value: v, selected: v === chosen }, label(v))));
  select.value = chosen;
}

function unique(values) {
  return [...new Set(values)].filter(Boolean);
}

function sortIntervals(values) {
  return [...values].sort((a, b) => INTERVAL_ORDER.indexOf(a) - INTERVAL_ORDER.indexOf(b));
}
