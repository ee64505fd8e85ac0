"""Exact maximal covering by independent parts (careblocks.sites.decompose), against brute
force on small spatial instances built here, and through select_sites / coverage_curve."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from careblocks.sites.decompose import PartsSolver, overlap_parts
from careblocks.sites.selection import coverage_curve, coverage_value, select_sites


def spatial_instance(seed: int, towns: int, n_cand: int, n_orig: int, radius: float = 1.0,
                     spread: float = 1.5):
    """Candidates and origins scattered around ``towns`` centres 10 units apart; an origin
    is covered by a candidate within ``radius`` (so towns never share an origin)."""
    rng = np.random.default_rng(seed)
    centres = np.column_stack([np.arange(towns) * 10.0, np.zeros(towns)])
    cand = centres[rng.integers(0, towns, n_cand)] + rng.normal(0, spread, (n_cand, 2))
    orig = centres[rng.integers(0, towns, n_orig)] + rng.normal(0, spread, (n_orig, 2))
    d = np.hypot(cand[:, None, 0] - orig[None, :, 0], cand[:, None, 1] - orig[None, :, 1])
    cov = sp.csr_matrix(np.where(d <= radius, d + 0.01, 0.0))
    w = np.round(rng.lognormal(2.0, 1.0, n_orig))
    return cov, w, cand


def brute_force(cov, w, k: int) -> float:
    n = cov.shape[0]
    best = 0.0
    for size in range(1, min(k, n) + 1):
        for s in itertools.combinations(range(n), size):
            best = max(best, coverage_value(cov, w, s))
    return best


def _pattern(cov):
    return sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)


def test_overlap_parts_follow_the_towns():
    cov, _, cand = spatial_instance(1, towns=3, n_cand=30, n_orig=300)
    n_parts, labels = overlap_parts(_pattern(cov))
    town = np.rint(cand[:, 0] / 10.0).astype(int)
    # candidates of different towns never share a part; each part lies in one town
    for p in range(n_parts):
        assert np.unique(town[labels == p]).size == 1
    assert n_parts >= 3


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_parts_solver_matches_brute_force_for_every_k(seed):
    cov, w, _ = spatial_instance(seed, towns=3, n_cand=13, n_orig=200)
    n = cov.shape[0]
    ps = PartsSolver(_pattern(cov), w, np.zeros(n), k_max=5)
    for k in range(1, 6):
        chosen, lo, hi, exact = ps.solve(k, deadline=None)
        truth = brute_force(cov, w, k)
        assert exact
        assert lo == pytest.approx(truth, rel=1e-9)
        assert hi == pytest.approx(truth, rel=1e-6)
        assert chosen.size <= k
        assert coverage_value(cov, w, chosen) == pytest.approx(truth, rel=1e-9)


def test_one_connected_part_is_still_exact():
    # one town: no decomposition, the LP + reduced-cost fixing + MILP path alone
    cov, w, _ = spatial_instance(7, towns=1, n_cand=14, n_orig=250, spread=1.2)
    assert overlap_parts(_pattern(cov))[0] == 1
    for k in (2, 4):
        res = select_sites(cov, w, k=k, method="milp")
        assert res.status == "optimal"
        assert res.objective == pytest.approx(brute_force(cov, w, k), rel=1e-9)
        assert res.info["milp_parts"] == 1


def test_select_sites_by_parts_equals_brute_force_and_reports_parts():
    cov, w, _ = spatial_instance(11, towns=4, n_cand=14, n_orig=300)
    res = select_sites(cov, w, k=5, method="milp")
    assert res.status == "optimal" and res.mip_gap == 0.0
    assert res.objective == pytest.approx(brute_force(cov, w, 5), rel=1e-9)
    assert res.bound == pytest.approx(res.objective, rel=1e-6)
    assert res.info["milp_parts"] >= 4


def test_curve_by_parts_exact_at_every_k():
    cov, w, _ = spatial_instance(5, towns=3, n_cand=12, n_orig=250)
    pts = coverage_curve(cov, w, k_max=6, time_limit_s=60)
    for p in pts:
        assert p.exact and p.status == "optimal"
        assert p.objective == pytest.approx(brute_force(cov, w, p.k), rel=1e-9)
    assert all(a.objective <= b.objective + 1e-9 for a, b in zip(pts[:-1], pts[1:], strict=True))


def test_out_of_time_gives_a_valid_bound_and_gap():
    cov, w, _ = spatial_instance(3, towns=2, n_cand=40, n_orig=600, spread=1.0)
    n = cov.shape[0]
    ps = PartsSolver(_pattern(cov), w, np.zeros(n), k_max=8)
    chosen, lo, hi, exact = ps.solve(8, deadline=0.0)  # no time at all: greedy and trivial bounds
    assert coverage_value(cov, w, chosen) == pytest.approx(lo)
    best = select_sites(cov, w, k=8, method="milp").objective
    assert lo <= best + 1e-9 <= hi + 1e-6
    assert not exact or hi - lo <= 1e-6 * lo


def test_lp_tangents_bound_every_k():
    """An LP at one k bounds the part's optimum at every other k (concavity of the LP value
    in k, the site-count dual as a supergradient)."""
    from careblocks.sites.decompose import _Part

    cov, w, _ = spatial_instance(9, towns=1, n_cand=12, n_orig=200, spread=1.0)
    pat = _pattern(cov)
    keep = np.flatnonzero(np.diff(pat.tocsc().indptr) > 0)
    part = _Part(np.arange(12), pat[:, keep], w[keep], np.zeros(12), k_max=6)
    part.run_lp(3, None)
    for k in range(0, 7):
        assert part.hi[k] >= brute_force(cov, w, k) - 1e-6
        assert part.lo[k] <= brute_force(cov, w, k) + 1e-9


@pytest.mark.parametrize("seed", [21, 22])
def test_parts_equal_the_one_model_milp_on_larger_instances(seed):
    """Against the textbook MILP handed to HiGHS whole (scipy.optimize.milp), where brute
    force is out of reach: 3 towns, 60 candidates, K = 4 and 9."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    cov, w, _ = spatial_instance(seed, towns=3, n_cand=60, n_orig=900)
    pat = _pattern(cov)
    n_c, n_o = pat.shape
    a = sp.vstack([sp.hstack([-pat.T, sp.identity(n_o)]),
                   sp.hstack([sp.csr_matrix(np.ones((1, n_c))), sp.csr_matrix((1, n_o))])], format="csr")
    for k in (4, 9):
        ref = milp(np.concatenate([np.zeros(n_c), -w]),
                   constraints=LinearConstraint(a, -np.inf, np.r_[np.zeros(n_o), k]),
                   integrality=np.r_[np.ones(n_c), np.zeros(n_o)], bounds=Bounds(0, 1),
                   options={"mip_rel_gap": 1e-9})
        res = select_sites(cov, w, k=k, method="milp")
        assert res.status == "optimal"
        assert res.objective == pytest.approx(-ref.fun, rel=1e-9)


