"""The walking network as CSR arrays: build, project, keep the main component, snap, cache.

The graph readers (:mod:`careblocks.io.osm`, :mod:`careblocks.io.roads`) return ``(nodes,
edges)`` GeoDataFrames; :func:`build_walk_network` turns them into a :class:`WalkNetwork`, a
handful of numpy arrays in compressed-sparse-row layout (both directions of every walkable
edge) in a projected working CRS. An OSM PBF skips the GeoDataFrames: the streaming reader's
arrays go straight into the same core (:func:`build_walk_network_from_ways`, identical
arrays), so the network stage holds about what the reading holds. :func:`load_or_build_network` picks the reader from the
config, clips to the study area and caches the result keyed by the input file digest plus
the parameters that change it, so a second run of the same config does not rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from careblocks.errors import CRSError, DataQualityWarning, EmptyResultError, InputDataError

# the barrier bits of WalkNetwork.barrier live with the travel profiles that read them
from careblocks.network.profiles import (  # noqa: F401 - re-exported
    BARRIERS,
    KERB_RAISED,
    STEPS,
    TUNNEL,
    WHEELCHAIR_LIMITED,
    WHEELCHAIR_NO,
)

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd
    import scipy.sparse
    from scipy.spatial import cKDTree

    from careblocks.config import Config
    from careblocks.network.cost import WalkCost

#: Bump when the way networks are built changes, so that old cache entries are not reused.
NETWORK_CODE_VERSION = "7"  # 7: network from the PBF arrays, nodes outside the area not counted as dropped pieces; 6: pyosmium reader, .npy cache; 2: spatial order; 3: component by ground covered; 5: barriers, tunnels, incline, z
#: side of the squares nodes are numbered by (see build_walk_network)
SPATIAL_CELL_M = 300.0
#: cell size (m) of the ground a connected component covers, which decides the one kept
COMPONENT_CELL_M = 100.0

#: Edges shorter than this (two OSM nodes at the same spot) get this length, so that every
#: CSR weight is positive (scipy.sparse.csgraph would read an explicit 0 as "no edge").
MIN_EDGE_M = 0.01



@dataclass(frozen=True, eq=False)
class WalkNetwork:
    """An undirected walking network as CSR arrays in a projected CRS (metres).

    Every walkable edge appears twice, once in each direction: the neighbours of node ``i``
    are ``indices[indptr[i]:indptr[i + 1]]`` and the edge lengths ``length_m`` at the same
    positions. Nodes are numbered ``0 .. n_nodes - 1``; ``node_id`` maps them back to the
    source ids (OSM node ids, or ids derived from coordinates for road layers).

    Attributes
    ----------
    indptr
        int64, ``n_nodes + 1`` row offsets.
    indices
        int32, ``n_edges`` target node of each CSR entry.
    length_m
        float64, ``n_edges`` edge length in metres (at least ``MIN_EDGE_M``).
    x, y
        float64, ``n_nodes`` node coordinates in ``crs``.
    node_id
        int64, ``n_nodes`` source node ids.
    crs
        The working CRS, projected in metres (``"EPSG:32618"``).
    barrier
        uint8, ``n_edges`` bit mask of :data:`BARRIERS` per CSR entry (None: no tags known).
    incline
        float64, ``n_edges`` mapped ``incline`` as a rise per metre in the direction of the
        CSR entry (so the two entries of an edge have opposite signs); NaN where not mapped
        (None: no tags known).
    z
        float64, ``n_nodes`` ground height in metres from a DEM (NaN outside it; None: no DEM).
    """

    indptr: np.ndarray
    indices: np.ndarray
    length_m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    node_id: np.ndarray
    crs: str
    barrier: np.ndarray | None = None
    incline: np.ndarray | None = None
    z: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.indptr.shape[0] - 1)

    @property
    def n_edges(self) -> int:
        """Number of CSR entries (twice the number of undirected edges)."""
        return int(self.indices.shape[0])

    @cached_property
    def sources(self) -> np.ndarray:
        """int64, ``n_edges``: the node each CSR entry leaves from."""
        return np.repeat(np.arange(self.n_nodes, dtype=np.int64), np.diff(self.indptr))

    @cached_property
    def reverse(self) -> np.ndarray:
        """int64, ``n_edges``: position of the opposite direction of each CSR entry.

        ``w[reverse]`` turns per-entry costs of travelling ``u -> v`` into the costs a search
        running against the direction of travel needs (from the destinations outwards).
        """
        src, dst = self.sources, self.indices.astype(np.int64)
        n = max(self.n_nodes, 1)
        key = src * n + dst
        order = np.argsort(key, kind="stable")
        pos = np.searchsorted(key[order], dst * n + src)
        rev = order[np.minimum(pos, key.size - 1)]
        if key.size and not np.array_equal(key[rev], dst * n + src):
            raise ValueError("network: an edge is stored in one direction only")
        return rev

    def grade(self) -> np.ndarray:
        """Rise per metre of every CSR entry in its direction of travel (uphill > 0).

        The mapped ``incline`` where there is one, else the DEM heights of its two nodes
        over its length; 0 where neither is known.
        """
        g = np.zeros(self.n_edges, np.float64)
        if self.z is not None:
            dz = self.z[self.indices] - self.z[self.sources]
            g = np.where(np.isfinite(dz), dz / self.length_m, 0.0)
        if self.incline is not None:
            g = np.where(np.isfinite(self.incline), self.incline, g)
        return g

    @cached_property
    def _tree(self) -> cKDTree:
        from scipy.spatial import cKDTree

        return cKDTree(np.column_stack([self.x, self.y]))

    def snap(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nearest node of each point (coordinates in ``crs``).

        Parameters
        ----------
        x, y
            Point coordinates in the network's CRS (scalars or arrays of the same length).

        Returns
        -------
        node, dist_m
            int64 node index (position, not ``node_id``) and float64 straight-line distance
            in metres to it.
        """
        xs = np.atleast_1d(np.asarray(x, dtype=np.float64))
        ys = np.atleast_1d(np.asarray(y, dtype=np.float64))
        if xs.shape != ys.shape:
            raise ValueError(f"x and y differ in shape: {xs.shape} vs {ys.shape}")
        if xs.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            raise ValueError("snap: x and y must be finite (drop empty geometries first)")
        dist, idx = self._tree.query(np.column_stack([xs.ravel(), ys.ravel()]))
        return idx.astype(np.int64).reshape(xs.shape), dist.astype(np.float64).reshape(xs.shape)

    def split_at(self, x: np.ndarray, y: np.ndarray) -> tuple[WalkNetwork, np.ndarray, np.ndarray]:
        """Snap points to the nearest point of the nearest edge, splitting that edge there.

        As routers do (r5's split of a street edge, OpenTripPlanner's temporary vertices):
        each point gets a node of its own on the closest street, so a trip leaves a home
        along its street in both directions instead of from the nearest junction. The edge
        ``a - b`` holding points at fractions ``t1 < t2 < ...`` of its length becomes the
        chain ``a - p1 - p2 - ... - b``; lengths are split in proportion (they add up to the
        edge's length), and barriers, mapped incline and heights (interpolated) carry over,
        so every cost of the network is unchanged between the old nodes. Points closer than
        ``MIN_EDGE_M`` to an end of their edge take that end's node. Tunnels (``TUNNEL``)
        are not snapped to.

        Parameters
        ----------
        x, y
            Point coordinates in ``crs``.

        Returns
        -------
        network, node, dist_m
            A new network: the old nodes keep their positions (indices from earlier snaps
            stay valid) and the new ones follow, with ``node_id`` ``-1 - position``; the node
            of each point; the straight distance in metres from the point to its edge (the
            snap leg, walked before the network).
        """
        import shapely

        xs = np.atleast_1d(np.asarray(x, dtype=np.float64)).ravel()
        ys = np.atleast_1d(np.asarray(y, dtype=np.float64)).ravel()
        if xs.shape != ys.shape:
            raise ValueError(f"x and y differ in shape: {xs.shape} vs {ys.shape}")
        if xs.size == 0:
            return self, np.empty(0, np.int64), np.empty(0, np.float64)
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            raise ValueError("split_at: x and y must be finite (drop empty geometries first)")
        src, dst = self.sources, self.indices.astype(np.int64)
        und = np.flatnonzero(src < dst)  # one CSR entry per undirected edge
        a, b = src[und], dst[und]
        ax, ay, bx, by = self.x[a], self.y[a], self.x[b], self.y[b]
        seg = shapely.linestrings(np.stack([np.column_stack([ax, ay]), np.column_stack([bx, by])], axis=1))
        linkable = np.ones(und.size, bool)
        if self.barrier is not None:
            linkable = (self.barrier[und] & TUNNEL) == 0
            if not linkable.any():
                linkable[:] = True
        cand = np.flatnonzero(linkable)
        tree = shapely.STRtree(seg[cand])
        pts = shapely.points(xs, ys)
        (ip, ie), dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
        ie = cand[ie]
        order = np.argsort(ip, kind="stable")
        ie = ie[order]
        dist = np.asarray(dist, np.float64)[order]
        # fraction along the edge, exact point-to-segment projection (clamped to the ends)
        dx, dy = bx[ie] - ax[ie], by[ie] - ay[ie]
        l2 = dx * dx + dy * dy
        t = np.where(l2 > 0, ((xs - ax[ie]) * dx + (ys - ay[ie]) * dy) / np.where(l2 > 0, l2, 1), 0.0)
        t = np.clip(t, 0.0, 1.0)
        e_len = self.length_m[und][ie]
        along = t * e_len
        node = np.empty(xs.size, np.int64)
        at_a = along < MIN_EDGE_M
        at_b = (e_len - along) < MIN_EDGE_M
        node[at_a] = a[ie[at_a]]
        node[at_b & ~at_a] = b[ie[at_b & ~at_a]]
        inner = np.flatnonzero(~at_a & ~at_b)
        if inner.size == 0:
            return self, node, dist
        n0 = self.n_nodes
        # one new node per inner point, chained along its edge in order of t
        k = np.lexsort((t[inner], ie[inner]))
        pts_sorted = inner[k]
        edge_of = ie[pts_sorted]
        new_pos = n0 + np.arange(pts_sorted.size, dtype=np.int64)
        node[pts_sorted] = new_pos
        first = np.r_[True, edge_of[1:] != edge_of[:-1]]
        last = np.r_[edge_of[1:] != edge_of[:-1], True]
        tt = t[pts_sorted]
        prev_node = np.where(first, a[edge_of], np.r_[0, new_pos[:-1]])
        prev_t = np.where(first, 0.0, np.r_[0.0, tt[:-1]])
        L = self.length_m[und][edge_of]
        # chain pieces: (prev -> p) for every point, then (last p -> b) per split edge
        pa = np.concatenate([prev_node, new_pos[last]])
        pb = np.concatenate([new_pos, b[edge_of[last]]])
        frac = np.concatenate([tt - prev_t, 1.0 - tt[last]])
        pl = np.concatenate([L, L[last]])
        plen = np.maximum(frac * pl, MIN_EDGE_M)
        pe = np.concatenate([edge_of, edge_of[last]])  # the undirected edge each piece is on
        split_edges = np.unique(edge_of)
        keep = np.ones(und.size, bool)
        keep[split_edges] = False
        ea = np.concatenate([a[keep], pa])
        eb = np.concatenate([b[keep], pb])
        ew = np.concatenate([self.length_m[und][keep], plen])
        n1 = n0 + pts_sorted.size
        flags = slope = None
        if self.barrier is not None:
            flags = np.concatenate([self.barrier[und][keep], self.barrier[und][pe]])
        if self.incline is not None:
            slope = np.concatenate([self.incline[und][keep], self.incline[und][pe]])
        indptr, indices, length_m, barrier, incline = _csr_from_pairs(n1, ea, eb, ew, flags, slope)
        nx = ax[edge_of] + tt * (bx[edge_of] - ax[edge_of])
        ny = ay[edge_of] + tt * (by[edge_of] - ay[edge_of])
        z = None
        if self.z is not None:
            za, zb = self.z[a[edge_of]], self.z[b[edge_of]]
            z = np.concatenate([self.z, za + tt * (zb - za)])
        net = WalkNetwork(
            indptr=indptr,
            indices=indices,
            length_m=length_m,
            x=np.concatenate([self.x, nx]),
            y=np.concatenate([self.y, ny]),
            node_id=np.concatenate([self.node_id, -1 - new_pos]),
            crs=self.crs,
            barrier=barrier,
            incline=incline,
            z=z,
        )
        return net, node, dist

    def to_scipy(self, cost: WalkCost) -> scipy.sparse.csr_matrix:
        """The network as a ``scipy.sparse.csr_matrix`` of the edge seconds of ``cost``."""
        import scipy.sparse

        n = self.n_nodes
        return scipy.sparse.csr_matrix(
            (cost.edge_seconds(self), self.indices, self.indptr), shape=(n, n)
        )

    def edges_gdf(self) -> gpd.GeoDataFrame:
        """Each undirected edge once as a straight segment (``u``, ``v``, ``length_m``)."""
        import geopandas as gpd
        import shapely

        src = np.repeat(np.arange(self.n_nodes, dtype=np.int64), np.diff(self.indptr))
        dst = self.indices.astype(np.int64)
        keep = src < dst
        s, d = src[keep], dst[keep]
        coords = np.stack(
            [np.column_stack([self.x[s], self.y[s]]), np.column_stack([self.x[d], self.y[d]])],
            axis=1,
        )
        geom = shapely.linestrings(coords)
        return gpd.GeoDataFrame(
            {"u": s, "v": d, "length_m": self.length_m[keep]}, geometry=geom, crs=self.crs
        )

    def nodes_gdf(self) -> gpd.GeoDataFrame:
        """Nodes as points (``node`` position and ``node_id``)."""
        import geopandas as gpd

        return gpd.GeoDataFrame(
            {"node": np.arange(self.n_nodes, dtype=np.int64), "node_id": self.node_id},
            geometry=gpd.points_from_xy(self.x, self.y),
            crs=self.crs,
        )


