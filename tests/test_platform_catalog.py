"""Plugins, updates and credit prices (issue 12): public, read from the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from tests.platform_app import running


async def test_plugins_are_listed_filtered_by_tag_and_searched_without_a_key(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as gw:
        listed = await gw.call("GET", "/v1/plugins")
        assert listed.status_code == 200
        assert [p["name"] for p in listed.json()["data"]] == ["git-helper", "test-runner"]
        by_tag = (await gw.call("GET", "/v1/plugins", params={"tag": "VCS"})).json()["data"]
        assert [p["name"] for p in by_tag] == ["git-helper"]
        # q searches the name and the description, case-insensitively.
        found = (await gw.call("GET", "/v1/plugins", params={"q": "git"})).json()["data"]
        assert [p["name"] for p in found] == ["git-helper", "test-runner"]
        found = (await gw.call("GET", "/v1/plugins", params={"q": "FAILURES"})).json()["data"]
        assert [p["name"] for p in found] == ["test-runner"]
        both = await gw.call("GET", "/v1/plugins", params={"q": "git", "tag": "testing"})
        assert [p["name"] for p in both.json()["data"]] == ["test-runner"]
        none = await gw.call("GET", "/v1/plugins", params={"q": "nothing-like-this"})
        assert none.json()["data"] == []
        one = await gw.call("GET", "/v1/plugins/git-helper")
        assert one.status_code == 200
        assert one.json()["version"] == "1.2.0"
        assert one.json()["repository"] == "https://example.com/git-helper"
        missing = await gw.call("GET", "/v1/plugins/no-such-plugin")
        assert missing.status_code == 404
        assert "no-such-plugin" in missing.json()["error"]["message"]


async def test_the_latest_release_is_the_highest_semantic_version(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        latest = await gw.call("GET", "/v1/updates")
        assert latest.status_code == 200
        assert latest.json()["version"] == "0.10.0"  # not 0.9.0, nor the last listed
        assert latest.json()["url"] == "https://example.com/0.10.0"
        check = (await gw.call("GET", "/v1/updates/check", params={"current": "0.9.0"})).json()
        assert check == {"current": "0.9.0", "latest": "0.10.0", "update_available": True,
                         "url": "https://example.com/0.10.0", "notes": "ten"}
        for current in ("0.10.0", "v0.10.0", "0.11.0", "1.0.0-rc.1"):
            check = await gw.call("GET", "/v1/updates/check", params={"current": current})
            assert check.json()["update_available"] is False, current
        check = await gw.call("GET", "/v1/updates/check", params={"current": "0.10.0-rc.1"})
        assert check.json()["update_available"] is True  # a pre-release is before its release
        for bad in ("", "1.2", "latest", "1.2.3.4", "01.2.3"):
            refused = await gw.call("GET", "/v1/updates/check", params={"current": bad})
            assert refused.status_code == 400, bad
            assert refused.json()["error"]["param"] == "current"


async def test_no_releases_is_a_404_and_a_check_says_nothing_is_available(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as gw:
        gw.gateway.config.releases.clear()
        assert (await gw.call("GET", "/v1/updates")).status_code == 404
        check = await gw.call("GET", "/v1/updates/check", params={"current": "1.0.0"})
        assert check.json()["update_available"] is False and check.json()["latest"] is None


def test_a_release_version_that_is_not_semantic_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not semantic"):
        parse_config('[[releases]]\nversion = "ten"\n')


async def test_credit_prices_list_every_model_and_each_tiers_daily_allowance(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as gw:
        answer = await gw.call("GET", "/api/credits/pricing")
        assert answer.status_code == 200
        pricing = answer.json()
        assert pricing["models"] == {"mock/echo": 3, "mock/small": 1}
        assert {"model": "mock/small", "credits": 1, "free": True} in pricing["data"]
        assert pricing["tiers"]["free"]["credits_per_day"] == 100
        assert pricing["tiers"]["free"]["requests_per_minute"] == 40
        assert pricing["tiers"]["enterprise"]["credits_per_day"] == 0  # unlimited
        assert pricing["default_credits"] == 1