def test_curve_under_a_tight_time_limit_keeps_valid_bounds():
    """Out of time, every point is still a real set whose value is at most the optimum,
    and its bound at least the optimum (brute force)."""
    cov, w, _ = spatial_instance(13, towns=2, n_cand=12, n_orig=300, spread=1.0)
    pts = coverage_curve(cov, w, k_max=5, time_limit_s=0.001)
    for p in pts:
        truth = brute_force(cov, w, p.k)
        assert coverage_value(cov, w, p.selected) == pytest.approx(p.objective, rel=1e-9)
        assert p.objective <= truth + 1e-9
        assert p.bound >= truth * (1 - 1e-6)
        assert p.exact or p.gap > 0


def test_kept_highs_model_gets_its_time_limit_afresh_on_every_solve():
    """HiGHS measures its time limit against the run time a model object has accumulated;
    a kept model (the curve's LP) must still get the full limit of each new solve."""
    import time

    from careblocks.sites._milp import _model

    cov, w, _ = spatial_instance(17, towns=2, n_cand=120, n_orig=2500, spread=1.5)
    model, row = _model(_pattern(cov), w, 5, np.zeros((0, 2), dtype=np.int64), None, None, None, relax=True)
    x, status, *_ = model.solve(start=None, time_limit_s=None, solver="simplex")
    assert status == "optimal"
    while model.h.getRunTime() < 0.5:  # let the model's own clock pass half a second
        for k in (6, 5):
            model.set_row_upper(row, k)
            model.solve(start=None, time_limit_s=None, solver="simplex")
    # one more k from the last basis (a few dual simplex steps), with a limit below the
    # run time so far
    model.set_row_upper(row, 8)
    t0 = time.perf_counter()
    x, status, *_ = model.solve(start=None, time_limit_s=0.25 * model.h.getRunTime(), solver="simplex")
    assert status == "optimal", (status, time.perf_counter() - t0)
    assert x is not None
