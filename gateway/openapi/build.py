"""The OpenAPI 3.1 document, built from the app's mounted routes and the ``Operation`` table.

Schemas come from ``msgspec.json.schema_components`` over every Struct the operations name, so
the document and the decoders share one source. A mounted route without an ``Operation`` is
still listed (``x-undocumented``), so nothing the server answers is missing from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import msgspec
from starlette.routing import BaseRoute, Route

from gateway.openapi import schemas
from gateway.openapi.operation import Operation

REF = "#/components/schemas/{name}"
_CONVERTOR = re.compile(r"\{([^}:]+):[^}]+\}")
_PARAM = re.compile(r"\{([^}]+)\}")

ERROR_MEANING = {
    400: "Bad request: the message names the field (`param`)",
    401: "Missing or invalid API key",
    402: "Insufficient balance (prepaid tiers)",
    403: "Not allowed: blocked account, model outside the allow-list, feature switched off",
    404: "Unknown model, key or resource",
    409: "Already exists",
    413: "Body too large (`server.max_body_bytes`)",
    429: "Rate limit or daily/monthly quota: see `Retry-After`",
    502: "Every target failed",
    503: "Maintenance mode, or the store is unavailable",
    504: "The upstream timed out",
}

_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "key": [{"bearer": []}, {"apiKey": []}],
    "admin": [{"bearer": []}],
    "none": [],
}


def _version() -> str:
    try:
        return metadata.version("llm-gateway")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def mounted(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """``(METHOD, path)`` of every route in the schema, paths in OpenAPI's ``{name}`` form."""
    found: list[tuple[str, str]] = []
    for route in routes:
        if not isinstance(route, Route) or not route.include_in_schema:
            continue
        path = _CONVERTOR.sub(r"{\1}", route.path)
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((method, path))
    return found


def _content(media_type: str, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    return {media_type: {"schema": dict(schema) if schema else {}}}


def _answers(op: Operation, refs: Mapping[type, Any]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, struct in op.answers.items():
        schema = refs[struct] if struct is not None else (
            {"type": "string"} if not op.media_type.endswith("json") else None)
        content = _content(op.media_type, schema)
        if op.stream and status == 200:
            content["text/event-stream"] = {"schema": refs[schemas.ServerSentEvent]}
        answers[str(status)] = {"description": (struct.__doc__ or "OK").split("\n\n")[0],
                                "content": content}
        if op.headers:
            answers[str(status)]["headers"] = {
                name: {"description": meaning, "schema": {"type": "string"}}
                for name, meaning in op.headers.items()}
    error = schemas.AnthropicError if op.dialect == "anthropic" else schemas.OpenAIError
    for status in op.errors:
        answers[str(status)] = {"description": ERROR_MEANING.get(status, "Error"),
                                "content": _content("application/json", refs[error])}
    return answers


def _operation(op: Operation, refs: Mapping[type, Any]) -> dict[str, Any]:
    words = re.findall(r"[a-z0-9]+", _PARAM.sub(r"by_\1", op.path).lower())
    entry: dict[str, Any] = {
        "operationId": "_".join([op.method.lower(), *words]),
        "summary": op.summary,
        "tags": [op.tag],
        "security": _SECURITY[op.auth],
        "responses": _answers(op, refs),
    }
    if op.description:
        entry["description"] = op.description
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in _PARAM.findall(op.path)]
    params += [{"name": p.name, "in": "query", "required": p.required, "schema": dict(p.schema),
                "description": p.description} for p in op.query]
    if params:
        entry["parameters"] = params
    if op.body is not None:
        media: dict[str, Any] = {"schema": refs[op.body]}
        if op.example is not None:
            media["example"] = dict(op.example)
        entry["requestBody"] = {"required": op.body_required,
                                "content": {"application/json": media}}
    return {**entry, **op.extra}


def _undocumented() -> dict[str, Any]:
    return {"summary": "Not described yet", "x-undocumented": True,
            "responses": {"default": {"description": "Not described yet"}}}


def build_spec(routes: Iterable[BaseRoute], operations: Iterable[Operation]) -> dict[str, Any]:
    """The document for the routes actually mounted, described by ``operations``."""
    by_key = {op.key: op for op in operations}
    present = [(key, by_key.get(key)) for key in mounted(routes)]
    structs: list[type] = [schemas.OpenAIError, schemas.AnthropicError, schemas.ServerSentEvent]
    for _, op in present:
        if op is not None:
            structs += [t for t in (op.body, *op.answers.values()) if t is not None]
    unique = list(dict.fromkeys(structs))
    refs_list, components = msgspec.json.schema_components(unique, ref_template=REF)
    refs = dict(zip(unique, refs_list, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in present:
        item = _operation(op, refs) if op is not None else _undocumented()
        paths.setdefault(path, {})[method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LLM gateway",
            "version": _version(),
            "description": "One OpenAI- and Anthropic-compatible endpoint in front of many "
                           "model providers, with API keys, tiers, usage and billing.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API key, a session token from login, or (admin "
                                          "routes) the admin key"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }
