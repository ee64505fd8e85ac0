"""Catchments and score components on small networks built in code, plus a hand computation.

The toy network is a path of nodes 100 m apart (4.8 km/h -> 75 s per edge), so every travel
time can be worked out by hand.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from careblocks.config import config_from_dict
from careblocks.errors import ConfigError, DataQualityWarning
from careblocks.network.cost import WalkCost
from careblocks.network.graph import WalkNetwork
from careblocks.network.search import _reach_fallback, gather_targets
from careblocks.sites.hours import hours_returned
from careblocks.sites.scoring import (
    Catchments,
    catchment_polygons,
    compute_catchments,
    objective_weights,
    score_candidates,
    score_components,
    weighted_score,
)


def _path_network(n: int, step_m: float = 100.0) -> WalkNetwork:
    a = np.arange(n - 1)
    src = np.concatenate([a, a + 1])
    dst = np.concatenate([a + 1, a])
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return WalkNetwork(indptr=indptr, indices=dst.astype(np.int32), length_m=np.full(dst.size, step_m),
                       x=np.arange(n) * step_m, y=np.zeros(n), node_id=np.arange(n, dtype=np.int64),
                       crs="EPSG:32618")


def _grid_network(side: int, step_m: float = 80.0, seed: int = 0) -> WalkNetwork:
    rng = np.random.default_rng(seed)
    idx = np.arange(side * side).reshape(side, side)
    u = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    v = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    length = step_m * rng.uniform(0.7, 1.6, u.size)
    src, dst, ln = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([length, length])
    order = np.lexsort((dst, src))
    n = side * side
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    yy, xx = np.divmod(np.arange(n), side)
    return WalkNetwork(indptr=indptr, indices=dst[order].astype(np.int32), length_m=ln[order],
                       x=xx * step_m, y=yy * step_m, node_id=np.arange(n, dtype=np.int64), crs="EPSG:32618")


def _cfg(**sites):
    raw = {"access": {"threshold_min": 15}, "sites": sites}
    return config_from_dict(raw)


def test_catchments_match_scipy_dijkstra_and_brute_force():
    net = _grid_network(30)
    rng = np.random.default_rng(4)
    cfg = _cfg()
    cands = pd.DataFrame({"node": rng.choice(net.n_nodes, 40, replace=False),
                          "snap_m": rng.uniform(0, 60, 40)})
    origins = pd.DataFrame({"node": rng.integers(0, net.n_nodes, 500), "snap_m": rng.uniform(0, 80, 500)})
    cat = compute_catchments(cfg, cands, origins, net)

    def fallback(network, nodes, off, *, cost, limit_s):
        return _reach_fallback(network.indptr, network.indices, cost.edge_seconds(network),
                               nodes, off, limit_s)

    ref = compute_catchments(cfg, cands, origins, net, reach_fn=fallback)
    assert cat.coverage.nnz == ref.coverage.nnz > 0
    assert abs(cat.coverage - ref.coverage).max() < 1e-6
    # brute force: full Dijkstra, every leg added by hand
    from scipy.sparse.csgraph import dijkstra

    mps = 4.8 / 3.6
    d = dijkstra(net.to_scipy(WalkCost(4.8)), indices=cands["node"].to_numpy())
    full = d[:, origins["node"].to_numpy()] + cands["snap_m"].to_numpy()[:, None] / mps \
        + origins["snap_m"].to_numpy()[None, :] / mps
    dense = cat.coverage.toarray()
    inside = full <= 900.0
    assert np.array_equal(inside, cat.coverage.toarray() > 0)
    assert np.allclose(dense[inside], full[inside])


def test_gather_targets_keeps_several_targets_per_node_and_the_limit():
    reach = sp.csr_matrix((np.array([10.0, 50.0, 1e-6]), np.array([0, 2, 1]), np.array([0, 2, 3])),
                          shape=(2, 3))
    nodes = np.array([2, 0, 2, 1])
    off = np.array([5.0, 0.0, 60.0, 0.0])
    g = gather_targets(reach, nodes, off, limit_s=100.0)
    assert g.toarray().tolist() == [[55.0, 10.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1e-6]]
    g2 = gather_targets(reach, nodes, off, limit_s=60.0)
    assert g2.toarray()[0].tolist() == [55.0, 10.0, 0.0, 0.0]  # 50 + 60 > 60 dropped


def test_hours_returned_toy_case_by_hand():
    """A block at node 0 of a 100 m path; origins at nodes 2 and 6, services far away.

    4.8 km/h = 80 m/min: node 2 is 2.5 min from the block, node 6 is 7.5 min.
    Origin A (node 2): 300 people = 100 households; daycare today 40 min, health unreachable.
    Origin B (node 6): 90 people = 30 households; daycare today 5 min, health 90 min.
    Daycare 10 round trips a week by every household (user_group = households, share 1),
    health 0.5 by every household; cap 60 min.
      daycare: A saves 40 - 2.5 = 37.5 min one way -> 10 x 2 x 37.5 x 100 / 60 = 1250 h
               B: 5 < 7.5, no saving                  -> 0
      health:  A cannot reach it today and B is 90 min away, beyond the 60-min cap: neither
               makes the trip today, so no hours, but 300 + 90 people gain access
    """
    net = _path_network(10)
    cfg = config_from_dict({
        "access": {"threshold_min": 15},
        "census": {"household_size": 3.0},
        "services": {
            "daycare": {"trips_per_week": 10, "user_group": "households", "user_share": 1.0},
            "health": {"trips_per_week": 0.5},
        },
        "sites": {"offers": ["daycare", "health"], "current_time_cap_min": 60.0},
    })
    cands = pd.DataFrame({"candidate_id": ["c0"], "node": [0], "snap_m": [0.0], "is_public_anchor": [True]})
    origins = pd.DataFrame({"population": [300.0, 90.0], "node": [2, 6], "snap_m": [0.0, 0.0],
                            "walk_min_daycare": [40.0, 5.0], "walk_min_health": [np.nan, 90.0]})
    cat = compute_catchments(cfg, cands, origins, net)
    assert np.allclose(cat.coverage.toarray() / 60.0, [[2.5, 7.5]])
    with pytest.warns(DataQualityWarning, match="no children_under5"):
        comp = score_components(cfg, origins, cat, is_public_anchor=np.array([True]))
    assert comp["hours_returned_daycare"].iloc[0] == pytest.approx(1250.0)
    assert comp["hours_returned_health"].iloc[0] == 0.0
    assert comp["hours_returned_week"].iloc[0] == pytest.approx(1250.0)
    assert comp["first_access_health"].iloc[0] == 390.0
    assert comp["first_access_daycare"].iloc[0] == 0.0
    # gap closed: daycare only A (40 > 15), health both (NaN and 90)
    assert comp["gap_closed_daycare"].iloc[0] == 300.0
    assert comp["gap_closed_health"].iloc[0] == 390.0
    assert comp["gap_closed"].iloc[0] == 690.0
    assert comp["population_covered"].iloc[0] == 390.0
    # the function on arrays gives the same
    h = hours_returned(cat.coverage, np.array([40.0, 5.0]), np.array([100.0, 30.0]), 10.0)
    assert h[0] == pytest.approx(1250.0)
    # the default daycare users: half of the children under 5 (mapped) ...
    dflt = config_from_dict({
        "access": {"threshold_min": 15},
        "services": {"daycare": {}, "health": {}},
        "sites": {"offers": ["daycare", "health"], "current_time_cap_min": 60.0},
    })
    o2 = origins.assign(children_under5=[20.0, 10.0])
    comp2 = score_components(dflt, o2, cat)
    assert comp2["hours_returned_daycare"].iloc[0] == pytest.approx(10 * 2 * 37.5 * (0.5 * 20) / 60)
    assert comp2["children_under5_covered"].iloc[0] == 30.0
    # ... or, unmapped, 7 % of the population, half of them users
    with pytest.warns(DataQualityWarning, match="no children_under5"):
        comp3 = score_components(dflt, origins, cat)
    assert comp3["hours_returned_daycare"].iloc[0] == pytest.approx(10 * 2 * 37.5 * (0.5 * 0.07 * 300) / 60)
    # objective weights: gap_closed counts person-service gaps; hours uses T as the new time
    assert objective_weights(cfg, origins).tolist() == [600.0, 90.0]
    hw = objective_weights(cfg, origins, objective="hours_returned")
    assert hw[0] == pytest.approx(10 * 2 * 25 * 100 / 60)  # health: no trip today, no hours
    assert hw[1] == 0.0


def test_colocation_need_and_score_rank():
    net = _path_network(30)
    cfg = _cfg(offers=["daycare"])
    cands = pd.DataFrame({"candidate_id": ["b", "a", "c"], "node": [0, 0, 29], "snap_m": [0.0, 0.0, 0.0],
                          "is_public_anchor": [True, True, False]})
    origins = pd.DataFrame({"population": [100.0, 50.0], "node": [1, 28], "snap_m": [0.0, 0.0],
                            "walk_min_daycare": [30.0, 30.0], "care_need_index": [0.5, 1.0]})
    services = pd.DataFrame({"service": ["health", "health", "laundromat"], "node": [3, 29, 25],
                             "snap_m": [0.0, 0.0, 0.0]})
    cat = compute_catchments(cfg, cands, origins, net, services=services)
    import geopandas as gpd

    g = gpd.GeoDataFrame(cands, geometry=gpd.points_from_xy(net.x[cands["node"]], net.y[cands["node"]]),
                         crs=net.crs)
    s = score_candidates(cfg, g, origins, services, cat)
    assert s["colocated_health"].tolist() == [1.0, 1.0, 1.0]  # nodes 3 and 29 within 1,200 m
    assert s["colocated_laundromat"].tolist() == [0.0, 0.0, 1.0]
    assert s["need_covered"].tolist() == [50.0, 50.0, 50.0]
    assert s["demand_covered"].tolist() == s["need_covered"].tolist()
    # "a" and "b" are identical: equal scores, rank tie broken by candidate_id
    assert s.loc[1, "score"] == s.loc[0, "score"]
    assert s.set_index("candidate_id")["rank"].to_dict()["a"] < s.set_index("candidate_id")["rank"].to_dict()["b"]
    assert sorted(s["rank"]) == [1, 2, 3]
    assert s["score"].between(0, 1).all()


def test_weights_validated():
    comp = pd.DataFrame({"gap_closed": [1.0, 3.0], "hours_returned_week": [2.0, 2.0]})
    score, rank = weighted_score(comp, {"gap_closed": 1.0}, ["x", "y"])
    assert score.tolist() == [0.0, 1.0] and rank.tolist() == [2, 1]
    with pytest.raises(ConfigError, match="sites.weights.bogus"):
        weighted_score(comp, {"bogus": 1.0}, ["x", "y"])
    with pytest.raises(ConfigError, match="sites.weights.gap_closed"):
        weighted_score(comp, {"gap_closed": -1.0}, ["x", "y"])


def test_catchment_polygons_cover_reached_nodes():
    import shapely

    net = _grid_network(20)
    cfg = _cfg()
    cands = pd.DataFrame({"node": [0, 210], "snap_m": [0.0, 0.0]})
    cat = compute_catchments(cfg, cands, pd.DataFrame({"node": [5], "snap_m": [0.0]}), net)
    polys = catchment_polygons(net, cat.reach, ids=["p", "q"], limit_s=cat.limit_s, buffer_m=30)
    assert polys["candidate_id"].tolist() == ["p", "q"]
    for i, geom in enumerate(polys.geometry):
        nodes = cat.reach[i].indices
        assert shapely.contains_xy(geom, net.x[nodes], net.y[nodes]).all()
        unreached = np.setdiff1d(np.arange(net.n_nodes), nodes)
        far = shapely.distance(geom, shapely.points(net.x[unreached], net.y[unreached])) > 0
        assert far.mean() > 0.5  # a catchment, not the whole grid
    assert isinstance(cat, Catchments) and dataclasses.is_dataclass(cat)
