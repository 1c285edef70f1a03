// The operator's pages (admin key): users, usage across users, maintenance and provider health.

import { api } from "../api.js";
import { usageCharts } from "../chart.js";
import { badge, count, email, field, form, h, messageBox, num, page, table, usd, when } from "../dom.js";
import { totalsTable, windowOf, windowSwitch } from "./usage.js";

const admin = (path, options = {}) => api(path, { ...options, admin: true });

function manageDialog(user, tiers, done) {
  const box = messageBox();
  const dialog = h("dialog", { "aria-labelledby": "manage-title" });
  const close = () => { dialog.close(); dialog.remove(); };
  const act = (action, body, message) => async () => {
    await admin(`/v1/admin/users/${encodeURIComponent(user.email)}/${action}`,
      { method: "POST", body });
    close();
    done(message);
  };
  const blocked = user.status === "blocked";
  dialog.append(
    h("h2", { id: "manage-title", class: "name" }, user.email),
    h("p", { class: "muted" }, `${user.tier} tier · ${user.status} · balance ${usd(user.balance_usd)}`),
    box,
    form({ class: "row" }, [
      field({ label: "Tier", name: "tier", value: user.tier, options: tiers.map((t) => [t, t]) }),
      h("button", { type: "submit" }, "Change tier"),
    ], ({ tier }) => act("tier", { tier }, `${user.email} is now on the ${tier} tier.`)(), box),
    form({ class: "row" }, [
      field({ label: "Top-up (USD)", name: "amount", type: "number", min: "0.01", step: "0.01",
        required: true }),
      h("button", { type: "submit" }, "Top up"),
    ], ({ amount }) => act("topup", { amount_usd: Number(amount) },
      `${usd(amount)} added to ${user.email}.`)(), box),
    h("div", { class: "actions dialog-foot" },
      h("button", { type: "button", class: blocked ? "" : "danger",
        onclick: () => act(blocked ? "unblock" : "block", {},
          `${user.email} is ${blocked ? "unblocked" : "blocked"}.`)().catch((e) => box.show("error", e.message)) },
      blocked ? "Unblock" : "Block"),
      h("button", { type: "button", class: "secondary", onclick: close }, "Close")));
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

export async function users({ query, go }) {
  const q = query.get("q") || "";
  const here = q ? `/admin/users?q=${encodeURIComponent(q)}` : "/admin/users";
  const [list, tiers] = await Promise.all([
    admin(`/v1/admin/users?q=${encodeURIComponent(q)}`), api("/v1/tiers")]);
  const tierNames = tiers.data.map((t) => t.id);
  const search = form({ class: "row", role: "search" }, [
    field({ label: "Search users", name: "q", type: "search", value: q, hint: "Email or name" }),
    h("button", { type: "submit" }, "Search"),
  ], ({ q: text }) => go(`/admin/users?q=${encodeURIComponent(text.trim())}`));
  return page("Users",
    h("section", { class: "panel" }, search),
    h("section", { class: "panel", "aria-labelledby": "users-title" },
      h("h2", { id: "users-title" }, q ? `Users matching "${q}"` : "All users",
        h("span", { class: "hint" }, ` · ${num(list.data.length)}`)),
      table(null, [
        ["Email", (u) => [email(u.email), u.name ? h("div", { class: "hint" }, u.name) : null], "name"],
        ["Tier", (u) => u.tier],
        ["Status", (u) => badge(u.status, u.status === "blocked" ? "bad" : "ok")],
        ["Balance", (u) => usd(u.balance_usd), "num"],
        ["Signed up", (u) => when(u.created_at), "hide-narrow"],
        ["", (u) => h("button", { type: "button", class: "small secondary", "aria-label": `Manage ${u.email}`,
          onclick: () => manageDialog(u, tierNames, (message) => go(here, message)) }, "Manage")],
      ], list.data, q ? "No user matches that search." : "No users have signed up yet.")));
}

export async function usageAll({ query, go }) {
  const days = windowOf(query);
  const data = await admin(`/v1/admin/usage?days=${days}`);
  return page("Usage across users",
    windowSwitch(days, "/admin/usage", go),
    h("section", { class: "panel", "aria-labelledby": "all-days" },
      h("h2", { id: "all-days" }, `Last ${days} days`),
      h("p", { class: "muted" }, `${count(data.requests, "request")}, ${count(data.total_tokens, "token")}, `
        + `${usd(data.cost_usd)} across every user.`),
      usageCharts(data.daily, { num, usd })),
    h("section", { class: "panel", "aria-labelledby": "by-user" },
      h("h2", { id: "by-user" }, "By user"),
      totalsTable(null, "User", data.by_user, "No requests in this window.", email)),
    h("section", { class: "panel", "aria-labelledby": "all-models" },
      h("h2", { id: "all-models" }, "By model"),
      totalsTable(null, "Model", data.by_model, "No requests in this window.")));
}

function healthState(d) {
  if (!d.benched) return badge("Serving", "ok");
  const kind = d.rate_limited ? "Rate-limited" : "Benched";
  const left = Math.max(Math.round(d.benched_until - Date.now() / 1000), 0);
  return [badge(kind, "bad"),
    h("div", { class: "hint" }, `until ${when(d.benched_until, "", true)} (in ${left} s)`)];
}

export async function system({ go }) {
  const [state, health] = await Promise.all([
    admin("/v1/admin/maintenance"), admin("/v1/admin/health")]);
  const box = messageBox();
  const save = async ({ enabled, message }) => {
    await admin("/v1/admin/maintenance", { method: "POST",
      body: { enabled: enabled === "on", message } });
    go("/admin/system", enabled === "on" ? "Maintenance mode is on: model calls get 503."
      : "Maintenance mode is off.");
  };
  const benched = health.data.filter((d) => d.benched).length;
  return page("System",
    h("section", { class: "panel", "aria-labelledby": "maint-title" },
      h("h2", { id: "maint-title" }, "Maintenance mode ",
        badge(state.enabled ? "On" : "Off", state.enabled ? "warn" : "ok")),
      h("p", { class: "muted" }, "While it is on, every model call gets 503 with your message; "
        + "the dashboard and account API keep working."),
      box,
      form({ class: "stack" }, [
        h("div", { class: "check" }, h("input", { type: "checkbox", id: "maint-on", name: "enabled",
          checked: state.enabled }), h("label", { for: "maint-on" }, "Maintenance mode on")),
        field({ label: "Message", name: "message", value: state.message, maxlength: 500,
          hint: "Shown to callers, e.g. \"Back at 14:00 UTC\"" }),
        h("div", {}, h("button", { type: "submit" }, "Save maintenance setting")),
      ], save, box)),
    h("section", { class: "panel", "aria-labelledby": "health-title" },
      h("h2", { id: "health-title" }, "Provider health"),
      h("p", { class: "muted" }, `${benched} of ${count(health.data.length, "deployment")} benched. `
        + "A deployment that keeps failing rests for a cool-down, or for its provider's Retry-After."),
      table(null, [
        ["Deployment", (d) => [h("code", {}, d.deployment), h("div", { class: "hint" }, d.models.join(", "))], "name"],
        ["Provider", (d) => d.provider, "hide-narrow"],
        ["State", healthState],
        ["In flight", (d) => num(d.in_flight), "num"],
        ["Latency", (d) => (d.latency_s == null ? "—" : `${num(Math.round(d.latency_s * 1000))} ms`), "num"],
      ], health.data, "No deployments are configured.")));
}
