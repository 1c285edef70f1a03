// Billing (tier, checkout, invoices) and bring-your-own provider keys.

import { api } from "../api.js";
import { emptyBalance } from "./account.js";
import { badge, confirmDialog, field, form, h, limit, messageBox, num, page, table, usd, when }
  from "../dom.js";

export async function billing({ go, box }) {
  const [me, tiers, bills] = await Promise.all([
    api("/v1/auth/me"), api("/v1/tiers"), api("/v1/billing/invoices")]);
  const selfService = tiers.data.some((t) => t.self_service);
  const checkout = (tier) => async () => {
    const price = tier.price_usd ? ` for ${usd(tier.price_usd)}` : "";
    if (!await confirmDialog(`Switch to ${tier.id}?`, `Your account moves to the ${tier.id} tier${price}.`,
      `Switch to ${tier.id}`)) return;
    try {
      await api("/v1/billing/checkout", { method: "POST", body: { tier: tier.id } });
      go("/billing", `You are now on the ${tier.id} tier.`);
    } catch (error) {
      box.show("error", error.message);
    }
  };
  const action = (tier) => {
    if (tier.id === me.tier) return badge("Current", "ok");
    if (tier.self_service) {
      return h("button", { type: "button", class: "small", onclick: checkout(tier) }, `Switch to ${tier.id}`);
    }
    return h("span", { class: "muted" }, "Ask the operator");
  };
  return page("Billing",
    emptyBalance(me),
    h("div", { class: "grid" },
      h("div", { class: "stat" }, h("div", { class: "label" }, "Tier"), h("div", { class: "value" }, me.tier)),
      h("div", { class: "stat" }, h("div", { class: "label" }, me.prepaid ? "Balance" : "Billing"),
        h("div", { class: "value" }, me.prepaid ? usd(me.balance_usd) : "Monthly")),
      h("div", { class: "stat" }, h("div", { class: "label" }, "This month so far"),
        h("div", { class: "value" }, usd(me.period?.cost_usd)))),
    h("section", { class: "panel", "aria-labelledby": "tiers-title" },
      h("h2", { id: "tiers-title" }, "Tiers"),
      selfService ? null : h("p", { class: "muted" },
        "Tier changes are made by the operator on this gateway: no tier is self-service."),
      table(null, [
        ["Tier", (t) => [h("strong", {}, t.id), t.description ? h("div", { class: "hint" }, t.description) : null], "name"],
        ["Price", (t) => (t.price_usd ? usd(t.price_usd) : "—"), "num"],
        ["Requests / min", (t) => limit(t.requests_per_minute), "num hide-narrow"],
        ["Credits / day", (t) => limit(t.credits_per_day), "num hide-narrow"],
        ["Keys", (t) => limit(t.max_keys), "num hide-narrow"],
        ["", action],
      ], tiers.data, "No tiers are configured.")),
    h("section", { class: "panel", "aria-labelledby": "invoices-title" },
      h("h2", { id: "invoices-title" }, "Invoices"),
      table(null, [
        ["Month", (i) => i.period],
        ["Requests", (i) => num(i.requests), "num"],
        ["Tokens", (i) => num(i.total_tokens), "num hide-narrow"],
        ["Top-ups", (i) => usd(i.topups_usd), "num hide-narrow"],
        ["Amount", (i) => usd(i.amount_due_usd), "num"],
        ["Status", (i) => badge(i.status, i.status === "open" ? "warn" : "")],
      ], bills.data, "No invoices yet: the first appears with your first request.")));
}

export async function providerKeys({ go, box }) {
  const stored = await api("/v1/provider-keys");
  const providers = stored.providers || [];
  const saveBox = messageBox();
  const save = async ({ provider, api_key: secret }) => {
    await api(`/v1/provider-keys/${encodeURIComponent(provider)}`, { method: "PUT",
      body: { api_key: secret } });
    go("/provider-keys", `Your ${provider} key is saved: calls to ${provider} now use it.`);
  };
  const remove = (row) => async () => {
    if (!await confirmDialog(`Remove your ${row.provider} key?`, `Calls to ${row.provider} then use `
      + "the gateway's own key again, billed to your account.", "Remove key")) return;
    try {
      await api(`/v1/provider-keys/${encodeURIComponent(row.provider)}`, { method: "DELETE" });
      go("/provider-keys", `Your ${row.provider} key is removed.`);
    } catch (error) {
      box.show("error", error.message);
    }
  };
  let adding;
  if (stored.enabled === false) {
    adding = h("p", { class: "notice" }, "Bring-your-own-key is off on this gateway: the operator "
      + "has set no accounts.secret (GATEWAY_SECRET).");
  } else if (!providers.length) {
    adding = h("p", { class: "notice" }, "No provider on this gateway takes your own key: the "
      + "operator has switched on none besides the built-in mock.");
  } else {
    adding = form({ class: "row" }, [
      field({ label: "Provider", name: "provider", options: providers.map((p) => [p, p]) }),
      field({ label: "API key", name: "api_key", type: "password", autocomplete: "off", required: true,
        minlength: 8 }),
      h("button", { type: "submit" }, "Save key"),
    ], save, saveBox);
  }
  return page("Provider keys",
    h("p", { class: "muted" }, "Your own provider keys: calls to that provider use your key "
      + "(billed by the provider, not drawn from your balance). Stored encrypted; only the last "
      + "four characters are shown again."),
    h("section", { class: "panel", "aria-labelledby": "add-title" },
      h("h2", { id: "add-title" }, "Add or replace a key"), saveBox, adding),
    h("section", { class: "panel", "aria-labelledby": "stored-title" },
      h("h2", { id: "stored-title" }, "Stored keys"),
      table(null, [
        ["Provider", (r) => r.provider],
        ["Key", (r) => h("code", {}, r.hint)],
        ["Added", (r) => when(r.created_at)],
        ["", (r) => h("button", { type: "button", class: "danger small", onclick: remove(r),
          "aria-label": `Remove ${r.provider} key` }, "Remove")],
      ], stored.data, "No provider keys: every call uses the gateway's own keys.")));
}
