"""The streaming PBF reader (pyosmium) against pyrosm, on real extracts.

Data: Fontibón (Bogotá, buildings and POIs included) and Porto Alegre's r5r sample (roads only),
see ../shared/data/README.md. The streaming reader is the default for PBFs; pyrosm stays as the
cross-check these tests run.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely

from careblocks.io.osm import EDGE_TAGS, read_osm_network, read_pbf_ways
from careblocks.network.graph import build_walk_network, clip_edges, local_crs

PBFS = {
    "fontibon": "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf",
    "porto_alegre": "porto_alegre/poa_osm.pbf",
}
#: boxes inside each extract, cutting through many streets
BOXES = {
    "fontibon": (-74.15, 4.665, -74.14, 4.675),
    "porto_alegre": (-51.23, -30.05, -51.21, -30.03),
}


def _rows(edges):
    cols = ["u", "v", "highway", "name", *EDGE_TAGS, "reversed"]
    rows = zip(*(edges[c].to_numpy(dtype=object) for c in cols), strict=True)
    return [tuple(None if isinstance(x, float) and x != x else x for x in r) for r in rows]


@pytest.mark.parametrize("city", sorted(PBFS))
def test_streaming_reader_equals_pyrosm(data, city):
    path = data / PBFS[city]
    n_ref, e_ref = read_osm_network(path, pbf_reader="pyrosm")
    n_new, e_new = read_osm_network(path)  # the default: pyosmium
    assert len(e_new) > 15_000
    np.testing.assert_array_equal(n_new["node_id"].to_numpy(), n_ref["node_id"].to_numpy())
    np.testing.assert_array_equal(n_new.geometry.x.to_numpy(), n_ref.geometry.x.to_numpy())
    np.testing.assert_array_equal(n_new.geometry.y.to_numpy(), n_ref.geometry.y.to_numpy())
    # same stretches, same endpoints, same tags, in the same order
    assert _rows(e_new) == _rows(e_ref)
    assert all(g.equals(h) for g, h in zip(e_new.geometry, e_ref.geometry, strict=True))
    # and the same walking network out of them
    crs = local_crs(n_ref.geometry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, _ = build_walk_network(n_ref, e_ref, crs=crs)
        b, _ = build_walk_network(n_new, e_new, crs=crs)
    np.testing.assert_array_equal(b.node_id, a.node_id)
    np.testing.assert_array_equal(b.indptr, a.indptr)
    np.testing.assert_array_equal(b.indices, a.indices)
    np.testing.assert_allclose(b.length_m, a.length_m, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(b.barrier, a.barrier)
    np.testing.assert_array_equal(b.incline, a.incline)


@pytest.mark.parametrize("city", sorted(PBFS))
def test_clip_while_reading_equals_clip_after(data, city):
    path = data / PBFS[city]
    bbox = BOXES[city]
    nodes, edges = read_osm_network(path)
    _, clipped = clip_edges(nodes, edges, shapely.box(*bbox), "test")
    n_box, e_box = read_osm_network(path, bbox=bbox)
    assert 500 < len(e_box) < len(edges) / 5
    assert sorted(_rows(e_box)) == sorted(_rows(clipped))
    used = np.unique(np.concatenate([clipped["u"].to_numpy(), clipped["v"].to_numpy()]))
    np.testing.assert_array_equal(n_box["node_id"].to_numpy(), used)
    # every stretch read touches the box; the box cuts through some of them
    box = shapely.box(*bbox)
    assert shapely.intersects(e_box.geometry.to_numpy(), box).all()
    assert (~shapely.within(e_box.geometry.to_numpy(), box)).sum() > 10


def test_stretches_between_nodes_the_extract_lacks_are_dropped(data):
    """Porto Alegre's extract was cut at a box: some ways run on to nodes it does not hold."""
    import osmium

    path = data / PBFS["porto_alegre"]
    ways = read_pbf_ways(path)
    in_file = np.fromiter((n.id for n in osmium.FileProcessor(str(path), osmium.osm.NODE)), np.int64)
    assert np.isin(ways.u, in_file).all() and np.isin(ways.v, in_file).all()
    assert np.isin(ways.node_id, in_file).all()
    assert np.all(np.diff(ways.node_id) > 0)
    assert set(ways.column("highway")) >= {"residential", "footway", "primary"}
    # the walk rule applies: a cycleway is kept only where foot=yes/designated/permissive
    cycle, shared = set(), set()
    for w in osmium.FileProcessor(str(path), osmium.osm.WAY):
        if w.tags.get("highway") == "cycleway":
            refs = [n.ref for n in w.nodes]
            pairs = set(zip(refs[:-1], refs[1:], strict=True))
            (shared if w.tags.get("foot") in ("yes", "designated", "permissive") else cycle).update(pairs)
    assert cycle and shared
    read = set(zip(ways.u.tolist(), ways.v.tolist(), strict=True))
    assert not (cycle - shared) & read
    assert shared & read


