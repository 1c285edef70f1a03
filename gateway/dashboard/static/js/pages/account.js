// The signed-in user's Overview and API keys.

import { api } from "../api.js";
import { badge, count, confirmDialog, field, form, h, limit, messageBox, num, page, secretPanel, table,
  usd, when } from "../dom.js";

function stat(label, value, sub) {
  return h("div", { class: "stat" }, h("div", { class: "label" }, label),
    h("div", { class: "value" }, value), sub ? h("div", { class: "sub" }, sub) : null);
}

function left(allowance, used) {
  return allowance ? num(Math.max(allowance - used, 0)) : "Unlimited";
}

/** A notice when a prepaid account has nothing left to spend, else null. */
export function emptyBalance(me) {
  if (!me.prepaid || me.balance_usd > 0) return null;
  return h("p", { class: "notice", role: "status" }, `Your balance is ${usd(me.balance_usd)}: `
    + "model calls are refused (402) until it is topped up. Ask the operator.");
}

export async function overview() {
  const me = await api("/v1/auth/me");
  const l = me.limits || {};
  const u = me.usage || {};
  const period = me.period || {};
  const money = me.prepaid
    ? stat("Balance", usd(me.balance_usd), "Prepaid: each call draws it down by its cost")
    : stat("Credits left today", left(l.credits_per_day, u.credits_today),
      l.credits_per_day ? `of ${num(l.credits_per_day)} a day` : "No daily credit limit");
  const rows = [
    ["Requests per minute", l.requests_per_minute, null],
    ["Requests per day", l.requests_per_day, u.requests_today],
    ["Tokens per day", l.tokens_per_day, u.tokens_today],
    ["Tokens per month", l.tokens_per_month, u.tokens_this_month],
    ["Credits per day", l.credits_per_day, u.credits_today],
    ["API keys", l.max_keys, null],
  ];
  const base = `${location.origin}/v1`;
  return page("Overview",
    me.status === "blocked"
      ? h("p", { class: "notice", role: "status" }, "This account is blocked: calls are refused. "
        + "Ask the operator to unblock it.") : null,
    emptyBalance(me),
    h("div", { class: "grid" },
      stat("Tier", me.tier, me.email),
      money,
      stat("This month's spend", usd(period.cost_usd), `${count(period.requests, "request")}, `
        + `${count(period.total_tokens, "token")}`),
      stat("Requests today", num(u.requests_today),
        l.requests_per_day ? `of ${num(l.requests_per_day)}` : "No daily request limit")),
    h("section", { class: "panel", "aria-labelledby": "limits-title" },
      h("h2", { id: "limits-title" }, "Limits of your tier"),
      table(null, [
        ["Limit", (r) => r[0]],
        ["Allowance", (r) => limit(r[1]), "num"],
        ["Used", (r) => (r[2] === null ? "—" : num(r[2])), "num"],
        ["Left", (r) => (r[2] === null ? "—" : left(r[1], r[2])), "num"],
      ], rows, "", true)),
    h("section", { class: "panel", "aria-labelledby": "start-title" },
      h("h2", { id: "start-title" }, "Call the API"),
      h("p", {}, "Create a key on the ", h("a", { href: "#/keys" }, "API keys"),
        " page, then point any OpenAI SDK at ", h("code", {}, base), "."),
      h("pre", {}, h("code", {}, `curl ${base}/chat/completions \\\n`
        + '  -H "Authorization: Bearer $GW_KEY" \\\n'
        + `  -d '{"model": "echo", "messages": [{"role": "user", "content": "Hello!"}]}'`))));
}

export async function keys(ctx) {
  const { go, box } = ctx;
  const list = await api("/v1/keys");
  const createBox = messageBox();
  const slot = h("div");
  const create = async ({ name, permissions }, el) => {
    const created = await api("/v1/keys", { method: "POST", body: { name, permissions } });
    el.reset();
    box.clear();
    const fresh = await keys(ctx);
    document.getElementById("main").replaceChildren(box, ...fresh);
    document.getElementById("key-slot").replaceChildren(
      secretPanel("new-key", `New key "${created.name || created.prefix}"`, created.key));
    document.getElementById("new-key-title").focus();
  };
  const revoke = (key) => async () => {
    const label = key.name || key.prefix;
    if (!await confirmDialog("Revoke this key?", `Programs using "${label}" (${key.prefix}…) `
      + "are refused from now on. This cannot be undone.", "Revoke key")) return;
    try {
      await api(`/v1/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
      go("/keys", `Key "${label}" is revoked: calls with it are refused.`);
    } catch (error) {
      box.show("error", error.message);
    }
  };
  const hasPermissions = list.data.some((k) => k.permissions);
  slot.id = "key-slot";
  return page("API keys",
    slot,
    h("section", { class: "panel", "aria-labelledby": "create-title" },
      h("h2", { id: "create-title" }, "Create a key"), createBox,
      form({ class: "row" }, [
        field({ label: "Name", name: "name", maxlength: 200, required: true,
          hint: "What uses it, e.g. \"laptop\" or \"ci\"" }),
        field({ label: "Permissions", name: "permissions", value: "inference", options: [
          ["inference", "Inference: call models"],
          ["manage", "Manage: also keys, provider keys, billing"]],
        hint: "Give programs inference keys; a leaked manage key controls the account" }),
        h("button", { type: "submit" }, "Create key"),
      ], create, createBox)),
    h("section", { class: "panel", "aria-labelledby": "list-title" },
      h("h2", { id: "list-title" }, "Your keys"),
      table(null, [
        ["Name", (k) => k.name || h("span", { class: "muted" }, "(no name)"), "name"],
        ["Prefix", (k) => h("code", {}, `${k.prefix}…`)],
        hasPermissions ? ["Permissions", (k) => ([].concat(k.permissions || []).includes("manage")
          ? badge("manage", "warn") : badge("inference"))] : null,
        ["Created", (k) => when(k.created_at)],
        ["Last used", (k) => when(k.last_used_at)],
        ["", (k) => h("button", { type: "button", class: "danger small", onclick: revoke(k),
          "aria-label": `Revoke ${k.name || k.prefix}` }, "Revoke")],
      ].filter(Boolean), list.data, "No keys yet: create one above to call the API.")));
}
