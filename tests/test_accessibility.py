"""Gravity and two-step floating catchment measures: hand-worked examples, PySAL ``access``
as an independent implementation on the same cost matrix, and the measures on Fontibón.

The hand-worked figures below are computed in the comments, not taken from the code's output.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from careblocks.accessibility import (
    decay_weights,
    deserts,
    gravity,
    summarise,
    two_step_fca,
)
from careblocks.config import config_from_dict, load_config
from careblocks.errors import ConfigError
from careblocks.network.cost import WalkCost

ROOT = Path(__file__).resolve().parents[1]

# 3 origins x 2 facilities, minutes (a pair not stored is out of reach):
#   o0: f0 5 min, f1 12 min;  o1: f0 10 min;  o2: f1 3 min
COST = sp.csr_matrix(np.array([[5.0, 12.0], [10.0, 0.0], [0.0, 3.0]]))
SUPPLY = np.array([20.0, 10.0])  # seats
NEED = np.array([100.0, 50.0, 30.0])  # children


def test_two_step_fca_by_hand():
    # step 1: f0 is reached by o0 + o1 = 150 children -> 20/150 seats each;
    #         f1 by o0 + o2 = 130 -> 10/130
    # step 2: o0 reaches both: 20/150 + 10/130; o1 only f0; o2 only f1
    a = two_step_fca(COST, SUPPLY, NEED)
    np.testing.assert_allclose(a, [20 / 150 + 10 / 130, 20 / 150, 10 / 130])
    # every seat is shared out: sum(need x ratio) = the seats of facilities someone reaches
    assert float(NEED @ a) == pytest.approx(30.0)


def test_enhanced_two_step_fca_by_hand():
    # zones 0-5, 5-10, 10-15 min weighted 1, 0.68, 0.22 (Luo & Qi 2009)
    # o0-f0 5 min -> 1; o0-f1 12 min -> 0.22; o1-f0 10 min -> 0.68; o2-f1 3 min -> 1
    # f0: 100 x 1 + 50 x 0.68 = 134 children -> 20/134; f1: 100 x 0.22 + 30 = 52 -> 10/52
    fn = lambda t: decay_weights(t, "steps", steps_min=(5, 10, 15), step_weights=(1, 0.68, 0.22))  # noqa: E731
    a = two_step_fca(COST, SUPPLY, NEED, fn)
    np.testing.assert_allclose(a, [20 / 134 + 0.22 * 10 / 52, 0.68 * 20 / 134, 10 / 52])


def test_gravity_by_hand():
    # exponential decay, 0.1 per minute: o0 = 20 e^-0.5 + 10 e^-1.2, o1 = 20 e^-1, o2 = 10 e^-0.3
    a = gravity(COST, SUPPLY, lambda t: decay_weights(t, "exponential", rate_per_min=0.1))
    np.testing.assert_allclose(
        a, [20 * math.exp(-0.5) + 10 * math.exp(-1.2), 20 * math.exp(-1.0), 10 * math.exp(-0.3)]
    )
    # step decay at 8 minutes keeps o0-f0 (5) and o2-f1 (3) only
    np.testing.assert_allclose(gravity(COST, SUPPLY, lambda t: decay_weights(t, "step", cutoff_min=8)),
                               [20, 0, 10])


def test_decay_functions_by_hand():
    t = np.array([0.0, 5.0, 15.0, 30.0])
    np.testing.assert_allclose(decay_weights(t, "linear", cutoff_min=15), [1, 2 / 3, 0, 0])
    np.testing.assert_allclose(decay_weights(t, "gaussian", sd_min=5), np.exp(-(t**2) / 50))
    np.testing.assert_allclose(decay_weights(t, "step", cutoff_min=15), [1, 1, 1, 0])
    # IPEA decay_logistic: g(0)/g(t), g(x) = 1 + exp(pi (x - 15) / (7.5 sqrt 3))
    g = lambda x: 1 + math.exp(math.pi * (x - 15) / (7.5 * math.sqrt(3)))  # noqa: E731
    np.testing.assert_allclose(decay_weights(t, "logistic", cutoff_min=15, sd_min=7.5),
                               [g(0) / g(x) for x in t])
    assert decay_weights(np.array([1e6]), "logistic", cutoff_min=15, sd_min=7.5)[0] == 0.0
    # zone bounds are inclusive, beyond the last zone is 0
    np.testing.assert_allclose(
        decay_weights(np.array([5.0, 5.01, 15.0, 15.01]), "steps", steps_min=(5, 10, 15),
                      step_weights=(1, 0.68, 0.22)), [1, 0.68, 0.22, 0])
    with pytest.raises(ConfigError, match="sd_min"):
        decay_weights(t, "gaussian", sd_min=0)
    with pytest.raises(ConfigError, match="decay"):
        decay_weights(t, "cubic")


def test_no_demand_or_no_facility_gives_zero_not_infinity():
    cost = sp.csr_matrix(np.array([[4.0, 0.0], [0.0, 0.0]]))  # f1 reached by nobody, o1 by nothing
    a = two_step_fca(cost, np.array([10.0, 5.0]), np.array([0.0, 7.0]))
    assert np.all(np.isfinite(a)) and a[1] == 0.0
    assert deserts(np.array([0.0, 0.2, 0.5]), 3).tolist() == [True, True, False]


def _pysal_frames(cost: sp.csr_matrix, supply, need):
    c = sp.coo_matrix(cost)
    cost_df = pd.DataFrame({"origin": c.row, "dest": c.col, "cost": c.data})
    demand_df = pd.DataFrame({"geoid": np.arange(cost.shape[0]), "demand": need})
    supply_df = pd.DataFrame({"supply": supply}, index=np.arange(cost.shape[1]))
    return cost_df, demand_df, supply_df


def _against_pysal(cost, supply, need, max_cost):
    from access import fca, weights

    cost_df, demand_df, supply_df = _pysal_frames(cost, supply, need)
    n_o = cost.shape[0]
    # classic 2SFCA within max_cost
    ref = fca.two_stage_fca(demand_df, supply_df, cost_df, max_cost=max_cost).reindex(range(n_o)).fillna(0.0)
    ours = two_step_fca(cost, supply, need)
    np.testing.assert_allclose(ours, ref.to_numpy(), rtol=1e-9, atol=1e-15)
    # enhanced 2SFCA with PySAL's step function and with its gaussian weights
    for pysal_fn, our_fn in (
        (weights.step_fn({max_cost / 3: 1.0, 2 * max_cost / 3: 0.68, max_cost: 0.22}),
         lambda t: decay_weights(t, "steps", steps_min=(max_cost / 3, 2 * max_cost / 3, max_cost),
                                 step_weights=(1.0, 0.68, 0.22))),
        (weights.gaussian(max_cost / 2), lambda t: decay_weights(t, "gaussian", sd_min=max_cost / 2)),
    ):
        ref = fca.two_stage_fca(demand_df, supply_df, cost_df.copy(), max_cost=max_cost,
                                weight_fn=pysal_fn).reindex(range(n_o)).fillna(0.0)
        np.testing.assert_allclose(two_step_fca(cost, supply, need, our_fn), ref.to_numpy(),
                                   rtol=1e-9, atol=1e-15)
    # gravity = PySAL's weighted catchment of the supply with the same decay
    sup = pd.DataFrame({"geoid": np.arange(cost.shape[1]), "supply": supply})
    ref = fca.weighted_catchment(sup, cost_df, max_cost, cost_source="dest", cost_dest="origin",
                                 loc_index="geoid", loc_value="supply",
                                 weight_fn=weights.gaussian(max_cost / 2)).reindex(range(n_o)).fillna(0.0)
    np.testing.assert_allclose(gravity(cost, supply, lambda t: decay_weights(t, "gaussian", sd_min=max_cost / 2)),
                               ref.to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_same_as_pysal_access_on_random_matrices(seed):
    rng = np.random.default_rng(seed)
    n_o, n_f = 60, 9
    cost = sp.random(n_o, n_f, density=0.3, random_state=rng, format="csr")
    cost.data = rng.uniform(0.5, 15.0, cost.nnz)
    _against_pysal(cost, rng.integers(5, 80, n_f).astype(float), rng.uniform(0, 300, n_o), 15.0)


@pytest.fixture(scope="module")
def fontibon_ctx(data):
    from careblocks.pipeline import analyse

    cfg = load_config(ROOT / "configs" / "bogota_fontibon.toml", overrides={"sites.enabled": False})
    return analyse(cfg, until="accessibility")


def test_fontibon_measures_match_pysal_on_the_real_matrix(fontibon_ctx):
    from careblocks.accessibility import cost_matrix, facility_supply, max_minutes, need_counts

    ctx = fontibon_ctx
    cfg = ctx.config
    fac = ctx.services[ctx.services["service"] == "daycare"]
    cost = cost_matrix(ctx.network, ctx.origins, fac, cost=WalkCost.from_config(cfg.walk), max_min=max_minutes(cfg))
    # the matrix agrees with the nearest-facility times of the access stage
    has = np.diff(cost.indptr) > 0
    near = np.full(cost.shape[0], np.nan)
    near[has] = np.minimum.reduceat(cost.data, cost.indptr[:-1][has])  # nearest stored time
    walk = ctx.origins["walk_min_daycare"].to_numpy(float)
    np.testing.assert_allclose(near[has], walk[has], rtol=1e-9, atol=1e-6)
    assert np.all(np.nan_to_num(walk[~has], nan=1e9) > 15.0 - 1e-9)
    supply, unit, known = facility_supply(ctx.services, "daycare", cfg)
    need, group = need_counts(ctx.origins, "daycare", cfg)
    assert group == "children_under5" and known and unit == "seats"
    np.testing.assert_allclose(ctx.origins["fca_daycare"].to_numpy(), two_step_fca(cost, supply, need))
    _against_pysal(cost, supply, need, 15.0)
    # seats are shared out: need x fca sums to the seats of the daycares someone reaches
    reached = np.asarray((cost.T @ need) > 0).ravel()
    assert float(need @ ctx.origins["fca_daycare"].to_numpy()) == pytest.approx(supply[reached].sum())


def test_fontibon_origins_districts_and_equity_carry_the_measures(fontibon_ctx):
    ctx = fontibon_ctx
    o = ctx.origins
    for s in ("daycare", "health", "laundromat"):
        assert o[f"fca_{s}"].ge(0).all() and o[f"gravity_{s}"].ge(0).all()
        # someone within 15 minutes of a facility has a positive gravity figure
        assert (o[f"gravity_{s}"] > 0).sum() >= (o[f"walk_min_{s}"] <= 15).sum()
    # a daycare desert is where more than 3 children share a seat, or none is in reach
    d = o["desert_daycare"].to_numpy(bool)
    np.testing.assert_array_equal(d, o["fca_daycare"].to_numpy() < 1 / 3)
    assert d[o["walk_min_daycare"].isna().to_numpy()].all()
    eq = ctx.equity
    row = eq[(eq["mode"] == "walk") & (eq["service"] == "daycare") & (eq["group"] == "population")
             & (eq["district"] == "all")].iloc[0]
    pop = o["population"].to_numpy()
    assert row["fca_mean"] == pytest.approx((pop * o["fca_daycare"]).sum() / pop.sum())
    assert row["share_desert"] == pytest.approx(pop[d].sum() / pop.sum())
    assert "fca_daycare" in ctx.districts.columns and "desert_share_daycare" in ctx.districts.columns


def test_summary_by_district_weights_by_group():
    o = pd.DataFrame({"fca_x": [0.1, 0.3, 0.0], "gravity_x": [1.0, 2.0, 0.0], "desert_x": [True, False, True],
                      "kids": [10.0, 30.0, 60.0], "district": ["a", "a", "b"]})
    s = summarise(o, ["x"], ["kids"], by="district").set_index("district")
    # a: (10 x 0.1 + 30 x 0.3) / 40 = 0.25 -> 4 kids per seat; 10 of 40 in a desert
    assert s.loc["a", "fca_mean"] == pytest.approx(0.25)
    assert s.loc["a", "people_per_unit"] == pytest.approx(4.0)
    assert s.loc["a", "share_desert"] == pytest.approx(0.25)
    assert s.loc["all", "share_desert"] == pytest.approx(0.7)
    assert np.isnan(s.loc["b", "people_per_unit"])


def test_config_keys_checked():
    with pytest.raises(ConfigError, match="step_weights"):
        config_from_dict({"accessibility": {"steps_min": [5, 10], "step_weights": [1, 0.5, 0.2]}})
    with pytest.raises(ConfigError, match="decay"):
        config_from_dict({"accessibility": {"decay": "cubic"}})
    with pytest.raises(ConfigError, match="capacity_default"):
        config_from_dict({"services": {"daycare": {"capacity_default": 0}}})
