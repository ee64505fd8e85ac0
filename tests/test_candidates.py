"""Candidates: OSM anchors (from a small OSM XML written here), parcels, H3 grid, exclusions,
far snaps and per-node de-duplication; then the OSM anchors of Bogotá Fontibón."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from careblocks.config import config_from_dict
from careblocks.errors import DataQualityWarning, EmptyResultError
from careblocks.network.graph import WalkNetwork
from careblocks.sites.candidates import ANCHOR_TAGS, build_candidates, dedupe_by_node

CRS = "EPSG:32618"
LON0, LAT0 = -74.14, 4.67
_T = Transformer.from_crs(4326, CRS, always_xy=True)


def _grid(side=15, step_deg=0.0008) -> WalkNetwork:
    idx = np.arange(side * side).reshape(side, side)
    u = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    v = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    lat, lon = np.divmod(np.arange(side * side), side)
    x, y = _T.transform(LON0 + lon * step_deg, LAT0 + lat * step_deg)
    ln = np.hypot(x[u] - x[v], y[u] - y[v])
    src, dst, ln = np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([ln, ln])
    order = np.lexsort((dst, src))
    n = side * side
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return WalkNetwork(indptr=indptr, indices=dst[order].astype(np.int32), length_m=ln[order],
                       x=np.asarray(x), y=np.asarray(y), node_id=np.arange(n, dtype=np.int64), crs=CRS)


def _osm_xml(path):
    d = 0.0008
    nodes = [
        (1, 2 * d, 2 * d, {"amenity": "library", "name": "Biblioteca Uno"}),
        (2, 2 * d, 2 * d + 0.00001, {"amenity": "community_centre"}),  # same node as 1, unnamed
        (3, 8 * d, 5 * d, {"amenity": "school", "name": "Colegio"}),
        (4, 5 * d, 9 * d, {"amenity": "cafe", "name": "Not an anchor"}),
        (5, 0.5, 0.5, {"amenity": "townhall", "name": "Far away"}),  # far off the network
        (6, 11 * d, 11 * d, {"amenity": "marketplace", "name": "Plaza"}),
    ]
    ring = [(10, 4 * d, 10 * d), (11, 5 * d, 10 * d), (12, 5 * d, 11 * d), (13, 4 * d, 11 * d)]
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for i, dx, dy, tags in nodes:
        out.append(f'<node id="{i}" lat="{LAT0 + dy}" lon="{LON0 + dx}" version="1">')
        out += [f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        out.append("</node>")
    for i, dx, dy in ring:
        out.append(f'<node id="{i}" lat="{LAT0 + dy}" lon="{LON0 + dx}" version="1"/>')
    out.append('<way id="100" version="1">')
    out += [f'<nd ref="{i}"/>' for i in (10, 11, 12, 13, 10)]
    out += ['<tag k="leisure" v="park"/>', '<tag k="name" v="Parque"/>', "</way>", "</osm>"]
    path.write_text("\n".join(out), encoding="utf-8")
    return path


def test_osm_anchors_snap_dedupe_and_drop_far(tmp_path):
    osm = _osm_xml(tmp_path / "tiny.osm")
    net = _grid()
    cfg = config_from_dict({})
    with pytest.warns(DataQualityWarning, match="farther than walk.max_snap_m"):
        c = build_candidates(cfg, osm_path=osm, area_4326=None, crs=CRS, network=net)
    # cafe is no anchor; the townhall far away is dropped; 1 and 2 share a node: the named
    # library (node 1) is kept with n_merged = 1
    assert c["candidate_id"].tolist() == sorted(c["candidate_id"])
    cats = dict(zip(c["candidate_id"], c["category"], strict=True))
    assert cats == {"anchor:osm:node/1": "library", "anchor:osm:node/3": "school",
                    "anchor:osm:node/6": "marketplace", "anchor:osm:way/100": "park"}
    row = c.set_index("candidate_id").loc["anchor:osm:node/1"]
    assert row["n_merged"] == 1 and row["name"] == "Biblioteca Uno"
    assert c.set_index("candidate_id")["is_public_anchor"].to_dict() == {
        "anchor:osm:node/1": True, "anchor:osm:node/3": False, "anchor:osm:node/6": True,
        "anchor:osm:way/100": True}
    assert (c["snap_m"] < 65).all() and c["node"].is_unique
    assert c.crs == CRS and (c.geom_type == "Point").all()
    assert c.attrs["stats"]["far_snaps_dropped"] == 1
    # ids are stable across runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        c2 = build_candidates(cfg, osm_path=osm, area_4326=None, crs=CRS, network=net)
    assert c2["candidate_id"].tolist() == c["candidate_id"].tolist()
    # anchor_tags override: only schools
    cfg2 = config_from_dict({"sites": {"anchor_tags": {"amenity": ["school"]}}})
    c3 = build_candidates(cfg2, osm_path=osm, area_4326=None, crs=CRS, network=net)
    assert c3["candidate_id"].tolist() == ["anchor:osm:node/3"]


def test_parcels_h3_and_exclusions(tmp_path):
    net = _grid()
    d = 0.0008
    parcels = gpd.GeoDataFrame(
        {"id": ["p1", "p2"], "name": ["Lote A", None]},
        geometry=[shapely.box(LON0 + 3 * d, LAT0 + 3 * d, LON0 + 3.5 * d, LAT0 + 3.5 * d),
                  shapely.Point(LON0 + 12 * d, LAT0 + 2 * d)],
        crs=4326,
    )
    parcels.to_file(tmp_path / "parcels.gpkg")
    flood = gpd.GeoDataFrame(geometry=[shapely.box(LON0 + 11 * d, LAT0, LON0 + 14 * d, LAT0 + 4 * d)], crs=4326)
    flood.to_file(tmp_path / "flood.gpkg")
    x, y = net.x[[16, 17, 200]], net.y[[16, 17, 200]]
    origins = gpd.GeoDataFrame({"population": [10.0, 0.0, 5.0]}, geometry=gpd.points_from_xy(x, y), crs=CRS)
    raw = {"sites": {"candidates_osm_anchors": False, "h3_resolution": 9,
                     "candidates_layer": {"path": str(tmp_path / "parcels.gpkg")}}}
    c = build_candidates(config_from_dict(raw), osm_path=None, area_4326=None, crs=CRS, network=net,
                         origins=origins)
    assert set(c["kind"]) == {"parcel", "h3"}
    assert {"parcel:p1", "parcel:p2"} <= set(c["candidate_id"])
    import h3

    ll = gpd.GeoSeries(origins.geometry[origins.population > 0], crs=CRS).to_crs(4326)
    cells = {f"h3:{h3.latlng_to_cell(p.y, p.x, 9)}" for p in ll}
    h3_ids = set(c.loc[c["kind"] == "h3", "candidate_id"])
    # cells of populated origins, unless a parcel took the same node
    assert h3_ids <= cells and len(h3_ids) + (c.loc[c["kind"] == "parcel", "n_merged"].sum()) >= 1
    raw["sites"]["exclusions"] = [{"path": str(tmp_path / "flood.gpkg")}]
    c2 = build_candidates(config_from_dict(raw), osm_path=None, area_4326=None, crs=CRS, network=net,
                          origins=origins)
    assert "parcel:p2" not in set(c2["candidate_id"]) and "parcel:p1" in set(c2["candidate_id"])
    assert c2.attrs["stats"]["excluded"] >= 1


def test_dedupe_prefers_parcel_then_public_named_anchor():
    df = gpd.GeoDataFrame({
        "candidate_id": ["h3:x", "anchor:osm:node/2", "anchor:osm:node/1", "parcel:9", "anchor:osm:node/3"],
        "kind": ["h3", "anchor", "anchor", "parcel", "anchor"],
        "category": ["h3_cell", "school", "library", "parcel", "park"],
        "name": [None, "Colegio", "Biblio", None, None],
        "is_public_anchor": [False, False, True, True, True],
        "node": [5, 5, 5, 5, 7], "snap_m": [1.0] * 5,
    }, geometry=gpd.points_from_xy(range(5), range(5)), crs=CRS)
    out = dedupe_by_node(df)
    assert dict(zip(out["node"], out["candidate_id"], strict=True)) == {5: "parcel:9", 7: "anchor:osm:node/3"}
    out2 = dedupe_by_node(df[df["kind"] != "parcel"])
    assert dict(zip(out2["node"], out2["candidate_id"], strict=True))[5] == "anchor:osm:node/1"
    assert out2.set_index("node").loc[5, "n_merged"] == 2


def test_no_candidates_is_a_clear_error():
    cfg = config_from_dict({"sites": {"candidates_osm_anchors": False}})
    with pytest.raises(EmptyResultError, match="sites: no candidate sites"):
        build_candidates(cfg, osm_path=None, area_4326=None, crs=CRS, network=_grid())


def test_fontibon_osm_anchors(data):
    """The anchors of Fontibón's OSM extract: the README counts 16 community centres, 60
    schools, 1 library, 2 townhalls, 3 marketplaces (parks come on top)."""
    from careblocks.sites.candidates import osm_anchors

    pbf = data / "bogota" / "osm" / "fontibon_overpass_2023-05-29.osm.pbf"
    a = osm_anchors(pbf, ANCHOR_TAGS, area_4326=None, crs=CRS)
    counts = a["category"].value_counts()
    assert counts["school"] >= 50 and counts["community_centre"] >= 12
    assert counts.get("library", 0) >= 1 and counts.get("marketplace", 0) >= 2
    assert counts.get("park", 0) >= 5
    assert a["candidate_id"].is_unique
    assert a["is_public_anchor"].sum() == a["category"].isin(
        ["community_centre", "library", "townhall", "marketplace", "park", "social_centre",
         "government_office", "health_centre", "public_building"]).sum()
    # inside Bogotá (UTM 18N), not at 0,0
    assert a.geometry.x.between(580_000, 610_000).all() and a.geometry.y.between(500_000, 530_000).all()
    # names are text or missing (never empty strings), and named anchors keep OSM's names
    assert all(pd.isna(n) or (isinstance(n, str) and n.strip()) for n in a["name"])
    assert a["name"].map(lambda n: isinstance(n, str)).sum() > 50


def test_fontibon_candidates_all_have_human_names(data):
    """Unnamed parks get the nearest named street and a street meeting it; the public
    schools layer (Secretaría de Educación) gives named school candidates."""
    import re
    from pathlib import Path

    from careblocks.config import load_config
    from careblocks.io.layers import study_area
    from careblocks.network.graph import load_or_build_network

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs/bogota_fontibon.toml")
    area = study_area(cfg)
    net, st = load_or_build_network(cfg, area_4326=area)
    c = build_candidates(cfg, osm_path=st["path"], area_4326=area, crs=net.crs, network=net)
    names = c["name"]
    assert names.map(lambda n: isinstance(n, str) and len(n.strip()) > 3).all()
    bad = names.str.fullmatch(r"(?i)(park|nan|none|school|h3:.*|grid cell.*)")
    assert not bad.any(), names[bad].tolist()
    parks = c[c["category"] == "park"]
    # named in the config's language (Spanish): "Parque, Calle 20 & Carrera 110"
    assert cfg.outputs.language == "es"
    named_here = parks["name"].str.startswith("Parque, ")
    assert named_here.sum() >= 5
    # "Parque, Calle 20 & Carrera 110": two real street names of the extract
    pat = re.compile(r"Parque, (.+) & (.+)")
    pairs = [pat.fullmatch(n) for n in parks.loc[named_here, "name"]]
    assert sum(m is not None for m in pairs) >= 0.8 * len(pairs)
    from careblocks.io.osm import read_osm_network

    _, edges = read_osm_network(st["path"], bbox=tuple(area.bounds))
    street_names = set(edges["name"].dropna())
    assert all(m.group(1) in street_names and m.group(2) in street_names for m in pairs if m)
    schools = c[(c["kind"] == "parcel") & (c["category"] == "school")]
    assert len(schools) >= 15 and schools["name"].notna().all()
