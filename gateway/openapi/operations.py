"""Every documented route, in one table: a route added to the app gets its ``Operation`` here.

``/openapi.json`` is built from the app's real routes: a route with no entry here still shows
up (with no schema) and ``tests/test_openapi.py`` fails naming it; an entry whose route is not
mounted is left out. Struct bodies live in ``schemas`` and ``account_schemas``.
"""

from __future__ import annotations

from gateway.openapi import account_schemas as a
from gateway.openapi import schemas as s
from gateway.openapi.operation import CHAT_ERRORS, CHAT_HEADERS, Operation, Param
from gateway.openapi.platform_operations import PLATFORM
from gateway.openapi.video_operations import VIDEO

_HELLO = [{"role": "user", "content": "Hello!"}]

SERVICE = (
    Operation("GET", "/health", "Liveness: 200 once the server accepts requests", "service",
              {200: s.Health}, auth="none", errors=()),
    Operation("GET", "/ready", "Readiness: the store and Redis answer", "service",
              {200: s.Readiness, 503: s.Readiness}, auth="none", errors=()),
    Operation("GET", "/metrics", "Prometheus metrics, summed over the workers", "service",
              {200: None}, auth="none", errors=(), media_type="text/plain"),
    Operation("GET", "/openapi.json", "This document", "service", {200: None}, auth="none",
              errors=()),
    Operation("GET", "/docs", "This document, rendered for reading", "service", {200: None},
              auth="none", errors=(), media_type="text/html"),
    Operation("GET", "/app", "The web dashboard (docs/dashboard.md)", "service", {200: None},
              auth="none", errors=(), media_type="text/html"),
    Operation("GET", "/app/{path}", "The web dashboard's files", "service", {200: None},
              auth="none", errors=(404,), media_type="text/html"),
)

MODELS = (
    Operation("GET", "/v1/models", "List models, routers and personas", "models",
              {200: s.ModelList}, errors=(401, 503)),
    Operation("GET", "/v1/models/{model_id}", "One catalog model", "models", {200: s.Model},
              errors=(401, 404, 503)),
)

_CHAT_DESCRIPTION = (
    "OpenAI's chat completions. `model` is a catalog id, alias, `<provider>/<model>`, router "
    "or persona. The answer's headers say what served it (`X-Resolved-Model`, "
    "`X-Fallback-Level`, `X-Router`) and what it cost (`X-Cost-USD`, `X-RateLimit-*`)."
)

CHAT = (
    Operation("POST", "/v1/chat/completions", "Create a chat completion", "chat",
              {200: s.ChatCompletion}, body=s.ChatCompletionRequest, errors=CHAT_ERRORS,
              headers=CHAT_HEADERS, stream=True, example={"model": "echo", "messages": _HELLO},
              description=_CHAT_DESCRIPTION),
)

RESPONSES = (
    Operation("POST", "/v1/responses", "Create a model response (the Responses API)", "chat",
              {200: s.ResponseObject}, body=s.ResponsesBody, errors=CHAT_ERRORS,
              headers=CHAT_HEADERS, stream=True, example={"model": "echo", "input": "Hello!"},
              description="OpenAI's Responses API, served by any model: translated to chat "
                          "completions, Messages or Gemini, or passed through to a provider "
                          "with `responses_api = true` (docs/responses.md)."),
    Operation("GET", "/v1/responses/{response_id}", "A stored response", "chat",
              {200: s.ResponseObject}, errors=(401, 404, 503),
              description="A response stored for your account (`store` not false), within the "
                          "retention (`[responses] retention_days`); any other id is a 404."),
    Operation("DELETE", "/v1/responses/{response_id}", "Delete a stored response", "chat",
              {200: s.ResponseDeleted}, errors=(401, 404, 503)),
    Operation("GET", "/v1/responses/{response_id}/input_items",
              "The input items of a stored response", "chat", {200: s.InputItemList},
              errors=(400, 401, 404, 503),
              query=(Param("order", {"type": "string", "enum": ["asc", "desc"]},
                           "desc (default) or asc"),
                     Param("after", {"type": "string"}, "the id of the item to list after"),
                     Param("limit", {"type": "integer", "minimum": 1, "maximum": 100},
                           "items per page, 20 by default"))),
)


