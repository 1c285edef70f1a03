// Signing in and out: log in, sign up, forgot and reset password, and the operator's admin key.

import { api, session } from "../api.js";
import { field, form, h, messageBox } from "../dom.js";

function card(title, intro, body, links) {
  return [h("section", { class: "panel narrow", "aria-labelledby": "card-title" },
    h("h1", { id: "card-title" }, title),
    intro ? h("p", { class: "muted" }, intro) : null,
    body,
    links ? h("p", { class: "links" }, links) : null)];
}

export async function login({ go, signedIn }) {
  document.title = "Log in · Gateway dashboard";
  const box = messageBox();
  const submit = async ({ email, password }) => {
    const answer = await api("/v1/auth/login", { method: "POST", body: { email, password } });
    signedIn(answer.token, answer.user?.email || email);
    go("/overview");
  };
  const keyBox = messageBox();
  const withKey = async ({ key }) => {
    signedIn(key, "", true);
    try {
      const me = await api("/v1/auth/me");
      signedIn(key, me.email || "", true);
    } catch (error) {
      session.key = "";
      throw error;
    }
    go("/overview");
  };
  return card("Log in", "Your keys, usage and billing on this gateway.", [box, form({ class: "stack" }, [
    field({ label: "Email", name: "email", type: "email", autocomplete: "username", required: true }),
    field({ label: "Password", name: "password", type: "password", autocomplete: "current-password",
      required: true }),
    h("button", { type: "submit" }, "Log in"),
  ], submit, box),
  h("details", { class: "alt-login" }, h("summary", {}, "Log in with an API key instead"),
    h("p", { class: "hint" }, "For a key made with ", h("code", {}, "gateway keys create --user"),
      " or the one printed on first start. It is kept in this tab's memory only: reloading the "
      + "page forgets it."),
    keyBox,
    form({ class: "stack" }, [
      field({ label: "API key", name: "key", type: "password", autocomplete: "off", required: true }),
      h("button", { type: "submit", class: "secondary" }, "Log in with key"),
    ], withKey, keyBox))], [
    h("a", { href: "#/signup" }, "Create an account"),
    h("a", { href: "#/forgot" }, "Forgot your password?"),
    h("a", { href: "#/admin-login" }, "Operator? Sign in with the admin key"),
  ]);
}

export async function signup({ go, signedIn }) {
  document.title = "Sign up · Gateway dashboard";
  const box = messageBox();
  const submit = async ({ name, email, password }) => {
    const answer = await api("/v1/auth/signup", { method: "POST", body: { name, email, password } });
    if (answer.token) {
      signedIn(answer.token, answer.email || email);
      go("/overview", "Welcome! Create an API key to start calling models.");
    } else {
      box.show("ok", answer.message || "Check your email for the link that confirms your address, then log in.");
    }
  };
  return card("Sign up", null, [box, form({ class: "stack" }, [
    field({ label: "Name", name: "name", autocomplete: "name", hint: "Optional" }),
    field({ label: "Email", name: "email", type: "email", autocomplete: "username", required: true }),
    field({ label: "Password", name: "password", type: "password", autocomplete: "new-password",
      minlength: 8, required: true, hint: "At least 8 characters" }),
    h("button", { type: "submit" }, "Sign up"),
  ], submit, box)], [h("a", { href: "#/login" }, "Already have an account? Log in")]);
}

export async function forgot() {
  document.title = "Forgot password · Gateway dashboard";
  const box = messageBox();
  const submit = async ({ email }) => {
    const answer = await api("/v1/auth/forgot", { method: "POST", body: { email } });
    const sent = (answer.message || "If the account exists, a reset token was sent").replace(/\.$/, "");
    box.show("ok", `${sent}. Use it on the reset page.`);
  };
  return card("Forgot password", "We send a single-use reset token to the account's owner.", [box,
    form({ class: "stack" }, [
      field({ label: "Email", name: "email", type: "email", autocomplete: "username", required: true }),
      h("button", { type: "submit" }, "Send reset token"),
    ], submit, box)],
  [h("a", { href: "#/reset" }, "I have a reset token"), h("a", { href: "#/login" }, "Back to log in")]);
}

export async function reset({ query, go }) {
  document.title = "Reset password · Gateway dashboard";
  const box = messageBox();
  const submit = async ({ token, password }) => {
    const answer = await api("/v1/auth/reset", { method: "POST", body: { token, password } });
    session.token = "";
    go("/login", answer.message || "Password changed; log in again.");
  };
  return card("Reset password", null, [box, form({ class: "stack" }, [
    field({ label: "Reset token", name: "token", required: true, autocomplete: "off",
      value: query.get("token") || "" }),
    field({ label: "New password", name: "password", type: "password", autocomplete: "new-password",
      minlength: 8, required: true, hint: "At least 8 characters" }),
    h("button", { type: "submit" }, "Set new password"),
  ], submit, box)], [h("a", { href: "#/login" }, "Back to log in")]);
}

export async function adminLogin({ go }) {
  document.title = "Operator sign-in · Gateway dashboard";
  const box = messageBox();
  const submit = async ({ key }) => {
    session.admin = key;
    try {
      await api("/v1/admin/maintenance", { admin: true });
    } catch (error) {
      session.admin = "";
      throw error;
    }
    go("/admin/users");
  };
  return card("Operator sign-in", "The admin key (accounts.admin_key) is kept in this tab's memory "
    + "only: reloading the page forgets it.", [box, form({ class: "stack" }, [
    field({ label: "Admin key", name: "key", type: "password", autocomplete: "off", required: true }),
    h("button", { type: "submit" }, "Sign in as operator"),
  ], submit, box)], [h("a", { href: "#/login" }, "Back to user log in")]);
}

export async function verify({ query }) {
  document.title = "Confirm address · Gateway dashboard";
  const box = messageBox();
  const token = query.get("token") || "";
  const submit = async ({ token: given }) => {
    const answer = await api("/v1/auth/verify", { method: "POST", body: { token: given } });
    box.show("ok", answer.message || "Address confirmed: log in with your password.");
  };
  const confirm = form({ class: "stack" }, [
    field({ label: "Confirmation token", name: "token", required: true, autocomplete: "off",
      value: token }),
    h("button", { type: "submit" }, "Confirm address"),
  ], submit, box);
  return card("Confirm your address", "The link sent at signup carries the token.", [box, confirm],
    [h("a", { href: "#/login" }, "Log in")]);
}
