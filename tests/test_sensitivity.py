"""Robustness of the proposal: seeded weightings, shares, the report sentence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from careblocks.config import config_from_dict
from careblocks.errors import ConfigError
from careblocks.sites.selection import coverage_value, select_sites
from careblocks.sites.sensitivity import _swap_search, robustness_sentence, run_draws


def _table(shares, orders, draws=200):
    t = pd.DataFrame({"candidate_id": [f"c{i}" for i in range(len(shares))],
                      "order": pd.array(orders, dtype="Int64"), "selected_share": shares})
    t.attrs["draws"] = draws
    return t


def test_sentence_groups_sites_with_the_same_share():
    t = _table([1.0, 0.955, 0.951, 0.958, 0.40, 0.3], [1, 2, 3, 4, 5, None])
    assert robustness_sentence(t) == (
        "Site 1 is chosen in 100 % of weightings; sites 2-4 in 95 %; site 5 in 40 % "
        "(200 weightings of the score and trip rates).")
    # 99.6 % is not rounded up to "always"
    assert robustness_sentence(_table([0.996, 0.2], [1, None])).startswith("Site 1 is chosen in 99 %")
    assert robustness_sentence(_table([0.5], [None])) is None
    assert robustness_sentence(_table([0.5], [1], draws=0)) is None


def _instance(seed, n_c=12, n_o=60):
    rng = np.random.default_rng(seed)
    cov = sp.random(n_c, n_o, density=0.2, random_state=rng, format="csr")
    cov.data = rng.uniform(60, 900, cov.nnz)
    parts = rng.integers(0, 40, (3, n_o)).astype(float)  # gaps of three services per origin
    return cov, parts


def _components(cov, parts):
    pat = (cov > 0).astype(float)
    return pd.DataFrame({"gap_closed_a": pat @ parts[0], "gap_closed_b": pat @ parts[1],
                         "gap_closed_c": pat @ parts[2], "gap_closed": pat @ parts.sum(axis=0)})


@pytest.mark.parametrize("seed", range(4))
def test_swap_search_never_worse_and_finds_the_optimum_on_small_instances(seed):
    cov, parts = _instance(seed)
    w = parts.sum(axis=0)
    pat = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
    nb = [set() for _ in range(cov.shape[0])]
    g = select_sites(cov, w, k=3, method="greedy")
    m = select_sites(cov, w, k=3, method="milp")
    s, v = _swap_search(pat, w, g.selected, nb, None, None, np.zeros(cov.shape[1], bool))
    assert v == pytest.approx(coverage_value(cov, w, s))
    assert g.objective - 1e-9 <= v <= m.objective + 1e-9
    # from the optimum, no swap improves
    s2, v2 = _swap_search(pat, w, m.selected, nb, None, None, np.zeros(cov.shape[1], bool))
    assert v2 == pytest.approx(m.objective) and sorted(s2) == sorted(m.selected)


def test_draws_are_seeded_and_zero_spread_keeps_the_optimal_proposal():
    cov, parts = _instance(7)
    comps = _components(cov, parts)
    ids = [f"c{i}" for i in range(cov.shape[0])]
    best = select_sites(cov, parts.sum(axis=0), k=3, method="milp").selected
    kw = dict(base={"gap_closed": 1.0}, offers=["a", "b", "c"], objective="gap_closed", k=3, draws=30,
              part_spread=0.5, spread=0.5, incumbent=best)
    c1, r1 = run_draws(cov, "weights", parts, comps, ids, seed=3, **kw)
    c2, r2 = run_draws(cov, "weights", parts, comps, ids, seed=3, **kw)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(r1, r2)
    assert (c1.sum(axis=1) == 3).all()
    c3, _ = run_draws(cov, "weights", parts, comps, ids, seed=4, **kw)
    assert not np.array_equal(c1, c3)
    # each draw has its own seed: the first draws of a longer run are the same draws, so
    # splitting the draws into chunks (on a Dask cluster) cannot change the table
    c4, r4 = run_draws(cov, "weights", parts, comps, ids, seed=3, **dict(kw, draws=7))
    np.testing.assert_array_equal(c4, c1[:7])
    np.testing.assert_array_equal(r4, r1[:7])
    flat = dict(kw, spread=0.0, part_spread=0.0)
    c0, r0 = run_draws(cov, "weights", parts, comps, ids, seed=3, **flat)
    assert c0[:, best].all() and c0.sum() == 3 * 30
    assert (r0 == r0[0]).all()


def test_a_dominant_site_is_always_chosen_and_spacing_is_kept():
    # site 0 covers every heavy origin; sites 1 and 2 are 100 m apart (spacing 500 m)
    cov = sp.csr_matrix(np.array([
        [60.0, 60, 60, 60, 0, 0, 0],
        [0, 0, 0, 0, 60, 60, 0],
        [0, 0, 0, 0, 60, 0, 60],
        [0, 0, 0, 0, 0, 0, 60],
    ]))
    parts = np.array([[100.0, 100, 100, 100, 5, 4, 4]])
    comps = pd.DataFrame({"gap_closed_a": (cov > 0).astype(float) @ parts[0], "gap_closed": 0.0})
    xy = np.array([[0, 0], [1000, 0], [1100, 0], [3000, 0]], dtype=float)
    chosen, _ = run_draws(cov, "weights", parts, comps, ["a", "b", "c", "d"], base={"gap_closed": 1.0},
                          offers=["a"], objective="gap_closed", k=2, draws=20, spread=0.3, part_spread=0.3,
                          seed=0, select_kw={"min_spacing_m": 500.0, "candidate_xy": xy})
    assert chosen[:, 0].all()
    assert not (chosen[:, 1] & chosen[:, 2]).any()


def test_config_keys_checked():
    assert config_from_dict({}).sensitivity.draws == 100
    with pytest.raises(ConfigError, match="sensitivity.draws"):
        config_from_dict({"sensitivity": {"draws": -1}})
    with pytest.raises(ConfigError, match="sensitivity.spread"):
        config_from_dict({"sensitivity": {"spread": 5}})
