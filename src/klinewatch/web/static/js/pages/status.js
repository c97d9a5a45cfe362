// Health: every component (database, cache, each enabled exchange) with its last check,
// and the backfills this server ran.
import { api, el, fmtNumber, fmtTime, healthBadge, start, t, table } from "../app.js";

const REFRESH_MS = 15_000;

start(async (main) => {
  const overview = el("div", { id: "health-overview" });
  const components = el("section", { class: "panel", id: "components" });
  const backfills = el("section", { class: "panel", id: "backfills" });
  main.replaceChildren(el("h1", {}, t("health.title")), overview, components, el("p"), backfills);

  async function refresh() {
    const [health, jobs] = await Promise.all([api("/health/market-data"), api("/api/v1/backfills")]);
    overview.replaceChildren(
      el(
        "p",
        { class: "row" },
        el("strong", {}, t("health.overall")),
        healthBadge(health.status),
        el("span", { class: "muted" }, `${t("health.current_exchange")}: ${health.current_exchange} · ${t("health.checked", { time: fmtTime(health.timestamp) })}`),
      ),
    );
    const rows = Object.entries(health.components).map(([name, c]) =>
      el(
        "tr",
        { dataset: { component: name } },
        el("td", {}, name),
        el("td", {}, healthBadge(c.status)),
        el("td", { class: "num" }, c.last_check_ms ? fmtTime(c.last_check_ms) : name.startsWith("exchange_") ? t("health.never") : fmtTime(health.timestamp)),
        el("td", { class: "num" }, c.latency_ms === null || c.latency_ms === undefined ? "--" : `${fmtNumber(c.latency_ms, 0)} ms`),
        el("td", { class: "num" }, c.consecutive_failures ?? "--"),
        el("td", { class: c.error ? "error" : "muted" }, c.error || c.backend || ""),
      ),
    );
    const numeric = new Set(["col.last_check", "col.latency", "col.failures"]);
    const headers = ["col.component", "col.status", "col.last_check", "col.latency", "col.failures", "col.detail"].map((k) =>
      el("th", { class: numeric.has(k) ? "num" : undefined }, t(k)),
    );
    components.replaceChildren(table(headers, rows, { id: "component-table" }));
    const jobRows = jobs.map((j) =>
      el(
        "tr",
        {},
        el("td", {}, `${j.symbol} · ${j.market_type} · ${j.interval}`),
        el("td", {}, t(`bf.${j.state}`)),
        el("td", { class: "num" }, `${j.done} / ${j.total}`),
        el("td", { class: "num" }, fmtTime(j.started_at)),
        el("td", { class: j.error ? "error" : "muted" }, j.error || (j.summary ? `+${j.summary.candles_added}` : "")),
      ),
    );
    backfills.replaceChildren(el("h2", {}, t("health.backfills")), jobRows.length ? table(["", t("col.status"), "", t("col.time"), t("col.detail")], jobRows) : el("p", { class: "muted" }, t("app.none")));
    }

  await refresh();
  setInterval(() => refresh().catch(() => {}), REFRESH_MS);
});