# --------------------------------------------------------------------------------------
# Working CRS
# --------------------------------------------------------------------------------------


def local_crs(geom_4326: Any) -> str:
    """The UTM zone of an area, as an ``"EPSG:xxxxx"`` string.

    Parameters
    ----------
    geom_4326
        A shapely geometry, GeoSeries/GeoDataFrame, or a ``(min_lon, min_lat, max_lon,
        max_lat)`` bbox, in EPSG:4326 (GeoSeries in other CRSs are reprojected).
    """
    import geopandas as gpd
    import shapely

    if isinstance(geom_4326, (gpd.GeoSeries, gpd.GeoDataFrame)):
        gs = geom_4326.geometry if isinstance(geom_4326, gpd.GeoDataFrame) else geom_4326
        if gs.crs is None:
            gs = gs.set_crs("EPSG:4326")
        geom = shapely.box(*gs.to_crs("EPSG:4326").total_bounds)
    elif isinstance(geom_4326, (tuple, list, np.ndarray)) and len(geom_4326) == 4:
        geom = shapely.box(*map(float, geom_4326))
    else:
        geom = geom_4326
    if geom is None or geom.is_empty:
        raise EmptyResultError(
            "study area: the area is empty; give a study.bbox or boundary that holds streets"
        )
    crs = gpd.GeoSeries([geom], crs="EPSG:4326").estimate_utm_crs()
    epsg = crs.to_epsg()
    if epsg is None:  # pragma: no cover - estimate_utm_crs always returns an EPSG UTM CRS
        raise CRSError("study area: no UTM zone found for the area; set study.crs explicitly")
    return f"EPSG:{epsg}"


