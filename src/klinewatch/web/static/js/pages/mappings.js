// Mappings to review: each needs_review base asset with its candidates (volume, rank);
// one click confirms the current choice or a candidate, or sets another id.
import { api, el, fmtMoney, start, t, write } from "../app.js";

start(async (main) => {
  const notice = el("p", { id: "mapping-notice", class: "banner ok", hidden: true });
  const list = el("div", { id: "mapping-list" });
  main.replaceChildren(el("h1", {}, t("map.title")), el("p", { class: "muted" }, t("map.intro")), notice, list);

  async function load() {
    list.dataset.state = "loading";
    let rows;
    try {
      rows = await api("/api/v1/mappings", { params: { status: "needs_review" } });
    } catch (error) {
      const text = error.status === 404 && error.code === "NOT_FOUND" ? t("map.unavailable") : `${t("app.error")}: ${error.message}`;
      list.replaceChildren(el("p", { class: "error" }, text));
      list.dataset.state = "error";
      return;
    }
    list.replaceChildren(...(rows.length ? rows.map(card) : [el("p", { class: "muted" }, t("map.none"))]));
    list.dataset.state = "ready";
    list.dataset.count = String(rows.length);
  }

  async function confirm(row, coingeckoId, button) {
    button.disabled = true;
    const body = coingeckoId ? { coingecko_id: coingeckoId } : {};
    try {
      const path = `/api/v1/mappings/${encodeURIComponent(row.base_asset)}/confirm`;
      const done = await write(path, { method: "POST", body });
      notice.className = "banner ok";
      notice.textContent = t("map.done", { asset: row.base_asset, id: done?.coingecko_id ?? coingeckoId ?? row.coingecko_id });
      notice.hidden = false;
      await load();
    } catch (error) {
      notice.className = "banner error";
      notice.textContent = `${t("app.error")}: ${error.message}`;
      notice.hidden = false;
      button.disabled = false;
    }
  }

  function card(row) {
    const other = el("input", { placeholder: "coingecko-id", class: "override", size: 22 });
    const confirmCurrent = el("button", { class: "confirm-current", disabled: !row.coingecko_id, onclick: (e) => confirm(row, null, e.target) }, t("map.confirm"));
    const setOther = el("button", { class: "secondary set-override", onclick: (e) => other.value.trim() && confirm(row, other.value.trim(), e.target) }, t("map.set"));
    const candidates = (row.candidates || []).map((c) =>
      el(
        "div",
        { class: "candidate", dataset: { id: c.coingecko_id } },
        el("span", {}, el("strong", {}, c.name || c.coingecko_id), " ", el("span", { class: "muted" }, `${c.coingecko_id} · ${String(c.symbol || "").toUpperCase()}`)),
        el("span", { class: "num", title: t("col.volume") }, fmtMoney(c.volume_24h)),
        el("span", { class: "num", title: t("col.rank") }, c.market_cap_rank ? `#${c.market_cap_rank}` : "--"),
        el("button", { class: "secondary use-candidate", onclick: (e) => confirm(row, c.coingecko_id, e.target) }, t("map.use")),
      ),
    );
    return el(
      "section",
      { class: "panel mapping", dataset: { asset: row.base_asset, exchange: row.exchange || "" }, style: "margin-bottom:12px" },
      el(
        "div",
        { class: "row" },
        el("h2", {}, row.base_asset),
        el("span", { class: "muted" }, `${row.exchange || ""} · ${row.coin_symbol}${row.multiplier > 1 ? ` · ${t("map.multiplier")} ${row.multiplier}` : ""}`),
        el("span", { class: "spacer" }),
        el("span", {}, `${t("map.current")}: `, el("code", {}, row.coingecko_id || "--")),
        confirmCurrent,
      ),
      el("div", { class: "candidate muted" }, el("span", {}, t("map.candidates")), el("span", { class: "num" }, t("col.volume")), el("span", { class: "num" }, t("col.rank")), el("span")),
      candidates,
      el("div", { class: "row", style: "margin-top:8px" }, el("label", {}, t("map.override")), other, setOther),
      row.evidence ? el("details", {}, el("summary", { class: "muted" }, t("map.evidence")), el("pre", { class: "muted" }, JSON.stringify(row.evidence, null, 2))) : null,
    );
  }

  await load();
});
