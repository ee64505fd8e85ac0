"""The Python API: docs/python_api.md runs as written, and gives the minutes of ``careblocks run``.

The page's code blocks run in order in one namespace (as a notebook would); the test then
holds what they computed against the pipeline's own results for the same inputs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import careblocks as cb
from careblocks.errors import CareblocksError, CRSError, InputDataError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "python_api.md"


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def notebook(data):
    """The namespace after running every code block of docs/python_api.md."""
    ns: dict = {"data": data}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for i, code in enumerate(_blocks(DOC.read_text(encoding="utf-8"))):
            exec(compile(code, f"{DOC.name}[block {i + 1}]", "exec"), ns)  # noqa: S102 - our own docs
    finally:
        os.chdir(cwd)
    return ns


def test_the_page_has_runnable_blocks():
    assert len(_blocks(DOC.read_text(encoding="utf-8"))) >= 6


def test_api_minutes_equal_the_pipeline(notebook):
    """walk_access on the network built by the API, from the pipeline's own origins and
    facilities, gives exactly the minutes and counts of the run."""
    res, net = notebook["results"], notebook["net"]
    # the run's network grew by one node per facility and origin snapped inside a street
    # (WalkNetwork.split_at); its junctions are the API's network, in the same order
    assert net.crs == res.network.crs
    assert net.n_nodes == int((res.network.node_id >= 0).sum())
    np.testing.assert_array_equal(net.node_id, res.network.node_id[: net.n_nodes])
    np.testing.assert_array_equal(net.x, res.network.x[: net.n_nodes])
    np.testing.assert_array_equal(net.y, res.network.y[: net.n_nodes])
    origins = res.origins[["origin_id", "geometry"]].rename(columns={"origin_id": "id"})
    services = {s: res.services[res.services["service"] == s] for s in res.service_names}
    mine = cb.walk_access(net, origins, services, speed_kmh=res.config.walk.speed_kmh,
                          threshold_min=res.config.access.threshold_min,
                          profiles=dict(res.config.walk.profiles))
    T = res.config.access.threshold_min
    for s in res.service_names:
        np.testing.assert_allclose(mine[f"walk_min_{s}"], res.origins[f"walk_min_{s}"], rtol=1e-12, atol=0)
        np.testing.assert_array_equal(mine[f"n_within_{T:g}min_{s}"], res.origins[f"n_within_{T:g}min_{s}"])
        for p in res.config.walk.profiles:
            np.testing.assert_allclose(mine[f"walk_min_{s}_{p}"], res.origins[f"walk_min_{s}_{p}"], rtol=1e-12)
    assert (mine[f"services_within_{T:g}min"] == res.origins[f"services_within_{T:g}min"]).all()


def test_osmnx_graph_gives_the_same_network_and_minutes(notebook):
    net, net_ox = notebook["net"], notebook["net_ox"]
    assert net_ox.n_nodes == net.n_nodes
    np.testing.assert_allclose(np.sort(net_ox.length_m), np.sort(net.length_m), rtol=1e-9)
    blocks, centres = notebook["blocks"], notebook["centres"]
    a = cb.walk_access(net_ox, blocks, {"disability_care": centres})
    np.testing.assert_allclose(a["walk_min_disability_care"], notebook["access"]["walk_min_disability_care"],
                               rtol=1e-9)


def test_matrix_and_isochrones_agree_with_walk_access(notebook):
    access, matrix, iso = notebook["access"], notebook["matrix"], notebook["iso"]
    assert list(matrix.columns) == ["from_id", "to_id", "travel_time_min"]
    assert matrix["travel_time_min"].between(0, 30).all()
    nearest = matrix.groupby("from_id")["travel_time_min"].min()
    w = access.set_index("id")["walk_min_disability_care"]
    near = w[w <= 30]
    # every block within 30 min of a centre is in the matrix with the same nearest minutes
    np.testing.assert_allclose(nearest.reindex(near.index).to_numpy(), near.to_numpy(), rtol=1e-12)
    assert set(nearest.index) == set(near.index)
    # isochrones grow with the cut-off and hold the centre they start from
    centres = notebook["local"].head(3).to_crs(notebook["net"].crs)
    assert len(centres) == 3 and iso["id"].nunique() == 3
    for i, (_, grp) in enumerate(iso.groupby("id", sort=False)):
        g = grp.sort_values("cutoff_min")
        assert list(g["cutoff_min"]) == [5.0, 10.0, 15.0]
        assert g["reached_nodes"].iloc[0] > 0 and (np.diff(g["reached_nodes"]) >= 0).all()
        assert (np.diff(g.geometry.area) >= -1e-6).all()
        assert g.geometry.iloc[-1].distance(centres.geometry.iloc[i]) < 300


def test_ids_crs_and_sources_are_checked():
    nodes = gpd.GeoDataFrame({"node_id": [1, 2]}, geometry=shapely.points([(500000, 0), (500100, 0)]),
                             crs="EPSG:32618")
    edges = gpd.GeoDataFrame({"u": [1], "v": [2]}, geometry=[shapely.LineString([(500000, 0), (500100, 0)])],
                             crs="EPSG:32618")
    net = cb.walk_network((nodes, edges), crs="EPSG:32618")
    pts = gpd.GeoDataFrame({"id": ["a", "a"]}, geometry=shapely.points([(500000, 0), (500100, 0)]),
                           crs="EPSG:32618")
    with pytest.raises(InputDataError, match="not unique"):
        cb.travel_time_matrix(net, pts, pts)
    with pytest.raises(CRSError, match="no CRS"):
        cb.walk_access(net, gpd.GeoDataFrame({"id": ["a"]}, geometry=shapely.points([(500000, 0)])), {"x": pts})
    with pytest.raises(CareblocksError, match="cannot read"):
        cb.walk_network(42)
    with pytest.raises(InputDataError, match="speed_kmh"):
        cb.walk_access(net, pts, {"x": pts}, speed_kmh=0)
    m = cb.travel_time_matrix(net, pts.assign(id=["a", "b"]), pts.iloc[[1]].assign(id=["z"]),
                              speed_kmh=3.6)
    assert m.to_dict("list") == {"from_id": ["a", "b"], "to_id": ["z", "z"],
                                 "travel_time_min": pytest.approx([100 / 60, 0.0])}
    assert isinstance(m, pd.DataFrame)


def test_docstring_examples_run():
    import doctest

    import careblocks.api
    import careblocks.network.cost

    for mod in (careblocks.api, careblocks.network.cost):
        r = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert r.attempted > 0 and r.failed == 0, mod.__name__


def test_transit_access_is_the_pipeline_core(tmp_path):
    """The API's walk + transit minutes are those of the core the pipeline calls."""
    import pyproj

    from careblocks.config import TransitConfig
    from careblocks.io.gtfs import read_gtfs
    from careblocks.network.cost import WalkCost
    from careblocks.transit import build_timetable
    from careblocks.transit import transit_access as core
    from reference_transit import grid_network, random_feed, write_feed

    rng = np.random.default_rng(11)
    net = grid_network()
    stops = rng.choice(net.n_nodes, size=30, replace=False)
    lon, lat = pyproj.Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True).transform(
        net.x[stops], net.y[stops])
    feed = write_feed(tmp_path / "feed.zip", random_feed(rng, list(zip(lon, lat, strict=True)), n_routes=6))
    o_nodes = np.arange(0, net.n_nodes, 5)
    f_nodes = np.array([3, 140])
    origins = gpd.GeoDataFrame({"id": [f"o{i}" for i in o_nodes]},
                               geometry=shapely.points(net.x[o_nodes], net.y[o_nodes]), crs=net.crs)
    clinics = gpd.GeoDataFrame(geometry=shapely.points(net.x[f_nodes], net.y[f_nodes]), crs=net.crs)
    got = cb.transit_access(net, origins, {"clinic": clinics}, feed, date="2024-03-13",
                            window=("07:00", "08:00"), speed_kmh=4.2, max_walk_min=10,
                            max_transfer_walk_min=4, max_trip_min=60)
    cost = WalkCost(4.2)
    cfg = TransitConfig(enabled=True, feeds=(feed,), date="2024-03-13", window_start="07:00",
                        window_end="08:00", max_walk_min=10.0, max_transfer_walk_min=4.0, max_trip_min=60.0)
    tables, _ = read_gtfs([feed], "2024-03-13")
    tt, _ = build_timetable(tables, net, max_transfer_m=cost.metres_within(4.0))
    ref = core(net, tt, o_nodes, np.zeros(o_nodes.size), {"clinic": (f_nodes, np.zeros(2))}, cfg, cost=cost)
    np.testing.assert_array_equal(got["transit_min_clinic"].to_numpy(), ref["clinic"][:, 0])
    assert got["transit_min_clinic"].notna().any()


