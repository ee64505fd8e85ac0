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
