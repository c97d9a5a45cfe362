// "Backfill a pair": starts POST /api/v1/backfills (token asked once) and polls its
// record until it is done or failed, showing the progress meanwhile.
import { api, el, field, t, write } from "../app.js";

const POLL_MS = 500;
const INTERVALS = ["1m", "5m", "15m", "1h", "4h", "1d"];

export function backfillPanel(defaults, onDone) {
  const exchange = el("select", { id: "bf-exchange" }, ["binance", "okx", "bybit", "bitget"].map((e) => el("option", { value: e }, e)));
  const market = el("select", { id: "bf-market" }, ["spot", "futures"].map((m) => el("option", { value: m }, t(`market.${m}`))));
  const symbol = el("input", { id: "bf-symbol", placeholder: "ETHUSDT", size: 12 });
  const interval = el("select", { id: "bf-interval" }, INTERVALS.map((i) => el("option", { value: i }, i)));
  const days = el("input", { id: "bf-days", type: "number", min: 1, max: 3650, value: 30, style: "width:80px" });
  const bar = el("progress", { id: "bf-progress", max: 1, value: 0, hidden: true });
  const message = el("span", { id: "bf-message", class: "muted" });
  exchange.value = defaults.exchange;
  market.value = defaults.market_type;
  interval.value = INTERVALS.includes(defaults.interval) ? defaults.interval : "1h";
  const button = el("button", { id: "bf-start", type: "submit" }, t("chart.start_backfill"));

  const form = el(
    "form",
    {
      class: "controls",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        message.className = "muted";
        const body = {
          exchange: exchange.value,
          market_type: market.value,
          symbol: symbol.value.trim().toUpperCase(),
          interval: interval.value,
          days: Number(days.value),
        };
        try {
          let job = await write("/api/v1/backfills", { method: "POST", body });
          bar.hidden = false;
          while (job.state === "running") {
            show(job);
            await new Promise((resolve) => setTimeout(resolve, POLL_MS));
            job = await api(`/api/v1/backfills/${job.id}`);
          }
          show(job);
          if (job.state === "done") onDone(job);
        } catch (error) {
          message.className = "error";
          message.textContent = t("chart.backfill_failed", { error: error.message });
        } finally {
          button.disabled = false;
        }
      },
    },
    field(t("chart.exchange"), exchange),
    field(t("chart.market"), market),
    field(t("chart.symbol"), symbol),
    field(t("chart.interval"), interval),
    field(t("chart.days"), days),
    button,
  );

  function show(job) {
    bar.max = Math.max(1, job.total);
    bar.value = job.state === "done" ? bar.max : job.done;
    form.dataset.state = job.state;
    if (job.state === "running") {
      message.className = "muted";
      message.textContent = t("chart.backfill_running", { symbol: job.symbol, interval: job.interval, done: job.done, total: job.total });
    } else if (job.state === "done") {
      message.className = "up";
      message.textContent = t("chart.backfill_done", { added: job.summary?.candles_added ?? 0, seconds: job.summary?.duration_s ?? 0 });
    } else {
      message.className = "error";
      message.textContent = t("chart.backfill_failed", { error: job.error });
    }
  }

  return el(
    "details",
    { class: "panel", id: "backfill" },
    el("summary", {}, t("chart.backfill")),
    form,
    el("div", { class: "row" }, bar, message),
  );
}
