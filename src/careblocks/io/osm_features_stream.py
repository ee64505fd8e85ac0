"""Streaming reader of OSM features (points of interest, buildings) from a PBF, with pyosmium.

The file is never held in memory. Three passes, each filtered in libosmium before Python sees
an object:

1. relations carrying one of the requested keys: the ``type=multipolygon``/``boundary`` ones
   whose tags match are kept with their member ways (ids and roles);
2. nodes and ways carrying one of the requested keys, while libosmium indexes every node's
   location (``flex_mem``, 16 bytes a node: the peak of the read): a matching node is a point,
   a matching way a LineString or a Polygon, its coordinates appended to one flat array;
3. only when a relation was kept: its member ways (a Python test of the id per way), located
   from the same index.

The study's bbox is applied while reading (a feature whose bounds miss it is not kept; the
exact ``intersects`` test runs on what is left). Tags are kept for ``name`` and the requested
keys only, as codes into one table of distinct combinations (buildings share few).

Which features and which geometries follow osmnx's ``features_from_xml`` (the oracle the
project tests the PBF reader against, on the same data converted to XML):

- a node with a matching tag is a Point;
- a way with a matching tag is a Polygon when it is closed, not tagged ``area=no`` and one of
  its tags makes it an area by osmnx's table (:data:`POLYGON_FEATURES`: ``building``,
  ``amenity``, ``shop``, ``leisure`` ... any value; ``highway``, ``man_made`` ... some
  values); otherwise a LineString (an open way, or a closed ``barrier=fence``). A way with a node missing from the file, or too few
  nodes for its geometry, is dropped;
- a relation of ``type=multipolygon`` or ``type=boundary`` with a matching tag is the union of
  its ``outer`` rings minus the ``inner`` rings they contain, rings joined from member ways
  (``linemerge`` + ``polygonize``); a relation with a member way missing from the file is
  dropped (an extract cut at the border), as are relations of any other type (``site``,
  ``route``) and those whose rings do not close;
- invalid geometries are repaired with ``make_valid`` (a self-touching building ring becomes
  a MultiPolygon).
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import geopandas as gpd

BBox = tuple[float, float, float, float]

#: relation types read as areas (as osmnx does)
RELATION_TYPES = ("multipolygon", "boundary")

_POINT, _LINE, _POLYGON = 0, 1, 2
_TYPES = ("node", "way", "relation")


#: Tags that make a closed way an area: the OSM wiki's "Overpass turbo/Polygon Features" list,
#: as osmnx's ``features`` module holds it (``_POLYGON_FEATURES``; a test keeps the two equal).
#: Kept here so that reading a PBF does not import osmnx (seconds).
POLYGON_FEATURES: dict[str, dict[str, Any]] = {
    "aeroway": {"polygon": "blocklist", "values": {"taxiway"}},
    "amenity": {"polygon": "all"},
    "area": {"polygon": "all"},
    "area:highway": {"polygon": "all"},
    "barrier": {"polygon": "passlist",
                "values": {"city_wall", "ditch", "hedge", "retaining_wall", "spikes"}},
    "boundary": {"polygon": "all"},
    "building": {"polygon": "all"},
    "building:part": {"polygon": "all"},
    "craft": {"polygon": "all"},
    "golf": {"polygon": "all"},
    "highway": {"polygon": "passlist", "values": {"elevator", "escape", "rest_area", "services"}},
    "historic": {"polygon": "all"},
    "indoor": {"polygon": "all"},
    "landuse": {"polygon": "all"},
    "leisure": {"polygon": "all"},
    "man_made": {"polygon": "blocklist", "values": {"cutline", "embankment", "pipeline"}},
    "military": {"polygon": "all"},
    "natural": {"polygon": "blocklist", "values": {"arete", "cliff", "coastline", "ridge", "tree_row"}},
    "office": {"polygon": "all"},
    "place": {"polygon": "all"},
    "power": {"polygon": "passlist", "values": {"generator", "plant", "substation", "transformer"}},
    "public_transport": {"polygon": "all"},
    "railway": {"polygon": "passlist", "values": {"platform", "roundhouse", "station", "turntable"}},
    "ruins": {"polygon": "all"},
    "shop": {"polygon": "all"},
    "tourism": {"polygon": "all"},
    "waterway": {"polygon": "passlist", "values": {"boatyard", "dam", "dock", "riverbank"}},
}


def way_is_area(tags: Mapping[str, str], rules: Mapping[str, Any]) -> bool:
    """Whether a *closed* way with these tags is a polygon (osmnx's rule)."""
    if tags.get("area") == "no":
        return False
    return any(_makes_area(rules.get(key), value) for key, value in tags.items())


def _makes_area(rule: Mapping[str, Any] | None, value: str) -> bool:
    if rule is None:
        return False
    kind = rule["polygon"]
    values = rule.get("values", ())
    return kind == "all" or (kind == "passlist" and value in values) or (
        kind == "blocklist" and value not in values
    )


def _matcher(tags: Mapping[str, Any]):
    wanted = {k: (True if v is True else frozenset(v)) for k, v in tags.items()}

    def matches(get) -> bool:
        for key, values in wanted.items():
            value = get(key)
            if value is not None and (values is True or value in values):
                return True
        return False

    return matches


def _relation_geometry(members: list[tuple[int, str]], ways: dict[int, tuple[Any, bool]]) -> Any:
    """osmnx's multipolygon rule: rings from the outer and the inner member ways, then the
    union of each outer minus the inner rings it contains. None when a member is missing."""
    import shapely
    from shapely.geometry import MultiLineString, Polygon
    from shapely.ops import linemerge, polygonize, unary_union

    outer_l: list[Any] = []
    inner_l: list[Any] = []
    outer_p: list[Any] = []
    inner_p: list[Any] = []
    for ref, role in members:
        got = ways.get(ref)
        if got is None:
            return None
        coords, area = got
        if coords is None:  # a node of the way is missing from the file
            return None
        if role not in ("outer", "inner"):
            continue
        if area:
            geom = shapely.Polygon(coords)
        else:
            geom = shapely.LineString(coords)
        kind = "Polygon" if area else "LineString"
        if role == "outer":
            (outer_p if kind == "Polygon" else outer_l).append(geom)
        else:
            (inner_p if kind == "Polygon" else inner_l).append(geom)
    for lines, polys in ((outer_l, outer_p), (inner_l, inner_p)):
        merged = linemerge(lines)
        if merged.geom_type == "LineString":
            merged = MultiLineString([merged])
        for part in merged.geoms:
            polys += polygonize(part)
    if not inner_p:
        geom = unary_union(outer_p)
    else:
        with_holes = []
        for outer in outer_p:
            shapely.prepare(outer)
            holes = [inner for inner in inner_p if outer.contains(inner)]
            with_holes.append(outer.difference(unary_union(holes)))
        geom = unary_union(with_holes)
    return geom if geom.geom_type in ("Polygon", "MultiPolygon") else Polygon()


def read_pbf_features(
    path: Path | str,
    tags: Mapping[str, Sequence[str] | bool],
    keys: Sequence[str],
    bbox: BBox | None = None,
) -> gpd.GeoDataFrame:
    """The features of a PBF matching ``tags`` (see the module docstring for the rule).

    ``tags``: ``{key: [values] | True}``; a feature matches when any key has one of its
    values (``True``: any value). ``keys``: the tag columns returned besides ``name``.
    Columns: ``osm_id`` (int64), ``osm_type``, ``name``, ``keys``..., geometry (EPSG:4326);
    unsorted within a type, nodes then ways then relations. Raises what pyosmium raises for an
    unreadable file (RuntimeError); the caller names the file.
    """
    import geopandas as gpd
    import osmium
    import pandas as pd
    import shapely
    from osmium.filter import KeyFilter

    path = str(path)
    match_keys = tuple(tags)
    matches = _matcher(tags)
    columns = ("name", *[k for k in keys if k != "name"])
    rules = POLYGON_FEATURES
    x0, y0, x1, y1 = bbox if bbox is not None else (-np.inf, -np.inf, np.inf, np.inf)

    combos: dict[tuple, int] = {}

    def combo(t) -> int:
        key = tuple(t.get(c) for c in columns)
        code = combos.get(key)
        if code is None:
            code = combos[key] = len(combos)
        return code

    # 1. relations
    relations: list[tuple[int, int, list[tuple[int, str]]]] = []
    members: set[int] = set()
    for rel in osmium.FileProcessor(path, osmium.osm.RELATION).with_filter(KeyFilter(*match_keys)):
        t = rel.tags
        if t.get("type") not in RELATION_TYPES or not matches(t.get):
            continue
        mem = [(m.ref, m.role) for m in rel.members if m.type == "w"]
        relations.append((rel.id, combo(t), mem))
        members.update(ref for ref, _ in mem)

    # 2. matching nodes and ways, every node's location indexed
    kind = array("b")
    osm_type = array("b")
    osm_id = array("q")
    codes = array("i")
    ends = array("q")  # end of each feature's coordinates in xy (pairs)
    xy = array("d")
    store = osmium.index.create_map("flex_mem")
    reader = (osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY)
              .with_locations(store).with_filter(KeyFilter(*match_keys)))
    for obj in reader:
        t = obj.tags
        if not matches(t.get):
            continue
        if obj.is_node():
            loc = obj.location
            if not loc.valid():
                continue
            x, y = loc.lon, loc.lat
            if not (x0 <= x <= x1 and y0 <= y <= y1):
                continue
            xy.extend((x, y))
            kind.append(_POINT)
            osm_type.append(0)
        else:
            wn = obj.nodes
            if len(wn) < 2:  # no line, no ring (osmnx drops it too)
                continue
            if not all(n.location.valid() for n in wn):
                continue  # a node missing from the file (osmnx drops the way too)
            coords = [c for n in wn for c in (n.lon, n.lat)]
            xs, ys = coords[0::2], coords[1::2]
            if min(xs) > x1 or max(xs) < x0 or min(ys) > y1 or max(ys) < y0:
                continue
            closed = wn[0].ref == wn[-1].ref
            if closed and t.get("area") != "no" and (
                # the matching key decides most (building, amenity, shop: any value)
                any(_makes_area(rules.get(k), t.get(k)) for k in match_keys if k in t)
                or way_is_area({tg.k: tg.v for tg in t}, rules)
            ):
                if len(wn) < 4:
                    continue
                kind.append(_POLYGON)
            else:
                kind.append(_LINE)
            xy.extend(coords)
            osm_type.append(1)
        osm_id.append(obj.id)
        codes.append(combo(t))
        ends.append(len(xy) // 2)

    # 3. member ways of the relations kept, located from the index
    member_ways: dict[int, tuple[Any, bool]] = {}
    if members:
        # a Python test per way: libosmium's IdFilter holds a bitmap over the id range (34 MB
        # for a handful of Fontibón's ways); this pass runs only when a relation matched
        for way in osmium.FileProcessor(path, osmium.osm.WAY):
            if way.id not in members:
                continue
            refs = [n.ref for n in way.nodes]
            try:
                locs = [store.get(r) for r in refs]
                coords = [(loc.lon, loc.lat) for loc in locs]
            except (KeyError, osmium.InvalidLocationError):
                coords = None
            closed = len(refs) > 0 and refs[0] == refs[-1]
            area = closed and way_is_area({tg.k: tg.v for tg in way.tags}, rules)
            if coords is not None and len(coords) < (4 if area else 2):
                coords = None
            member_ways[way.id] = (coords, area)
    del store

    geoms = _geometries(kind, ends, xy)
    rel_ids, rel_codes, rel_geoms = [], [], []
    for rid, code, mem in relations:
        g = _relation_geometry(mem, member_ways)
        if g is None or g.is_empty:
            continue
        rel_ids.append(rid)
        rel_codes.append(code)
        rel_geoms.append(g)
    geometry = np.concatenate([geoms, np.array(rel_geoms + [None], dtype=object)[:-1]])
    ids = np.concatenate([np.frombuffer(osm_id, np.int64), np.array(rel_ids, np.int64)])
    types = np.concatenate([np.frombuffer(osm_type, np.int8), np.full(len(rel_ids), 2, np.int8)])
    code = np.concatenate([np.frombuffer(codes, np.int32), np.array(rel_codes, np.int32)])

    keep = ~(shapely.is_missing(geometry) | shapely.is_empty(geometry))
    bad = keep & ~shapely.is_valid(geometry)
    if bad.any():  # as osmnx: repair, do not drop
        geometry[bad] = shapely.make_valid(geometry[bad])
    if bbox is not None:
        keep &= shapely.intersects(geometry, shapely.box(*bbox))
    geometry, ids, types, code = geometry[keep], ids[keep], types[keep], code[keep]

    table = list(combos)
    out: dict[str, Any] = {
        "osm_id": ids,
        "osm_type": pd.array(np.array(_TYPES, dtype=object)[types], dtype="string"),
    }
    for i, col in enumerate(columns):
        vals = np.array([row[i] for row in table] + [None], dtype=object)[:-1]
        out[col] = pd.array(vals[code], dtype="string")
    for k in keys:  # a key asked for twice, or "name"
        out.setdefault(k, out["name"])
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"), crs="EPSG:4326")


def _geometries(kind: array, ends: array, xy: array) -> np.ndarray:
    """Points, LineStrings and Polygons from the flat coordinates, made in bulk."""
    import shapely

    n = len(kind)
    out = np.empty(n, dtype=object)
    if n == 0:
        return out
    k = np.frombuffer(kind, np.int8)
    end = np.frombuffer(ends, np.int64)
    start = np.concatenate([[0], end[:-1]])
    coords = np.frombuffer(xy, np.float64).reshape(-1, 2)
    counts = end - start
    for code in (_POINT, _LINE, _POLYGON):
        sel = np.flatnonzero(k == code)
        if sel.size == 0:
            continue
        c = counts[sel]
        first = np.cumsum(c) - c  # where each feature starts among the selected coordinates
        idx = np.arange(int(c.sum())) + np.repeat(start[sel] - first, c)
        pts = coords[idx]
        part = np.repeat(np.arange(sel.size), c)
        if code == _POINT:
            out[sel] = shapely.points(pts)
        elif code == _LINE:
            out[sel] = shapely.linestrings(pts, indices=part)
        else:
            rings = shapely.linearrings(pts, indices=part)
            out[sel] = shapely.polygons(rings)
    return out
