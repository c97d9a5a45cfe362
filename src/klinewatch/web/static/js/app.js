// What every page shares: strings in two languages, the JSON API with its envelopes,
// the token for writes, the navigation bar, number and time formats, a DOM helper.
import en from "./i18n/en.js";
import zh from "./i18n/zh.js";

const DICTIONARIES = { en, zh };
const LANG_KEY = "klinewatch.lang";
const TOKEN_KEY = "klinewatch.token";

export const lang = (() => {
  const chosen = localStorage.getItem(LANG_KEY);
  if (chosen in DICTIONARIES) return chosen;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
})();

/** The string of ``key`` in the chosen language, with ``{name}`` placeholders filled. */
export function t(key, values = {}) {
  const text = DICTIONARIES[lang][key] ?? DICTIONARIES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** An element: ``el("td", {class: "num"}, "1.5")``; ``on*`` attributes are listeners. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "HTTP_ERROR";
    this.details = error.details || {};
    this.field = this.details.field;
  }
}

/** The ``data`` of a success envelope; an ``ApiError`` for an error envelope. */
export async function api(path, { method = "GET", body, token, params } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers["X-API-Token"] = token;
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    parsed = null;
  }
  if (!response.ok || !parsed || parsed.success === false) {
    throw new ApiError(response.status, parsed);
  }
  return parsed.data;
}

/** A write with ``X-API-Token``: the token is asked once per tab (sessionStorage) and
 * asked again when the server refuses it. */
export async function write(path, options = {}) {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const token = await askToken(attempt > 0);
    if (!token) throw new ApiError(401, { error: { message: t("app.token_refused") } });
    try {
      return await api(path, { ...options, token });
    } catch (error) {
      if (error.status !== 401) throw error;
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  throw new ApiError(401, { error: { message: t("app.token_refused") } });
}

function askToken(refused) {
  const kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept && !refused) return Promise.resolve(kept);
  return new Promise((resolve) => {
    const input = el("input", { type: "password", id: "token-input", autocomplete: "off" });
    const dialog = el(
      "dialog",
      { id: "token-dialog" },
      el(
        "form",
        { method: "dialog" },
        el("h2", {}, t("app.token_title")),
        el("p", {}, t("app.token_text")),
        refused ? el("p", { class: "error" }, t("app.token_refused")) : null,
        input,
        el(
          "menu",
          {},
          el("button", { value: "cancel", type: "submit", class: "secondary" }, t("app.cancel")),
          el("button", { value: "ok", type: "submit", id: "token-ok" }, t("app.token_ok")),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      const token = dialog.returnValue === "ok" ? input.value.trim() : "";
      dialog.remove();
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      resolve(token);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

const NAV = [
  ["/", "nav.dashboard"],
  ["/chart", "nav.chart"],
  ["/monitors", "nav.monitors"],
  ["/mappings", "nav.mappings"],
  ["/settings", "nav.settings"],
  ["/status", "nav.status"],
];

/** The navigation bar and the page title; translates static ``data-i18n`` text. */
export function frame() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  const here = location.pathname;
  const active = (href) => (href === "/" ? here === "/" : here.startsWith(href));
  const links = NAV.map(([href, key]) =>
    el("a", { href, class: active(href) ? "active" : undefined }, t(key)),
  );
  const switcher = el(
    "button",
    {
      id: "lang-switch",
      class: "link",
      onclick: () => {
        localStorage.setItem(LANG_KEY, lang === "zh" ? "en" : "zh");
        location.reload();
      },
    },
    t("app.language"),
  );
  const top = document.getElementById("top");
  top.replaceChildren(el("a", { href: "/", class: "brand" }, "klinewatch"), el("nav", {}, links), switcher);
  document.title = `${t(document.body.dataset.title)} · klinewatch`;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  return document.getElementById("main");
}

/** Replace the page's content with an error line (and keep the console clean). */
export function showError(target, error) {
  target.replaceChildren(el("p", { class: "banner error" }, `${t("app.error")}: ${error.message}`));
}

// --- formats ---------------------------------------------------------------------------

const locale = () => (lang === "zh" ? "zh-CN" : "en-US");

export function fmtPrice(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "--";
  const digits = value >= 1000 ? 2 : value >= 1 ? 4 : 8;
  return Number(value).toLocaleString(locale(), { maximumFractionDigits: digits });
}

export function fmtPct(value, digits = 2, signed = true) {
  if (value === null || value === undefined || Number.isNaN(value)) return "--";
  const sign = signed && value > 0 ? "+" : "";
  return `${sign}${Number(value).toFixed(digits)}%`;
}

/** Money a person reads at a glance: 1.23B, 456.7M; ``--`` when absent. */
export function fmtMoney(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "--";
  return Number(value).toLocaleString(locale(), {
    notation: "compact",
    maximumFractionDigits: 2,
    style: "currency",
    currency: "USD",
  });
}

export function fmtNumber(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "--";
  return Number(value).toLocaleString(locale(), { maximumFractionDigits: digits });
}

/** ``2025-06-01 11:00`` in UTC: candle times are UTC everywhere in klinewatch. */
export function fmtTime(value) {
  if (value === null || value === undefined || value === "") return "--";
  const date = typeof value === "number" ? new Date(value) : new Date(value);
  if (Number.isNaN(date.getTime())) return "--";
  return date.toISOString().slice(0, 16).replace("T", " ");
}

export function statusBadge(status) {
  return el("span", { class: `badge status-${status}` }, t(`status.${status}`));
}

export function healthBadge(status) {
  return el("span", { class: `badge health-${status}` }, t(`health.${status}`));
}

/** A labelled control: the label above, the input below. */
export function field(label, input) {
  return el("label", { class: "field" }, label, input);
}

export function table(headers, rows, attrs = {}) {
  return el(
    "table",
    attrs,
    el("thead", {}, el("tr", {}, headers.map((h) => (h instanceof Node ? h : el("th", {}, h))))),
    el("tbody", {}, rows),
  );
}

/** Run ``page(main)`` once the DOM is there, showing any error it throws; ``main``
 * then carries ``data-state`` ready (or error) for scripts and tests. */
export function start(page) {
  const run = async () => {
    const main = frame();
    try {
      await page(main);
      main.dataset.state = "ready";
    } catch (error) {
      showError(main, error);
      main.dataset.state = "error";
    }
  };
  // After the page module has finished evaluating (its later declarations exist).
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else queueMicrotask(run);
}
