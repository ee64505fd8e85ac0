"""Site selection: MILP vs brute force, greedy bound, constraints, ties, and Fontibón.

Small instances are random and seeded (numpy default_rng); the real-data test runs the
pipeline's stages on Bogotá Fontibón (OSM anchors as candidates, building-based origins).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from careblocks.errors import ConfigError, InputDataError
from careblocks.sites.rationale import rationale, round_sensibly
from careblocks.sites.selection import conflict_pairs, coverage_value, select_sites


def _instance(seed, n_c=10, n_o=40, density=0.2):
    rng = np.random.default_rng(seed)
    cov = sp.random(n_c, n_o, density=density, random_state=rng, format="csr")
    cov.data = rng.uniform(60, 900, cov.nnz)
    w = rng.integers(1, 50, n_o).astype(float)
    return cov, w, rng


def _brute(cov, w, k, feasible=lambda c: True):
    best = 0.0
    for r in range(0, k + 1):
        for combo in itertools.combinations(range(cov.shape[0]), r):
            if feasible(combo):
                best = max(best, coverage_value(cov, w, combo))
    return best


@pytest.mark.parametrize("seed", range(8))
def test_milp_equals_brute_force_and_greedy_bound(seed):
    cov, w, _ = _instance(seed)
    for k in (1, 2, 3):
        opt = _brute(cov, w, k)
        r = select_sites(cov, w, k=k, method="milp")
        g = select_sites(cov, w, k=k, method="greedy")
        assert r.status == "optimal"
        assert r.objective == pytest.approx(opt)
        assert coverage_value(cov, w, r.selected) == pytest.approx(r.objective)
        assert g.objective >= (1 - 1 / math.e) * opt - 1e-9
        assert g.objective <= opt + 1e-9
        # marginal gains add up, cumulative is their running sum and never decreases
        assert np.allclose(np.cumsum(r.marginal_gain), r.cumulative)
        assert np.all(np.diff(r.cumulative) >= 0)


@pytest.mark.parametrize("seed", range(4))
def test_spacing_and_districts_respected_and_optimal(seed):
    cov, w, rng = _instance(100 + seed, n_c=10, n_o=50)
    xy = rng.uniform(0, 2000, (10, 2))
    districts = np.array(["a", "a", "a", "b", "b", "b", "c", "c", None, None], dtype=object)
    spacing = 600.0
    pairs = {tuple(p) for p in conflict_pairs(xy, spacing)}

    def feasible(c):
        if any((a, b) in pairs for a, b in itertools.combinations(sorted(c), 2)):
            return False
        per = {}
        for i in c:
            if districts[i] is not None:
                per[districts[i]] = per.get(districts[i], 0) + 1
        return all(v <= 1 for v in per.values())

    opt = _brute(cov, w, 3, feasible)
    for method in ("milp", "greedy"):
        r = select_sites(cov, w, k=3, method=method, min_spacing_m=spacing, candidate_xy=xy,
                         districts=districts, max_per_district=1)
        sel = list(r.selected)
        assert feasible(sel), (method, sel)
        d = np.hypot(*(xy[sel][:, None, :] - xy[sel][None, :, :]).transpose(2, 0, 1))
        assert np.all(d[np.triu_indices(len(sel), 1)] >= spacing)
        if method == "milp":
            assert r.objective == pytest.approx(opt)
        else:
            assert r.objective <= opt + 1e-9


def test_adding_a_site_never_lowers_coverage():
    cov, w, _ = _instance(7, n_c=25, n_o=200, density=0.05)
    for method in ("milp", "greedy"):
        values = [select_sites(cov, w, k=k, method=method).objective for k in range(0, 8)]
        assert all(b >= a - 1e-9 for a, b in zip(values, values[1:], strict=False)), (method, values)
    # greedy sets are nested: the first k sites of k+1 are the k sites
    g5 = select_sites(cov, w, k=5, method="greedy").selected
    g6 = select_sites(cov, w, k=6, method="greedy").selected
    assert list(g6[:5]) == list(g5)


def test_ties_broken_deterministically_by_position():
    # candidates 0..3 cover the same 3 origins; 4 covers one more origin alone
    rows = [[0, 1, 2]] * 4 + [[3]]
    cov = sp.csr_matrix(
        (np.ones(13), np.concatenate(rows), np.cumsum([0] + [len(r) for r in rows])), shape=(5, 4)
    )
    w = np.array([1.0, 1.0, 1.0, 3.0])
    for method in ("greedy", "milp"):
        r = select_sites(cov, w, k=2, method=method)
        assert sorted(r.selected.tolist()) == [0, 4]
        # order: largest marginal gain first; equal gains -> smaller position first
        assert r.selected.tolist() == [0, 4]
        assert r.marginal_gain.tolist() == [3.0, 3.0]
    runs = {tuple(select_sites(cov, w, k=2, method="greedy").selected) for _ in range(3)}
    assert len(runs) == 1


def test_existing_sites_count_as_served():
    cov, w, _ = _instance(3, n_c=8, n_o=30)
    served = np.zeros(30, dtype=bool)
    served[:15] = True
    r = select_sites(cov, w, k=2, method="milp", existing=served)
    w2 = np.where(served, 0.0, w)
    assert r.objective == pytest.approx(_brute(cov, w2, 2))
    assert r.existing_weight == pytest.approx(w[served].sum())
    assert np.all(r.served[served] == 1.0)
    # the same through a coverage matrix of existing sites
    ex = sp.csr_matrix((np.ones(15), np.arange(15), [0, 15]), shape=(1, 30))
    assert select_sites(cov, w, k=2, method="milp", existing=ex).objective == pytest.approx(r.objective)


def test_capacity_caps_each_site():
    cov, w, _ = _instance(11, n_c=8, n_o=60, density=0.3)
    cap = 40.0
    m = select_sites(cov, w, k=3, method="milp", capacity=cap)
    g = select_sites(cov, w, k=3, method="greedy", capacity=cap)
    for r in (m, g):
        assert np.all(r.marginal_gain <= cap + 1e-9)
        assert r.objective <= 3 * cap + 1e-9
        assert np.all((r.served >= -1e-12) & (r.served <= 1 + 1e-12))
    assert m.objective >= g.objective - 1e-6


def test_bad_arguments():
    cov, w, _ = _instance(1)
    with pytest.raises(InputDataError, match="origin_weights"):
        select_sites(cov, w[:-1], k=2)
    with pytest.raises(InputDataError, match="candidate_xy"):
        select_sites(cov, w, k=2, min_spacing_m=100)
    with pytest.raises(ConfigError, match="sites.method"):
        select_sites(cov, w, k=2, method="exact")


def test_rationale_sentence_and_rounding():
    import pandas as pd

    assert [round_sensibly(v) for v in (7.4, 123.0, 18_449.0, 2_871.0, 250_600.0)] == [
        7, 120, 18_400, 2_900, 251_000]
    row = pd.Series({"population_covered": 18_412.0, "children_under5_covered": 2_871.0,
                     "gap_closed_daycare": 6_090.0, "gap_closed_health": 0.2,
                     "hours_returned_week": 4_321.0})
    s = rationale(row, threshold_min=15.0, offers=["daycare", "health"])
    assert s == ("Serves 18,400 people within 15 minutes, 2,900 of them children under 5; "
                 "brings daycare within reach of 6,100; returns about 4,300 caregiver hours a week "
                 "on trips made today.")
    # groups only when present
    s2 = rationale(row.drop("children_under5_covered"), threshold_min=20, offers=["daycare"])
    assert "children" not in s2 and "within 20 minutes" in s2
    # a selected site speaks in marginal figures (what it adds to the sites before it)
    new = pd.Series({"new_population_covered": 9_012.0, "new_children_under5_covered": 610.0,
                     "new_gap_closed_daycare": 3_060.0, "new_first_access_daycare": 1_230.0,
                     "new_hours_returned_week": 812.0, **row.to_dict()})
    s3 = rationale(new, threshold_min=15.0, offers=["daycare", "health"], labels={"daycare": "Daycare"})
    assert s3 == ("Brings 9,000 more people within 15 minutes, 610 of them children under 5; "
                  "brings daycare within reach of 3,100; first daycare within 60 minutes for "
                  "1,200 people; returns about 810 caregiver hours a week on trips made today.")


# --------------------------------------------------------------------------------------
# real data: Bogotá Fontibón
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fontibon(data):
    import dataclasses

    from careblocks import pipeline
    from careblocks.config import PROJECT_ROOT, load_config

    cfg = load_config(PROJECT_ROOT / "configs" / "bogota_fontibon.toml")
    cfg = dataclasses.replace(cfg, sites=dataclasses.replace(cfg.sites, k=6, min_spacing_m=0.0,
                                                             method="milp"),
                              sensitivity=dataclasses.replace(cfg.sensitivity, draws=0),
                              outputs=dataclasses.replace(cfg.outputs, language="en"))
    ctx = pipeline.Context(config=cfg)
    for name, fn in pipeline.STAGES:
        if name in ("transit", "demand", "sites"):
            continue
        fn(ctx)
    return ctx


def test_fontibon_sites_plausible(fontibon):
    from careblocks.pipeline.sites_stage import run_sites_stage
    from careblocks.sites.scoring import compute_catchments, objective_weights

    ctx = fontibon
    origins_before = ctx.origins.copy()
    run_sites_stage(ctx)
    cands, sel = ctx.candidates, ctx.selected
    # OSM anchors of Fontibón (dozens of schools, community centres, parks; README facts) and
    # the public schools of the config's candidates layer (kind "parcel")
    assert len(cands) > 100 and set(cands["kind"]) == {"anchor", "parcel"}
    assert (cands.loc[cands["kind"] == "parcel", "category"] == "school").all()
    assert {"school", "community_centre", "park"} <= set(cands["category"])
    assert cands["candidate_id"].is_unique and cands["node"].is_unique
    # K distinct sites, coverage grows
    assert 1 <= len(sel) <= 6 and sel["candidate_id"].is_unique
    assert np.all(np.diff(sel["cumulative_gain"].to_numpy()) > 0)
    assert np.all(sel["marginal_gain"].to_numpy() > 0)
    # rationale numbers are the component columns, rounded
    for _, r in sel.iterrows():
        assert f"Brings {round_sensibly(r['new_population_covered']):,} more people within 15 minutes" \
            in r["rationale"]
        if r["new_hours_returned_week"] >= 1:
            assert f"about {round_sensibly(r['new_hours_returned_week']):,} caregiver hours" in r["rationale"]
    _check_marginal_figures_add_up(ctx, origins_before, cands, sel)
    # the first site's marginal gain is its own standalone gap-closed weight
    cat = compute_catchments(ctx.config, cands, origins_before, ctx.network, services=ctx.services)
    w = objective_weights(ctx.config, origins_before)
    assert sel["marginal_gain"].iloc[0] == pytest.approx(
        coverage_value(cat.coverage, w, [int(np.flatnonzero(cands["candidate_id"] == sel["candidate_id"].iloc[0])[0])]))
    # after: nobody is farther from an offered service, and the catchments' people are within T
    for s in ctx.config.sites.offers:
        before = origins_before[f"walk_min_{s}"].to_numpy(float)
        after = ctx.origins[f"walk_min_{s}_after"].to_numpy(float)
        ok = np.isfinite(before)
        assert np.all(after[ok] <= before[ok] + 1e-9)
        assert np.isfinite(after).all()
    assert len(ctx.catchments) == len(sel) and ctx.catchments.geometry.is_valid.all()
    # hours objective (exact, per pair): a site's standalone gain is its hours column
    from careblocks.sites.hours import hours_pair_values

    hv = hours_pair_values(ctx.config, origins_before, cat.coverage)
    assert np.allclose(np.asarray(hv.sum(axis=1)).ravel(), cands["hours_returned_week"].to_numpy())
    hm = select_sites(hv, None, k=3, method="milp", pair_gains=True)
    hg = select_sites(hv, None, k=3, method="greedy", pair_gains=True)
    assert hm.status == "optimal" and hg.objective <= hm.objective + 1e-6
    first = int(hm.selected[0])
    assert hm.marginal_gain[0] == pytest.approx(cands["hours_returned_week"].iloc[first])
    print(f"Fontibón hours objective k=3: greedy/MILP = {hg.objective / hm.objective:.4f}")
    # greedy vs MILP on the real coverage matrix: greedy's gap depends on the instance (below
    # 2 % on the node-snapped network; 6 % at k=3 and 3 % at k=6 once shared cycleways are
    # walkable and homes snap to their street), so the bound guards against a broken greedy
    for k in (3, 6, 10):
        m = select_sites(cat.coverage, w, k=k, method="milp")
        g = select_sites(cat.coverage, w, k=k, method="greedy")
        assert m.status == "optimal"
        gap = 1 - g.objective / m.objective
        print(f"Fontibón k={k}: greedy/MILP = {g.objective / m.objective:.4f} (gap {gap:.2%})")
        assert g.objective <= m.objective + 1e-6
        assert gap <= 0.08


@pytest.mark.parametrize("seed", range(4))
def test_milp_with_dominated_and_duplicate_candidates(seed):
    """Candidates that are subsets or copies of others are dropped before the MILP; the
    optimum and the tie rule (first position wins) are unchanged."""
    cov, w, rng = _instance(200 + seed, n_c=6, n_o=30, density=0.3)
    dense = (cov.toarray() > 0)
    extra = []
    for _ in range(5):
        src = dense[rng.integers(0, 6)]
        extra.append(src & (rng.random(30) < 0.6))  # a subset
    extra.append(dense[0])  # a copy of candidate 0, placed last
    full = sp.csr_matrix(np.vstack([dense, np.array(extra)]).astype(float))
    for k in (1, 2, 3):
        r = select_sites(full, w, k=k, method="milp")
        assert r.objective == pytest.approx(_brute(full, w, k))
        assert 11 not in r.selected  # the copy of 0 never beats 0


def _pair_value(values, w, sites):
    if len(sites) == 0:
        return 0.0
    return float((values.toarray()[list(sites)].max(axis=0) * w).sum())


@pytest.mark.parametrize("seed", range(6))
def test_pair_gains_milp_equals_brute_force(seed):
    """Facility-location objective (hours depend on the site): sum_j w_j max_i v_ij."""
    rng = np.random.default_rng(300 + seed)
    v = sp.random(9, 30, density=0.3, random_state=rng, format="csr")
    v.data = rng.uniform(0, 10, v.nnz)
    w = rng.uniform(0, 3, 30)
    for k in (1, 2, 3):
        opt = max(_pair_value(v, w, c) for r in range(k + 1) for c in itertools.combinations(range(9), r))
        m = select_sites(v, w, k=k, method="milp", pair_gains=True)
        g = select_sites(v, w, k=k, method="greedy", pair_gains=True)
        assert m.objective == pytest.approx(opt)
        assert _pair_value(v, w, m.selected) == pytest.approx(m.objective)
        assert (1 - 1 / math.e) * opt - 1e-9 <= g.objective <= opt + 1e-9
    with pytest.raises(ConfigError, match="capacity"):
        select_sites(v, w, k=2, pair_gains=True, capacity=5.0)


# --------------------------------------------------------------------------------------
# capacity per site and service, cost and budget, fixed blocks, set covering, the curve
# --------------------------------------------------------------------------------------


def _served_by_flow(cov, demand, cap, sites):
    """Most demand the ``sites`` can serve (origins x services demand, candidates x services
    capacity): a max flow per service, source -> site (capacity) -> covered origin ->
    sink (demand). Independent of the MILP (networkx)."""
    import networkx as nx

    total = 0.0
    for s in range(demand.shape[1]):
        g = nx.DiGraph()
        for i in sites:
            g.add_edge("src", ("c", i), capacity=float(cap[i, s]))
            for j in cov.indices[cov.indptr[i] : cov.indptr[i + 1]]:
                g.add_edge(("c", i), ("o", int(j)))  # no capacity attribute = unbounded
        for j in range(demand.shape[0]):
            g.add_edge(("o", j), "dst", capacity=float(demand[j, s]))
        if sites:
            total += nx.maximum_flow_value(g, "src", "dst")
    return total


@pytest.mark.parametrize("seed", range(5))
def test_capacitated_per_service_equals_brute_force(seed):
    rng = np.random.default_rng(500 + seed)
    cov, _, _ = _instance(500 + seed, n_c=7, n_o=25, density=0.3)
    demand = rng.integers(0, 30, (25, 2)).astype(float)  # users of two services per origin
    cap = rng.integers(10, 120, (7, 2)).astype(float)  # seats per candidate and service
    for k in (1, 2, 3):
        best = max(_served_by_flow(cov, demand, cap, list(c))
                   for r in range(k + 1) for c in itertools.combinations(range(7), r))
        m = select_sites(cov, demand, k=k, method="milp", capacity=cap)
        g = select_sites(cov, demand, k=k, method="greedy", capacity=cap)
        assert m.status == "optimal"
        assert m.objective == pytest.approx(best, rel=1e-6, abs=1e-6)
        # the reported gains are a feasible assignment of the chosen sites
        assert m.objective <= _served_by_flow(cov, demand, cap, list(m.selected)) + 1e-6
        assert g.objective <= best + 1e-6
        assert np.all((m.served >= -1e-9) & (m.served <= 1 + 1e-9))
    # with capacities larger than any demand, it is plain maximal covering
    big = select_sites(cov, demand, k=2, method="milp", capacity=np.full((7, 2), 1e9))
    assert big.objective == pytest.approx(_brute(cov, demand.sum(axis=1), 2))


@pytest.mark.parametrize("seed", range(4))
def test_budget_and_fixed_equal_brute_force(seed):
    cov, w, rng = _instance(600 + seed, n_c=9, n_o=40)
    cost = rng.integers(1, 6, 9).astype(float)
    budget = 7.0
    opt = _brute(cov, w, 9, lambda c: cost[list(c)].sum() <= budget)
    m = select_sites(cov, w, k=9, method="milp", cost=cost, budget=budget)
    g = select_sites(cov, w, k=9, method="greedy", cost=cost, budget=budget)
    assert m.status == "optimal" and m.objective == pytest.approx(opt)
    assert cost[m.selected].sum() <= budget + 1e-9 and cost[g.selected].sum() <= budget + 1e-9
    assert g.objective <= opt + 1e-9
    # blocks kept: candidates 0 and 1 always in; k new ones on top, best over the rest
    keep = [0, 1]
    for k in (1, 2):
        best = max(coverage_value(cov, w, keep + list(c)) for c in itertools.combinations(range(2, 9), k))
        r = select_sites(cov, w, k=k, method="milp", fixed=keep)
        assert not set(r.selected) & set(keep)
        assert r.objective + coverage_value(cov, w, keep) == pytest.approx(best)
        assert r.existing_weight == pytest.approx(coverage_value(cov, w, keep))


def test_fixed_capacitated_blocks_serve_first():
    cov, w, rng = _instance(42, n_c=6, n_o=20, density=0.35)
    demand = w.reshape(-1, 1)
    cap = np.full((6, 1), 60.0)
    keep = [2]
    best = max(_served_by_flow(cov, demand, cap, keep + list(c))
               for c in itertools.combinations([0, 1, 3, 4, 5], 2))
    r = select_sites(cov, demand, k=2, method="milp", capacity=cap, fixed=keep)
    assert r.status == "optimal" and 2 not in set(r.selected)
    # what the new sites add on top of the kept block, as the flow oracle counts it
    assert r.objective + _served_by_flow(cov, demand, cap, keep) == pytest.approx(best, abs=1e-6)
    assert r.bound == pytest.approx(r.objective, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_min_sites_for_coverage_equals_brute_force(seed):
    from careblocks.sites.selection import min_sites_for_coverage

    cov, w, _ = _instance(700 + seed, n_c=9, n_o=40, density=0.25)
    reachable = coverage_value(cov, w, range(9))
    for target in (0.3, 0.6, 0.9):
        need = target * w.sum()
        fewest = next((r for r in range(10) for c in itertools.combinations(range(9), r)
                       if coverage_value(cov, w, c) >= need - 1e-9), None)
        res = min_sites_for_coverage(cov, w, target_share=target)
        if fewest is None:
            assert reachable < need and res.status == "infeasible" and res.k == 0
            continue
        assert res.status == "optimal"
        assert res.k == fewest, (target, res.k, fewest)
        assert coverage_value(cov, w, res.selected) >= need - 1e-6


def test_coverage_curve_matches_single_solves_and_marks_points():
    from careblocks.sites.selection import coverage_curve

    cov, w, _ = _instance(9, n_c=30, n_o=300, density=0.04)
    curve = coverage_curve(cov, w, k_max=8, time_limit_s=60)
    assert [p.k for p in curve] == list(range(1, 9))
    for p in curve:
        single = select_sites(cov, w, k=p.k, method="milp")
        assert p.exact and p.gap == 0.0
        assert p.objective == pytest.approx(single.objective)
        assert coverage_value(cov, w, p.selected) == pytest.approx(p.objective)
        assert p.share == pytest.approx(p.objective / w.sum())
    assert all(b.objective >= a.objective - 1e-9 for a, b in zip(curve, curve[1:], strict=False))
    for k in (1, 2):
        assert curve[k - 1].objective == pytest.approx(_brute(cov, w, k))
    g = coverage_curve(cov, w, k_max=8, method="greedy")
    assert all(gp.objective <= p.objective + 1e-9 for gp, p in zip(g, curve, strict=True))
    assert not any(gp.exact for gp in g)


def test_time_limit_reports_a_proven_gap():
    # a random instance big enough that HiGHS cannot finish in a few milliseconds
    cov, w, _ = _instance(13, n_c=300, n_o=3000, density=0.02)
    r = select_sites(cov, w, k=25, method="milp", time_limit_s=0.05)
    if r.status == "optimal":  # a fast machine: then the bound is the objective
        assert r.mip_gap == pytest.approx(0.0, abs=1e-6)
    else:
        assert r.status.startswith("time limit")
        assert r.bound is not None and r.bound >= r.objective - 1e-6
        assert r.mip_gap is not None and r.mip_gap >= 0
    g = select_sites(cov, w, k=25, method="greedy")
    assert r.objective >= g.objective - 1e-6  # started from greedy + swaps, never worse


def test_greedy_first_pick_ignores_stored_times():
    # candidate 0 covers two heavy origins at short times; 1 covers one light origin far away:
    # the first pick must follow the weights, not weight x stored seconds
    cov = sp.csr_matrix(np.array([[60.0, 60.0, 0.0], [0.0, 0.0, 900.0]]))
    w = np.array([10.0, 10.0, 1.0])
    r = select_sites(cov, w, k=1, method="greedy")
    assert r.selected.tolist() == [0] and r.objective == 20.0


def test_fontibon_coverage_curve_in_geopackage_and_report(fontibon, tmp_path):
    import copy
    import dataclasses

    import pyogrio

    from careblocks.outputs.geopackage import write_geopackage
    from careblocks.outputs.report import build_report
    from careblocks.pipeline import to_results
    from careblocks.pipeline.sites_stage import run_sites_stage

    ctx = copy.copy(fontibon)
    ctx.origins, ctx.stats, ctx.coverage_curve = fontibon.origins.copy(), {}, None
    cfg = ctx.config  # generous time so that a busy machine still proves every point
    ctx.config = dataclasses.replace(cfg, sites=dataclasses.replace(cfg.sites, curve_time_limit_s=600.0))
    run_sites_stage(ctx)
    k = ctx.config.sites.k  # 6: the curve runs to max(10, 2k) = 12
    gpkg = write_geopackage(to_results(ctx), tmp_path / "c.gpkg")
    curve = pyogrio.read_dataframe(gpkg, layer="coverage_curve")
    assert curve["k"].tolist() == list(range(1, 13))
    pop = float(ctx.origins["population"].sum())
    assert (curve["people_within"] <= pop + 1e-6).all()
    assert (curve["covered_share"].between(0, 1 + 1e-9)).all()
    assert (curve["covered"].diff().dropna() >= -1e-6).all()  # more blocks never cover less
    assert curve["exact"].all() and (curve["gap"] == 0).all()  # 210 x 921: proven at every K
    # the curve's point at the run's K is the selection itself (same exact optimum)
    assert curve.loc[curve["k"] == k, "covered"].item() == pytest.approx(ctx.selected["marginal_gain"].sum())
    # each point's chosen ids are candidates, K of them
    ids = set(ctx.candidates["candidate_id"])
    for _, row in curve.iterrows():
        chosen = row["candidate_ids"].split(", ")
        assert len(chosen) <= row["k"] and set(chosen) <= ids
    html = build_report(to_results(ctx))
    assert "How many Care Blocks?" in html and "12 of the 12 points are proven optimal" in html
    assert ctx.stats["sites_curve"]["exact"] == 12


def _check_marginal_figures_add_up(ctx, origins, cands, sel):
    """No site's figures exceed the population; together they are the proposal's figures."""
    from careblocks.sites.hours import hours_pair_values, today_minutes
    from careblocks.sites.scoring import compute_catchments

    pop = origins["population"].to_numpy(float)
    total = pop.sum()
    cat = compute_catchments(ctx.config, cands, origins, ctx.network)
    rows = [int(np.flatnonzero(cands["candidate_id"] == c)[0]) for c in sel["candidate_id"]]
    union = np.zeros(len(origins), dtype=bool)
    union[cat.coverage[rows].indices] = True
    # people: the union of the catchments, counted once, never more than live there
    assert sel["new_population_covered"].sum() == pytest.approx(pop[union].sum())
    assert sel["new_population_covered"].sum() <= total + 1e-6
    assert (sel["new_population_covered"] <= sel["population_covered"] + 1e-6).all()
    assert sel["new_population_covered"].iloc[0] == pytest.approx(sel["population_covered"].iloc[0])
    for s in ctx.config.sites.offers:
        assert sel[f"new_gap_closed_{s}"].sum() <= total + 1e-6
        cur = origins[f"walk_min_{s}"].to_numpy(float)
        beyond = ~np.isfinite(cur) | (cur > 15)
        assert sel[f"new_gap_closed_{s}"].sum() == pytest.approx(pop[union & beyond].sum())
        no_trip = ~np.isfinite(today_minutes(cur, 60.0))
        assert sel[f"new_first_access_{s}"].sum() == pytest.approx(pop[union & no_trip].sum())
        assert (sel[f"new_first_access_{s}"] <= sel[f"new_gap_closed_{s}"] + 1e-6).all()
    # hours: each origin with its nearest proposed block, by brute force over the pairs
    hv = hours_pair_values(ctx.config, origins, cat.coverage[rows]).toarray()
    assert sel["new_hours_returned_week"].sum() == pytest.approx(hv.max(axis=0).sum())
    assert (sel["new_hours_returned_week"] <= sel["hours_returned_week"] + 1e-6).all()
