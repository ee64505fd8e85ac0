"""GTFS tables -> flat timetable arrays for RAPTOR.

Layout (all numpy, no Python objects in the hot arrays):

* a *route* here is a RAPTOR route: trips that visit the same stop sequence, sorted by
  departure and never overtaking one another (a GTFS pattern whose trips overtake is split
  into several routes, greedily, so that binary search over departures stays exact);
* ``route_stops[route_stops_ptr[r]:route_stops_ptr[r+1]]`` are the stops of route ``r``;
* the times of trip ``j`` (0-based within the route) at position ``i`` are
  ``arrival[route_st_ptr[r] + j * n_stops_r + i]`` (``departure`` alike), int32 seconds after
  midnight of the service date;
* ``stop_routes[stop_routes_ptr[s]:...]`` with ``stop_routes_pos`` lists every (route,
  position) serving stop ``s`` (a loop route visits a stop twice);
* ``transfer_to[transfer_ptr[s]:...]`` / ``transfer_m`` are the stops reachable on foot from
  stop ``s`` on the walking network (snap legs included) within the transfer limit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from careblocks.errors import DataQualityWarning
from careblocks.io.gtfs import GTFSTables
from careblocks.network.cost import WalkCost
from careblocks.network.search import REACH_ZERO_S, reach_sparse

#: Stops farther than this from the walking network are counted and warned about.
FAR_SNAP_M = 250.0


@dataclass(frozen=True, eq=False)
class Timetable:
    """Flat timetable arrays (see the module docstring for the layout)."""

    stop_id: np.ndarray          # object (str), n_stops
    stop_node: np.ndarray        # int64, walking-network node of each stop
    stop_snap_m: np.ndarray      # float64, straight-line stop -> node
    route_id: np.ndarray         # object (str), GTFS route id of each RAPTOR route
    route_type: np.ndarray       # int32
    route_stops_ptr: np.ndarray  # int64, n_routes + 1
    route_stops: np.ndarray      # int32
    route_trips_ptr: np.ndarray  # int64, n_routes + 1 (trip counts as offsets)
    route_st_ptr: np.ndarray     # int64, n_routes + 1 offsets into arrival/departure
    arrival: np.ndarray          # int32
    departure: np.ndarray        # int32
    stop_routes_ptr: np.ndarray  # int64, n_stops + 1
    stop_routes: np.ndarray      # int32
    stop_routes_pos: np.ndarray  # int32
    transfer_ptr: np.ndarray     # int64, n_stops + 1
    transfer_to: np.ndarray      # int32
    transfer_m: np.ndarray       # float32, walking metres incl. both snap legs
    #: metres reachable within max_transfer_walk_min at the build speed
    max_transfer_m: float

    @property
    def n_stops(self) -> int:
        return int(self.stop_node.shape[0])

    @property
    def n_routes(self) -> int:
        return int(self.route_stops_ptr.shape[0] - 1)

    @property
    def n_trips(self) -> int:
        return int(self.route_trips_ptr[-1])

    def nbytes(self) -> int:
        """Bytes of the numeric routing arrays (ids excluded)."""
        return int(sum(getattr(self, f.name).nbytes for f in fields(self)
                       if isinstance(getattr(self, f.name), np.ndarray)
                       and getattr(self, f.name).dtype != object))

    def transfer_seconds(self, cost: WalkCost, max_min: float | None = None) -> np.ndarray:
        """int32 walking seconds of each transfer at ``cost`` (rounded up); with ``max_min``,
        ``-1`` (not allowed) for transfers longer than that many minutes at this cost."""
        s = np.ceil(cost.leg_seconds(self.transfer_m)).astype(np.int32)
        if max_min is not None:
            s[s > cost.limit_s(max_min)] = -1
        return s


def _patterns(st: pd.DataFrame, stop_index: pd.Index, trips: pd.DataFrame):
    """Group trips by identical stop sequence; split overtaking trips into separate routes.

    Returns a list of (route_id, route_type, stops int32[L], arr int32[T, L], dep int32[T, L]).
    """
    sidx = stop_index.get_indexer(st["stop_id"]).astype(np.int32)
    tid = st["trip_id"].to_numpy()
    arr = st["arrival_s"].to_numpy(np.int64)
    dep = st["departure_s"].to_numpy(np.int64)
    # times non-decreasing along a trip; dep >= arr
    dep = np.maximum(dep, arr)
    starts = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]])
    ends = np.r_[starts[1:], len(tid)]
    trip_ids = tid[starts]
    info = trips.set_index("trip_id").reindex(trip_ids)
    rid = info["route_id"].to_numpy()
    rtype = info["route_type"].to_numpy()
    groups: dict[tuple, list[int]] = {}
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        groups.setdefault((rid[k], sidx[a:b].tobytes()), []).append(k)
    out = []
    n_split = 0
    n_fixed = 0
    for (route, _), members in groups.items():
        a0 = starts[members[0]]
        L = ends[members[0]] - a0
        stops = sidx[a0:a0 + L]
        A = np.stack([arr[starts[k]:ends[k]] for k in members])
        D = np.stack([dep[starts[k]:ends[k]] for k in members])
        # repair times that go backwards along a trip (bad data): carry the max forward
        A2 = np.maximum.accumulate(np.maximum(A, np.concatenate([A[:, :1], D[:, :-1]], axis=1)), axis=1)
        D2 = np.maximum(D, A2)
        D2 = np.maximum.accumulate(D2, axis=1)
        n_fixed += int((A2 != A).any(axis=1).sum() + ((D2 != D).any(axis=1) & (A2 == A).all(axis=1)).sum())
        A, D = A2, D2
        order = np.lexsort((A[:, -1], D[:, 0]))
        A, D = A[order], D[order]
        # greedy split into non-overtaking chains
        chains: list[list[int]] = []
        lastA: list[np.ndarray] = []
        lastD: list[np.ndarray] = []
        for j in range(A.shape[0]):
            for c in range(len(chains)):
                if (A[j] >= lastA[c]).all() and (D[j] >= lastD[c]).all():
                    chains[c].append(j)
                    lastA[c], lastD[c] = A[j], D[j]
                    break
            else:
                chains.append([j])
                lastA.append(A[j])
                lastD.append(D[j])
        n_split += len(chains) - 1
        t = rtype[members[0]]
        for c in chains:
            out.append((route, int(t), stops, A[c].astype(np.int32), D[c].astype(np.int32)))
    return out, n_split, n_fixed


def _stop_nodes(stops: pd.DataFrame, network: Any) -> tuple[np.ndarray, np.ndarray]:
    import pyproj

    tf = pyproj.Transformer.from_crs("EPSG:4326", network.crs, always_xy=True)
    x, y = tf.transform(stops["lon"].to_numpy(np.float64), stops["lat"].to_numpy(np.float64))
    return network.snap(np.asarray(x), np.asarray(y))


def _transfers(stop_node: np.ndarray, snap_m: np.ndarray, network: Any, max_m: float):
    """Walking transfers between stops within ``max_m`` metres on the network (one bounded
    search per stop node, via :func:`careblocks.network.search.reach_sparse` on metre weights)."""
    n = stop_node.size
    ok = snap_m <= max_m
    src = np.flatnonzero(ok)
    if src.size == 0:
        return np.zeros(n + 1, np.int64), np.empty(0, np.int32), np.empty(0, np.float32)
    R = reach_sparse(network.indptr, network.indices, network.length_m,
                     stop_node[src], snap_m[src], max_m).tocoo()
    d = np.where(R.data <= REACH_ZERO_S, 0.0, R.data)
    # node -> stops at that node
    order = np.argsort(stop_node, kind="stable")
    sn = stop_node[order]
    lo = np.searchsorted(sn, R.col, side="left")
    hi = np.searchsorted(sn, R.col, side="right")
    cnt = hi - lo
    rep = np.repeat(np.arange(R.row.size), cnt)
    pos = np.arange(rep.size) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
    a = src[R.row[rep]]
    b = order[pos]
    dist = d[rep] + snap_m[b]
    keep = (dist <= max_m) & (a != b)
    a, b, dist = a[keep], b[keep], dist[keep]
    o = np.lexsort((b, a))
    a, b, dist = a[o], b[o], dist[o]
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(a, minlength=n), out=ptr[1:])
    return ptr, b.astype(np.int32), dist.astype(np.float32)


def build_timetable(tables: GTFSTables, network: Any, *,
                    max_transfer_m: float) -> tuple[Timetable, dict[str, Any]]:
    """Build :class:`Timetable` arrays from normalised GTFS tables and the walking network.

    Parameters
    ----------
    tables
        From :func:`careblocks.io.gtfs.read_gtfs`.
    network
        A :class:`careblocks.network.WalkNetwork` (CSR arrays, ``crs``, ``snap``).
    max_transfer_m
        Longest walk between two stops kept, in metres (network path plus both snap legs);
        the walking cost of a query turns them into seconds and drops those over its time
        limit (:meth:`Timetable.transfer_seconds`), so one timetable serves every speed
        whose limit fits in this radius (:meth:`WalkCost.metres_within`).

    Returns
    -------
    timetable, stats
        ``stats``: ``routes``, ``patterns_split_for_overtaking``, ``trips_with_repaired_times``,
        ``transfers``, ``stops_far_from_network`` (snap > 250 m), ``max_stop_snap_m``.
    """
    stops = tables.stops.reset_index(drop=True)
    stop_index = pd.Index(stops["stop_id"])
    pats, n_split, n_fixed = _patterns(tables.stop_times, stop_index, tables.trips)
    pats.sort(key=lambda p: (str(p[0]), int(p[4][0, 0])))
    n_routes = len(pats)
    L = np.array([p[2].size for p in pats], np.int64)
    T = np.array([p[3].shape[0] for p in pats], np.int64)
    route_stops_ptr = np.zeros(n_routes + 1, np.int64)
    np.cumsum(L, out=route_stops_ptr[1:])
    route_trips_ptr = np.zeros(n_routes + 1, np.int64)
    np.cumsum(T, out=route_trips_ptr[1:])
    route_st_ptr = np.zeros(n_routes + 1, np.int64)
    np.cumsum(L * T, out=route_st_ptr[1:])
    route_stops = np.concatenate([p[2] for p in pats]).astype(np.int32)
    arrival = np.concatenate([p[3].ravel() for p in pats]).astype(np.int32)
    departure = np.concatenate([p[4].ravel() for p in pats]).astype(np.int32)
    n_stops = len(stops)
    r_of = np.repeat(np.arange(n_routes, dtype=np.int32), L)
    pos = (np.arange(route_stops.size) - np.repeat(route_stops_ptr[:-1], L)).astype(np.int32)
    o = np.lexsort((pos, r_of, route_stops))
    stop_routes = r_of[o]
    stop_routes_pos = pos[o]
    stop_routes_ptr = np.zeros(n_stops + 1, np.int64)
    np.cumsum(np.bincount(route_stops, minlength=n_stops), out=stop_routes_ptr[1:])

    node, snap_m = _stop_nodes(stops, network)
    max_m = float(max_transfer_m)
    tptr, tto, tm = _transfers(node, snap_m, network, max_m)
    far = int((snap_m > FAR_SNAP_M).sum())
    if far:
        warnings.warn(
            f"GTFS: {far} of {n_stops} stops lie more than {FAR_SNAP_M:.0f} m from the walking "
            f"network (up to {snap_m.max():.0f} m); walks to them are counted straight-line",
            DataQualityWarning, stacklevel=2)
    tt = Timetable(
        stop_id=stops["stop_id"].to_numpy(object), stop_node=node.astype(np.int64),
        stop_snap_m=snap_m.astype(np.float64),
        route_id=np.array([p[0] for p in pats], dtype=object),
        route_type=np.array([p[1] for p in pats], np.int32),
        route_stops_ptr=route_stops_ptr, route_stops=route_stops, route_trips_ptr=route_trips_ptr,
        route_st_ptr=route_st_ptr, arrival=arrival, departure=departure,
        stop_routes_ptr=stop_routes_ptr, stop_routes=stop_routes.astype(np.int32),
        stop_routes_pos=stop_routes_pos.astype(np.int32),
        transfer_ptr=tptr, transfer_to=tto, transfer_m=tm, max_transfer_m=float(max_m),
    )
    stats = {
        "routes": n_routes,
        "raptor_trips": int(T.sum()),
        "patterns_split_for_overtaking": int(n_split),
        "trips_with_repaired_times": int(n_fixed),
        "transfers": int(tto.size),
        "stops_far_from_network": far,
        "max_stop_snap_m": float(snap_m.max()) if n_stops else 0.0,
        "timetable_bytes": tt.nbytes(),
    }
    return tt, stats