# --------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------


def _csr_from_pairs(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray,
                    flags: np.ndarray | None = None, slope: np.ndarray | None = None):
    """CSR (both directions) from undirected pairs; rows sorted by target within a node.

    ``flags`` are copied to both directions, ``slope`` (rise per metre from a to b) is
    negated for b -> a. Returns ``indptr, indices, weights, flags, slope`` (the last two
    None when not given).
    """
    return _csr_from_parts(n, {"a": a, "b": b, "w": w, "flags": flags, "slope": slope})


def _csr_from_parts(n: int, parts: dict[str, Any]):
    """:func:`_csr_from_pairs` taking ``parts`` (``a``, ``b``, ``w``, ``flags``, ``slope``)
    apart as it goes, so that each input is freed once used (when the caller kept no other
    reference)."""
    small = np.int32 if n < 2**31 else np.int64
    a, b = parts.pop("a"), parts.pop("b")
    src = np.concatenate([a, b]).astype(small, copy=False)
    dst = np.concatenate([b, a]).astype(small, copy=False)
    del a, b
    order = np.lexsort((dst, src))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    del src
    dst = dst[order].astype(np.int32, copy=False)
    w = parts.pop("w")
    ww = np.concatenate([w, w])
    del w
    ww = ww[order].astype(np.float64, copy=False)
    flags = parts.pop("flags", None)
    ff = np.concatenate([flags, flags])[order] if flags is not None else None
    del flags
    slope = parts.pop("slope", None)
    ss = None
    if slope is not None:
        ss = np.concatenate([slope, slope])
        np.negative(ss[slope.size:], out=ss[slope.size:])
        del slope
        ss = ss[order]
    return indptr, dst, ww, ff, ss


def parse_incline(value: Any) -> float:
    """An OSM ``incline`` value as a rise per metre (``"10%"`` -> 0.1, ``"-4°"`` -> -0.07).

    ``up``/``down``/``yes`` and anything unreadable give NaN (the DEM decides there).
    """
    import math

    if not isinstance(value, str):
        return math.nan
    text = value.strip().replace(",", ".")
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100.0
        if text.endswith("°"):
            return math.tan(math.radians(float(text[:-1])))
        return math.nan
    except ValueError:
        return math.nan


