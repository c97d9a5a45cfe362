// One monitor: its candles with the trigger candle marked and every transition on the
// chart, the key level as a price line, and the transitions as a timeline with the
// detector values each one was decided on.
import { api, el, fmtMoney, fmtNumber, fmtPct, fmtPrice, fmtTime, start, statusBadge, t } from "../app.js";
import { addCandles, createSeriesMarkers, newChart, pricePrecision, showPrices, toBar, toTime, toVolume } from "../chart/candles.js";

start(async (main) => {
  const id = Number(location.pathname.split("/").filter(Boolean).at(-1));
  const m = await api(`/api/volume-trap/monitors/${id}/`, { params: { before: 96, after: 96 } });
  const chartBox = el("div", { id: "chart", style: "height:460px" });
  const chartHref = `/chart?${new URLSearchParams({ exchange: m.exchange, market_type: m.market_type, symbol: m.symbol, interval: m.interval })}`;
  main.replaceChildren(
    el("p", {}, el("a", { href: `/monitors?market_type=${m.market_type}` }, t("mon.back"))),
    el("div", { class: "row" }, el("h1", {}, `${m.symbol} · ${t(`market.${m.market_type}`)} · ${m.interval}`), statusBadge(m.status), el("span", { class: "spacer" }), el("a", { href: chartHref }, t("chart.open"))),
    facts(m),
    chartBox,
    el("p"),
    el("div", { class: "grid" }, timeline(m), triggerPanel(m)),
  );
  draw(chartBox, m);
});

function facts(m) {
  const items = [
    ["col.trigger", fmtTime(m.trigger_time)],
    ["col.key_level", fmtPrice(m.key_level)],
    ["col.rvol", fmtNumber(m.rvol, 1)],
    ["col.amplitude", fmtPct(m.amplitude_pct, 1, false)],
    ["col.drawdown", fmtPct(m.drawdown_pct, 1, false)],
    ["col.market_cap", fmtMoney(m.market_cap)],
    ["col.fdv", fmtMoney(m.fdv ?? m.fully_diluted_valuation)],
  ];
  return el("dl", { class: "kv panel", style: "grid-template-columns: repeat(7, max-content auto)" }, items.map(([k, v]) => [el("dt", {}, t(k)), el("dd", {}, v)]));
}

function draw(box, m) {
  const chart = newChart(box);
  const { candles, volume } = addCandles(chart);
  showPrices([candles], pricePrecision(m.candles));
  candles.setData(m.candles.map(toBar));
  volume.setData(m.candles.map(toVolume));
  candles.createPriceLine({ price: m.key_level, color: "#f0b429", lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: t("col.key_level") });
  const trigger = toTime(m.trigger_time);
  const markers = [{ time: trigger, position: "aboveBar", color: "#f0b429", shape: "arrowDown", text: t("mon.trigger") }];
  for (const tr of m.transitions) {
    const time = toTime(tr.open_time);
    if (time === trigger && tr.from_status === null) continue;
    markers.push({ time, position: "belowBar", color: "#c77dff", shape: "arrowUp", text: t(`status.${tr.to_status}`) });
  }
  for (const burst of m.later_burst_snapshots || []) {
    markers.push({ time: toTime(burst.open_time), position: "aboveBar", color: "#ff9f43", shape: "circle", text: t("mon.burst") });
  }
  markers.sort((a, b) => a.time - b.time);
  createSeriesMarkers(candles, markers);
  chart.timeScale().fitContent();
  box.dataset.state = "ready";
  box.dataset.markers = String(markers.length);
}

function timeline(m) {
  const items = m.transitions.map((tr) =>
    el(
      "li",
      { dataset: { to: tr.to_status } },
      el("div", { class: "row" }, el("strong", {}, fmtTime(tr.open_time)), tr.from_status ? statusBadge(tr.from_status) : null, "→", statusBadge(tr.to_status)),
      el("div", { class: "muted" }, tr.reason),
      detectorValues(tr.detector_values),
    ),
  );
  return el("section", { class: "panel", id: "timeline" }, el("h2", {}, t("mon.timeline")), el("ol", { class: "timeline" }, items));
}

function triggerPanel(m) {
  const c = m.trigger_candle;
  const rows = [["open", c.open], ["high", c.high], ["low", c.low], ["close", c.close]].map(([k, v]) => [el("dt", {}, t(`candle.${k}`)), el("dd", {}, fmtPrice(v))]);
  const bursts = (m.later_burst_snapshots || []).map((b) => el("li", {}, el("strong", {}, fmtTime(b.open_time)), detectorValues(b.detector_values)));
  return el(
    "section",
    { class: "panel" },
    el("h2", {}, t("mon.trigger_candle")),
    el("dl", { class: "kv" }, el("dt", {}, t("col.time")), el("dd", {}, fmtTime(c.open_time)), rows, el("dt", {}, t("candle.volume")), el("dd", {}, fmtNumber(c.volume))),
    bursts.length ? [el("h3", {}, t("mon.later_bursts")), el("ol", { class: "timeline" }, bursts)] : null,
  );
}

/** One line per detector: passed or not, then its figures (or why it had none). */
function detectorValues(values) {
  const show = (x) => (typeof x === "number" ? fmtNumber(x, 4) : x === null || x === undefined ? "--" : String(x));
  const items = Object.entries(values || {}).map(([name, v]) => {
    if (!v || typeof v !== "object") return el("li", {}, el("strong", {}, name), " ", show(v));
    const { passed, unavailable, ...rest } = v;
    const figures = Object.entries(rest).map(([k, x]) => `${k} ${show(x)}`).join(" · ");
    return el(
      "li",
      { dataset: { detector: name } },
      el("span", { class: passed ? "pass" : "fail" }, passed ? "✓ " : "✗ "),
      el("strong", {}, name),
      " ",
      el("span", { class: "muted" }, unavailable || figures),
    );
  });
  return el("ul", { class: "detectors" }, items);
}
