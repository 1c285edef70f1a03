// Renders /openapi.json for reading. No dependencies, no inline code, DOM built with
// textContent only (the document's text is never parsed as HTML).
"use strict";

let components = {};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// Text with `code` spans, as the document's descriptions use them.
function prose(text) {
  const span = el("span");
  String(text || "").split("`").forEach((part, i) => {
    span.append(i % 2 ? el("code", null, part) : document.createTextNode(part));
  });
  return span;
}

function resolve(schema) {
  let seen = 0;
  while (schema && schema.$ref && seen++ < 20) {
    schema = components[schema.$ref.split("/").pop()] || {};
  }
  return schema || {};
}

function typeName(schema) {
  if (!schema) return "any";
  if (schema.$ref) return schema.$ref.split("/").pop();
  const alts = schema.anyOf || schema.oneOf;
  if (alts) return alts.map(typeName).join(" | ");
  if (schema.type === "array") return typeName(schema.items) + "[]";
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.type === "object" && schema.additionalProperties) {
    return "map of " + typeName(schema.additionalProperties);
  }
  return schema.type || "any";
}

// The object behind a field, if it has fields of its own worth unfolding.
function objectOf(schema) {
  const alts = schema.anyOf || schema.oneOf;
  if (alts) {
    const objects = alts.map(objectOf).filter(Boolean);
    return objects.length === 1 ? objects[0] : null;
  }
  if (schema.type === "array") return objectOf(schema.items || {});
  const target = resolve(schema);
  return target.properties ? target : null;
}

function fields(schema, depth, trail) {
  schema = resolve(schema);
  if (!schema.properties) return el("div", null, el("span", { class: "type" }, typeName(schema)));
  const required = new Set(schema.required || []);
  const table = el("table", null,
    el("tr", null, el("th", null, "field"), el("th", null, "type"), el("th", null, "")));
  for (const [name, prop] of Object.entries(schema.properties)) {
    const described = resolve(prop).description || prop.description;
    table.append(el("tr", null,
      el("td", null, el("code", null, name), required.has(name) ? el("span", { class: "req" }, " required") : null),
      el("td", null, el("span", { class: "type" }, typeName(prop))),
      el("td", null, described ? prose(described) : null)));
    const inner = objectOf(prop);
    const title = inner && inner.title;
    if (inner && depth < 4 && !trail.includes(title)) {
      table.append(el("tr", null, el("td", { colspan: "3", class: "fields" },
        fields(inner, depth + 1, trail.concat([title])))));
    }
  }
  return table;
}

function parameters(op) {
  if (!op.parameters || !op.parameters.length) return null;
  const table = el("table", null,
    el("tr", null, el("th", null, "name"), el("th", null, "in"), el("th", null, "type"), el("th", null, "")));
  for (const p of op.parameters) {
    table.append(el("tr", null,
      el("td", null, el("code", null, p.name), p.required ? el("span", { class: "req" }, " required") : null),
      el("td", null, p.in), el("td", null, el("span", { class: "type" }, typeName(p.schema))),
      el("td", null, prose(p.description || ""))));
  }
  return el("div", null, el("h4", null, "Parameters"), table);
}

function requestBody(op) {
  const body = op.requestBody;
  if (!body) return null;
  const media = body.content["application/json"] || Object.values(body.content)[0];
  const out = el("div", null, el("h4", null, "Request body" + (body.required ? "" : " (optional)")));
  const schema = resolve(media.schema);
  if (schema.description) out.append(el("p", null, prose(schema.description)));
  out.append(fields(media.schema, 0, []));
  if (media.example) {
    out.append(el("h4", null, "Example"), el("pre", null, JSON.stringify(media.example, null, 2)));
  }
  return out;
}

function responses(op) {
  const out = el("div", null, el("h4", null, "Responses"));
  const table = el("table", null);
  for (const [status, answer] of Object.entries(op.responses || {})) {
    const kinds = Object.keys(answer.content || {});
    const media = (answer.content || {})[kinds[0]] || {};
    const ok = status.startsWith("2");
    const detail = el("td", null, prose(answer.description || ""));
    if (kinds.length) detail.append(el("div", { class: "type" }, kinds.join(", ") + ": " + typeName(media.schema)));
    if (answer.headers) {
      const headers = el("table", null, el("tr", null, el("th", null, "header"), el("th", null, "")));
      for (const [name, header] of Object.entries(answer.headers)) {
        headers.append(el("tr", null, el("td", null, el("code", null, name)), el("td", null, prose(header.description || ""))));
      }
      detail.append(headers);
    }
    if (ok && media.schema && objectOf(media.schema)) detail.append(fields(media.schema, 1, []));
    table.append(el("tr", null, el("td", { class: "status " + (ok ? "ok" : "err") }, status), detail));
  }
  out.append(table);
  return out;
}

function authLabel(op) {
  if (!op.security || !op.security.length) return "no key";
  return op.tags && op.tags.includes("admin") ? "admin key" : "API key";
}

function operation(path, method, op) {
  const anchor = (method + path).replace(/[^a-zA-Z0-9]+/g, "-");
  const details = el("details", { id: anchor });
  details.append(el("summary", null,
    el("span", { class: "method " + method }, method.toUpperCase()),
    el("span", { class: "path" }, path),
    el("span", { class: "summary" }, prose(op.summary || "")),
    el("span", { class: "auth" }, authLabel(op))));
  const body = el("div", { class: "op-body" });
  if (op.description) body.append(el("p", null, prose(op.description)));
  for (const part of [parameters(op), requestBody(op), responses(op)]) if (part) body.append(part);
  details.append(body);
  const article = el("article", { class: "op" }, details);
  article.dataset.search = [method, path, op.summary, (op.tags || []).join(" ")].join(" ").toLowerCase();
  return { article, anchor };
}

function render(spec) {
  components = (spec.components || {}).schemas || {};
  document.title = spec.info.title + " API";
  document.getElementById("title").textContent = spec.info.title + " API";
  const subtitle = document.getElementById("subtitle");
  subtitle.textContent = "";
  subtitle.append(prose(spec.info.description + " Version " + spec.info.version + ". "),
    el("a", { href: "openapi.json" }, "openapi.json"));
  const byTag = new Map();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([path, method, op]);
    }
  }
  const main = document.getElementById("operations");
  const toc = document.getElementById("toc");
  for (const [tag, ops] of byTag) {
    const section = el("section", { class: "tag" }, el("h2", null, tag));
    toc.append(el("h3", null, tag));
    for (const [path, method, op] of ops) {
      const { article, anchor } = operation(path, method, op);
      section.append(article);
      const link = el("a", { href: "#" + anchor, title: op.summary || "" }, method.toUpperCase() + " " + path);
      link.addEventListener("click", () => { article.querySelector("details").open = true; });
      toc.append(link);
    }
    main.append(section);
  }
  document.getElementById("filter").addEventListener("input", (event) => {
    const words = event.target.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const article of main.querySelectorAll("article.op")) {
      article.classList.toggle("hidden", !words.every((w) => article.dataset.search.includes(w)));
    }
  });
  if (location.hash) {
    const target = document.getElementById(location.hash.slice(1));
    if (target) { target.open = true; target.scrollIntoView(); }
  }
}

fetch("openapi.json")
  .then((answer) => { if (!answer.ok) throw new Error("HTTP " + answer.status); return answer.json(); })
  .then(render)
  .catch((error) => {
    const subtitle = document.getElementById("subtitle");
    subtitle.className = "error";
    subtitle.textContent = "Could not load /openapi.json: " + error.message;
  });
