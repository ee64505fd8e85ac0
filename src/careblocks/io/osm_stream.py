"""Streaming reader of the walkable ways of an OSM PBF, with pyosmium, into compact arrays.

One pass over the file, which is never held in memory: libosmium keeps the location of every
node (16 bytes a node, its ``flex_mem`` index) and hands Python only the ways carrying a
``highway`` tag; :func:`careblocks.io.osm.is_walkable` decides per way (once per combination of
the tags it reads), and a kept way leaves its node ids and its tags as small integer codes into
one table of strings per tag. The nodes used are then located from the index, once each.
(Filtering the nodes by id in a second pass would hold less, but building libosmium's id set
from Python costs about 0.1 ms a node: minutes for a city.)

Clipping to a bbox happens before anything else is built: a stretch of way between two
consecutive nodes is kept when its straight segment intersects the box (the same rule as
reading everything and keeping the edges that intersect the box). Memory: the node index,
8 bytes per way node, the reader's buffers and the arrays returned (measured against pyrosm
and the PBF's size in ``benchmarks/metro.py``). :func:`careblocks.io.osm.read_osm_network` turns the
arrays into the ``(nodes, edges)`` GeoDataFrames every reader returns.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: tag columns kept per way, as ``(column, OSM key)``
WAY_TAGS = (("highway", "highway"), ("name", "name"), ("wheelchair", "wheelchair"),
            ("incline", "incline"), ("kerb", "kerb"), ("ramp_wheelchair", "ramp:wheelchair"),
            ("tunnel", "tunnel"))


@dataclass(frozen=True)
class WayArrays:
    """Walkable stretches of way as plain arrays.

    ``node_id``/``lon``/``lat``: the nodes the stretches use (sorted by id); ``u``/``v``:
    node ids of each stretch, in the drawing direction of its way, ways in file order;
    ``tags[column]``: int32 code per stretch into ``values[column]`` (code 0 is ``None``).
    """

    node_id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    u: np.ndarray
    v: np.ndarray
    tags: dict[str, np.ndarray]
    values: dict[str, list[str | None]]

    def column(self, name: str) -> np.ndarray:
        """The tag column ``name`` decoded to an object array (None where not tagged)."""
        table = np.array(self.values[name], dtype=object)
        return table[self.tags[name]]

    @property
    def nbytes(self) -> int:
        arrays = [self.node_id, self.lon, self.lat, self.u, self.v, *self.tags.values()]
        return int(sum(a.nbytes for a in arrays))


class _Codes:
    """Interned string values of one tag: code 0 is None."""

    __slots__ = ("index", "values", "codes")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str | None] = [None]
        self.codes = array("i")

    def add(self, value: str | None) -> None:
        if value is None:
            self.codes.append(0)
            return
        code = self.index.get(value)
        if code is None:
            code = len(self.values)
            self.index[value] = code
            self.values.append(value)
        self.codes.append(code)


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def read_pbf_ways(path: Path | str, bbox: tuple[float, float, float, float] | None = None, *,
                  walkable: Callable[[dict[str, str]], bool], rule_keys: Sequence[str]) -> WayArrays:
    """The walkable ways of a PBF as :class:`WayArrays` (see the module docstring).

    ``walkable(tags)`` decides per way from its tags among ``rule_keys`` (the callers pass
    :func:`careblocks.io.osm.is_walkable` and the keys it reads: :func:`careblocks.io.osm.read_pbf_ways`).

    Raises whatever pyosmium raises for an unreadable file (RuntimeError); the caller turns
    it into an InputDataError naming the file.
    """
    import osmium
    from osmium.filter import EntityFilter, KeyFilter

    rule_keys = tuple(rule_keys)
    refs = array("q")
    ends = array("q")  # end offset of each kept way in refs
    codes = {col: _Codes() for col, _ in WAY_TAGS}
    verdicts: dict[tuple, bool] = {}  # ways share few tag combinations: decide each once
    # one pass: libosmium keeps every node location (16 bytes a node, in C++) and hands
    # Python only the ways with a highway tag; their nodes are located from that index after
    # the pass, once per node
    store = osmium.index.create_map("flex_mem")
    reader = (osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
              .with_locations(store)
              .with_filter(EntityFilter(osmium.osm.WAY))
              .with_filter(KeyFilter("highway")))
    for way in reader:
        tags = way.tags
        rule_tags = tuple(tags.get(k) for k in rule_keys)
        ok = verdicts.get(rule_tags)
        if ok is None:
            ok = walkable({k: v for k, v in zip(rule_keys, rule_tags, strict=True) if v is not None})
            verdicts[rule_tags] = ok
        if not ok:
            continue
        wn = way.nodes
        if len(wn) < 2:
            continue
        refs.extend([n.ref for n in wn])
        ends.append(len(refs))
        for col, key in WAY_TAGS:
            val = tags.get(key)
            codes[col].add(_name(val) if col == "name" else (val or None))
    del reader

    ref = np.frombuffer(refs, dtype=np.int64) if len(refs) else np.empty(0, np.int64)
    end = np.frombuffer(ends, dtype=np.int64) if len(ends) else np.empty(0, np.int64)
    # a stretch starts at every way node but the last of its way
    last = np.zeros(ref.size, dtype=bool)
    last[end - 1] = True
    starts = np.flatnonzero(~last)
    u = ref[starts]
    v = ref[starts + 1]
    way_of = np.searchsorted(end, starts, side="right")
    tag_codes = {col: np.frombuffer(c.codes, dtype=np.int32)[way_of] if len(c.codes)
                 else np.empty(0, np.int32) for col, c in codes.items()}
    node_id = np.unique(ref)
    del ref, refs, last
    x = np.full(node_id.size, np.nan)
    y = np.full(node_id.size, np.nan)
    get = store.get
    for k, nid in enumerate(node_id.tolist()):
        try:
            loc = get(nid)
        except KeyError:  # not in the file (a clipped extract)
            continue
        if loc.valid():
            x[k] = loc.lon
            y[k] = loc.lat
    store.clear()
    del store
    located = np.isfinite(x)
    if not located.all():
        node_id, x, y = node_id[located], x[located], y[located]
    # a clipped extract: ways run on past its edge to nodes it does not hold; keep the
    # stretches between nodes it has (as pyrosm does)
    keep = np.isin(u, node_id) & np.isin(v, node_id)
    if bbox is not None and u.size:
        keep &= _segments_in_box(node_id, x, y, u, v, bbox)
    if not keep.all():
        u, v = u[keep], v[keep]
        tag_codes = {col: c[keep] for col, c in tag_codes.items()}
        used = np.unique(np.concatenate([u, v]))
        nk = np.isin(node_id, used)
        node_id, x, y = node_id[nk], x[nk], y[nk]
    return WayArrays(node_id=node_id, lon=x, lat=y, u=u, v=v, tags=tag_codes,
                     values={col: c.values for col, c in codes.items()})


def _segments_in_box(node_id: np.ndarray, x: np.ndarray, y: np.ndarray, u: np.ndarray,
                     v: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
    """Whether each straight segment ``u``-``v`` intersects the closed box (missing nodes: no)."""
    x0, y0, x1, y1 = bbox
    n = node_id.size
    iu = np.minimum(np.searchsorted(node_id, u), max(n - 1, 0))
    iv = np.minimum(np.searchsorted(node_id, v), max(n - 1, 0))
    known = (node_id[iu] == u) & (node_id[iv] == v) if n else np.zeros(u.size, bool)
    ax, ay, bx, by = x[iu], y[iu], x[iv], y[iv]
    inside_a = (ax >= x0) & (ax <= x1) & (ay >= y0) & (ay <= y1)
    inside_b = (bx >= x0) & (bx <= x1) & (by >= y0) & (by <= y1)
    keep = inside_a | inside_b
    # neither end inside: the segment may still cross the box; test those exactly with shapely
    maybe = ~keep & known & ~((np.maximum(ax, bx) < x0) | (np.minimum(ax, bx) > x1)
                              | (np.maximum(ay, by) < y0) | (np.minimum(ay, by) > y1))
    if maybe.any():
        import shapely

        idx = np.flatnonzero(maybe)
        coords = np.stack([np.stack([ax[idx], ay[idx]], 1), np.stack([bx[idx], by[idx]], 1)], 1)
        lines = shapely.linestrings(coords)
        keep[idx] = shapely.intersects(lines, shapely.box(*bbox))
    return keep & known


def edges_frames(w: WayArrays) -> tuple[Any, Any]:
    """``(nodes, edges)`` GeoDataFrames (EPSG:4326) of :class:`WayArrays`, straight
    LineStrings between the nodes of each stretch, as the PBF reader returned them."""
    import geopandas as gpd
    import shapely

    nodes = gpd.GeoDataFrame({"node_id": w.node_id}, geometry=shapely.points(w.lon, w.lat),
                             crs="EPSG:4326")
    n = w.node_id.size
    iu = np.minimum(np.searchsorted(w.node_id, w.u), max(n - 1, 0))
    iv = np.minimum(np.searchsorted(w.node_id, w.v), max(n - 1, 0))
    known = (w.node_id[iu] == w.u) & (w.node_id[iv] == w.v) if n else np.zeros(w.u.size, bool)
    coords = np.empty((w.u.size, 2, 2), dtype=np.float64)
    coords[:, 0, 0], coords[:, 0, 1] = w.lon[iu] if n else 0.0, w.lat[iu] if n else 0.0
    coords[:, 1, 0], coords[:, 1, 1] = w.lon[iv] if n else 0.0, w.lat[iv] if n else 0.0
    geoms = shapely.linestrings(coords) if w.u.size else np.empty(0, dtype=object)
    if not known.all():
        geoms = np.asarray(geoms, dtype=object)
        geoms[~known] = None
    cols: dict[str, Any] = {"u": w.u, "v": w.v}
    for col, _ in WAY_TAGS:
        cols[col] = w.column(col)
    edges = gpd.GeoDataFrame(cols, geometry=geoms, crs="EPSG:4326")
    return nodes, edges
