"""The walking-cost object: one owner of speed -> seconds, snap legs and limits."""

from __future__ import annotations

import numpy as np
import pytest

from careblocks.config import config_from_dict
from careblocks.errors import InputDataError
from careblocks.network.cost import WalkCost


def test_seconds_legs_and_limits_follow_the_speed():
    cost = WalkCost(3.6)  # 1 m/s
    assert cost.speed_mps == pytest.approx(1.0)
    assert cost.leg_seconds([0.0, 250.0]).tolist() == pytest.approx([0.0, 250.0])
    assert cost.limit_s(12.5) == pytest.approx(750.0)
    assert cost.metres_within(10) == pytest.approx(600.0)
    faster = cost.with_speed(7.2)
    assert faster.leg_seconds(250.0) == pytest.approx(125.0)
    assert cost.slowdown(faster) == pytest.approx(0.5)


def test_edge_seconds_per_csr_entry():
    class Net:
        length_m = np.array([100.0, 100.0, 30.0])

    assert WalkCost(4.8).edge_seconds(Net()).tolist() == pytest.approx([75.0, 75.0, 22.5])


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "fast", None])
def test_a_bad_speed_names_its_key(bad):
    with pytest.raises(InputDataError, match=r"^walk\.profiles\.older: .* use a value > 0"):
        WalkCost(bad, key="walk.profiles.older")


def test_from_config_and_profiles():
    cfg = config_from_dict({"walk": {"speed_kmh": 4.2, "profiles": {"stroller": 3.6, "older": 3.0}}})
    assert WalkCost.from_config(cfg.walk).speed_kmh == 4.2
    prof = WalkCost.profiles_from_config(cfg.walk)
    assert {k: v.speed_kmh for k, v in prof.items()} == {"stroller": 3.6, "older": 3.0}
    assert prof["older"].key == "walk.profiles.older"