def _barrier_bits(has: Callable[[str, tuple[str, ...]], np.ndarray], n: int) -> np.ndarray:
    """Barrier bits per edge from ``has(column, values)``: whether the edge's tag ``column``
    is one of ``values`` (the one rule of both edge sources, frames and way arrays)."""
    flags = np.zeros(n, np.uint8)
    ramp_ok = has("ramp_wheelchair", ("yes", "designated"))
    flags |= np.where(has("highway", ("steps",)) & ~ramp_ok, STEPS, 0).astype(np.uint8)
    flags |= np.where(has("wheelchair", ("no",)), WHEELCHAIR_NO, 0).astype(np.uint8)
    flags |= np.where(has("wheelchair", ("limited",)), WHEELCHAIR_LIMITED, 0).astype(np.uint8)
    flags |= np.where(has("kerb", ("raised",)), KERB_RAISED, 0).astype(np.uint8)
    flags |= np.where(has("tunnel", ("yes",)), TUNNEL, 0).astype(np.uint8)
    return flags


def edge_tags(edges: Any) -> tuple[np.ndarray, np.ndarray]:
    """Barrier bits and mapped incline (in the ``u -> v`` direction) of reader edges.

    Reads the optional columns ``highway``, ``wheelchair``, ``kerb``, ``ramp_wheelchair``,
    ``tunnel``, ``incline`` and ``reversed`` (see io/osm); edges without them get no barrier and NaN.
    """
    n = len(edges)

    def col(name: str) -> np.ndarray:
        if name in edges:
            return edges[name].to_numpy(dtype=object)
        return np.full(n, None, dtype=object)

    def has(name: str, values: tuple[str, ...]) -> np.ndarray:
        c = col(name)
        out = np.zeros(n, bool)
        for val in values:
            out |= c == val
        return out

    flags = _barrier_bits(has, n)
    inc = np.array([parse_incline(v) for v in col("incline")], dtype=np.float64)
    if "reversed" in edges:
        rev = edges["reversed"].to_numpy(dtype=bool)
        inc = np.where(rev, -inc, inc)
    return flags, inc


