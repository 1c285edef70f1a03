"""The test suite's Redis and PostgreSQL are its own: an outage in a test is not the machine's."""

from __future__ import annotations

import tempfile

import pytest
import redis

from tests import services

pytestmark = pytest.mark.e2e


def test_an_outage_in_the_tests_leaves_the_machines_services_alone() -> None:
    before = services.machine_fingerprint()
    services.ensure_redis()
    services.ensure_postgres()
    assert services.REDIS_PORT != 6379 and services.PG_PORT != 5432
    client = redis.Redis.from_url(services.REDIS_URL)
    client.set("gwtest:outage", "1")
    services.stop_redis()
    assert not services.redis_ping()
    services.start_redis()
    assert services.redis_ping() and client.get("gwtest:outage") is None  # a fresh instance
    client.close()
    services.pg_ctl("restart")
    assert services.wait_postgres()
    services.pg_ctl("stop")
    assert not services.postgres_up()
    services.ensure_postgres()
    assert services.pg_query(services.PG_ADMIN_URL, "SELECT current_setting('data_directory')")[
        0][0].startswith(tempfile.gettempdir())
    assert services.machine_fingerprint() == before
