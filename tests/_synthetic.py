"""A small synthetic :class:`~careblocks.results.Results`, built in code, for the writer tests.

A 2 km x 2 km square in Porto Alegre's UTM zone (EPSG:32722) with a 100 m street grid,
origins on a 200 m lattice (points, or square polygons), a few facilities of each service
(one named ``<script>alert(1)</script>`` to test escaping), candidate and selected sites,
catchments, two districts and equity tables. Travel times are straight-line distance x 1.3
at 4.8 km/h: plausible, not a network result (the writers do not care how they were made).
"""

from __future__ import annotations

import functools
import warnings
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point, box

from careblocks.config import config_from_dict
from careblocks.errors import DataQualityWarning
from careblocks.network.cost import WalkCost
from careblocks.results import Results

X0, Y0 = 478_000.0, 6_675_000.0
CRS = "EPSG:32722"
EVIL = "<script>alert(1)</script>"
SERVICES = ("daycare", "health", "laundromat", "community_kitchen")


def grid_network(n: int = 21, step: float = 100.0) -> SimpleNamespace:
    """A CSR street grid with the attributes of ``careblocks.network.WalkNetwork``."""
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    x = (X0 + jj * step).ravel().astype(float)
    y = (Y0 + ii * step).ravel().astype(float)
    nbrs: list[list[int]] = [[] for _ in range(n * n)]
    for i in range(n):
        for j in range(n):
            k = i * n + j
            if j + 1 < n:
                nbrs[k].append(k + 1)
                nbrs[k + 1].append(k)
            if i + 1 < n:
                nbrs[k].append(k + n)
                nbrs[k + n].append(k)
    indptr = np.zeros(n * n + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(v) for v in nbrs])
    indices = np.array([t for v in nbrs for t in v], dtype=np.int32)
    length = np.full(len(indices), step)
    return SimpleNamespace(indptr=indptr, indices=indices, length_m=length, x=x, y=y,
                           node_id=np.arange(n * n, dtype=np.int64), crs=CRS, n_nodes=n * n,
                           n_edges=len(indices))


def make_results(*, polygons: bool = False, with_sites: bool = True, seed: int = 1) -> Results:
    rng = np.random.default_rng(seed)
    config = config_from_dict({"study": {"name": "Synthetic town"}})
    net = grid_network()
    # origins on a 200 m lattice
    cx, cy = np.meshgrid(np.arange(100, 2000, 200.0), np.arange(100, 2000, 200.0))
    ox, oy = X0 + cx.ravel(), Y0 + cy.ravel()
    n = len(ox)
    geoms = (
        [box(a - 100, b - 100, a + 100, b + 100) for a, b in zip(ox, oy, strict=False)]
        if polygons
        else [Point(a, b) for a, b in zip(ox, oy, strict=False)]
    )
    pop = rng.integers(50, 900, n).astype(float)
    origins = gpd.GeoDataFrame(
        {
            "origin_id": [f"o{i:03d}" for i in range(n)],
            "population": pop,
            "children_under5": np.round(pop * rng.uniform(0.04, 0.12, n)),
            "women_15plus": np.round(pop * rng.uniform(0.35, 0.45, n)),
            "node": rng.integers(0, net.n_nodes, n).astype(np.int64),
            "snap_m": rng.uniform(0, 60, n),
        },
        geometry=geoms,
        crs=CRS,
    )
    # facilities
    rows = []
    k = 0
    for s_i, s in enumerate(SERVICES):
        for j in range(2 + s_i):
            name = EVIL if (s == "health" and j == 0) else f"{s.title()} {j} & Co"
            rows.append(
                {
                    "service_id": f"s{k:03d}",
                    "service": s,
                    "name": name,
                    "source": "osm",
                    "category": "amenity=test",
                    "capacity": np.nan,
                    "node": np.int64(k),
                    "snap_m": 5.0 * j,
                    "geometry": Point(X0 + rng.uniform(0, 1500), Y0 + rng.uniform(0, 1500)),
                }
            )
            k += 1
    services = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)
    speed = 4.8 / 3.6  # m/s
    within = np.zeros(n, dtype=np.int64)
    for s in SERVICES:
        f = services[services["service"] == s]
        d = np.hypot(ox[:, None] - f.geometry.x.to_numpy()[None, :],
                     oy[:, None] - f.geometry.y.to_numpy()[None, :]) * 1.3
        t = d / speed / 60
        tmin = t.min(axis=1)
        if s == "laundromat":
            tmin[:3] = np.nan  # unreachable origins are null
        origins[f"walk_min_{s}"] = tmin
        origins[f"n_within_15min_{s}"] = (t <= 15).sum(axis=1).astype(np.int32)
        within += np.nan_to_num(tmin, nan=999) <= 15
    origins["services_within_15min"] = within.astype(np.int32)
    origins["care_need_index"] = rng.uniform(0, 1, n)
    origins["district"] = np.where(ox < X0 + 1000, "West <b>side</b>", "East")

    districts = gpd.GeoDataFrame(
        {"district": ["West <b>side</b>", "East"]},
        geometry=[box(X0, Y0, X0 + 1000, Y0 + 2000), box(X0 + 1000, Y0, X0 + 2000, Y0 + 2000)],
        crs=CRS,
    )

    def equity(times_shift: float) -> pd.DataFrame:
        out = []
        for s in SERVICES:
            t = origins[f"walk_min_{s}"].to_numpy() - times_shift
            for g in ("population", "children_under5"):
                w = origins[g].to_numpy()
                for dname in ("all", "West <b>side</b>", "East"):
                    m = np.ones(n, bool) if dname == "all" else (origins["district"] == dname).to_numpy()
                    for thr in (10.0, 15.0, 20.0, 30.0):
                        within_p = float(w[m][np.nan_to_num(t[m], nan=1e9) <= thr].sum())
                        out.append({"service": s, "group": g, "district": dname,
                                    "threshold_min": thr, "people": float(w[m].sum()),
                                    "people_within": within_p,
                                    "share_within": within_p / float(w[m].sum())})
        return pd.DataFrame(out)

    results = Results(
        config=config,
        crs=CRS,
        area=box(X0, Y0, X0 + 2000, Y0 + 2000),
        network=net,
        origins=origins,
        services=services,
        metadata={
            "version": "0.1.0",
            "input_digests": {"synthetic.pbf": "sha256:" + "0" * 64},
            "stage_timings": {"network": 0.5, "access": 0.25},
            "warning_counts": {"far_snaps": 2},
        },
        equity=equity(0.0),
        districts=districts,
    )
    if with_sites:
        m = 12
        cand = gpd.GeoDataFrame(
            {
                "candidate_id": [f"c{i:02d}" for i in range(m)],
                "kind": ["osm_anchor"] * 6 + ["h3"] * 6,
                "category": ["amenity=library"] * 6 + ["grid"] * 6,
                "name": [EVIL if i == 0 else f"Site {i}" for i in range(m)],
                "demand_covered": rng.uniform(0, 5000, m),
                "gap_closed": rng.uniform(0, 1, m),
                "colocation": rng.uniform(0, 1, m),
                "hours_returned": rng.uniform(0, 300, m),
            },
            geometry=[Point(X0 + rng.uniform(100, 1900), Y0 + rng.uniform(100, 1900)) for _ in range(m)],
            crs=CRS,
        )
        cand["score"] = (cand["gap_closed"] * 0.6 + cand["colocation"] * 0.4).round(4)
        cand["rank"] = cand["score"].rank(ascending=False, method="first").astype(int)
        top = cand.sort_values("rank").head(3).reset_index(drop=True)
        selected = top.copy()
        selected["order"] = np.arange(1, 4)
        selected["marginal_gain"] = [1200.0, 800.0, 300.0]
        selected["cumulative_coverage"] = np.cumsum(selected["marginal_gain"])
        selected["rationale"] = [
            f"Closes the daycare gap for {int(g)} people; next to {nm}"
            for g, nm in zip(selected["marginal_gain"], selected["name"], strict=False)
        ]
        catch = gpd.GeoDataFrame(
            {"candidate_id": selected["candidate_id"], "threshold_min": 15.0,
             "population": [3000.0, 2000.0, 900.0]},
            geometry=selected.geometry.buffer(600, quad_segs=16).to_numpy(),
            crs=CRS,
        )
        results.candidates = cand
        results.selected = gpd.GeoDataFrame(selected, geometry="geometry", crs=CRS)
        results.catchments = catch
        results.equity_after = equity(3.0)
    return results