# --------------------------------------------------------------------------------------
# The walk network built straight from the arrays equals the one built from the frames
# --------------------------------------------------------------------------------------

#: a non-rectangular study area inside each extract (a triangle): clipped after reading
TRIANGLES = {
    "fontibon": [(-74.16, 4.66), (-74.13, 4.66), (-74.145, 4.69)],
    "porto_alegre": [(-51.24, -30.06), (-51.20, -30.06), (-51.22, -30.02)],
}
NET_ARRAYS = ("indptr", "indices", "length_m", "x", "y", "node_id", "barrier", "incline")


def _assert_same_network(a, b) -> None:
    for name in NET_ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name, strict=True)  # to the last bit
    assert a.crs == b.crs


def _build_both(path, *, area=None, exclude=()):
    """(frames network, stats, warnings), (arrays network, stats, warnings): the public
    GeoDataFrame path (read_osm_network + clip_edges + build_walk_network) against the
    arrays path (read_osm_ways + clip_ways + build_walk_network_from_ways)."""
    from careblocks.io.osm import read_osm_ways
    from careblocks.network.graph import build_walk_network_from_ways, clip_ways, ways_bounds

    bbox = area.bounds if area is not None else None
    out = []
    for how in ("frames", "arrays"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if how == "frames":
                nodes, edges = read_osm_network(path, bbox=bbox, exclude_highways=exclude)
                nodes, edges = clip_edges(nodes, edges, area, "test")
                crs = local_crs(area if area is not None else nodes)
                net, stats = build_walk_network(nodes, edges, crs=crs)
            else:
                ways = clip_ways(read_osm_ways(path, bbox=bbox, exclude_highways=exclude), area, "test")
                crs = local_crs(area if area is not None else ways_bounds(ways))
                net, stats = build_walk_network_from_ways(ways, crs=crs)
        out.append((net, stats, sorted(str(w.message) for w in caught if "walk network" in str(w.message))))
    return out


@pytest.mark.parametrize("city", sorted(PBFS))
def test_network_from_the_arrays_equals_the_network_from_the_frames(data, city):
    """Whole extract, and a triangle of it without footways: identical CSR arrays, lengths,
    barriers, inclines, node ids and coordinates, the same stats and warnings, and so the
    same directed edge seconds for every travel profile."""
    import dataclasses

    from careblocks.config import WalkConfig
    from careblocks.network.cost import WalkCost

    path = data / PBFS[city]
    (a, sa, wa), (b, sb, wb) = _build_both(path)
    assert a.n_nodes > 15_000 and sa["dropped_nodes"] > 0 and wa  # pieces were dropped, and said so
    _assert_same_network(a, b)
    assert sa == sb and wa == wb
    # walking cost: the base walk on hills and every default profile (directed: barriers,
    # mapped incline, DEM grades)
    assert np.isfinite(a.incline).any() and (a.barrier != 0).any()
    rng = np.random.default_rng(0)
    z = rng.uniform(0, 30, a.n_nodes)
    a, b = dataclasses.replace(a, z=z), dataclasses.replace(b, z=z.copy())
    walk = WalkConfig()
    costs = {"base": WalkCost(walk.speed_kmh, slope="tobler"), **WalkCost.profiles_from_config(walk)}
    assert {"stroller", "wheelchair"} <= set(costs)
    for name, cost in costs.items():
        np.testing.assert_array_equal(cost.edge_seconds(a), cost.edge_seconds(b), err_msg=name, strict=True)
        np.testing.assert_array_equal(cost.inbound_seconds(a), cost.inbound_seconds(b), err_msg=name,
                                      strict=True)
    assert np.isinf(costs["wheelchair"].edge_seconds(a)).any()  # the profiles do differ from walking

    tri = shapely.Polygon(TRIANGLES[city])
    (a, sa, wa), (b, sb, wb) = _build_both(path, area=tri, exclude=("footway",))
    assert 1_000 < a.n_nodes < sa["input_nodes"] + 1
    # the nodes counted are those of the streets crossing the triangle, not of its bbox: the
    # ones outside are not "dropped pieces" of the network
    nodes, edges = read_osm_network(path, bbox=tri.bounds, exclude_highways=("footway",))
    crossing = edges[shapely.intersects(edges.geometry.to_numpy(), tri)]
    assert sa["input_nodes"] == np.unique(crossing[["u", "v"]].to_numpy()).size < len(nodes)
    _assert_same_network(a, b)
    assert sa == sb and wa == wb
    # the triangle did clip, not just its bbox: every street kept crosses it
    lon, lat = _lonlat(a)
    src, dst = a.sources, a.indices
    seg = shapely.linestrings(np.stack([np.column_stack([lon[src], lat[src]]),
                                        np.column_stack([lon[dst], lat[dst]])], axis=1))
    assert shapely.intersects(seg, tri.buffer(1e-7)).all()
    assert not shapely.within(shapely.points(lon, lat), tri).all()  # some run out of it


def _lonlat(net):
    import pyproj

    return pyproj.Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True).transform(net.x, net.y)