def test_scores_selection_and_care_index_from_geodataframes():
    from careblocks.network.cost import WalkCost
    from reference_transit import grid_network

    net = grid_network()  # 12 x 12 nodes, 100 m apart
    rng = np.random.default_rng(3)
    o_nodes = np.arange(net.n_nodes)
    pop = rng.integers(10, 200, net.n_nodes).astype(float)
    origins = gpd.GeoDataFrame({"population": pop, "children_under5": np.round(pop * 0.1),
                                "older_60plus": np.round(pop * 0.15), "census_total": pop},
                               geometry=shapely.points(net.x[o_nodes], net.y[o_nodes]), crs=net.crs)
    origins["id"] = [f"o{i}" for i in range(len(origins))]
    daycare = gpd.GeoDataFrame(geometry=shapely.points(net.x[[0]], net.y[[0]]), crs=net.crs)
    origins = cb.walk_access(net, origins, {"daycare": daycare}, threshold_min=5)
    c_nodes = np.array([0, 65, 130, 143])
    cands = gpd.GeoDataFrame({"id": ["a", "b", "c", "d"]},
                             geometry=shapely.points(net.x[c_nodes], net.y[c_nodes]), crs=net.crs)
    scored = cb.score_candidates(net, cands, origins, {"daycare": daycare}, offers=["daycare"], threshold_min=5)
    assert sorted(scored["rank"]) == [1, 2, 3, 4]
    # people covered = people within 5 min (400 m at 4.8 km/h) on the grid, by an exact search
    from scipy.sparse.csgraph import dijkstra

    d = dijkstra(net.to_scipy(WalkCost()), indices=c_nodes) / 60.0
    np.testing.assert_allclose(scored["population_covered"], (d <= 5 + 1e-9) @ pop)
    # a candidate on today's daycare closes no gap
    assert scored.set_index("candidate_id").loc["a", "gap_closed_daycare"] == 0
    chosen = cb.select_sites(net, cands, origins, k=2, offers=["daycare"], threshold_min=5,
                             objective="population", method="milp")
    assert list(chosen["order"]) == [1, 2] and chosen["rationale"].str.startswith("Serves").all()
    idx = cb.care_need_index(origins)
    assert idx["care_need_index"].between(0, 1).all() and "formula" in idx.attrs
    assert idx["care_need_index"].nunique() > 1