@functools.lru_cache(maxsize=1)
def porto_alegre_results(data) -> Results:
    """Real Porto Alegre inputs: the OSM walk network, the 1,227 H3 population cells as point
    origins (cell centres) and health facilities from the cells' healthcare counts; walking
    times by one multi-source Dijkstra (scipy) on the real network at 4.8 km/h."""
    from scipy.sparse.csgraph import dijkstra

    from careblocks.io.osm import read_osm_network
    from careblocks.network.graph import build_walk_network

    crs = "EPSG:32722"
    config = config_from_dict({"study": {"name": "Porto Alegre"},
                               "services": {"health": {"label": "Health"}}})
    nodes, edges = read_osm_network(data / "porto_alegre" / "poa_osm.pbf")
    with warnings.catch_warnings():  # 724 nodes off the largest component: expected here
        warnings.simplefilter("ignore", DataQualityWarning)
        net, _ = build_walk_network(nodes, edges, crs=crs)
    hexes = pd.read_csv(data / "porto_alegre" / "poa_hexgrid.csv")
    pts = gpd.GeoSeries(gpd.points_from_xy(hexes["lon"], hexes["lat"]), crs="EPSG:4326").to_crs(crs)
    o_node, o_snap = net.snap(pts.x.to_numpy(), pts.y.to_numpy())
    has = hexes["healthcare"] > 0
    f_node, f_snap = net.snap(pts.x.to_numpy()[has], pts.y.to_numpy()[has])
    speed = 4.8 / 3.6
    dist = dijkstra(net.to_scipy(WalkCost(4.8)), indices=np.unique(f_node), min_only=True)
    t = (dist[o_node] + o_snap / speed) / 60.0
    t[~np.isfinite(t)] = np.nan
    origins = gpd.GeoDataFrame(
        {"origin_id": hexes["id"].astype(str), "population": hexes["population"].astype(float),
         "node": o_node.astype(np.int64), "snap_m": o_snap, "walk_min_health": t,
         "n_within_15min_health": np.zeros(len(t), dtype=np.int32),
         "services_within_15min": (t <= 15).astype(np.int32)},
        geometry=pts.to_numpy(), crs=crs,
    )
    services = gpd.GeoDataFrame(
        {"service_id": ["poa-h" + str(i) for i in hexes.loc[has, "id"]], "service": "health",
         "name": [f"{int(c)} healthcare facilities in cell" for c in hexes.loc[has, "healthcare"]],
         "source": "poa_hexgrid.csv", "category": "healthcare count",
         "capacity": hexes.loc[has, "healthcare"].astype(float).to_numpy(),
         "node": f_node.astype(np.int64), "snap_m": f_snap},
        geometry=pts.to_numpy()[has.to_numpy()], crs=crs,
    )
    area = pts.union_all().convex_hull.buffer(300)
    return Results(config=config, crs=crs, area=area, network=net, origins=origins,
                   services=services, metadata={"input_digests": {}})
