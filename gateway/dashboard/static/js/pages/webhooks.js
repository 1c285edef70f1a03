// Webhooks: the signed-in user's endpoints, their signing secrets, test events and deliveries.
// Every call is one of /v1/webhooks (docs/platform.md); they need a session or a manage key.

import { api } from "../api.js";
import { badge, confirmDialog, field, form, h, messageBox, page, secretPanel, table, usd, when }
  from "../dom.js";

const HOOKS = "/v1/webhooks";
const SHOWN = 10;  // deliveries shown per endpoint

const chosenTest = new Map();  // endpoint id → the test event last sent to it
const path = (endpoint, tail = "") => `${HOOKS}/${encodeURIComponent(endpoint.id)}${tail}`;
const label = (endpoint) => endpoint.name || endpoint.url;

/** The latest attempt of each delivery, newest first (attempts arrive newest first). */
function latestPerDelivery(attempts) {
  const seen = new Map();
  for (const attempt of attempts) {
    if (!seen.has(attempt.delivery_id)) seen.set(attempt.delivery_id, attempt);
  }
  return [...seen.values()].slice(0, SHOWN);
}

function outcome(d) {
  if (d.delivery_status === "test") return d.success ? badge("Test sent", "ok") : badge("Test failed", "bad");
  if (d.delivery_status === "pending") return badge("Retrying", "warn");
  return d.delivery_status === "delivered" ? badge("Delivered", "ok") : badge("Failed", "bad");
}

function nextRetry(d) {
  if (d.delivery_status === "pending") return when(d.next_attempt_at, "Now", true);
  return d.delivery_status === "failed" ? "Gave up" : "—";
}

function deliveriesTable(attempts) {
  return table("Recent deliveries", [
    ["Event", (d) => d.event_type || "—"],
    ["Result", outcome],
    ["Status", (d) => (d.status_code ? String(d.status_code) : "No answer"), "num"],
    ["Attempts", (d) => String(d.attempts), "num"],
    ["Time", (d) => when(d.created_at, "—", true)],
    ["Next retry", nextRetry],
    ["Error", (d) => d.error || "—", "name"],
  ], latestPerDelivery(attempts), "No deliveries yet: send a test event to see one here.");
}

function eventChoices(events) {
  return h("fieldset", { class: "choices" },
    h("legend", {}, "Events"),
    h("div", { class: "choice-grid" }, events.map((event) => {
      const id = `event-${event.type.replace(/\W/g, "-")}`;
      const about = event.reserved ? `${event.description} (reserved: not sent yet)` : event.description;
      return h("div", { class: "choice" },
        h("input", { type: "checkbox", id, name: "event_types", value: event.type,
          checked: !event.reserved, "aria-describedby": `${id}-hint` }),
        h("div", {}, h("label", { for: id }, event.type),
          h("div", { class: "hint", id: `${id}-hint` }, about)));
    })));
}

function createForm(events, created, box) {
  const create = async (values, el) => {
    const eventTypes = new FormData(el).getAll("event_types");
    if (!eventTypes.length) throw new Error("Choose at least one event to send");
    const body = { url: values.url.trim(), name: values.name.trim(), event_types: eventTypes };
    if (values.balance_low_usd) body.balance_low_usd = Number(values.balance_low_usd);
    await created(await api(HOOKS, { method: "POST", body }));
  };
  return form({ class: "stack" }, [
    field({ label: "URL", name: "url", type: "url", required: true, maxlength: 2048,
      placeholder: "https://hooks.example.com/gateway",
      hint: "Where events are POSTed: an http(s) address the gateway may reach" }),
    field({ label: "Description", name: "name", maxlength: 200,
      hint: "What receives them, e.g. \"billing alerts\" (optional)" }),
    eventChoices(events),
    field({ label: "Balance alert (USD)", name: "balance_low_usd", type: "number", min: "0",
      step: "any", hint: "balance.low is sent when a prepaid balance is under this (empty: never)" }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create endpoint")),
  ], create, box);
}

/** One endpoint: what it is, its actions, and its recent deliveries. */
function endpointCard(endpoint, attempts, act) {
  const name = label(endpoint);
  const enabled = endpoint.status === "enabled";
  const titleId = `title-${endpoint.id}`;
  const box = messageBox();
  const run = (action) => () => action(endpoint).catch((error) => box.show("error", error.message));
  const test = form({ class: "row test" }, [
    field({ label: "Test event", name: "event_type",
      value: chosenTest.get(endpoint.id) || endpoint.event_types[0],
      options: endpoint.event_types.map((t) => [t, t]) }),
    h("button", { type: "submit", id: `test-${endpoint.id}`, "aria-label": `Send test to ${name}` },
      "Send test"),
  ], ({ event_type: eventType }) => act.test(endpoint, eventType), box);
  return h("article", { class: "endpoint", "aria-labelledby": titleId },
    h("div", { class: "endpoint-head" },
      h("h3", { id: titleId }, name),
      enabled ? badge("Enabled", "ok") : badge("Disabled", "bad")),
    enabled ? null : h("p", { class: "notice" },
      `Disabled: ${endpoint.disabled_reason || "no reason given"}. Nothing is sent until it is enabled again.`),
    h("dl", { class: "facts" },
      endpoint.name ? [h("dt", {}, "URL"), h("dd", {}, h("code", {}, endpoint.url))] : null,
      h("dt", {}, "Events"), h("dd", { class: "badges" }, endpoint.event_types.map((t) => badge(t))),
      endpoint.balance_low_usd
        ? [h("dt", {}, "Balance alert"), h("dd", {}, `under ${usd(endpoint.balance_low_usd)}`)] : null,
      h("dt", {}, "Signing secret"), h("dd", {}, h("code", {}, endpoint.signing_secret_hint)),
      h("dt", {}, "Created"), h("dd", {}, when(endpoint.created_at))),
    box,
    h("div", { class: "endpoint-actions" }, test,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: run(act.rotate),
          "aria-label": `Rotate secret of ${name}` }, "Rotate secret"),
        h("button", { type: "button", class: "secondary", id: `toggle-${endpoint.id}`,
          onclick: run(act.toggle), "aria-label": `${enabled ? "Disable" : "Enable"} ${name}` },
        enabled ? "Disable" : "Enable"),
        h("button", { type: "button", class: "danger", onclick: run(act.remove),
          "aria-label": `Delete ${name}` }, "Delete"))),
    deliveriesTable(attempts));
}

