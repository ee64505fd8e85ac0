"""The bounds and fixings of the exact selection by parts never cut off a better set:
Lagrangian bounds from the LP's multipliers, Lagrangian probing (sites fixed in or out),
checked against brute force over every set on hand-built instances and against the plain
maximal covering MILP handed to HiGHS whole on real Fontibón catchments."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from careblocks.sites.decompose import _Part
from careblocks.sites.selection import coverage_curve, coverage_value, select_sites
from test_decompose import spatial_instance


def _pattern(cov):
    return sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)


def _part(cov, w, k_max):
    pat = _pattern(cov)
    keep = np.flatnonzero(np.diff(pat.tocsc().indptr) > 0)
    n = pat.shape[0]
    return _Part(np.arange(n), pat[:, keep], w[keep], np.zeros(n), k_max=k_max)


def plain_milp(cov, w, k: int, fixed_in: int | None = None) -> tuple[float, np.ndarray]:
    """The textbook maximal covering MILP straight to HiGHS (no reductions, no parts),
    optionally with one site forced in."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    pat = _pattern(cov)
    n_c, n_o = pat.shape
    lb = np.zeros(n_c + n_o)
    if fixed_in is not None:
        lb[fixed_in] = 1.0
    a = sp.vstack([sp.hstack([-pat.T, sp.identity(n_o)]),
                   sp.hstack([sp.csr_matrix(np.ones((1, n_c))), sp.csr_matrix((1, n_o))])], format="csr")
    res = milp(np.concatenate([np.zeros(n_c), -w]),
               constraints=LinearConstraint(a, -np.inf, np.r_[np.zeros(n_o), k]),
               integrality=np.r_[np.ones(n_c), np.zeros(n_o)], bounds=Bounds(lb, 1),
               options={"mip_rel_gap": 1e-9})
    assert res.status == 0
    return -res.fun, np.flatnonzero(res.x[:n_c] > 0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lagrangian_bounds_hold_at_every_k_and_match_the_lp(seed):
    cov, w, _ = spatial_instance(seed, towns=1, n_cand=12, n_orig=250, spread=1.1)
    truth = [0.0] + [max(coverage_value(cov, w, s) for s in itertools.combinations(range(12), k))
                     for k in range(1, 7)]
    part = _part(cov, w, 6)
    part.run_lp(3, None)
    g, _, u, c, base = part.lp_at[3]
    assert np.all(u >= 0) and np.all(u <= part.wa + 1e-12)
    # with the LP's duals the Lagrangian value at its k is the LP optimum
    assert base + np.sort(c)[::-1][:3].sum() == pytest.approx(g, rel=1e-7)
    for k in range(7):
        assert part.hi[k] >= truth[k] * (1 - 1e-9)
        assert part.lo[k] <= truth[k] + 1e-9


@pytest.mark.parametrize("seed,k", [(3, 3), (4, 4), (7, 5), (8, 1)])
def test_probe_bounds_hold_for_every_site(seed, k):
    """Per site, the probing bounds are at least the best set of k sites holding it and
    the best set lacking it (brute force over all sets)."""
    n = 13
    cov, w, _ = spatial_instance(seed, towns=1, n_cand=n, n_orig=300, spread=1.2)
    part = _part(cov, w, 6)
    part.run_lp(k, None)
    part.run_lp(k + 1, None)
    b_in, b_out = part._probe_bounds(k)
    # multipliers of another k's LP are valid too
    o_in, o_out = part._probe_bounds(k, u_from=k + 1)
    best_in, best_out = np.zeros(n), np.zeros(n)
    for s in itertools.combinations(range(n), k):
        v = coverage_value(cov, w, s)
        mask = np.zeros(n, dtype=bool)
        mask[list(s)] = True
        best_in[mask] = np.maximum(best_in[mask], v)
        best_out[~mask] = np.maximum(best_out[~mask], v)
    assert np.all(b_in >= best_in * (1 - 1e-12))
    assert np.all(b_out >= best_out * (1 - 1e-12))
    assert np.all(o_in >= best_in * (1 - 1e-12))
    assert np.all(o_out >= best_out * (1 - 1e-12))
    # and they are not trivial: some site's bound in is below the LP's
    assert (b_in < part.lp_at[k][0] * (1 - 1e-9)).any()


@pytest.mark.parametrize("seed,k", [(3, 3), (4, 4), (5, 5), (6, 2)])
def test_probing_fixings_keep_every_better_set(seed, k):
    """Every set that covers more than the best known one holds all sites fixed in and
    none fixed out (checked over all sets of k sites)."""
    n = 13
    cov, w, _ = spatial_instance(seed, towns=1, n_cand=n, n_orig=300, spread=1.2)
    part = _part(cov, w, 6)
    part.run_lp(k, None)
    values = {s: coverage_value(cov, w, s) for s in itertools.combinations(range(n), k)}
    best = max(values.values())
    ranked = sorted(set(values.values()), reverse=True)
    checked = 0
    # known sets at a few levels below the optimum, the optimum itself last
    for inc_value in [ranked[min(i, len(ranked) - 1)] for i in (12, 6, 2, 1)] + [best]:
        part.lo[k] = inc_value
        zero, one = part._fixings(k)
        better = [s for s, v in values.items() if v > inc_value * (1 + 1e-12)]
        for s in better:
            sset = set(s)
            assert not (sset & set(np.flatnonzero(zero)))
            assert set(np.flatnonzero(one)) <= sset
        checked += len(better)
        if not better:  # at the optimum: fixing may prove it (a site both in and out)
            assert inc_value == best
    assert checked > 0


@pytest.fixture(scope="module")
def fontibon_instance(data):
    """Real 15-minute walking catchments on the Fontibón network: 150 candidates and
    3,000 origins at random nodes (fixed seed), lognormal weights."""
    import warnings

    import pandas as pd

    from careblocks.config import config_from_dict
    from careblocks.errors import DataQualityWarning
    from careblocks.io.osm import read_osm_network
    from careblocks.network.graph import build_walk_network, local_crs
    from careblocks.sites.scoring import compute_catchments

    nodes, edges = read_osm_network(data / "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        net, _ = build_walk_network(nodes, edges, crs=local_crs(nodes))
    rng = np.random.default_rng(5)

    def points(count):
        return pd.DataFrame({"node": rng.integers(0, net.n_nodes, count).astype(np.int64),
                             "snap_m": rng.uniform(0.0, 80.0, count)})

    cands, origins = points(150), points(3000)
    w = np.round(rng.lognormal(4.0, 1.0, 3000))
    cfg = config_from_dict({"access": {"threshold_min": 10.0}, "walk": {"speed_kmh": 4.8}})
    cov = compute_catchments(cfg, cands, origins, net).coverage
    return sp.csr_matrix(cov), w


def test_exact_by_parts_equals_the_plain_milp_on_fontibon(fontibon_instance):
    cov, w = fontibon_instance
    for k in (4, 9, 15):
        truth, _ = plain_milp(cov, w, k)
        res = select_sites(cov, w, k=k, method="milp", time_limit_s=300)
        assert res.status == "optimal"
        assert res.objective == pytest.approx(truth, rel=1e-9)
        assert coverage_value(cov, w, res.selected) == pytest.approx(truth, rel=1e-9)


def test_fixings_keep_the_plain_optimum_on_fontibon(fontibon_instance):
    """With a best known value below the optimum (the greedy set's or 0.3 % below the
    optimum), the optimum HiGHS finds on the whole instance holds every site fixed in and
    none fixed out, and the Lagrangian bounds stay above it at every k."""
    from careblocks.sites.selection import _greedy

    cov, w = fontibon_instance
    part = _part(cov, w, 15)
    keep = np.flatnonzero(np.diff(_pattern(cov).tocsc().indptr) > 0)
    for k in (6, 12):
        truth, opt = plain_milp(cov, w, k)
        part.run_lp(k, None)
        greedy, _, _ = _greedy(cov, w, k, np.zeros((0, 2), dtype=np.int64), None, None, None)
        part.lo[k] = min(coverage_value(cov, w, greedy), truth * (1 - 0.003))
        zero, one = part._fixings(k)
        assert zero.sum() > 0  # the test bites: some sites are fixed out
        assert not zero[opt].any()
        assert one[np.setdiff1d(np.arange(cov.shape[0]), opt)].sum() == 0
        assert part.hi[k] >= truth * (1 - 1e-9)
        # the tightest probing bounds, against HiGHS with that site forced in
        b_in, _ = part._probe_bounds(k)
        for i in np.argsort(b_in)[:3]:
            forced, _ = plain_milp(cov, w, k, fixed_in=int(i))
            assert b_in[i] >= forced * (1 - 1e-9)
    assert keep.size > 0


def test_curve_on_fontibon_points_are_exact_or_bounded(fontibon_instance):
    cov, w = fontibon_instance
    pts = coverage_curve(cov, w, k_max=8, time_limit_s=300)
    for p in pts:
        truth, _ = plain_milp(cov, w, p.k)
        assert p.objective <= truth * (1 + 1e-9)
        assert p.bound >= truth * (1 - 1e-9)
        if p.exact:
            assert p.objective == pytest.approx(truth, rel=1e-9)
    assert sum(p.exact for p in pts) == len(pts)


def test_bound_without_an_lp_respects_the_spacing_and_holds():
    """The bound used when no LP or MILP bound is at hand: at most one site per group of
    candidates closer than the spacing, each counted at its own value; at least the best
    feasible set (brute force), and tighter than ignoring the spacing on some instances."""
    from careblocks.sites import selection as S

    tighter = 0
    for seed in range(4):
        cov, w, xy = spatial_instance(seed, towns=1, n_cand=12, n_orig=250, spread=2.5)
        k, spacing = 3, 1.0
        kw = dict(min_spacing_m=spacing, candidate_xy=xy, districts=None, max_per_district=None,
                  existing=None, capacity=None, pair_gains=False, cost=None, budget=None, fixed=None)
        pb = S._prepare(cov, w, k=k, method="milp", **kw)
        S._reduce(pb, True)
        conflicts = {tuple(p) for p in pb.conflicts.tolist()}
        truth = 0.0
        for size in range(1, k + 1):
            for s in itertools.combinations(range(12), size):
                if not any((a, b) in conflicts for a, b in itertools.combinations(s, 2)):
                    truth = max(truth, coverage_value(cov, w, s))
        spaced = S._trivial_bound(pb, k)
        pb.sub_conflicts = np.zeros((0, 2), dtype=np.int64)
        unspaced = S._trivial_bound(pb, k)
        assert len(conflicts) > 0
        assert unspaced >= spaced >= truth * (1 - 1e-12)
        tighter += spaced < unspaced
        # the groups are pairwise in conflict
        label = S._spacing_cliques(pb.conflicts, 12, np.arange(12))
        for g in np.unique(label):
            members = np.flatnonzero(label == g)
            for a, b in itertools.combinations(members, 2):
                assert (min(a, b), max(a, b)) in conflicts
    assert tighter > 0


class _FakeClock:
    """``time.perf_counter`` that moves only when HiGHS runs: each solve costs ``step``
    seconds, or its whole time limit when that is shorter (as if it ran out of it).
    Records each solve's start and time limit."""

    def __init__(self, monkeypatch, step: float):
        import threading
        import time

        from careblocks.sites import _milp

        self.now, self.step, self.calls = 1000.0, step, []
        lock = threading.Lock()
        real = _milp._HighsModel.solve

        def solve(model, *, start, time_limit_s, solver="choose"):
            with lock:
                t = self.now
            self.calls.append((t, time_limit_s))
            out = real(model, start=start, time_limit_s=time_limit_s, solver=solver)
            with lock:
                self.now += self.step if time_limit_s is None else min(self.step, max(0.0, time_limit_s))
            return out

        monkeypatch.setattr(time, "perf_counter", lambda: self.now)
        monkeypatch.setattr(_milp._HighsModel, "solve", solve)


@pytest.mark.parametrize("budget", [3.0, 7.5])
def test_curve_honours_its_time_budget(fontibon_instance, monkeypatch, budget):
    """A curve given ``budget`` seconds on real Fontibón catchments, timed by a clock that
    only HiGHS moves (1 s a solve): no solve starts at or after the deadline nor is given
    time past it, so the curve ends within it; the points it had no time for are real sets
    with valid bounds, marked exact only where they are the optimum."""
    cov, w = fontibon_instance
    k_max = 15  # all 15 points take 20 solves
    truth = [plain_milp(cov, w, k)[0] for k in range(1, k_max + 1)]
    clock = _FakeClock(monkeypatch, step=1.0)
    start = clock.now
    pts = coverage_curve(cov, w, k_max=k_max, time_limit_s=budget)
    deadline = start + budget
    assert clock.calls  # it did solve within the budget
    for t, limit in clock.calls:
        assert t < deadline
        assert limit is not None and t + limit <= deadline + 1e-9
    assert clock.now <= deadline + 1e-9
    for p, best in zip(pts, truth, strict=True):
        assert coverage_value(cov, w, p.selected) == pytest.approx(p.objective, rel=1e-9)
        assert p.objective <= best * (1 + 1e-9)
        assert p.bound >= best * (1 - 1e-9)
        if p.exact:
            assert p.objective == pytest.approx(best, rel=1e-9)
        else:
            assert p.gap > 0 and p.status != "optimal"
    assert not all(p.exact for p in pts)  # the deadline bites: some points are only bounded


def test_one_model_curve_honours_its_time_budget(monkeypatch):
    """The same with a spacing rule (one HiGHS model kept between K, not parts)."""
    cov, w, xy = spatial_instance(23, towns=2, n_cand=30, n_orig=400, spread=1.2)
    k_max, spacing = 8, 0.7
    truth = [select_sites(cov, w, k=k, method="milp", min_spacing_m=spacing, candidate_xy=xy,
                          time_limit_s=None) for k in range(1, k_max + 1)]
    assert all(t.status == "optimal" for t in truth)
    clock = _FakeClock(monkeypatch, step=1.0)
    start = clock.now
    pts = coverage_curve(cov, w, k_max=k_max, time_limit_s=4.0, min_spacing_m=spacing, candidate_xy=xy)
    deadline = start + 4.0
    assert clock.calls
    for t, limit in clock.calls:
        assert t < deadline
        assert limit is not None and t + limit <= deadline + 1e-9
    assert clock.now <= deadline + 1e-9
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    for p, best in zip(pts, truth, strict=True):
        sel = p.selected
        assert (d[np.ix_(sel, sel)] + np.eye(sel.size) * 1e9 >= spacing).all()
        assert coverage_value(cov, w, sel) == pytest.approx(p.objective, rel=1e-9)
        assert p.objective <= best.objective * (1 + 1e-9)
        assert p.bound >= best.objective * (1 - 1e-9)
        if p.exact:
            assert p.objective == pytest.approx(best.objective, rel=1e-9)
    assert not all(p.exact for p in pts)