def test_load_or_build_network_reads_a_pbf_into_arrays_and_caches_the_same_network(data, tmp_path,
                                                                                    monkeypatch):
    """The pipeline's network stage on Porto Alegre's PBF: built from the arrays (no
    GeoDataFrame made), equal to the frames path, stored in the cache and read back on the
    next run (a hit, memory-mapped)."""
    from careblocks.config import load_config
    from careblocks.io import osm_stream
    from careblocks.network import graph

    monkeypatch.setenv("CAREBLOCKS_CACHE_DIR", str(tmp_path / "cache"))
    toml = tmp_path / "poa.toml"
    toml.write_text(f'[study]\nname = "poa"\nbbox = [-51.24, -30.06, -51.19, -30.02]\n'
                    f'[network]\nsource = "osm"\npath = "{data / PBFS["porto_alegre"]}"\n')
    cfg = load_config(toml)
    made = []
    monkeypatch.setattr(osm_stream, "edges_frames", lambda *a, **k: made.append(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, stats = graph.load_or_build_network(cfg)
        again, stats2 = graph.load_or_build_network(cfg)
    assert not made and stats["cache"] == "miss" and stats2["cache"] == "hit"
    assert isinstance(again.indptr, np.memmap)
    _assert_same_network(net, again)
    monkeypatch.undo()
    monkeypatch.setenv("CAREBLOCKS_CACHE_DIR", str(tmp_path / "cache2"))
    monkeypatch.setattr(graph, "_streams", lambda config, path: False)  # the frames path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, rstats = graph.load_or_build_network(cfg)
    _assert_same_network(ref, net)
    drop = ("seconds", "cache")
    assert {k: v for k, v in rstats.items() if k not in drop} == {k: v for k, v in stats.items() if k not in drop}


@pytest.mark.parametrize("city", sorted(PBFS))
def test_streets_chosen_while_reading_equal_the_filtered_network(data, city):
    """The named streets (place names of candidates) and the residential streets (origins
    from streets) chosen on the reader's arrays are the rows of read_osm_network's edges that
    pass the same test, with the same values, geometry and order."""
    from careblocks.io.osm import read_osm_edges
    from careblocks.origins import RESIDENTIAL_HIGHWAYS

    path = data / PBFS[city]
    _, edges = read_osm_network(path)
    tests = {"name": lambda v: isinstance(v, str),
             "highway": lambda v: isinstance(v, str) and v.strip().lower() in RESIDENTIAL_HIGHWAYS}
    for column, test in tests.items():
        got = read_osm_edges(path, where=(column, test))
        keep = np.array([test(v) for v in edges[column].to_numpy(dtype=object)], dtype=bool)
        want = edges[keep].reset_index(drop=True)
        assert 1_000 < len(got) < len(edges)
        assert list(got.columns) == list(want.columns)
        assert _rows(got) == _rows(want)
        assert shapely.equals_exact(got.geometry.to_numpy(), want.geometry.to_numpy(), tolerance=0).all()
    box = read_osm_edges(path, bbox=BOXES[city], where=("name", tests["name"]))
    assert 0 < len(box) and box["name"].notna().all()
    assert shapely.intersects(box.geometry.to_numpy(), shapely.box(*BOXES[city])).all()
