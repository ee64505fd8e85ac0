"""The tiled test city of ``benchmarks/metro.py``: real extracts copied side by side.

Data: Fontibón's OSM extract and Porto Alegre's Trensurb GTFS feed (../shared/data/README.md).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _metro_city as mc  # noqa: E402

from careblocks.io.osm import read_pbf_ways  # noqa: E402

FONTIBON = "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf"


def _cut(src: Path, dst: Path, bbox) -> None:
    """The ways of ``src`` with every node inside ``bbox``, and their nodes, as a PBF."""
    import osmium

    x0, y0, x1, y1 = bbox
    inside = {n.id for n in osmium.FileProcessor(str(src), osmium.osm.NODE)
              if x0 <= n.location.lon <= x1 and y0 <= n.location.lat <= y1}
    ways = []
    for w in osmium.FileProcessor(str(src), osmium.osm.WAY):
        refs = [r.ref for r in w.nodes]
        if all(r in inside for r in refs):
            ways.append(osmium.osm.mutable.Way(id=w.id, nodes=refs, tags=dict(w.tags)))
    used = {r for w in ways for r in w.nodes}
    with osmium.SimpleWriter(str(dst)) as out:
        for n in osmium.FileProcessor(str(src), osmium.osm.NODE):
            if n.id in used:
                out.add_node(n)
        for w in ways:
            out.add_way(w)


def test_two_by_two_tiles_of_a_real_extract(data, tmp_path):
    src = tmp_path / "piece.osm.pbf"
    _cut(data / FONTIBON, src, (-74.15, 4.665, -74.14, 4.675))  # a piece of Fontibón
    base = read_pbf_ways(src)
    assert base.node_id.size > 500
    dlon = float(base.lon.max() - base.lon.min()) + mc.GAP_DEG
    dlat = float(base.lat.max() - base.lat.min()) + mc.GAP_DEG
    step = 10**11  # Fontibón's ids reach 1.1e10
    a, b = int(base.node_id[0]), int(base.node_id[-1])
    links = [(a + step, b + 2 * step)]  # one footway from tile 0 to tile 1
    out = tmp_path / "city.osm.pbf"
    mc.write_tiled_pbf(src, out, 2, 2, dlon, dlat, links, id_step=step)
    city = read_pbf_ways(out)  # a real PBF: the streaming reader reads it
    assert city.node_id.size == 4 * base.node_id.size
    assert np.unique(city.node_id).size == city.node_id.size
    assert city.u.size == 4 * base.u.size + 1
    for t in range(4):
        i, j = t % 2, t // 2
        off = (t + 1) * step
        part = (city.node_id >= off) & (city.node_id < off + step)
        np.testing.assert_array_equal(city.node_id[part] - off, base.node_id)
        np.testing.assert_allclose(city.lon[part], base.lon + i * dlon, atol=1e-7)
        np.testing.assert_allclose(city.lat[part], base.lat + j * dlat, atol=1e-7)
    assert (city.u[-1], city.v[-1]) == links[0]
    assert city.column("highway")[-1] == "footway"


def test_gtfs_feed_copied_per_tile(data, tmp_path):
    src = data / "porto_alegre/poa_trensurb.zip"
    out = tmp_path / "feed.zip"
    mc.write_tiled_gtfs(src, out, 2, 1, 0.5, 0.25)
    with zipfile.ZipFile(src) as z0, zipfile.ZipFile(out) as z1:
        assert "shapes.txt" not in z1.namelist()
        stops0 = pd.read_csv(z0.open("stops.txt"), dtype=str)
        stops1 = pd.read_csv(z1.open("stops.txt"), dtype=str)
        st0 = pd.read_csv(z0.open("stop_times.txt"), dtype=str)
        st1 = pd.read_csv(z1.open("stop_times.txt"), dtype=str)
    assert len(stops1) == 2 * len(stops0) and stops1["stop_id"].is_unique
    assert len(st1) == 2 * len(st0)
    east = stops1[stops1["stop_id"].str.endswith("_t1")]
    np.testing.assert_allclose(east["stop_lon"].astype(float).to_numpy(),
                               stops0["stop_lon"].astype(float).to_numpy() + 0.5, atol=1e-7)
    # every stop time points at a stop and a trip of its own tile
    assert set(st1["stop_id"]) <= set(stops1["stop_id"])
    assert (st1["trip_id"].str[-3:] == st1["stop_id"].str[-3:]).all()
