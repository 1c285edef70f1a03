// Building blocks of the pages. Text always goes in as text nodes (never innerHTML), so nothing
// a user or the server wrote can become markup or script.

let uid = 0;

/** An element: h("p", {class: "x", onclick: fn}, "text", child…). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A labelled input: {label, name, type, value, hint, required, autocomplete, …}. */
export function field({ label, hint, options, ...input }) {
  const id = `f${++uid}`;
  const hintId = hint ? `${id}-hint` : undefined;
  const control = options
    ? h("select", { id, name: input.name, "aria-describedby": hintId },
      options.map(([value, text]) => h("option", { value, selected: value === input.value }, text)))
    : h("input", { id, type: input.type || "text", "aria-describedby": hintId, ...input });
  return h("div", { class: "field" },
    h("label", { for: id }, label), control, hint ? h("span", { class: "hint", id: hintId }, hint) : null);
}

/** A message region: alert(kind, text) shows, alert.clear() hides. */
export function messageBox() {
  const box = h("div", { class: "alert", role: "alert" });
  box.show = (kind, text) => {
    box.className = `alert ${kind}`;
    box.textContent = /[.!?)]$/.test(text) ? text : `${text}.`;  // server messages end bare
  };
  box.clear = () => { box.className = "alert"; box.textContent = ""; };
  return box;
}

/** A form whose submit runs `action(values)`, with its button busy meanwhile and errors shown. */
export function form(attrs, children, action, box) {
  const el = h("form", { novalidate: false, ...attrs }, children);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = el.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    box?.clear();
    try {
      await action(Object.fromEntries(new FormData(el).entries()), el);
    } catch (error) {
      if (box) box.show("error", error.message);
      else throw error;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return el;
}

/** A table: columns are [heading, cell(row), className?]; `empty` is shown when no rows.
 * At phone width each row becomes a card, unless `narrow` says the table fits as it is. */
export function table(caption, columns, rows, empty, narrow = false) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap" }, h("table", { class: narrow ? "narrow-fits" : undefined },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, columns.map(([head, , cls]) => h("th", { scope: "col", class: cls }, head)))),
    h("tbody", {}, rows.map((row) => h("tr", {},
      columns.map(([head, cell, cls]) => h("td", { class: cls, "data-label": head || undefined },
        h("span", { class: "cell" }, cell(row)))))))));
}

/** Asks before something that cannot be undone; resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, text),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "danger", onclick: () => dialog.close("yes") }, confirmLabel),
        h("button", { type: "button", class: "secondary", onclick: () => dialog.close("no") }, "Cancel")));
    // Escape closes it too, as a "no"
    dialog.addEventListener("close", () => { dialog.remove(); resolve(dialog.returnValue === "yes"); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A secret shown once: a focusable heading, the warning, the value and a Copy button. */
export function secretPanel(id, title, value) {
  const copied = h("span", { class: "hint", role: "status" });
  const code = h("code", { id }, value);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      copied.textContent = "Copied.";
    } catch {  // no clipboard (an insecure origin, or permission refused): select it instead
      const range = document.createRange();
      range.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copied.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  };
  return h("section", { class: "panel", "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title`, tabindex: "-1" }, title),
    h("p", { class: "notice" }, "Copy it now: it is shown only this once."),
    h("div", { class: "secret" }, code,
      h("button", { type: "button", onclick: copy, "aria-describedby": id }, "Copy"), copied));
}

const usdFormat = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD",
  minimumFractionDigits: 2, maximumFractionDigits: 6 });
const intFormat = new Intl.NumberFormat("en-US");

export const usd = (n) => usdFormat.format(Number(n || 0));
export const num = (n) => intFormat.format(Number(n || 0));
/** "1 request", "2 requests". */
export const count = (n, word) => `${num(n)} ${word}${Number(n) === 1 ? "" : "s"}`;
export const limit = (n) => (n ? num(n) : "Unlimited");

/** A Unix time as "2026-11-30 14:05 UTC" (with ":07" seconds when asked), or "Never". */
export function when(seconds, never = "Never", withSeconds = false) {
  if (!seconds) return never;
  return `${new Date(seconds * 1000).toISOString().slice(0, withSeconds ? 19 : 16).replace("T", " ")} UTC`;
}

/** An email address that may wrap after its "@" rather than mid-word. */
export function email(address) {
  const at = address.indexOf("@");
  return at < 0 ? address : h("span", {}, address.slice(0, at), h("wbr"), address.slice(at));
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

/** The page's frame: a title, then the children. */
export function page(title, ...children) {
  document.title = `${title} · Gateway dashboard`;
  return [h("h1", {}, title), ...children];
}
