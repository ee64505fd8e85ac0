"""Walk + transit catchments: which origins reach each target (candidate site) within T.

:func:`transit_coverage` is the walk + transit counterpart of the walking coverage matrix of
:mod:`careblocks.sites.scoring`: targets x origins, data = minutes at ``transit.report_percentile``
over the departure window, only entries within the limit. It follows the journey model and
the percentile conventions of :func:`careblocks.transit.adapter.transit_access` (which gives
the same minutes for a service made of one facility):

- one Range-RAPTOR per origin over every departure minute (the minute step of
  :mod:`careblocks.transit.raptor`, without target pruning), trips capped at the
  limit rather than ``max_trip_min`` (a later arrival cannot be within the limit, and a
  nearest-rank percentile within the limit does not depend on longer times);
- per departure minute, travel seconds to a target = min over stops of (earliest arrival
  *on a vehicle* + egress walk to the target) - departure, with the egress legs (stops ->
  targets within ``transit.max_walk_min``, ceil'd seconds as in ``transit_access``) built
  once from one bounded search per target (:func:`careblocks.network.search.reach_sparse`; the
  walking graph is undirected);
- the nearest-rank percentile over the minutes (``ceil(p/100 n)``-th shortest, a minute that
  does not reach the target within the limit counted as infinitely long);
- walking all the way counts too (float seconds, exactly the walking catchment), so every
  entry of the walking coverage is present and never slower: ``min`` of a constant and the
  per-minute times commutes with the nearest-rank percentile.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from careblocks._jit import njit, prange
from careblocks.config import TransitConfig
from careblocks.network.cost import WalkCost
from careblocks.network.search import REACH_ZERO_S, gather_targets, reach_sparse
from careblocks.transit.adapter import _access_legs, departure_times
from careblocks.transit.raptor import (
    INF32,
    _minute,
    _minute_done,
    _origin_done,
    _tt_arrays,
    _workspace,
    n_blocks,
)
from careblocks.transit.timetable import Timetable

__all__ = ["transit_coverage"]


@njit(parallel=True, cache=True, error_model="numpy")
def _coverage_chunk(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                    departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                    transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_ptr, acc_stops, acc_s,
                    o0, deps, n_rounds, trip_s, eg_ptr, eg_tgt, eg_s, walk_ptr, walk_tgt,
                    walk_sec, rank, out, n_blocks):
    """Seconds (``inf`` = not within ``trip_s``) from origins ``o0 ..`` to every target.

    ``out`` is ``(n_chunk, n_targets)``; egress entries of each stop sorted by seconds.
    Origins run in ``n_blocks`` parallel blocks, each with one RAPTOR workspace and one set
    of per-target buffers reset only where the last origin touched them.

    Per departure minute (latest first) the earliest arrival at each target,
    ``arr[g] = min_s(ride[s] + egress[s, g])``, only decreases (a later minute's rides stay
    possible by waiting), so it is updated from the stops whose ride label improved in this
    minute alone; an egress leg arriving after ``t + trip_s`` cannot count for this or any
    earlier minute and is skipped.
    """
    n_stops = stop_routes_ptr.shape[0] - 1
    n_routes = route_stops_ptr.shape[0] - 1
    n_dep = deps.shape[0]
    n_t = out.shape[1]
    n_c = out.shape[0]
    no_egress = np.full((n_stops, 1), INF32, np.int32)
    nb = min(n_c, n_blocks)
    for b in prange(nb):
        ws = _workspace(n_stops, n_routes, n_rounds, 1)
        ride, ilist, count = ws[1], ws[13], ws[14]
        arr = np.full(n_t, INF32, np.int32)  # earliest arrival at each target (so far)
        slot = np.full(n_t, -1, np.int32)
        touched = np.empty(n_t, np.int32)
        buf = np.empty((n_t, n_dep), np.int32)  # per touched target: seconds per minute
        for i in range(b * n_c // nb, (b + 1) * n_c // nb):
            o = o0 + i
            row = out[i]
            for g in range(n_t):
                row[g] = np.inf
            for e in range(walk_ptr[o], walk_ptr[o + 1]):
                row[walk_tgt[e]] = walk_sec[e]
            a0 = acc_ptr[o]
            a1 = acc_ptr[o + 1]
            if a1 == a0:
                continue
            nt = 0
            for d in range(n_dep - 1, -1, -1):
                t = deps[d]
                _minute(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                        departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                        transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_stops[a0:a1],
                        acc_s[a0:a1], t, n_rounds, trip_s, no_egress, ws)
                lim = t + trip_s
                for m in range(count[1]):
                    s = ilist[m]
                    a = ride[n_rounds, s]
                    for e in range(eg_ptr[s], eg_ptr[s + 1]):
                        v = a + eg_s[e]
                        if v > lim:
                            break  # egress sorted by seconds
                        g = eg_tgt[e]
                        if v < arr[g]:
                            arr[g] = v
                            if slot[g] < 0:
                                slot[g] = nt
                                touched[nt] = g
                                for dd in range(n_dep):
                                    buf[nt, dd] = INF32
                                nt += 1
                _minute_done(ws)
                for j in range(nt):
                    v = arr[touched[j]] - t
                    buf[j, d] = v if v <= trip_s else INF32
            _origin_done(ws)
            for j in range(nt):
                v = np.sort(buf[j])[rank]
                g = touched[j]
                if v < INF32 and v < row[g]:
                    row[g] = v
                slot[g] = -1
                arr[g] = INF32


def _by_row(rows, cols, vals, n_rows, *, by_value: bool = False):
    """CSR arrays (ptr, cols, vals) grouped by ``rows``; within a row by column, or by value."""
    o = np.lexsort((cols, vals, rows)) if by_value else np.lexsort((cols, rows))
    ptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
    return ptr, cols[o], vals[o]


def transit_coverage(network: Any, timetable: Timetable, origin_nodes, origin_snap_m,
                     target_nodes, target_snap_m, cfg: TransitConfig, *, cost: WalkCost,
                     limit_min: float, chunk_size: int = 256) -> sp.csr_matrix:
    """Origins within ``limit_min`` of each target by walk + transit (or on foot).

    Parameters
    ----------
    network
        The walking network (:class:`~careblocks.network.WalkNetwork`), undirected.
    timetable
        From :func:`careblocks.transit.load_timetable` (built with the same CRS).
    origin_nodes, origin_snap_m
        Network node and snap distance of each origin.
    target_nodes, target_snap_m
        Network node and snap distance of each target (e.g. candidate Care Block sites).
    cfg
        ``config.transit``: departure window and step, ``report_percentile``,
        ``max_walk_min`` (access and egress legs), ``max_transfer_walk_min``,
        ``max_transfers``, ``max_trip_min``.
    cost
        Walking cost of every walk leg (and of the walk-only option).
    limit_min
        Catchment threshold T in minutes (inclusive).
    chunk_size
        Origins per parallel call (bounds the dense ``chunk x targets`` buffer); results do
        not depend on it.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_targets, n_origins)`` float64 minutes at ``cfg.report_percentile``, only
        entries <= ``limit_min``; sorted column indices. Walking all the way is an option:
        every origin within ``limit_min`` on foot (as in
        :func:`careblocks.sites.scoring.compute_catchments`) is present, never slower. A time of
        exactly 0 is stored as ``REACH_ZERO_S / 60`` so the pattern is the reach set.
    """
    on = np.atleast_1d(np.asarray(origin_nodes, np.int64))
    osnap = np.atleast_1d(np.asarray(origin_snap_m, np.float64))
    tn = np.atleast_1d(np.asarray(target_nodes, np.int64))
    tsnap = np.atleast_1d(np.asarray(target_snap_m, np.float64))
    n_o, n_t = on.size, tn.size
    if n_o == 0 or n_t == 0:
        return sp.csr_matrix((n_t, n_o), dtype=np.float64)
    deps = departure_times(cfg)
    limit_s = cost.limit_s(limit_min)
    walk_s = cost.limit_s(cfg.max_walk_min)
    max_trip_s = int(round(cost.limit_s(cfg.max_trip_min)))
    trip_s = min(max_trip_s, int(math.floor(limit_s)))  # transit times are whole seconds
    walk_only_s = min(limit_s, float(max_trip_s))
    # one bounded search per target: walk-only catchment and egress legs (graph undirected)
    w = cost.inbound_seconds(network)  # searches from the targets: trips TO them
    R = reach_sparse(network.indptr, network.indices, w, tn, cost.leg_seconds(tsnap), max(walk_s, walk_only_s))
    R.data = np.where(R.data <= REACH_ZERO_S, 0.0, R.data)  # as _access_legs: exact zeros
    walk = gather_targets(R, on, cost.leg_seconds(osnap), walk_only_s).tocoo()
    walk_ptr, walk_tgt, walk_sec = _by_row(walk.col.astype(np.int64), walk.row.astype(np.int32),
                                           walk.data.astype(np.float64), n_o)
    eg = gather_targets(R, timetable.stop_node, cost.leg_seconds(timetable.stop_snap_m), walk_s).tocoo()
    eg_ptr, eg_tgt, eg_sec = _by_row(eg.col.astype(np.int64), eg.row.astype(np.int32),
                                     np.ceil(eg.data).astype(np.int32), timetable.n_stops,
                                     by_value=True)
    acc_ptr, acc_stops, acc_s = _access_legs(network, timetable, on, osnap, cost, walk_s)
    tsec = timetable.transfer_seconds(cost, cfg.max_transfer_walk_min)
    n = deps.size
    rank = max(int(np.ceil(cfg.report_percentile / 100.0 * n)), 1) - 1
    arrays = _tt_arrays(timetable, tsec.astype(np.int32))
    # one Range-RAPTOR per origin, in chunks of origins (here or on the Dask cluster); a
    # chunk's dense buffer is chunk x targets
    from careblocks.compute import map_chunks

    parts = map_chunks(_coverage_rows, n_o, {
        "arrays": arrays, "acc": (acc_ptr.astype(np.int64), acc_stops.astype(np.int32), acc_s.astype(np.int32)),
        "deps": deps.astype(np.int32), "n_rounds": int(cfg.max_transfers) + 1, "trip_s": int(trip_s),
        "egress": (eg_ptr, eg_tgt, eg_sec), "walk": (walk_ptr, walk_tgt, walk_sec), "rank": rank,
        "n_targets": n_t, "limit_s": float(limit_s), "chunk_size": max(int(chunk_size), 1),
    }, chunk_size=max(int(chunk_size), 1) * 8, label="transit catchments")
    r = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    v = np.concatenate([p[2] for p in parts])
    v = np.maximum(v, REACH_ZERO_S) / 60.0
    m = sp.csr_matrix((v, (r, c)), shape=(n_t, n_o))
    m.sort_indices()
    return m


def _coverage_rows(lo: int, hi: int, *, arrays: tuple, acc: tuple, deps: np.ndarray, n_rounds: int,
                   trip_s: int, egress: tuple, walk: tuple, rank: int, n_targets: int,
                   limit_s: float, chunk_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target, origin, seconds) of origins ``lo..hi-1`` within ``limit_s``, computed
    ``chunk_size`` origins at a time."""
    rows, cols, vals = [], [], []
    for a in range(lo, hi, chunk_size):
        b = min(a + chunk_size, hi)
        out = np.empty((b - a, n_targets), np.float64)
        _coverage_chunk(*arrays, *acc, a, deps, n_rounds, trip_s, *egress, *walk, rank, out,
                        n_blocks(b - a))
        oi, gi = np.nonzero(out <= limit_s)
        rows.append(gi)
        cols.append(oi + a)
        vals.append(out[oi, gi])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
