"""Pure tests of image generation's wire handling: the request's bad-input checks, OpenAI's
pass-through (gpt-image's base64-only answers), the MiniMax translation both ways with its
``base_resp`` errors, and the mock's PNGs."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
import pytest

from adapters.base import Call
from adapters.errors import InvalidRequest, ProviderHTTPError, ProviderProtocolError
from adapters.images import parse_images_request
from adapters.minimax.common import BaseResp, base_resp_error, decode_checked
from adapters.minimax.images import (
    MiniMaxImageAnswer,
    minimax_image_answer_to_openai,
    openai_to_minimax_image_request,
)
from adapters.mock.images import gradient_png, mock_images
from adapters.openai.images import openai_images_body, openai_images_reply
from adapters.upstream import error_message

pytestmark = pytest.mark.unit


def _request(**fields: Any) -> bytes:
    return json.dumps({"model": "m", "prompt": "a cat", **fields}).encode()


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"prompt": ""}, "prompt", "empty"),
        ({"prompt": "   "}, "prompt", "empty"),
        ({"prompt": 5}, "prompt", "expected `str`"),
        ({"n": 0}, "n", ">= 1"),
        ({"n": 11}, "n", "<= 10"),
        ({"n": "2"}, "n", "expected `int`"),
        ({"n": 1.5}, "n", "expected `int`"),
        ({"size": "1000x1000"}, "size", "Unknown 'size'"),
        ({"size": 1024}, "size", "expected `str`"),
        ({"quality": "ultra"}, "quality", "Unknown 'quality' 'ultra': use one of standard, hd"),
        ({"response_format": "png"}, "response_format", "use one of url, b64_json"),
        ({"style": "cartoon"}, "style", "use one of vivid, natural"),
        ({"user": 7}, "user", "expected `str`"),
        ({"output_format": "gif"}, "output_format", "use one of png, jpeg, webp"),
        ({"stream": True}, "stream", "not supported"),
        ({"model": "a\nb"}, "model", "control characters"),
    ],
)
def test_bad_input_names_the_field(fields: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_images_request(_request(**fields))
    assert refused.value.param == param
    assert words in refused.value.message


@pytest.mark.parametrize("body", [b"", b"[]", b"{not json", b'{"model": "m"}'])
def test_bodies_that_are_not_requests_are_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        parse_images_request(body)


def test_a_full_request_parses() -> None:
    request = parse_images_request(_request(
        n=2, size="1792x1024", quality="hd", response_format="b64_json", style="vivid", user="u",
        background="transparent",
    ))
    assert (request.n, request.size, request.wants_url) == (2, "1792x1024", False)


def _call(model: str, **fields: Any) -> Call:
    return Call(model=model, stream=False, raw=json.loads(_request(**fields)))


def test_openai_body_passes_through_with_the_model_rewritten() -> None:
    call = _call("dall-e-3", response_format="url", style="natural", extra_field=1)
    sent = json.loads(openai_images_body(call))
    assert sent == {"model": "dall-e-3", "prompt": "a cat", "response_format": "url",
                    "style": "natural", "extra_field": 1}
    assert call.raw is not None and call.raw["model"] == "m"  # the shared body is untouched


def test_gpt_image_gets_no_response_format() -> None:
    sent = json.loads(openai_images_body(_call("gpt-image-1", response_format="url")))
    assert "response_format" not in sent


def test_openai_answer_passes_through_byte_for_byte() -> None:
    body = b'{"created": 1, "data": [{"url": "https://x/1.png", "revised_prompt": "r"}]}'
    assert openai_images_reply(body, parse_images_request(_request()), "dall-e-3") is body


def test_gpt_image_base64_becomes_data_urls_when_urls_were_asked() -> None:
    body = json.dumps({"created": 5, "data": [{"b64_json": "QUJD"}, {"b64_json": "REVG"}],
                       "usage": {"total_tokens": 9}}).encode()
    request = parse_images_request(_request(output_format="webp"))
    answer = json.loads(openai_images_reply(body, request, "gpt-image-1"))
    assert answer["created"] == 5
    assert answer["usage"] == {"total_tokens": 9}
    assert [image["url"] for image in answer["data"]] == [
        "data:image/webp;base64,QUJD", "data:image/webp;base64,REVG"
    ]


def test_gpt_image_base64_stays_when_base64_was_asked() -> None:
    body = b'{"created": 5, "data": [{"b64_json": "QUJD"}]}'
    request = parse_images_request(_request(response_format="b64_json"))
    assert openai_images_reply(body, request, "gpt-image-1") == body


def test_a_malformed_openai_answer_is_a_protocol_error() -> None:
    with pytest.raises(ProviderProtocolError):
        openai_images_reply(b'{"data": 5}', parse_images_request(_request()), "gpt-image-1")


@pytest.mark.parametrize(
    ("size", "ratio"),
    [("1024x1024", "1:1"), ("1792x1024", "16:9"), ("1024x1792", "9:16"), ("1536x1024", "3:2"),
     ("1024x1536", "2:3"), ("1152x864", "4:3"), ("864x1152", "3:4"), ("1344x576", "21:9"),
     ("256x256", "1:1")],
)
def test_size_becomes_minimax_aspect_ratio(size: str, ratio: str) -> None:
    request = parse_images_request(_request(size=size, n=3, quality="hd", style="vivid"))
    sent = msgspec.to_builtins(openai_to_minimax_image_request(request, "image-01"))
    assert sent == {"model": "image-01", "prompt": "a cat", "aspect_ratio": ratio,
                    "response_format": "url", "n": 3}


def test_auto_size_and_base64_for_minimax() -> None:
    request = parse_images_request(_request(size="auto", response_format="b64_json"))
    sent = msgspec.to_builtins(openai_to_minimax_image_request(request, "image-01"))
    assert sent == {"model": "image-01", "prompt": "a cat", "response_format": "base64", "n": 1}


def test_minimax_refuses_more_than_nine_images_before_calling() -> None:
    with pytest.raises(ProviderHTTPError) as refused:
        openai_to_minimax_image_request(parse_images_request(_request(n=10)), "image-01")
    assert refused.value.status == 400 and not refused.value.retryable
    assert "at most 9" in refused.value.message


_decoder = msgspec.json.Decoder(MiniMaxImageAnswer)


def _minimax(data: dict[str, Any], code: int = 0, msg: str = "success") -> bytes:
    return json.dumps({"id": "abc", "data": data,
                       "metadata": {"success_count": "1", "failed_count": "0"},
                       "base_resp": {"status_code": code, "status_msg": msg}}).encode()


def test_minimax_urls_become_openai_urls() -> None:
    answer = decode_checked(_minimax({"image_urls": ["https://m/1.jpeg", "https://m/2.jpeg"]}),
                            _decoder)
    out = json.loads(minimax_image_answer_to_openai(answer, parse_images_request(_request())))
    assert out["data"] == [{"url": "https://m/1.jpeg"}, {"url": "https://m/2.jpeg"}]
    assert isinstance(out["created"], int)


def test_minimax_base64_becomes_b64_json() -> None:
    answer = decode_checked(_minimax({"image_base64": ["QUJD"]}), _decoder)
    reply = minimax_image_answer_to_openai(
        answer, parse_images_request(_request(response_format="b64_json"))
    )
    assert json.loads(reply)["data"] == [{"b64_json": "QUJD"}]


def test_minimax_answer_with_no_image_is_a_400_saying_why() -> None:
    body = json.dumps({"data": {"image_urls": []}, "base_resp": {"status_code": 0},
                       "metadata": {"success_count": "0", "failed_count": "2"}}).encode()
    with pytest.raises(ProviderHTTPError) as refused:
        minimax_image_answer_to_openai(decode_checked(body, _decoder),
                                       parse_images_request(_request()))
    assert refused.value.status == 400 and "2 withheld" in refused.value.message


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [(1002, 429, True), (1039, 429, True), (1004, 401, False), (2049, 401, False),
     (1026, 400, False), (2013, 400, False), (1001, 504, True), (1008, 503, True),
     (1000, 500, True), (1033, 500, True), (9999, 500, True)],
)
def test_base_resp_codes_become_http_errors(code: int, status: int, retryable: bool) -> None:
    error = base_resp_error(BaseResp(status_code=code, status_msg="why"))
    assert error is not None
    assert (error.status, error.retryable) == (status, retryable)
    assert error.message == f"MiniMax {code}: why"


def test_a_failed_base_resp_on_http_200_raises() -> None:
    body = b'{"data": null, "base_resp": {"status_code": 1026, "status_msg": "input sensitive"}}'
    with pytest.raises(ProviderHTTPError) as refused:
        decode_checked(body, _decoder)
    assert refused.value.status == 400 and "input sensitive" in refused.value.message


def test_a_failure_body_of_another_shape_still_reads_its_base_resp() -> None:
    body = b'{"data": "nothing", "base_resp": {"status_code": 1002, "status_msg": "rate limit"}}'
    with pytest.raises(ProviderHTTPError) as refused:
        decode_checked(body, _decoder)
    assert refused.value.rate_limited


def test_a_body_that_is_not_json_is_a_protocol_error() -> None:
    with pytest.raises(ProviderProtocolError):
        decode_checked(b"<html>", _decoder)


def test_mock_images_are_pngs_differing_per_index() -> None:
    reply = mock_images("image", json.loads(_request(n=2, response_format="b64_json")))
    pngs = [base64.b64decode(image["b64_json"]) for image in json.loads(reply)["data"]]
    assert len(pngs) == 2
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in pngs)
    assert pngs[0] != pngs[1]
    assert gradient_png(b"0:a cat") == pngs[0]  # the same request makes the same images


def test_mock_urls_are_data_urls() -> None:
    reply = mock_images("image", json.loads(_request()))
    assert json.loads(reply)["data"][0]["url"].startswith("data:image/png;base64,iVBOR")


def test_an_http_error_body_in_minimax_shape_gives_its_message() -> None:
    body = b'{"base_resp": {"status_code": 1004, "status_msg": "login fail"}}'
    assert error_message(body) == "login fail (1004)"