EMBEDDINGS = (
    Operation("POST", "/v1/embeddings", "Create embeddings", "embeddings",
              {200: s.EmbeddingList}, body=s.EmbeddingsBody, errors=CHAT_ERRORS,
              headers=CHAT_HEADERS, example={"model": "mock/embed", "input": "Hello!"},
              description="OpenAI's embeddings API, served by the models of mode "
                          "`embeddings`: passed through to openai-kind providers, translated "
                          "for Gemini (docs/embeddings.md)."),
    Operation("POST", "/v1/rerank", "Rerank documents by a query", "rerank",
              {200: s.RerankList}, body=s.RerankBody, errors=CHAT_ERRORS,
              headers=CHAT_HEADERS,
              example={"model": "mock/rerank", "query": "cats", "documents": ["cats", "dogs"]},
              description="The Cohere/Jina rerank shape, served by the models of mode `rerank` "
                          "(docs/rerank-moderation.md)."),
    Operation("POST", "/v1/moderations", "Classify text as harmful or not", "moderation",
              {200: s.ModerationList}, body=s.ModerationBody, errors=CHAT_ERRORS,
              headers=CHAT_HEADERS, example={"model": "mock/moderation", "input": "Hello"},
              description="OpenAI's moderations API, served by the models of mode "
                          "`moderation` (docs/rerank-moderation.md)."),
)


IMAGES = (
    Operation("POST", "/v1/images/generations", "Create images", "images",
              {200: s.ImagesResponse}, body=s.ImagesBody, errors=CHAT_ERRORS,
              headers=CHAT_HEADERS, example={"model": "mock/image", "prompt": "a lighthouse"},
              description="OpenAI's images API, served by the models of mode `images`: passed "
                          "through to openai-kind providers, translated for MiniMax "
                          "(`kind = \"minimax\"`); billed per image (docs/images.md)."),
)


def _anthropic(prefix: str) -> tuple[Operation, ...]:
    note = " (for `ANTHROPIC_BASE_URL`)" if prefix else ""
    return (
        Operation("POST", f"{prefix}/v1/messages", f"Create a message{note}", "anthropic",
                  {200: s.AnthropicMessageResponse}, body=s.AnthropicMessagesRequest,
                  dialect="anthropic", errors=CHAT_ERRORS, headers=CHAT_HEADERS, stream=True,
                  example={"model": "echo", "max_tokens": 256, "messages": _HELLO},
                  description="Anthropic's Messages API, served by any model."),
        Operation("POST", f"{prefix}/v1/messages/count_tokens", f"Count a prompt's tokens{note}",
                  "anthropic", {200: s.TokenCount}, body=s.TokenCountRequest,
                  dialect="anthropic", errors=(400, 401, 404, 413, 503),
                  example={"model": "echo", "messages": _HELLO}),
    )


_ADMIN_ERRORS = (400, 401, 403, 404, 503)
_ACCOUNT_ERRORS = (400, 401, 403, 404, 503)
_DATE = {"type": "string"}