def test_select_sites_with_costs_budget_and_blocks_that_stay():
    """cost=/budget=/fixed= as sites.cost_column/budget/fixed: the best feasible choice by brute
    force over every pair on the grid, the blocks that stay first; bad ids and costs are one line."""
    import itertools

    from scipy.sparse.csgraph import dijkstra

    from careblocks.network.cost import WalkCost
    from reference_transit import grid_network

    net = grid_network()  # 12 x 12 nodes, 100 m apart
    rng = np.random.default_rng(11)
    pop = rng.integers(10, 200, net.n_nodes).astype(float)
    origins = gpd.GeoDataFrame({"id": [f"o{i}" for i in range(net.n_nodes)], "population": pop},
                               geometry=shapely.points(net.x, net.y), crs=net.crs)
    c_nodes = np.array([0, 26, 65, 70, 130, 143])
    ids = ["a", "b", "c", "d", "e", "f"]
    price = np.array([1.0, 2.0, 5.0, 4.0, 2.0, 1.0])
    cands = gpd.GeoDataFrame({"id": ids, "price": price},
                             geometry=shapely.points(net.x[c_nodes], net.y[c_nodes]), crs=net.crs)
    within = dijkstra(net.to_scipy(WalkCost()), indices=c_nodes) / 60.0 <= 5 + 1e-9

    def served(sel):
        return float(pop[within[list(sel)].any(axis=0)].sum())

    kw = dict(k=2, offers=["daycare"], threshold_min=5, objective="population", method="milp")
    free = cb.select_sites(net, cands, origins, **kw)
    best_free = max(itertools.combinations(range(6), 2), key=served)
    assert served([ids.index(c) for c in free["candidate_id"]]) == served(best_free)
    budget = 5.0
    pairs = [p for p in itertools.combinations(range(6), 2) if price[list(p)].sum() <= budget]
    best = max(served(p) for p in pairs)
    assert best < served(best_free)  # the budget binds on this grid
    got = cb.select_sites(net, cands, origins, cost="price", budget=budget, **kw)
    chosen = [ids.index(c) for c in got["candidate_id"]]
    assert served(chosen) == best and got["cost"].sum() <= budget
    np.testing.assert_array_equal(got["cost"], price[chosen])
    # a block that stays: first, marked, free of the budget; the new ones best given it
    stay = cb.select_sites(net, cands, origins, cost=price, budget=budget, fixed=["c"], **kw)
    assert stay["candidate_id"].iloc[0] == "c" and list(stay["fixed"]) == [True, False, False]
    new = [ids.index(c) for c in stay["candidate_id"].iloc[1:]]
    assert price[new].sum() <= budget
    assert served([2, *new]) == max(served([2, *p]) for p in pairs if 2 not in p)
    assert stay["cumulative_gain"].iloc[-1] == pytest.approx(served([2, *new]))
    with pytest.raises(InputDataError, match="fixed='cc' is not a candidate id; did you mean 'c'"):
        cb.select_sites(net, cands, origins, fixed=["cc"], **kw)
    with pytest.raises(InputDataError, match="a budget needs costs"):
        cb.select_sites(net, cands, origins, budget=3.0, **kw)
    with pytest.raises(InputDataError, match=r"column 'price': 1 of 6 candidates have no cost .*'d'"):
        cb.select_sites(net, cands.assign(price=[1, 2, 5, None, 2, 1]), origins, cost="price", **kw)
