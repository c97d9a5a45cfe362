// One drawn series: candles, volume, overlays and panes of one (exchange, market type,
// symbol, interval); older candles loaded when scrolled back, new ones pushed live.
import { api, el, fmtPrice, fmtPct, t } from "../app.js";
import {
  OVERLAYS,
  PANES,
  addCandles,
  addIndicators,
  linePoints,
  newChart,
  pricePrecision,
  showPrices,
  toBar,
  toTime,
  toVolume,
} from "./candles.js";

const OLDER_PAGE = 500;
const LIVE_RETRY_MS = 3000;
const INDICATOR_PARAMS = { ma_periods: "7,25,99", ema_periods: "12,26" };

export class SeriesView {
  /** ``key``: {exchange, market_type, symbol, interval}; ``families``: MA, MACD, ... */
  constructor(container, status, key, families, limit) {
    this.container = container;
    this.status = status;
    this.key = key;
    this.families = [...OVERLAYS, ...PANES].filter((f) => families.includes(f));
    this.limit = limit;
    this.candles = [];
    this.values = {};
    this.times = [];
    this.loadingOlder = false;
    this.exhausted = false;
    this.closed = false;
    this.socket = null;
    this.onTicker = () => {};
  }

  query(extra = {}) {
    const k = this.key;
    return { exchange: k.exchange, market_type: k.market_type, symbol: k.symbol, timeframe: k.interval, ...extra };
  }

  indicatorQuery(extra) {
    return this.query({ indicators: this.families.join(","), ...INDICATOR_PARAMS, ...extra });
  }

  /** Fetch the newest window and draw everything; resolves once drawn. */
  async open() {
    this.container.dataset.state = "loading";
    const wanted = this.families.length > 0;
    const [klines, indicators] = await Promise.all([
      api("/api/v1/market/klines", { params: this.query({ limit: this.limit }) }),
      wanted ? api("/api/v1/market/indicators", { params: this.indicatorQuery({ limit: this.limit }) }) : null,
    ]);
    if (this.closed) return;
    performance.mark("chart:data");
    this.candles = klines.candles;
    // Fewer than asked: the database and the exchange have nothing older (asking again
    // would only earn a 404).
    this.exhausted = this.candles.length < this.limit;
    this.absorbIndicators(indicators, false);
    this.draw(indicators);
    this.markStale(klines.is_stale || Boolean(indicators?.is_stale));
    this.connect();
    performance.mark("chart:set");
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    this.describe("ready");
    window.__chartReady = performance.now();
  }