ACCOUNTS = (
    Operation("POST", "/v1/auth/signup", "Create an account; answers a session token", "auth",
              {201: a.Session, 202: a.PendingSignup}, body=a.SignupRequest, auth="none",
              errors=(400, 403, 409, 429, 503),
              example={"email": "ann@example.com", "password": "correct horse"}),
    Operation("POST", "/v1/auth/verify", "Confirm a signup's address with its token", "auth",
              {200: a.Verified}, body=a.VerifyRequest, auth="none", errors=(400, 503)),
    Operation("GET", "/v1/auth/verify", "The link sent to a pending signup", "auth",
              {200: a.Verified}, auth="none", errors=(400, 503),
              query=(Param("token", {"type": "string"}, "the verification token"),)),
    Operation("POST", "/v1/auth/login", "Log in; answers a session token", "auth",
              {200: a.Login}, body=a.LoginRequest, auth="none", errors=(400, 401, 429, 503)),
    Operation("GET", "/v1/auth/me", "Profile, tier, limits, balance and usage", "auth",
              {200: a.Profile}, errors=(401, 503)),
    Operation("POST", "/v1/auth/forgot", "Send a password reset token", "auth",
              {202: a.Status}, body=a.ForgotRequest, auth="none", errors=(400, 429, 503)),
    Operation("POST", "/v1/auth/reset", "Set a new password with a reset token", "auth",
              {200: a.Status}, body=a.ResetRequest, auth="none", errors=(400, 401, 503)),
    Operation("POST", "/v1/auth/logout", "End the session of the Bearer token", "auth",
              {200: a.Status}, errors=(400, 401, 503), body_required=False),
    Operation("GET", "/v1/keys", "List your API keys (never their secrets)", "keys",
              {200: a.ApiKeyList}, errors=_ACCOUNT_ERRORS),
    Operation("POST", "/v1/keys", "Create an API key; the secret is shown once", "keys",
              {201: a.NewApiKey}, body=a.KeyRequest, errors=_ACCOUNT_ERRORS,
              body_required=False),
    Operation("DELETE", "/v1/keys/{key_id}", "Revoke one of your keys", "keys",
              {200: a.Deleted}, errors=_ACCOUNT_ERRORS),
    Operation("GET", "/v1/provider-keys", "Your provider keys (providers and hints)", "keys",
              {200: a.ProviderKeyList}, errors=_ACCOUNT_ERRORS),
    Operation("PUT", "/v1/provider-keys/{provider}", "Store your own provider key (BYOK)",
              "keys", {200: a.ProviderKey}, body=a.ProviderKeyRequest, errors=_ACCOUNT_ERRORS),
    Operation("DELETE", "/v1/provider-keys/{provider}", "Delete your provider key", "keys",
              {200: a.ProviderKey}, errors=_ACCOUNT_ERRORS),
    Operation("GET", "/v1/usage", "Your usage over a period (default: this month)", "usage",
              {200: a.UsageSummary}, errors=_ACCOUNT_ERRORS,
              query=(Param("start", _DATE, "YYYY-MM-DD, ISO 8601 or Unix seconds"),
                     Param("end", _DATE, "YYYY-MM-DD, ISO 8601 or Unix seconds"))),
    Operation("GET", "/v1/usage/daily", "Your usage per UTC day", "usage",
              {200: a.UsageDaily}, errors=_ACCOUNT_ERRORS,
              query=(Param("days", {"type": "integer", "minimum": 1, "maximum": 366},
                           "How many days, today included (default 30)"),)),
    Operation("GET", "/v1/usage/requests", "Your latest requests, newest first", "usage",
              {200: a.RecentRequestList}, errors=_ACCOUNT_ERRORS,
              query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 500},
                           "How many (default 50)"),)),
    Operation("GET", "/v1/usage/requests/{request_id}", "One request's usage row", "usage",
              {200: None}, errors=_ACCOUNT_ERRORS),
    Operation("GET", "/v1/billing/invoices", "Monthly statements from the ledger", "billing",
              {200: a.InvoiceList}, errors=_ACCOUNT_ERRORS),
    Operation("POST", "/v1/billing/checkout", "Change to a self-service tier", "billing",
              {200: a.Checkout}, body=a.CheckoutRequest, errors=_ACCOUNT_ERRORS),
    Operation("GET", "/v1/tiers", "The tiers, their limits, which are self-service", "billing",
              {200: a.TierList}, auth="none", errors=(503,)),
    Operation("GET", "/v1/admin/users", "List users", "admin", {200: a.AdminUserList},
              auth="admin", errors=_ADMIN_ERRORS,
              query=(Param("q", {"type": "string"}, "Only users whose email or name has it"),)),
    Operation("GET", "/v1/admin/usage", "Usage of every user per UTC day, by user and model",
              "admin", {200: a.UsageOfEveryone}, auth="admin", errors=_ADMIN_ERRORS,
              query=(Param("days", {"type": "integer", "minimum": 1, "maximum": 366},
                           "How many days, today included (default 30)"),)),
    Operation("GET", "/v1/admin/health", "Deployments: benched and until when, load, latency",
              "admin", {200: a.DeploymentHealthList}, auth="admin", errors=_ADMIN_ERRORS),
    Operation("POST", "/v1/admin/users/{email}/{action}",
              "Set a user's tier, block, unblock or top up (action)", "admin",
              {200: a.AdminUser}, body=a.AdminAction, auth="admin", errors=_ADMIN_ERRORS,
              body_required=False),
    Operation("GET", "/v1/admin/maintenance", "Maintenance mode", "admin",
              {200: a.Maintenance}, auth="admin", errors=_ADMIN_ERRORS),
    Operation("POST", "/v1/admin/maintenance", "Switch maintenance mode", "admin",
              {200: a.Maintenance}, body=a.MaintenanceRequest, auth="admin",
              errors=_ADMIN_ERRORS),
)

OPERATIONS: tuple[Operation, ...] = (
    *SERVICE, *MODELS, *CHAT, *RESPONSES, *EMBEDDINGS, *IMAGES, *_anthropic(""),
    *_anthropic("/anthropic"), *ACCOUNTS, *PLATFORM, *VIDEO,
)