def way_tags(ways: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`edge_tags` of :class:`~careblocks.io.osm_stream.WayArrays` (every stretch in
    its way's drawing direction), each rule evaluated once per distinct tag value."""
    flags = _barrier_bits(lambda name, values: ways.where(name, lambda x: x in values), ways.n_stretches)
    return flags, ways.lookup("incline", parse_incline, np.float64)


def _serving_component(labels: np.ndarray, x: np.ndarray, y: np.ndarray) -> int:
    """The component spread over the most ground: the most distinct cells of
    ``COMPONENT_CELL_M`` holding one of its nodes (ties: the most nodes).

    Counting nodes alone lets one long, finely drawn way (a disconnected 100,000-node line)
    beat the street grid where people live; ground covered follows the area a component can
    serve."""
    counts = np.bincount(labels)
    if counts.size == 1:
        return 0
    cx = np.floor((x - x.min()) / COMPONENT_CELL_M).astype(np.int64)
    cell = np.floor((y - y.min()) / COMPONENT_CELL_M).astype(np.int64)
    cell *= 10_000_000
    cell += cx
    del cx
    # distinct (component, cell) pairs: sort, count the first of each run
    order = np.lexsort((cell, labels))
    lab, cell = labels[order], cell[order]
    del order
    first = np.ones(lab.size, bool)
    first[1:] = (lab[1:] != lab[:-1]) | (cell[1:] != cell[:-1])
    cells = np.bincount(lab[first], minlength=counts.size)
    return int(np.lexsort((counts, cells))[-1])


def snap_to_streets(network: WalkNetwork, geoms: Any) -> tuple[WalkNetwork, np.ndarray, np.ndarray]:
    """Snap geometries (points, or polygons by their representative point, in the network's
    CRS) to the nearest point of the nearest street, splitting it there.

    The one snapping of origins, facilities and API points to the walking network, used by
    the pipeline's services and origins stages and by :mod:`careblocks.api` alike (see
    :meth:`WalkNetwork.split_at`).

    Returns
    -------
    network, node, dist_m
        The network with one node more per point snapped inside a street (the old node
        indices stay valid), the node of each geometry and its snap distance in metres.
    """
    from careblocks.io.layers import representative_xy

    x, y = representative_xy(geoms)
    return network.split_at(np.asarray(x), np.asarray(y))


def build_walk_network(
    nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame, *, crs: str
) -> tuple[WalkNetwork, dict[str, Any]]:
    """Build the undirected walking network from reader output.

    Projects to ``crs``, measures each edge along its geometry in metres (straight line
    between its nodes when the geometry is missing), drops self-loops, keeps the shortest of
    parallel edges and keeps only the connected component spread over the most ground (not
    the one with most nodes: a finely drawn detached way must not win), warning with a
    :class:`~careblocks.errors.DataQualityWarning` how much was dropped.

    Parameters
    ----------
    nodes
        ``node_id`` (int64) and Point geometry, in any CRS (EPSG:4326 from the readers).
    edges
        ``u``, ``v`` (node ids) and LineString geometry.
    crs
        A projected CRS in metres, e.g. from :func:`local_crs`.

    Returns
    -------
    network, stats
        ``stats`` holds ``nodes``, ``edges`` (undirected), ``input_nodes``, ``dropped_nodes``,
        ``components`` (in the input) and ``total_length_m``.
    """
    _projected_crs(crs)
    if len(nodes) == 0 or len(edges) == 0:
        raise _no_streets()
    if nodes.crs is None or edges.crs is None:
        raise CRSError(
            "walk network: nodes or edges have no CRS; readers must return EPSG:4326 layers"
        )
    lon = nodes.geometry.x.to_numpy(dtype=np.float64)
    lat = nodes.geometry.y.to_numpy(dtype=np.float64)
    bad_xy = _bad_coordinates(lon, lat, nodes["node_id"].to_numpy(), geographic=nodes.crs.is_geographic)
    if bad_xy is not None:
        nodes = nodes[~bad_xy]
    pn = nodes.to_crs(crs)
    node_ids = pn["node_id"].to_numpy(dtype=np.int64)
    uniq_ids, first = np.unique(node_ids, return_index=True)
    flags, slope = edge_tags(edges)
    geoms = edges.geometry
    has_geom = (~geoms.isna() & ~geoms.is_empty).to_numpy()
    along = np.full(len(edges), np.nan)
    if has_geom.any():
        along[has_geom] = edges.loc[has_geom].geometry.to_crs(crs).length.to_numpy()
    return _assemble({
        "node_id": uniq_ids, "x": pn.geometry.x.to_numpy(dtype=np.float64)[first],
        "y": pn.geometry.y.to_numpy(dtype=np.float64)[first],
        "u": edges["u"].to_numpy(dtype=np.int64), "v": edges["v"].to_numpy(dtype=np.int64),
        "flags": flags, "slope": slope, "along": along, "has_geom": has_geom,
    }, crs=crs)


def build_walk_network_from_ways(ways: Any, *, crs: str) -> tuple[WalkNetwork, dict[str, Any]]:
    """:func:`build_walk_network` straight from the streaming PBF reader's arrays
    (:class:`~careblocks.io.osm_stream.WayArrays`), with no GeoDataFrame in between.

    Gives the very network (the same arrays, bit for bit, and the same stats and warnings)
    :func:`build_walk_network` builds from the ``(nodes, edges)`` frames of the same
    arrays: each stretch is the straight segment between its nodes, measured as a
    two-point LineString is measured.
    """
    return _assemble(way_parts(ways, crs=crs), crs=crs)


def way_parts(ways: Any, *, crs: str) -> dict[str, np.ndarray]:
    """What :func:`_assemble` needs of way arrays: node ids and projected coordinates, the
    stretches' node ids, barrier bits and incline. The caller may drop ``ways`` afterwards
    (the pipeline does, so that its tag tables and coordinates are freed before the build)."""
    import pyproj

    _projected_crs(crs)
    if ways.n_stretches == 0 or ways.node_id.size == 0:
        raise _no_streets()
    lon, lat, node_ids = ways.lon, ways.lat, ways.node_id
    bad_xy = _bad_coordinates(lon, lat, node_ids, geographic=True)
    if bad_xy is not None:
        lon, lat, node_ids = lon[~bad_xy], lat[~bad_xy], node_ids[~bad_xy]
    # the transformation GeoDataFrame.to_crs makes (pyproj, x/y order), on the bare arrays
    tr = pyproj.Transformer.from_crs(pyproj.CRS.from_epsg(4326), pyproj.CRS.from_user_input(crs),
                                     always_xy=True)
    px, py = (np.asarray(c, np.float64) for c in tr.transform(lon, lat))
    if node_ids.size > 1 and not (np.diff(node_ids) > 0).all():  # the reader's are sorted, unique
        node_ids, first = np.unique(node_ids, return_index=True)
        px, py = px[first], py[first]
    flags, slope = way_tags(ways)
    return {"node_id": np.asarray(node_ids, np.int64), "x": px, "y": py, "u": ways.u, "v": ways.v,
            "flags": flags, "slope": slope}


def _release_freed_memory() -> None:
    from careblocks.io.osm_stream import release_freed_memory

    release_freed_memory()


def _projected_crs(crs: str) -> Any:
    import pyproj

    try:
        pcrs = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(
            f"study.crs: {crs!r} is not a CRS ({exc}); use an EPSG code such as 'EPSG:32618' or 'auto'"
        ) from None
    if not pcrs.is_projected:
        raise CRSError(
            f"study.crs: {crs!r} is not a projected CRS in metres; use a UTM zone or 'auto'"
        )
    return pcrs


def _no_streets() -> EmptyResultError:
    return EmptyResultError(
        "walk network: no walkable streets in the study area; check the area and the network source"
    )


def _bad_coordinates(lon: np.ndarray, lat: np.ndarray, node_id: np.ndarray, *,
                     geographic: bool) -> np.ndarray | None:
    """Nodes with unusable coordinates (warned about), or None when all are fine."""
    bad_xy = ~(np.isfinite(lon) & np.isfinite(lat))
    if geographic:
        bad_xy |= (np.abs(lat) > 90) | (np.abs(lon) > 180)
    if not bad_xy.any():
        return None
    i = int(np.flatnonzero(bad_xy)[0])
    warnings.warn(
        f"walk network: {int(bad_xy.sum())} nodes have invalid coordinates (e.g. node "
        f"{int(node_id[i])} at lon {lon[i]:g}, lat {lat[i]:g}); they and their "
        "edges are dropped; fix the extract",
        DataQualityWarning,
        stacklevel=3,
    )
    return bad_xy


def _assemble(parts: dict[str, Any], *, crs: str) -> tuple[WalkNetwork, dict[str, Any]]:
    """The network from projected nodes and edges by node id, taking ``parts`` apart as it
    goes (each array is dropped as soon as it is used: ``parts`` is empty afterwards).

    ``parts``: ``node_id`` (sorted, unique), ``x``, ``y`` (projected), ``u``, ``v`` (node ids
    per edge), ``flags``, ``slope`` (barrier bits, incline u -> v), and ``along`` (length along
    the geometry) where ``has_geom``; without ``along`` every edge is the straight segment
    between its nodes, measured as GEOS measures a two-point line.
    """
    import scipy.sparse
    from scipy.sparse.csgraph import connected_components

    uniq_ids, px, py = parts.pop("node_id"), parts.pop("x"), parts.pop("y")
    along, has_geom = parts.pop("along", None), parts.pop("has_geom", None)
    # lean on memory (a metropolis has millions of edges): node positions as int32, no
    # DataFrame, temporaries freed as soon as they are used
    n_in = int(uniq_ids.size)
    small = np.int32 if n_in < 2**31 else np.int64
    u = np.asarray(parts.pop("u"), dtype=np.int64)
    input_edges = int(u.size)
    iu = np.searchsorted(uniq_ids, u)
    np.minimum(iu, n_in - 1, out=iu)
    known = uniq_ids[iu] == u
    del u
    iu = iu.astype(small)
    v = np.asarray(parts.pop("v"), dtype=np.int64)
    iv = np.searchsorted(uniq_ids, v)
    np.minimum(iv, n_in - 1, out=iv)
    known &= uniq_ids[iv] == v
    del v
    iv = iv.astype(small)
    dx = px[iv] - px[iu]
    dy = py[iv] - py[iu]
    straight = np.hypot(dx, dy)
    if along is None:
        # as GEOS measures a segment (a two-point line): sqrt(dx * dx + dy * dy)
        dx *= dx
        dy *= dy
        length = dx
        length += dy
        np.sqrt(length, out=length)
    else:
        length = straight.copy()
        length[has_geom] = along[has_geom]
    del dx, dy
    np.maximum(length, straight, out=length)  # a geometry never shortcuts its endpoints
    del straight
    np.maximum(length, MIN_EDGE_M, out=length)
    ok = known
    ok &= iu != iv
    ok &= np.isfinite(length)
    forward = (iu <= iv)[ok]
    a = np.minimum(iu, iv)[ok]
    b = np.maximum(iu, iv)[ok]
    del iu, iv
    w = length[ok]
    del length
    fl = parts.pop("flags")[ok]
    sl = parts.pop("slope")[ok]
    back = ~forward
    sl[back] = np.negative(sl[back])  # incline in the direction a -> b
    del back
    del ok, forward
    # parallel edges: keep the shortest (the first in input order among equals)
    order = np.lexsort((w, b, a))
    a, b, w, fl, sl = a[order], b[order], w[order], fl[order], sl[order]
    del order
    first = np.ones(a.size, bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    if not first.all():
        a, b, w, fl, sl = a[first], b[first], w[first], fl[first], sl[first]
    del first
    if a.size == 0:
        raise EmptyResultError(
            "walk network: no usable edges (all self-loops or unknown nodes); check the network source"
        )

    _release_freed_memory()
    # rows sorted by (a, b): the pairs are a CSR matrix as they stand
    indptr = np.zeros(n_in + 1, dtype=np.int64)
    np.cumsum(np.bincount(a, minlength=n_in), out=indptr[1:])
    adj = scipy.sparse.csr_matrix((np.ones(a.size, np.int8), b.astype(np.int32, copy=False), indptr),
                                  shape=(n_in, n_in))
    n_comp, labels = connected_components(adj, directed=False)
    del adj, indptr
    biggest = _serving_component(labels, px, py)
    keep_node = labels == biggest
    n_keep = int(keep_node.sum())
    dropped = n_in - n_keep
    if dropped:
        warnings.warn(
            f"walk network: kept {n_keep} of {n_in} nodes; dropped {dropped} in "
            f"{n_comp - 1} disconnected pieces (the component spread over the most ground kept)",
            DataQualityWarning,
            stacklevel=2,
        )
    # Number the kept nodes cell by cell (row-major squares of SPATIAL_CELL_M, by x inside a
    # cell) so that nodes near in space are near in memory: every search then touches fewer
    # cache lines (measured ~20 % faster access at 400k nodes, benchmarks/walk_access.py).
    kept = np.flatnonzero(keep_node)
    kx, ky = px[kept], py[kept]
    cell = np.floor((ky - ky.min()) / SPATIAL_CELL_M).astype(np.int64) * 1_000_000 + np.floor(
        (kx - kx.min()) / SPATIAL_CELL_M
    ).astype(np.int64)
    order = kept[np.lexsort((kx, cell))]  # old index of each new node
    del kept, kx, ky, cell
    x_new, y_new, id_new = px[order], py[order], uniq_ids[order]
    new_index = np.full(n_in, -1, dtype=small)
    new_index[order] = np.arange(n_keep, dtype=small)
    ek = keep_node[a]
    if not ek.all():
        a, b, w, fl, sl = a[ek], b[ek], w[ek], fl[ek], sl[ek]
    del ek
    a2, b2 = new_index[a], new_index[b]
    del a, b, new_index
    n_edges, total_m = int(a2.size), float(w.sum())
    pairs = {"a": a2, "b": b2, "w": w, "flags": fl.astype(np.uint8, copy=False),
             "slope": sl.astype(np.float64, copy=False)}
    del a2, b2, w, fl, sl
    _release_freed_memory()
    indptr, indices, length_m, barrier, incline = _csr_from_parts(n_keep, pairs)
    del px, py, uniq_ids
    net = WalkNetwork(
        indptr=indptr,
        indices=indices,
        length_m=length_m,
        x=x_new,
        y=y_new,
        node_id=id_new,
        crs=str(crs),
        barrier=barrier,
        incline=incline,
    )
    stats = {
        "nodes": n_keep,
        "edges": n_edges,
        "input_nodes": n_in,
        "input_edges": input_edges,
        "dropped_nodes": int(dropped),
        "components": int(n_comp),
        "total_length_m": total_m,
    }
    return net, stats


def with_elevation(
    net: WalkNetwork, path: Path | str, *, what: str = "network.elevation"
) -> tuple[WalkNetwork, dict[str, Any]]:
    """The network with node heights ``z`` read from a DEM raster (bilinear, reprojected).

    Nodes outside the raster or on nodata get NaN (their edges count as flat) and a
    :class:`~careblocks.errors.DataQualityWarning` says how many.
    """
    import dataclasses

    from careblocks.io.raster import sample_raster

    z = sample_raster(path, net.x, net.y, net.crs, what=what)
    have = np.isfinite(z)
    if not have.any():
        raise InputDataError(
            f"{what} {path}: the raster does not cover the walk network; give a DEM of the study area"
        )
    missing = int((~have).sum())
    if missing:
        warnings.warn(
            f"{what}: {missing} of {z.size} network nodes lie outside the DEM or on nodata; "
            "their edges count as flat",
            DataQualityWarning,
            stacklevel=2,
        )
    stats = {
        "elevation_nodes": int(have.sum()),
        "elevation_min_m": float(np.nanmin(z)),
        "elevation_max_m": float(np.nanmax(z)),
    }
    return dataclasses.replace(net, z=z), stats


# --------------------------------------------------------------------------------------
# Loading with a content-addressed cache
# --------------------------------------------------------------------------------------

_ARRAYS = ("indptr", "indices", "length_m", "x", "y", "node_id")
_OPTIONAL_ARRAYS = ("barrier", "incline", "z")


def cache_dir(config: Config | None = None) -> Path:
    """The cache folder: ``$CAREBLOCKS_CACHE_DIR``, else ``network.cache_dir``, else the
    platform user cache folder (``~/.cache/careblocks`` on Linux)."""
    env = os.environ.get("CAREBLOCKS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if config is not None and config.network.cache_dir is not None:
        return Path(config.network.cache_dir).expanduser()
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("careblocks"))
    except ImportError:  # pragma: no cover - platformdirs comes with the scientific stack
        return Path.home() / ".cache" / "careblocks"


def file_digest(path: Path | str) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _area_geometry(area_4326: Any, config: Config) -> Any:
    """The study area as a shapely geometry in EPSG:4326, or None for the whole input."""
    import shapely

    if area_4326 is None:
        if config.study.bbox is None:
            return None
        return shapely.box(*config.study.bbox)
    if isinstance(area_4326, (tuple, list, np.ndarray)) and len(area_4326) == 4:
        return shapely.box(*map(float, area_4326))
    if hasattr(area_4326, "geometry") and hasattr(area_4326, "crs"):  # GeoSeries/GeoDataFrame
        gs = area_4326.geometry
        gs = gs.set_crs("EPSG:4326") if gs.crs is None else gs.to_crs("EPSG:4326")
        return gs.union_all()
    return area_4326


def _resolve_source(config: Config, area: Any, progress: Callable[[str], None] | None) -> Path:
    net = config.network
    if net.source == "download":
        from careblocks.io.osm import download_osm_xml

        if net.place:
            return download_osm_xml(place=net.place, cache_dir=cache_dir(config) / "osm")
        if area is None:
            raise InputDataError(
                'network.place: network.source = "download" needs network.place or study.bbox'
            )
        if progress:
            progress("downloading OpenStreetMap data for the study area")
        return download_osm_xml(bbox=tuple(area.bounds), cache_dir=cache_dir(config) / "osm")
    if net.path is None:
        raise InputDataError(
            f"network.path: not set; give the path of the {'OSM extract' if net.source == 'osm' else 'road layer'} "
            'for network.source = "' + net.source + '"'
        )
    if net.source == "osm":
        from careblocks.io.osm import resolve_osm_path

        return resolve_osm_path(net.path)
    p = Path(net.path).expanduser()
    if not p.exists():
        raise InputDataError(f"{p}: road layer not found; check network.path in the config")
    return p


def _cache_key(config: Config, digest: str, area: Any) -> tuple[str, dict[str, Any]]:
    net = config.network
    if net.elevation is not None and not Path(net.elevation).is_file():
        raise InputDataError(
            f"network.elevation {net.elevation}: raster file not found; check the path of the DEM"
        )
    params = {
        "version": NETWORK_CODE_VERSION,
        "source": net.source,
        "digest": digest,
        "layer": net.layer if net.source == "road_layer" else None,
        "area_wkb_sha256": (hashlib.sha256(area.wkb).hexdigest() if area is not None else None),
        "exclude_highways": sorted(net.exclude_highways),
        "crs": config.study.crs,
        "elevation_sha256": file_digest(net.elevation) if net.elevation is not None else None,
    }
    text = json.dumps(params, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), params


def clip_edges(nodes: gpd.GeoDataFrame, edges: gpd.GeoDataFrame, area: Any, where: str):
    import shapely

    if area is None:
        return nodes, edges
    shapely.prepare(area)
    keep = shapely.intersects(edges.geometry.to_numpy(), area)
    edges = edges[keep]
    if len(edges) == 0:
        raise _nothing_inside(where)
    # only the nodes of the streets kept: the others are not the network's pieces to count
    used = np.unique(np.concatenate([edges["u"].to_numpy(dtype=np.int64), edges["v"].to_numpy(dtype=np.int64)]))
    return nodes[np.isin(nodes["node_id"].to_numpy(dtype=np.int64), used)], edges


def _nothing_inside(where: str) -> EmptyResultError:
    return EmptyResultError(
        f"{where}: no walkable streets inside the study area; check that study.bbox / "
        "study.boundary overlaps the network (both in longitude/latitude)"
    )


#: stretches drawn as LineStrings at a time when clipping way arrays (bounds their memory)
CLIP_CHUNK = 100_000


def clip_ways(ways: Any, area: Any, where: str) -> Any:
    """:func:`clip_edges` of :class:`~careblocks.io.osm_stream.WayArrays`: the stretches
    whose segment intersects the area, drawn a chunk at a time, with the nodes they use."""
    import shapely

    if area is None:
        return ways
    shapely.prepare(area)
    keep = np.zeros(ways.n_stretches, bool)
    for lo in range(0, ways.n_stretches, CLIP_CHUNK):
        hi = min(lo + CLIP_CHUNK, ways.n_stretches)
        keep[lo:hi] = shapely.intersects(ways.segments(lo, hi), area)
    if not keep.any():
        raise _nothing_inside(where)
    return ways.subset(keep)


def _read_source(
    config: Config, path: Path, area: Any
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    net = config.network
    if net.source in ("osm", "download"):
        from careblocks.io.osm import read_osm_network

        bbox = tuple(area.bounds) if area is not None else None
        nodes, edges = read_osm_network(path, bbox=bbox, exclude_highways=net.exclude_highways)
    else:
        from careblocks.io.roads import read_road_network

        nodes, edges = read_road_network(path, net.layer)
        if net.exclude_highways:
            edges = edges[~edges["highway"].isin(list(net.exclude_highways))]
            if len(edges) == 0:
                raise EmptyResultError(
                    f"{path}: network.exclude_highways drops every road of the layer; shorten the list"
                )
    return clip_edges(nodes, edges, area, str(path))


def _streams(config: Config, path: Path) -> bool:
    """Whether the network is built from the streaming reader's arrays (an OSM PBF)."""
    from careblocks.io.osm import PBF_SUFFIXES

    return config.network.source == "osm" and path.name.lower().endswith(PBF_SUFFIXES)


def _read_ways(config: Config, path: Path, area: Any) -> Any:
    """The walkable stretches of a PBF clipped to the area, as arrays (see :func:`_read_source`)."""
    from careblocks.io.osm import read_osm_ways

    bbox = tuple(area.bounds) if area is not None else None
    ways = read_osm_ways(path, bbox=bbox, exclude_highways=config.network.exclude_highways)
    return clip_ways(ways, area, str(path))


def ways_bounds(ways: Any) -> tuple[float, float, float, float]:
    """``(min_lon, min_lat, max_lon, max_lat)`` of the nodes of way arrays."""
    return (float(ways.lon.min()), float(ways.lat.min()), float(ways.lon.max()), float(ways.lat.max()))


def _save_cache(folder: Path, key: str, net: WalkNetwork, meta: dict[str, Any]) -> None:
    from careblocks.network._store import save_arrays

    arrays = {name: getattr(net, name) for name in _ARRAYS + _OPTIONAL_ARRAYS}
    save_arrays(folder, f"network-{key[:32]}", arrays, meta)


def _load_cache(folder: Path, key: str) -> tuple[WalkNetwork, dict[str, Any]] | None:
    """The cached network, its arrays memory-mapped (copy-on-write), or None."""
    from careblocks.network._store import load_arrays

    got = load_arrays(folder, f"network-{key[:32]}")
    if got is None:
        return None
    arrays, meta = got
    if meta.get("key") != key or any(name not in arrays for name in _ARRAYS):
        return None  # a broken entry is rebuilt
    kw = {name: arrays[name] for name in _ARRAYS + _OPTIONAL_ARRAYS if name in arrays}
    return WalkNetwork(crs=meta["crs"], **kw), meta


def load_or_build_network(
    config: Config,
    *,
    area_4326: Any = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[WalkNetwork, dict[str, Any]]:
    """The walking network of a study, from the cache when the inputs have not changed.

    Reads ``config.network`` (``source`` "osm", "road_layer" or "download"), clips to the
    study area, builds the :class:`WalkNetwork` in the working CRS (``study.crs``, or the
    UTM zone of the area when "auto") and caches it. The cache key is the sha256 of the
    input file bytes plus every parameter that changes the result (source, layer, area,
    exclude_highways, crs, code version); ``network.cache = false`` turns the cache off.

    Parameters
    ----------
    config
        The study config.
    area_4326
        The study area in EPSG:4326: a shapely geometry, GeoSeries/GeoDataFrame or a
        ``(min_lon, min_lat, max_lon, max_lat)`` bbox. Defaults to ``study.bbox``; None
        and no bbox means the whole input. Streets crossing the area are kept.
    progress
        Called with a short message at each step (optional).

    Returns
    -------
    network, stats
        ``stats``: ``nodes``, ``edges`` (undirected), ``dropped_nodes``, ``components``,
        ``total_length_m``, ``crs``, ``cache`` ("hit", "miss" or "off"), ``source``,
        ``path`` (the file read; for "download" the cached ``.osm``, usable for POIs),
        ``source_digest`` (sha256 of that file) and ``seconds``.
    """
    t0 = time.perf_counter()
    area = _area_geometry(area_4326, config)
    if area is not None and area.is_empty:
        raise EmptyResultError("study area: the area is empty; check study.bbox / study.boundary")
    path = _resolve_source(config, area, progress)
    if progress:
        progress(f"hashing {path.name}")
    digest = file_digest(path)
    key, params = _cache_key(config, digest, area)
    folder = cache_dir(config) / "networks"
    use_cache = bool(config.network.cache)
    base_stats = {
        "source": config.network.source,
        "path": str(path),
        "source_digest": digest,
    }
    if use_cache:
        hit = _load_cache(folder, key)
        if hit is not None:
            net, meta = hit
            for msg in meta.get("warnings", []):  # same warnings (and counts) as the build
                warnings.warn(msg, DataQualityWarning, stacklevel=2)
            stats = dict(meta["stats"])
            stats.update(base_stats, cache="hit", seconds=time.perf_counter() - t0)
            if progress:
                progress(f"walk network from cache: {net.n_nodes} nodes")
            return net, stats

    if progress:
        progress(f"reading the walk network from {path.name}")
    crs = config.study.crs
    if _streams(config, path):
        # a PBF: built straight from the streaming reader's arrays, no GeoDataFrame; the
        # arrays are handed over and freed as the build goes
        ways = _read_ways(config, path, area)
        if crs == "auto":
            crs = local_crs(area if area is not None else ways_bounds(ways))
        if progress:
            progress(f"building the walk network ({ways.n_stretches} edges) in {crs}")
        held = [ways]
        del ways
        _release_freed_memory()  # what reading and choosing the CRS freed

        def build() -> tuple[WalkNetwork, dict[str, Any]]:
            parts = way_parts(held.pop(), crs=crs)
            return _assemble(parts, crs=crs)
    else:
        nodes, edges = _read_source(config, path, area)
        if crs == "auto":
            crs = local_crs(area if area is not None else nodes)
        if progress:
            progress(f"building the walk network ({len(edges)} edges) in {crs}")

        def build() -> tuple[WalkNetwork, dict[str, Any]]:
            return build_walk_network(nodes, edges, crs=crs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        net, bstats = build()
        del build
        if config.network.elevation is not None:
            if progress:
                progress(f"reading node heights from {config.network.elevation.name}")
            net, zstats = with_elevation(net, config.network.elevation)
            bstats.update(zstats)
    messages = []
    for w in caught:  # re-emit, and keep the data-quality ones for cache hits
        if issubclass(w.category, DataQualityWarning):
            messages.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    stats = {
        "nodes": bstats["nodes"],
        "edges": bstats["edges"],
        "dropped_nodes": bstats["dropped_nodes"],
        "components": bstats["components"],
        "total_length_m": bstats["total_length_m"],
        "crs": crs,
        **{k: bstats[k] for k in ("elevation_nodes", "elevation_min_m", "elevation_max_m") if k in bstats},
    }
    if use_cache:
        meta = {"key": key, "params": params, "crs": crs, "stats": stats, "warnings": messages}
        try:
            _save_cache(folder, key, net, meta)
        except OSError as exc:
            warnings.warn(
                f"network cache: could not write to {folder} ({exc.__class__.__name__}); "
                "set CAREBLOCKS_CACHE_DIR or network.cache_dir to a writable folder",
                DataQualityWarning,
                stacklevel=2,
            )
    stats = dict(stats)
    stats.update(base_stats, cache="miss" if use_cache else "off", seconds=time.perf_counter() - t0)
    return net, stats
