"""The bench's order of measurement: every target each round, rotated, twins side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import rotated
from bench.targets import Bare, Direct, Gateway

pytestmark = pytest.mark.unit


def test_a_target_with_workers_is_measured_next_to_its_one_worker_twin(tmp_path: Path) -> None:
    upstream = "http://127.0.0.1:9"
    one, two = Gateway(tmp_path, upstream, "uvicorn"), Gateway(tmp_path, upstream, "uvicorn", 2)
    twin = Gateway(tmp_path, upstream, "uvicorn", shared=True)  # one worker on two's cores
    others = [Direct(tmp_path, upstream), Bare(tmp_path, upstream, "uvicorn"),
              Gateway(tmp_path, upstream, "granian")]
    targets = [others[0], others[1], one, others[2], twin, two]
    assert (twin.name, twin.cpus, twin.workers) == ("gateway-uvicorn-1w", two.cpus, 1)
    orders = [[t.name for t in rotated(targets, round_)] for round_ in range(4)]
    for order in orders:
        assert sorted(order) == sorted(t.name for t in targets)  # each once
        places = sorted(order.index(t.name) for t in (one, twin, two))
        assert places == list(range(places[0], places[0] + 3))  # side by side
        assert abs(order.index(twin.name) - order.index(two.name)) == 1
    assert [o[0] for o in orders] == [others[0].name, others[1].name, one.name, others[2].name]
    assert orders[0].index(one.name) < orders[0].index(two.name)  # first every other round
    assert orders[1].index(two.name) < orders[1].index(one.name)
