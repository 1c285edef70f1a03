"""The fake LLM upstream: every provider dialect the gateway speaks, one scenario vocabulary,
shared by the tests and the bench.

=================================================  =========================================
endpoint                                           dialect (module)
=================================================  =========================================
``POST /v1/chat/completions``                      OpenAI chat completions (``openai_chat``)
``POST /v1/responses``                             OpenAI Responses API (``openai_responses``)
``POST /v1/messages``, ``/v1/messages/count_tokens``  Anthropic (``anthropic_messages``)
``POST /v1beta/models/{model}:generateContent``,   Gemini (``gemini``)
``:streamGenerateContent?alt=sse``
``POST /v1/images/generations``                    OpenAI images (``images``)
``POST /v1/image_generation``, ``GET /files/{n}``  MiniMax images, the images by URL
``POST /v1/videos``, ``GET /v1/videos/{id}``,      OpenAI video jobs (``videos``)
``GET /v1/videos/{id}/content``
``POST /v1/video_generation``,                     MiniMax video jobs, their files
``GET /v1/query/video_generation``,
``GET /v1/files/retrieve``, ``/download/{id}.mp4``
``POST /v1/embeddings``, ``/v1/rerank``,            embeddings, rerank, moderation; Gemini's
``/v1/moderations``, ``…:batchEmbedContents``      embeddings (``operations``)
``GET /health``                                    200
=================================================  =========================================

What a request gets is chosen by its model name's words (``scenario``): ``fake/ok`` echoes,
``bench-tok64-gap20`` streams 64 tokens 20 ms apart, ``fake/error-429`` is rate limited,
``fake/cut`` drops the connection mid-stream, and so on, in every dialect alike.

The server (``server``) is a raw asyncio protocol, a few microseconds a request, so the bench
measures the gateway, not the fake. The bench runs it as a process
(``python -m bench.fake_upstream --port 9100``); the tests start ``FakeUpstream`` (``harness``)
in a thread, which also records requests and takes per-model handlers.

Adding an endpoint (embeddings, images, a new provider's dialect):

1. write ``bench/fake_upstream/<dialect>.py`` with ``answer(request, scenario) -> Reply``:
   read the body with ``request.json()``, honour ``scenario.error`` (and whatever words
   apply), and return ``json_reply(200, body)`` or ``stream_reply(events, scenario)``
   (``wire`` has the helpers; a stream's events are ``(frame, is_content)`` pairs);
2. add one line to ``ROUTES`` in ``server.py``:
   ``"POST /v1/embeddings": Route(embeddings.answer)`` (a model or job id in the path:
   ``PREFIX_ROUTES`` with a ``probe``, as Gemini and ``GET /files/`` do);
3. a new behaviour word goes in ``scenario.py``'s table and ``_FLAGS`` (or ``_NUMBERS``).
"""

from bench.fake_upstream.harness import FakeUpstream, Recorded
from bench.fake_upstream.images import fake_b64, fake_png
from bench.fake_upstream.scenario import Scenario, parse_scenario
from bench.fake_upstream.server import Exchange, Handler, Route
from bench.fake_upstream.wire import Reply, Request, json_reply, sse_data, sse_event, stream_reply

__all__ = [
    "Exchange", "FakeUpstream", "Handler", "Recorded", "Reply", "Request", "Route", "Scenario",
    "fake_b64", "fake_png", "json_reply", "parse_scenario", "sse_data", "sse_event",
    "stream_reply",
]
