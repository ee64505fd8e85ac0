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
8 bytes per way node, the reader's buffers and the arrays returned (measured against the
PBF's size in ``benchmarks/metro.py``). The network stage builds the walk network straight
from these arrays (:func:`careblocks.network.graph.build_walk_network_from_ways`);
:func:`careblocks.io.osm.read_osm_network` turns them into the ``(nodes, edges)``
GeoDataFrames every reader returns, the public adapter.
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
    ``combo``: int32 per stretch, the row of ``combos`` holding its way's tags: one int32
    code per column of :data:`WAY_TAGS` into ``values[column]`` (code 0 is ``None``). Ways
    share few combinations of these tags, so a stretch costs 4 bytes of tags, not one code
    per tag.
    """

    node_id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    u: np.ndarray
    v: np.ndarray
    combo: np.ndarray
    combos: np.ndarray
    values: dict[str, list[str | None]]

    def _codes(self, name: str) -> np.ndarray:
        """The code of tag ``name`` per combination."""
        return self.combos[:, [c for c, _ in WAY_TAGS].index(name)]

    def column(self, name: str) -> np.ndarray:
        """The tag column ``name`` decoded to an object array (None where not tagged)."""
        table = np.array(self.values[name] + [None], dtype=object)[:-1]
        return table[self._codes(name)][self.combo]

    def where(self, name: str, test: Callable[[str | None], bool]) -> np.ndarray:
        """bool per stretch: ``test(value)`` of its tag ``name``, evaluated once per distinct
        value (not per stretch)."""
        table = np.fromiter((bool(test(v)) for v in self.values[name]), bool, len(self.values[name]))
        return table[self._codes(name)][self.combo]

    def lookup(self, name: str, fn: Callable[[str | None], Any], dtype: Any) -> np.ndarray:
        """``fn(value)`` of the tag ``name`` per stretch, evaluated once per distinct value."""
        table = np.array([fn(v) for v in self.values[name]], dtype=dtype)
        return table[self._codes(name)][self.combo]

    def subset(self, keep: np.ndarray) -> WayArrays:
        """The stretches where ``keep`` is True, with only the nodes they use."""
        keep = np.asarray(keep, dtype=bool)
        if keep.all():
            return self
        u, v = self.u[keep], self.v[keep]
        used = np.zeros(self.node_id.size, bool)
        used[np.searchsorted(self.node_id, u)] = True
        used[np.searchsorted(self.node_id, v)] = True
        return WayArrays(node_id=self.node_id[used], lon=self.lon[used], lat=self.lat[used], u=u, v=v,
                         combo=self.combo[keep], combos=self.combos, values=self.values)

    def segments(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Straight LineStrings (EPSG:4326) of stretches ``lo..hi-1``, as
        :func:`edges_frames` draws them (build them a chunk at a time to bound memory)."""
        import shapely

        u, v = self.u[lo:hi], self.v[lo:hi]
        iu, iv = np.searchsorted(self.node_id, u), np.searchsorted(self.node_id, v)
        coords = np.empty((u.size, 2, 2), dtype=np.float64)
        coords[:, 0, 0], coords[:, 0, 1] = self.lon[iu], self.lat[iu]
        coords[:, 1, 0], coords[:, 1, 1] = self.lon[iv], self.lat[iv]
        return shapely.linestrings(coords) if u.size else np.empty(0, dtype=object)

    @property
    def n_stretches(self) -> int:
        return int(self.u.size)

    @property
    def nbytes(self) -> int:
        arrays = [self.node_id, self.lon, self.lat, self.u, self.v, self.combo, self.combos]
        return int(sum(a.nbytes for a in arrays))


def release_freed_memory() -> None:
    """Hand the memory freed so far back to the operating system (glibc's ``malloc_trim``).

    glibc keeps freed blocks of up to 32 MB (numpy arrays) and the arenas of other threads
    (libosmium's decoding threads) for reuse, so a process that reads, frees and builds
    holds both at its peak. Dask's workers do the same after tasks. A no-op elsewhere."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


#: node ids located per call of the location index (bounds the Python list of them)
LOCATE_CHUNK = 65_536


def _member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Whether each of ``ids`` is in ``sorted_ids`` (binary search: no sorted copies)."""
    if sorted_ids.size == 0:
        return np.zeros(ids.size, bool)
    i = np.searchsorted(sorted_ids, ids)
    np.minimum(i, sorted_ids.size - 1, out=i)
    return sorted_ids[i] == ids


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
    tag_keys = tuple(key for _, key in WAY_TAGS)
    name_at = [c for c, _ in WAY_TAGS].index("name")
    refs = array("q")
    ends = array("q")  # end offset of each kept way in refs
    way_combo = array("i")  # tag combination of each kept way
    combos: dict[tuple, int] = {}
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
        vals = [tags.get(k) or None for k in tag_keys]
        vals[name_at] = _name(vals[name_at])
        key = tuple(vals)
        code = combos.get(key)
        if code is None:
            code = combos[key] = len(combos)
        way_combo.append(code)
    del reader

    # the tables: one list of values per tag (code 0 = None), one row of codes per combination
    values: dict[str, list[str | None]] = {}
    table = np.zeros((len(combos), len(WAY_TAGS)), dtype=np.int32)
    for j, (col, _) in enumerate(WAY_TAGS):
        index: dict[str, int] = {}
        vals_j: list[str | None] = [None]
        for key, row in combos.items():
            val = key[j]
            if val is not None:
                c = index.get(val)
                if c is None:
                    c = index[val] = len(vals_j)
                    vals_j.append(val)
                table[row, j] = c
        values[col] = vals_j
    del combos

    ref = np.frombuffer(refs, dtype=np.int64) if len(refs) else np.empty(0, np.int64)
    end = np.frombuffer(ends, dtype=np.int64) if len(ends) else np.empty(0, np.int64)
    # a stretch starts at every way node but the last of its way
    last = np.zeros(ref.size, dtype=bool)
    last[end - 1] = True
    starts = np.flatnonzero(~last)
    del last
    u = ref[starts]
    v = ref[starts + 1]
    combo = (np.frombuffer(way_combo, dtype=np.int32)[np.searchsorted(end, starts, side="right")]
             if len(way_combo) else np.empty(0, np.int32))
    del starts
    node_id = np.unique(ref)
    del ref, refs, end, ends
    x = np.full(node_id.size, np.nan)
    y = np.full(node_id.size, np.nan)
    get = store.get
    for lo in range(0, node_id.size, LOCATE_CHUNK):
        for k, nid in enumerate(node_id[lo:lo + LOCATE_CHUNK].tolist(), start=lo):
            try:
                loc = get(nid)
            except KeyError:  # not in the file (a clipped extract)
                continue
            if loc.valid():
                x[k] = loc.lon
                y[k] = loc.lat
    store.clear()
    del store
    release_freed_memory()  # the location index and the decoding threads' buffers
    located = np.isfinite(x)
    if not located.all():
        node_id, x, y = node_id[located], x[located], y[located]
    # a clipped extract: ways run on past its edge to nodes it does not hold; keep the
    # stretches between nodes it has (as pyrosm does)
    keep = _member(node_id, u)
    keep &= _member(node_id, v)
    if bbox is not None and u.size:
        keep &= _segments_in_box(node_id, x, y, u, v, bbox)
    ways = WayArrays(node_id=node_id, lon=x, lat=y, u=u, v=v, combo=combo, combos=table, values=values)
    return ways.subset(keep)


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
