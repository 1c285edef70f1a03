// The user's Usage: a chart per day, totals by model and provider, and the latest requests.

import { api } from "../api.js";
import { usageCharts } from "../chart.js";
import { badge, count, h, num, page, table, usd, when } from "../dom.js";

export const WINDOWS = [7, 30, 90];

/** The 7/30/90-day switch; `days` is the current window, `go` opens another. */
export function windowSwitch(days, path, go) {
  return h("div", { class: "segmented", role: "group", "aria-label": "Time window" },
    WINDOWS.map((n) => h("button", { type: "button", "aria-pressed": String(n === days),
      onclick: () => go(`${path}?days=${n}`) }, `${n} days`)));
}

export function windowOf(query) {
  const days = Number(query.get("days") || 30);
  return WINDOWS.includes(days) ? days : 30;
}

/** Totals by one dimension ({name: totals}) as a table. */
export function totalsTable(caption, heading, byName, empty, show = (name) => name) {
  const rows = Object.entries(byName || {}).map(([name, t]) => ({ name, ...t }))
    .sort((a, b) => b.cost_usd - a.cost_usd || b.requests - a.requests);
  return table(caption, [
    [heading, (r) => show(r.name), "name"],
    ["Requests", (r) => num(r.requests), "num"],
    ["Input tokens", (r) => num(r.prompt_tokens), "num hide-narrow"],
    ["Output tokens", (r) => num(r.completion_tokens), "num hide-narrow"],
    ["Tokens", (r) => num(r.total_tokens), "num"],
    ["Cost", (r) => usd(r.cost_usd), "num"],
  ], rows, empty);
}

function statusBadge(status) {
  return badge(String(status), status < 400 ? "ok" : status === 429 ? "warn" : "bad");
}

export async function usage({ query, go }) {
  const days = windowOf(query);
  const since = new Date(Date.now() - (days - 1) * 86400000).toISOString().slice(0, 10);
  const [daily, summary, recent] = await Promise.all([
    api(`/v1/usage/daily?days=${days}`),
    api(`/v1/usage?start=${since}`),
    api("/v1/usage/requests?limit=25"),
  ]);
  return page("Usage",
    windowSwitch(days, "/usage", go),
    h("section", { class: "panel", "aria-labelledby": "per-day" },
      h("h2", { id: "per-day" }, `Last ${days} days`),
      h("p", { class: "muted" }, `${count(summary.requests, "request")}, `
        + `${count(summary.total_tokens, "token")}, ${usd(summary.cost_usd)} since ${since} (UTC days).`),
      usageCharts(daily.data, { num, usd })),
    h("section", { class: "panel", "aria-labelledby": "by-model" },
      h("h2", { id: "by-model" }, "By model"),
      totalsTable(null, "Model", summary.by_model, "No requests in this window.")),
    h("section", { class: "panel", "aria-labelledby": "by-provider" },
      h("h2", { id: "by-provider" }, "By provider"),
      totalsTable(null, "Provider", summary.by_provider, "No requests in this window.")),
    h("section", { class: "panel", "aria-labelledby": "recent" },
      h("h2", { id: "recent" }, "Recent requests"),
      table(null, [
        ["Time", (r) => when(r.created_at)],
        ["Model", (r) => r.model_served || r.model_requested, "name"],
        ["Status", (r) => statusBadge(r.status)],
        ["Latency", (r) => `${num(Math.round(r.latency_ms))} ms`, "num"],
        ["Tokens", (r) => num(r.prompt_tokens + r.completion_tokens), "num"],
        ["Cost", (r) => usd(r.cost_usd), "num"],
        ["Request id", (r) => h("code", {}, r.request_id), "name hide-narrow"],
      ], recent.data, "No requests yet. Calls made with your keys show up here within a second.")));
}