export async function webhooks(ctx) {
  const { go, box } = ctx;
  let list;
  let events;
  try {
    [list, events] = await Promise.all([api(HOOKS), api(`${HOOKS}/event_types`)]);
  } catch (error) {
    if (error.status !== 403) throw error;  // an inference-only key, or a blocked account
    return page("Webhooks", h("p", { class: "notice", role: "status" }, error.message));
  }
  const logs = await Promise.all(list.data.map((e) => api(path(e, `/deliveries?limit=${SHOWN * 5}`))));
  // Re-draws the page in place, keeping a secret still on show unless a new one replaces it;
  // then a message (in the endpoint's card with `at`), and the focus where it was.
  const redraw = async ({ message, secret, focus, at } = {}) => {
    const shown = secret || document.getElementById("secret-slot")?.firstElementChild;
    box.clear();
    const fresh = (await webhooks(ctx)).flat().filter(Boolean);
    document.getElementById("main").replaceChildren(box, ...fresh);
    if (shown) document.getElementById("secret-slot").replaceChildren(shown);
    const card = at && document.getElementById(`title-${at}`)?.closest("article");
    if (message) (card?.querySelector(".alert") || box).show(...message);
    document.getElementById(focus)?.focus();
  };
  const showSecret = (endpoint, title) => redraw({ focus: "new-secret-title",
    secret: secretPanel("new-secret", `${title} "${label(endpoint)}"`, endpoint.signing_secret) });
  const act = {
    async test(endpoint, eventType) {
      chosenTest.set(endpoint.id, eventType);
      const sent = await api(path(endpoint, "/test"), { method: "POST", body: { event_type: eventType } });
      const where = `Test ${eventType} to "${label(endpoint)}"`;
      await redraw({ focus: `test-${endpoint.id}`, at: endpoint.id, message: sent.success
        ? ["ok", `${where}: delivered, HTTP ${sent.status_code} in ${sent.duration_ms} ms.`]
        : ["error", `${where} failed: ${sent.error || `HTTP ${sent.status_code}`}`] });
    },
    async rotate(endpoint) {
      if (!await confirmDialog("Rotate the signing secret?", `Deliveries to "${label(endpoint)}" are `
        + "signed with a new secret from now on, and the old one stops verifying them. Give the new "
        + "secret to your receiver at once.", "Rotate secret")) return;
      await showSecret(await api(path(endpoint, "/rotate_secret"), { method: "POST" }), "New signing secret of");
    },
    async toggle(endpoint) {
      const disable = endpoint.status === "enabled";
      await api(path(endpoint), { method: "POST", body: { disabled: disable } });
      await redraw({ focus: `toggle-${endpoint.id}`, at: endpoint.id, message: ["ok", disable
        ? `"${label(endpoint)}" is disabled: no events are sent to it.`
        : `"${label(endpoint)}" is enabled again.`] });
    },
    async remove(endpoint) {
      if (!await confirmDialog("Delete this endpoint?", `"${label(endpoint)}" receives no more events, `
        + "and deliveries still waiting for it are dropped. This cannot be undone.", "Delete endpoint")) return;
      await api(path(endpoint), { method: "DELETE" });
      go("/webhooks", `Endpoint "${label(endpoint)}" is deleted.`);
    },
  };
  const createBox = messageBox();
  const slot = h("div", { id: "secret-slot" });
  return page("Webhooks",
    h("p", { class: "muted" }, "The gateway POSTs signed events to your endpoints (Standard Webhooks: "
      + "verify each with the endpoint's signing secret, e.g. with the openai SDK's "
      + "webhooks.verify_signature). A failed delivery is retried with backoff."),
    slot,
    h("section", { class: "panel", "aria-labelledby": "create-title" },
      h("h2", { id: "create-title" }, "Create an endpoint"), createBox,
      createForm(events.data, (made) => showSecret(made, "Signing secret of"), createBox)),
    h("section", { class: "panel", "aria-labelledby": "endpoints-title" },
      h("div", { class: "endpoint-head" },
        h("h2", { id: "endpoints-title" }, "Your endpoints"),
        list.data.length ? h("button", { type: "button", class: "secondary small", id: "refresh",
          onclick: () => redraw({ focus: "refresh" }) }, "Refresh deliveries") : null),
      list.data.length
        ? list.data.map((endpoint, i) => endpointCard(endpoint, logs[i].data, act))
        : h("p", { class: "empty" }, "No endpoints yet: create one above to receive events.")));
}
