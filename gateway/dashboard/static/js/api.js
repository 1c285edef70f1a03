// The account API as the pages use it. The session token lives in sessionStorage (this tab
// only, gone when it closes); an API key or the operator's admin key, which do not expire,
// live in this module's memory only.
// Both travel as a Bearer header, never as a cookie, so no other site can send them.

const TOKEN = "gateway.session";
let adminKey = "";
let apiKey = "";

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  /** A session token from login (kept for this tab), or an API key (kept in memory only). */
  get token() { return apiKey || sessionStorage.getItem(TOKEN) || ""; },
  set token(value) {
    apiKey = "";
    if (value) sessionStorage.setItem(TOKEN, value);
    else sessionStorage.removeItem(TOKEN);
  },
  get withKey() { return Boolean(apiKey); },
  set key(value) {
    sessionStorage.removeItem(TOKEN);
    apiKey = value || "";
  },
  get admin() { return adminKey; },
  set admin(value) { adminKey = value || ""; },
};

/** Calls `path`; resolves to the decoded JSON, or throws ApiError with the server's message. */
export async function api(path, { method = "GET", body, admin = false } = {}) {
  const headers = { Accept: "application/json" };
  const credential = admin ? session.admin : session.token;
  if (credential) headers.Authorization = `Bearer ${credential}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, credentials: "omit", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError("The gateway cannot be reached; check that it is running", 0);
  }
  const text = await response.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = {}; }
  if (!response.ok) {
    const error = data.error || {};
    throw new ApiError(error.message || `The gateway answered ${response.status}`,
      response.status, error.code || error.type);
  }
  return data;
}
