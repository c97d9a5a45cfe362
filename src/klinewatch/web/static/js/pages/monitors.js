// Monitors: spot / futures tabs, status and interval filters, sorting, pages; market cap
// and FDV columns ("--" when the base asset has no confirmed mapping).
import { api, el, field, fmtMoney, fmtNumber, fmtPct, fmtPrice, fmtTime, start, statusBadge, t } from "../app.js";

const STATUSES = ["pending", "suspected_abandonment", "confirmed_abandonment", "invalidated", "expired"];
const INTERVALS = ["5m", "15m", "1h", "4h", "1d"];
const ORDERINGS = ["-trigger_time", "trigger_time", "-rvol", "rvol", "-drawdown", "drawdown"];
const PAGE_SIZE = 50;
// Column -> the ordering key that sorts by it (clicking a header toggles its direction).
const SORTABLE = { "col.trigger": "trigger_time", "col.rvol": "rvol", "col.drawdown": "drawdown" };

start(async (main) => {
  const query = new URLSearchParams(location.search);
  const state = {
    market_type: query.get("market_type") === "futures" ? "futures" : "spot",
    status: STATUSES.includes(query.get("status")) ? query.get("status") : "",
    interval: query.get("interval") || "",
    ordering: ORDERINGS.includes(query.get("ordering")) ? query.get("ordering") : "-trigger_time",
    page: Math.max(1, Number(query.get("page")) || 1),
  };

  const tabs = el("div", { class: "tabs", id: "market-tabs" });
  const status = select("filter-status", ["", ...STATUSES], state.status, (s) => (s ? t(`status.${s}`) : t("mon.all")));
  const interval = select("filter-interval", ["", ...INTERVALS], state.interval, (i) => i || t("mon.all"));
  const ordering = select("sort", ORDERINGS, state.ordering, (o) => t(`order.${o}`));
  const summary = el("span", { id: "monitor-count", class: "muted" });
  const list = el("div", { id: "monitor-list" });
  const pager = el("div", { class: "row", id: "pager" });
  main.replaceChildren(
    tabs,
    el("div", { class: "controls" }, field(t("mon.filter_status"), status), field(t("mon.filter_interval"), interval), field(t("mon.sort"), ordering), el("span", { class: "spacer" }), summary),
    list,
    pager,
  );

  status.addEventListener("change", () => load({ status: status.value, page: 1 }));
  interval.addEventListener("change", () => load({ interval: interval.value, page: 1 }));
  ordering.addEventListener("change", () => load({ ordering: ordering.value, page: 1 }));

  async function load(change = {}) {
    Object.assign(state, change);
    status.value = state.status;
    interval.value = state.interval;
    ordering.value = state.ordering;
    renderTabs();
    saveUrl(state);
    list.dataset.state = "loading";
    const params = { market_type: state.market_type, status: state.status, interval: state.interval, ordering: state.ordering, page: state.page, page_size: PAGE_SIZE };
    try {
      const page = await api("/api/volume-trap/monitors/", { params });
      renderList(page);
    } catch (error) {
      if (error.field === "page" && state.page > 1) return load({ page: 1 });
      list.replaceChildren(el("p", { class: "error" }, `${t("app.error")}: ${error.message}`));
    }
    list.dataset.state = "ready";
  }

  function renderTabs() {
    tabs.replaceChildren(
      ...["spot", "futures"].map((m) =>
        el("button", { class: m === state.market_type ? "active" : undefined, dataset: { market: m }, onclick: () => load({ market_type: m, page: 1 }) }, t(`market.${m}`)),
      ),
    );
  }

  function renderList(page) {
    summary.textContent = t("mon.count", { count: page.count });
    list.dataset.count = String(page.count);
    if (page.results.length === 0) {
      list.replaceChildren(el("p", { class: "muted" }, t("mon.none")));
      pager.replaceChildren();
      return;
    }
    const headers = ["col.symbol", "col.interval", "col.status", "col.trigger", "col.key_level", "col.rvol", "col.amplitude", "col.drawdown", "col.market_cap", "col.fdv", "col.last_transition"].map(header);
    const rows = page.results.map((m) =>
      el(
        "tr",
        { dataset: { id: m.id, status: m.status, interval: m.interval } },
        el("td", {}, el("a", { href: `/monitors/${m.id}` }, m.symbol)),
        el("td", {}, m.interval),
        el("td", {}, statusBadge(m.status)),
        el("td", { class: "num" }, fmtTime(m.trigger_time)),
        el("td", { class: "num" }, fmtPrice(m.key_level)),
        el("td", { class: "num" }, fmtNumber(m.rvol, 1)),
        el("td", { class: "num" }, fmtPct(m.amplitude_pct, 1, false)),
        el("td", { class: "num" }, fmtPct(m.drawdown_pct, 1, false)),
        el("td", { class: "num", dataset: { col: "market_cap" } }, fmtMoney(m.market_cap)),
        el("td", { class: "num", dataset: { col: "fdv" } }, fmtMoney(m.fdv ?? m.fully_diluted_valuation)),
        el("td", { class: "num" }, fmtTime(m.last_transition_time)),
      ),
    );
    list.replaceChildren(el("table", { id: "monitors" }, el("thead", {}, el("tr", {}, headers)), el("tbody", {}, rows)));
    pager.replaceChildren(
      el("button", { class: "secondary", disabled: page.page <= 1, onclick: () => load({ page: page.page - 1 }) }, t("mon.prev")),
      el("span", { class: "muted" }, t("mon.page", { page: page.page, pages: page.pages })),
      el("button", { class: "secondary", disabled: page.page >= page.pages, onclick: () => load({ page: page.page + 1 }) }, t("mon.next")),
    );
  }

  function header(key) {
    const numeric = !["col.symbol", "col.interval", "col.status"].includes(key);
    const sortKey = SORTABLE[key];
    if (!sortKey) return el("th", { class: numeric ? "num" : "" }, t(key));
    const active = state.ordering.replace("-", "") === sortKey;
    const arrow = active ? (state.ordering.startsWith("-") ? " ↓" : " ↑") : "";
    const next = active && state.ordering.startsWith("-") ? sortKey : `-${sortKey}`;
    return el("th", { class: `num sortable${active ? " sorted" : ""}`, dataset: { sort: sortKey }, onclick: () => load({ ordering: next, page: 1 }) }, t(key) + arrow);
  }

  await load();
});

function saveUrl(state) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value && !(key === "page" && value === 1) && !(key === "ordering" && value === "-trigger_time")) params.set(key, value);
  }
  history.replaceState(null, "", `/monitors?${params}`);
}

function select(id, values, chosen, label) {
  const node = el("select", { id }, values.map((v) => el("option", { value: v }, label(v))));
  node.value = chosen;
  return node;
}