  draw(indicators) {
    this.chart?.remove();
    this.chart = newChart(this.container);
    const { candles, volume } = addCandles(this.chart);
    this.candleSeries = candles;
    this.volumeSeries = volume;
    const keys = {};
    for (const family of this.families) keys[family] = Object.keys(indicators?.indicators?.[family] || {});
    const { lines, legend } = addIndicators(this.chart, this.families, keys);
    this.lines = lines;
    this.legend = legend;
    const inPrice = Object.values(lines).filter((l) => l.family !== "RSI").map((l) => l.series);
    showPrices([candles, ...inPrice], pricePrecision(this.candles));
    this.setAll();
    this.chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
      if (range && range.from < 15) this.loadOlder();
    });
  }

  setAll() {
    this.candleSeries.setData(this.candles.map(toBar));
    this.volumeSeries.setData(this.candles.map(toVolume));
    for (const [key, { series, histogram }] of Object.entries(this.lines)) {
      series.setData(linePoints(this.times, this.values[key] || [], histogram));
    }
  }

  /** Keep indicator values by key, aligned with ``this.times``; ``prepend`` for older. */
  absorbIndicators(indicators, prepend) {
    if (!indicators) return;
    const times = indicators.open_times.map(toTime);
    const flat = {};
    for (const family of Object.values(indicators.indicators)) Object.assign(flat, family);
    if (!prepend) {
      this.times = times;
      this.values = flat;
      return;
    }
    const known = new Set(this.times);
    const keep = times.map((time) => !known.has(time));
    this.times = [...times.filter((_, i) => keep[i]), ...this.times];
    for (const [key, values] of Object.entries(flat)) {
      this.values[key] = [...values.filter((_, i) => keep[i]), ...(this.values[key] || [])];
    }
  }

  async loadOlder() {
    if (this.loadingOlder || this.exhausted || this.closed || this.candles.length === 0) return;
    this.loadingOlder = true;
    this.status.textContent = t("chart.older");
    const end = this.candles[0].open_time;
    try {
      const [klines, indicators] = await Promise.all([
        api("/api/v1/market/klines", { params: this.query({ end, limit: OLDER_PAGE }) }),
        this.families.length
          ? api("/api/v1/market/indicators", { params: this.indicatorQuery({ end, limit: OLDER_PAGE }) })
          : null,
      ]);
      if (this.closed) return;
      const first = toTime(end);
      const older = klines.candles.filter((c) => toTime(c.open_time) < first);
      this.exhausted = klines.candles.length < OLDER_PAGE;
      if (older.length > 0) {
        this.candles = [...older, ...this.candles];
        this.absorbIndicators(indicators, true);
        this.setAll();
      }
      this.describe("ready");
    } catch (error) {
      this.exhausted = true;
      this.status.textContent = error.message;
    } finally {
      this.loadingOlder = false;
    }
  }

  /** Newly closed candles and tickers over ``WS /ws/market/{symbol}``. */
  connect() {
    if (this.closed) return;
    const k = this.key;
    const url = new URL(`/ws/market/${encodeURIComponent(k.symbol)}`, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.search = new URLSearchParams({ exchange: k.exchange, market_type: k.market_type, timeframes: k.interval });
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener("open", () => this.liveState(true));
    socket.addEventListener("message", (event) => this.onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      this.liveState(false);
      if (!this.closed && this.socket === socket) setTimeout(() => this.connect(), LIVE_RETRY_MS);
    });
  }

  async onMessage(message) {
    if (message.type === "ticker") {
      this.onTicker(message.ticker);
      return;
    }
    if (message.type !== "kline" || message.timeframe !== this.key.interval) return;
    const candle = message.candle;
    const time = toTime(candle.open_time);
    const last = this.candles.at(-1);
    if (last && time < toTime(last.open_time)) return;
    if (last && time === toTime(last.open_time)) this.candles[this.candles.length - 1] = candle;
    else this.candles.push(candle);
    this.candleSeries.update(toBar(candle));
    this.volumeSeries.update(toVolume(candle));
    this.describe("ready");
    if (this.families.length) await this.refreshLastValues(time);
  }

  async refreshLastValues(time) {
    const latest = await api("/api/v1/market/indicators", { params: this.indicatorQuery({ limit: 1 }) });
    if (this.closed) return;
    for (const family of Object.values(latest.indicators)) {
      for (const [key, values] of Object.entries(family)) {
        const line = this.lines[key];
        const value = values.at(-1);
        if (!line || value === null || value === undefined) continue;
        line.series.update(linePoints([time], [value], line.histogram)[0]);
      }
    }
  }

  markStale(stale) {
    this.container.classList.toggle("stale", stale);
    this.container.dataset.stale = stale ? "true" : "false";
    document.getElementById("stale-banner")?.toggleAttribute("hidden", !stale);
  }

  liveState(on) {
    const dot = document.getElementById("live-dot");
    if (!dot) return;
    dot.classList.toggle("on", on);
    dot.textContent = t(on ? "app.live" : "app.offline");
  }

  /** What the page shows, and what a test or a script can read, about the drawing. */
  describe(state) {
    const k = this.key;
    const d = this.container.dataset;
    d.state = state;
    d.series = `${k.exchange}:${k.market_type}:${k.symbol}:${k.interval}`;
    d.candles = String(this.candles.length);
    d.lastOpen = this.candles.at(-1)?.open_time ?? "";
    d.panes = String(this.chart ? this.chart.panes().length : 0);
    d.lines = Object.keys(this.lines || {}).join(",");
    const note = this.exhausted ? ` · ${t("chart.start")}` : "";
    this.status.textContent = `${this.candles.length} ${t("chart.candles")}${note}`;
  }

  renderLegend(target) {
    target.replaceChildren(
      ...(this.legend || []).map(({ key, color }) => el("span", {}, el("i", { style: `background:${color}` }), key)),
    );
  }

  close() {
    this.closed = true;
    this.socket?.close();
    this.chart?.remove();
    this.chart = null;
  }
}

export function tickerLine(target, ticker) {
  const change = ticker.change_24h ?? ticker.price_change_pct;
  const parts = [
    el("span", { class: "price" }, fmtPrice(ticker.last)),
    el("span", { class: change >= 0 ? "up" : "down" }, fmtPct(change)),
  ];
  if (ticker.is_stale) parts.push(el("span", { class: "badge stale-mark" }, t("app.stale")));
  target.replaceChildren(...parts);
}
