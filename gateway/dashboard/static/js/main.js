// The dashboard's shell: hash routes (#/keys…), the navigation, and the session guard.

import { api, session } from "./api.js";
import { h, messageBox } from "./dom.js";
import * as account from "./pages/account.js";
import * as admin from "./pages/admin.js";
import * as auth from "./pages/auth.js";
import * as billing from "./pages/billing.js";
import * as usage from "./pages/usage.js";
import * as webhooks from "./pages/webhooks.js";

const EMAIL = "gateway.email";

// path → [render, who may see it: "anyone" | "user" | "admin", nav label]
const ROUTES = {
  "/login": [auth.login, "anyone"],
  "/signup": [auth.signup, "anyone"],
  "/forgot": [auth.forgot, "anyone"],
  "/reset": [auth.reset, "anyone"],
  "/verify": [auth.verify, "anyone"],
  "/admin-login": [auth.adminLogin, "anyone"],
  "/overview": [account.overview, "user", "Overview"],
  "/keys": [account.keys, "user", "API keys"],
  "/usage": [usage.usage, "user", "Usage"],
  "/billing": [billing.billing, "user", "Billing"],
  "/provider-keys": [billing.providerKeys, "user", "Provider keys"],
  "/webhooks": [webhooks.webhooks, "user", "Webhooks"],
  "/admin/users": [admin.users, "admin", "Users"],
  "/admin/usage": [admin.usageAll, "admin", "All usage"],
  "/admin/system": [admin.system, "admin", "System"],
};

let notice = "";
let moved = false;

function parse() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(1) : "/";
  const [path, query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

function go(path, message = "") {
  notice = message;
  if (location.hash === `#${path}`) render();
  else location.hash = path;
}

function home() {
  if (session.token) return "/overview";
  if (session.admin) return "/admin/users";
  return "/login";
}

async function logOut() {
  if (session.token && !session.withKey) {
    try { await api("/v1/auth/logout", { method: "POST" }); } catch { /* ended already */ }
  }
  session.token = "";
  session.admin = "";
  sessionStorage.removeItem(EMAIL);
  go("/login", "You are logged out.");
}

function nodesOf(list) {
  return list.flat(Infinity).filter((node) => node instanceof Node);
}

function navigation(current) {
  const links = (role) => Object.entries(ROUTES)
    .filter(([, [, who, label]]) => who === role && label)
    .map(([path, [, , label]]) => h("a", { href: `#${path}`,
      "aria-current": path === current ? "page" : undefined }, label));
  const nav = document.getElementById("nav");
  const anyone = session.token || session.admin;
  nav.replaceChildren(...nodesOf([
    ...(session.token ? links("user") : []),
    ...(session.admin ? [h("span", { class: "group" }, "Admin"), ...links("admin")] : []),
    h("span", { class: "spacer" }),
    anyone ? h("span", { class: "who" }, sessionStorage.getItem(EMAIL) || "operator") : null,
    anyone
      ? h("button", { type: "button", class: "small", onclick: logOut }, "Log out")
      : [h("a", { href: "#/login" }, "Log in"), h("a", { href: "#/signup" }, "Sign up")],
  ]));
}

function signedIn(token, email, withKey = false) {
  if (withKey) session.key = token;
  else session.token = token;
  sessionStorage.setItem(EMAIL, email || "");
}

async function render() {
  let { path, query } = parse();
  if (path === "/" || !ROUTES[path]) path = home();
  const [view, who] = ROUTES[path];
  if ((who === "user" && !session.token) || (who === "admin" && !session.admin)) {
    go(who === "admin" ? "/admin-login" : "/login", "Log in to see that page.");
    return;
  }
  navigation(path);
  const main = document.getElementById("main");
  const box = messageBox();
  if (notice) box.show("ok", notice);
  notice = "";
  try {
    const nodes = await view({ query, go, refresh: render, box, signedIn });
    main.replaceChildren(box, ...nodesOf(nodes));
  } catch (error) {
    if (error.status === 401 && who === "user") {
      session.token = "";
      go("/login", "Your session has ended; log in again.");
      return;
    }
    box.show("error", error.message);
    main.replaceChildren(box);
  }
  // after a move between pages, screen readers and the keyboard start at the new content; on
  // the first load the skip link stays the first stop
  if (moved) main.focus({ preventScroll: true });
  moved = true;
}

window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#/") || location.hash === "") render();
});
document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});
render();
