// Settings: the system config as a form. Only the changed fields are sent (PUT deep-
// merges); the server validates, and a refusal names the field, shown beside it.
import { api, el, fmtTime, start, t, write } from "../app.js";

const SECTIONS = ["market_data", "volume_trap"];
const CHOICES = {
  "market_data.default_exchange": ["binance", "okx", "bybit", "bitget"],
  "market_data.update_mode": ["interval", "n_periods"],
};

start(async (main) => {
  let config = await api("/api/v1/system/config");
  const banner = el("p", { id: "settings-banner", class: "banner", hidden: true });
  const form = el("form", { id: "settings-form", novalidate: true });
  main.replaceChildren(el("h1", {}, t("set.title")), banner, form);

  function render() {
    const inputs = new Map();
    const sections = SECTIONS.filter((s) => config[s]).map((name) => {
      const rows = [];
      leaves(config[name], name, (path, value) => {
        const input = inputFor(path, value);
        inputs.set(path, { input, value });
        rows.push(row(path, input));
      });
      return el("section", { class: "panel form-section", dataset: { section: name } }, el("h2", {}, name), rows);
    });
    const secretRows = Object.entries(config.secrets || {}).map(([name, state]) => {
      const input = el("input", { type: "password", id: `secret-${name}`, placeholder: t("set.secret_hint"), autocomplete: "off" });
      inputs.set(`secrets.${name}`, { input, secret: true });
      const known = state.configured ? `${t("set.configured")}${state.source === "environment" ? ` (${t("set.from_env")})` : ""}` : t("set.not_configured");
      return row(`secrets.${name}`, input, known);
    });
    form.replaceChildren(
      el("p", { class: "muted" }, `${t("set.current_exchange")}: ${config.current_exchange} · ${t("set.last_updated")}: ${fmtTime(config.last_updated)}`),
      ...sections,
      el("section", { class: "panel form-section" }, el("h2", {}, t("set.secrets")), secretRows),
      el("div", { class: "form-actions" }, el("button", { type: "submit", id: "settings-save" }, t("set.save"))),
    );
    form.onsubmit = (event) => {
      event.preventDefault();
      save(inputs);
    };
  }

  async function save(inputs) {
    clearErrors();
    const update = {};
    for (const [path, entry] of inputs) {
      const next = entry.secret ? entry.input.value.trim() : read(entry.input, entry.value);
      if (entry.secret ? next === "" : JSON.stringify(next) === JSON.stringify(entry.value)) continue;
      assign(update, path.split("."), next);
    }
    if (Object.keys(update).length === 0) return say("banner", t("set.unchanged"));
    try {
      config = await write("/api/v1/system/config", { method: "PUT", body: update });
      render();
      say("banner ok", t("set.saved"));
    } catch (error) {
      say("banner error", error.field ? t("set.refused") : `${t("app.error")}: ${error.message}`);
      if (error.field) markField(error.field, error.message);
    }
  }

  function say(kind, text) {
    banner.className = kind;
    banner.textContent = text;
    banner.hidden = false;
  }

  function clearErrors() {
    for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  /** The error beside the named field, or the nearest enclosing one (a list's item
   * names its list). */
  function markField(field, message) {
    const parts = field.split(".");
    while (parts.length) {
      const target = form.querySelector(`.form-row[data-path="${CSS.escape(parts.join("."))}"]`);
      if (target) {
        target.querySelector(".field-error").textContent = message;
        target.querySelector("input, select")?.setAttribute("aria-invalid", "true");
        target.scrollIntoView({ block: "center" });
        return;
      }
      parts.pop();
    }
  }

  render();
});

/** Calls ``visit(path, value)`` for every leaf: numbers, strings, booleans, lists. */
function leaves(value, path, visit) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) leaves(inner, `${path}.${key}`, visit);
  } else {
    visit(path, value);
  }
}

function inputFor(path, value) {
  const id = `cfg-${path.replaceAll(".", "-")}`;
  if (typeof value === "boolean") return el("input", { type: "checkbox", id, checked: value });
  if (CHOICES[path]) {
    const select = el("select", { id }, CHOICES[path].map((c) => el("option", { value: c }, c)));
    select.value = value;
    return select;
  }
  const text = Array.isArray(value) ? value.join(", ") : String(value ?? "");
  return el("input", { type: "text", id, value: text, inputmode: typeof value === "number" ? "decimal" : undefined });
}

/** The value an input holds, typed like the value it started from; text that is no
 * number stays text so that the server names the field it breaks. */
function read(input, original) {
  if (input.type === "checkbox") return input.checked;
  const raw = input.value.trim();
  if (Array.isArray(original)) {
    const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
    return original.every((v) => typeof v === "number") && original.length ? items.map(asNumber) : items;
  }
  if (typeof original === "number") return asNumber(raw);
  return raw;
}

function asNumber(text) {
  return /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text) ? Number(text) : text;
}

function assign(target, parts, value) {
  let node = target;
  for (const part of parts.slice(0, -1)) node = node[part] ??= {};
  node[parts.at(-1)] = value;
}

function row(path, input, note) {
  input.setAttribute("aria-label", path);
  return el(
    "div",
    { class: "form-row", dataset: { path } },
    el("label", { for: input.id }, path.split(".").slice(1).join(".")),
    input,
    el("span", {}, note ? el("span", { class: "muted" }, note) : null, el("span", { class: "field-error", role: "alert" })),
  );
}
