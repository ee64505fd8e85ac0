"""The transit kernels as they were before the per-block workspaces (baseline for benchmarks).

Kept callable only so that ``benchmarks/transit.py`` and ``benchmarks/metro_transit.py`` can
measure the current kernels against them in the same run: these allocate and fill every
per-stop array (labels, flags, and in the catchments the per-minute arrival at every stop)
for every origin, so an origin costs O(stops x minutes) however little it reaches.
:func:`use_old_kernels` swaps them into :mod:`careblocks.transit` for the duration of a
``with`` block. Not part of the package; results are identical to the current kernels.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from numba import njit, prange

INF32 = np.int32(2**31 - 1)


@njit(cache=True, inline="always")
def _lower(tau, k, p, a, n_rounds):
    """Set tau[k..n_rounds, p] = min(., a); True when tau[n_rounds, p] (overall) improved."""
    j = k
    while j <= n_rounds and a < tau[j, p]:
        tau[j, p] = a
        j += 1
    return j > n_rounds


@njit(cache=True, inline="always")
def _leaves_between(stop_dep_ptr, stop_dep, p, a, old):
    """True when a vehicle leaves stop p at a time in [a, old)."""
    lo = stop_dep_ptr[p]
    end = stop_dep_ptr[p + 1]
    h = end
    while lo < h:
        mid = (lo + h) >> 1
        if stop_dep[mid] >= a:
            h = mid
        else:
            lo = mid + 1
    return lo < end and stop_dep[lo] < old


@njit(cache=True, inline="always")
def _route_leaves_between(route_stops_ptr, route_trips_ptr, route_st_ptr, departure, r, pos, a, old):
    """True when a trip of route r leaves its position ``pos`` at a time in [a, old)."""
    L = route_stops_ptr[r + 1] - route_stops_ptr[r]
    nt = route_trips_ptr[r + 1] - route_trips_ptr[r]
    base = route_st_ptr[r] + pos
    lo = 0
    h = nt
    while lo < h:
        mid = (lo + h) >> 1
        if departure[base + mid * L] >= a:
            h = mid
        else:
            lo = mid + 1
    return lo < nt and departure[base + lo * L] < old


@njit(cache=True, error_model="numpy")
def _range_raptor(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                  departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                  transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_stops, acc_s, deps,
                  n_rounds, max_trip_s, egress, out, record, stop_out):
    """Range-RAPTOR for one origin. ``out[d, v]`` = travel seconds (INF32 unreachable).

    With ``record`` 1, ``stop_out[d, s]`` receives the earliest arrival at every stop (by
    any means); with ``record`` 2, the earliest arrival *on a vehicle* (where an egress walk
    may start). ``record`` 0: no per-stop output.
    """
    n_stops = stop_routes_ptr.shape[0] - 1
    n_routes = route_stops_ptr.shape[0] - 1
    n_serv = egress.shape[1]
    tau = np.full((n_rounds + 1, n_stops), INF32, np.int32)
    ride = np.full((n_rounds + 1, n_stops), INF32, np.int32)
    best = np.full(n_serv, np.int64(INF32), np.int64)
    marked = np.zeros(n_stops, np.bool_)
    mlist = np.empty(n_stops, np.int32)
    oldlab = np.empty(n_stops, np.int32)  # a marked stop's label before the marking improvement
    rmark = np.zeros(n_stops, np.bool_)
    rlist = np.empty(n_stops, np.int32)
    qpos = np.full(n_routes, -1, np.int32)
    qlist = np.empty(n_routes, np.int32)
    for di in range(deps.shape[0] - 1, -1, -1):
        t = deps[di]
        limit = t + max_trip_s
        # target pruning: a label no earlier than every service's best arrival cannot help
        mb = best.max()
        if mb - 1 < limit:
            limit = mb - 1
        nm = 0
        for j in range(acc_stops.shape[0]):
            p = acc_stops[j]
            a = t + acc_s[j]
            old = tau[0, p]
            if a <= limit and a < old:
                _lower(tau, 0, p, a, n_rounds)
                # boarding from p changes only if a vehicle leaves p in [a, old)
                if not marked[p] and _leaves_between(stop_dep_ptr, stop_dep, p, a, old):
                    marked[p] = True
                    mlist[nm] = p
                    oldlab[p] = old
                    nm += 1
        for k in range(1, n_rounds + 1):
            if nm == 0:
                break
            nq = 0
            for m in range(nm):
                p = mlist[m]
                marked[p] = False
                lab = tau[k - 1, p]
                for e in range(stop_routes_ptr[p], stop_routes_ptr[p + 1]):
                    r = stop_routes[e]
                    pos = stop_routes_pos[e]
                    # boarding r at p changes only if one of its trips leaves in [lab, old)
                    if not _route_leaves_between(route_stops_ptr, route_trips_ptr, route_st_ptr,
                                                 departure, r, pos, lab, oldlab[p]):
                        continue
                    if qpos[r] < 0:
                        qpos[r] = pos
                        qlist[nq] = r
                        nq += 1
                    elif pos < qpos[r]:
                        qpos[r] = pos
            nm = 0
            nr = 0
            for q in range(nq):
                r = qlist[q]
                start = qpos[r]
                qpos[r] = -1
                s0 = route_stops_ptr[r]
                L = route_stops_ptr[r + 1] - s0
                nt = route_trips_ptr[r + 1] - route_trips_ptr[r]
                base = route_st_ptr[r]
                trip = -1
                for i in range(start, L):
                    p = route_stops[s0 + i]
                    if trip >= 0:
                        a = arrival[base + trip * L + i]
                        if a <= limit and a < ride[k, p]:
                            if _lower(ride, k, p, a, n_rounds):
                                changed = False
                                for v in range(n_serv):
                                    e = egress[p, v]
                                    if e < INF32 and a + e < best[v]:
                                        best[v] = a + e
                                        changed = True
                                if changed:
                                    mb = best.max()
                                    if mb - 1 < limit:
                                        limit = mb - 1
                            old = tau[k, p]
                            if a < old:
                                _lower(tau, k, p, a, n_rounds)
                                if not marked[p] and _leaves_between(stop_dep_ptr, stop_dep, p, a, old):
                                    marked[p] = True
                                    mlist[nm] = p
                                    oldlab[p] = old
                                    nm += 1
                            if not rmark[p]:
                                rmark[p] = True
                                rlist[nr] = p
                                nr += 1
                    if i == L - 1:
                        break
                    prev = tau[k - 1, p]
                    if prev == INF32:
                        continue
                    hi = trip if trip >= 0 else nt - 1
                    if trip >= 0 and prev > departure[base + trip * L + i]:
                        continue
                    # earliest trip in [0, hi] departing at or after prev
                    lo = 0
                    h = hi + 1
                    while lo < h:
                        mid = (lo + h) >> 1
                        if departure[base + mid * L + i] >= prev:
                            h = mid
                        else:
                            lo = mid + 1
                    if lo <= hi:
                        trip = lo
            # walking transfers from stops improved by a vehicle in this round (one hop)
            for m in range(nr):
                p = rlist[m]
                rmark[p] = False
                for e in range(transfer_ptr[p], transfer_ptr[p + 1]):
                    w = transfer_s[e]
                    if w < 0:
                        continue
                    qs = transfer_to[e]
                    a = ride[k, p] + w
                    old = tau[k, qs]
                    if a <= limit and a < old:
                        _lower(tau, k, qs, a, n_rounds)
                        if not marked[qs] and _leaves_between(stop_dep_ptr, stop_dep, qs, a, old):
                            marked[qs] = True
                            mlist[nm] = qs
                            oldlab[qs] = old
                            nm += 1
        for m in range(nm):
            marked[mlist[m]] = False
        for v in range(n_serv):
            tt = best[v] - t
            out[di, v] = tt if tt <= max_trip_s else INF32
        if record > 0:
            lab = tau if record == 1 else ride
            for s in range(n_stops):
                a = lab[n_rounds, s]
                stop_out[di, s] = a if a <= t + max_trip_s else INF32


@njit(parallel=True, cache=True, error_model="numpy")
def _many_origins(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                  departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                  transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_ptr, acc_stops, acc_s,
                  deps, n_rounds, max_trip_s, egress, out):
    dummy = np.empty((1, 1), np.int32)
    for o in prange(acc_ptr.shape[0] - 1):
        a0 = acc_ptr[o]
        a1 = acc_ptr[o + 1]
        _range_raptor(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                      departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                      transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_stops[a0:a1],
                      acc_s[a0:a1], deps, n_rounds,
                      max_trip_s, egress, out[o], 0, dummy)


@njit(parallel=True, cache=True, error_model="numpy")
def _coverage_chunk(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                    departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                    transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_ptr, acc_stops, acc_s,
                    o0, deps, n_rounds, trip_s, eg_ptr, eg_tgt, eg_s, walk_ptr, walk_tgt,
                    walk_sec, rank, out):
    """Seconds (``inf`` = not within ``trip_s``) from origins ``o0 ..`` to every target.

    ``out`` is ``(n_chunk, n_targets)``; egress entries of each stop sorted by seconds.
    """
    n_stops = stop_routes_ptr.shape[0] - 1
    n_dep = deps.shape[0]
    n_t = out.shape[1]
    no_egress = np.full((n_stops, 1), INF32, np.int32)
    for i in prange(out.shape[0]):
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
        ride = np.empty((n_dep, n_stops), np.int32)
        dummy = np.empty((n_dep, 1), np.int32)
        _range_raptor(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                      departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                      transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_stops[a0:a1],
                      acc_s[a0:a1], deps, n_rounds, trip_s, no_egress, dummy, 2, ride)
        # per target reached by some minute: its seconds at every minute (INF32 = not within)
        slot = np.full(n_t, -1, np.int32)
        touched = np.empty(n_t, np.int32)
        buf = np.empty((n_t, n_dep), np.int32)
        nt = 0
        for d in range(n_dep):
            t = deps[d]
            for s in range(n_stops):
                a = ride[d, s]
                if a == INF32:
                    continue
                base = a - t
                for e in range(eg_ptr[s], eg_ptr[s + 1]):
                    v = base + eg_s[e]
                    if v > trip_s:
                        break  # egress sorted by seconds
                    g = eg_tgt[e]
                    k = slot[g]
                    if k < 0:
                        k = nt
                        slot[g] = k
                        touched[nt] = g
                        nt += 1
                        for dd in range(n_dep):
                            buf[k, dd] = INF32
                    if v < buf[k, d]:
                        buf[k, d] = v
        for j in range(nt):
            v = np.sort(buf[j])[rank]
            g = touched[j]
            if v < INF32 and v < row[g]:
                row[g] = v


@contextmanager
def use_old_kernels():
    """Run :func:`careblocks.transit.range_raptor` and
    :func:`careblocks.transit.reach.transit_coverage` on the old kernels inside the block."""
    from careblocks.transit import raptor, reach

    def many(*args):
        # the old kernel takes no walking times (applied after it, as before) nor block count
        *head, walk, out, _ = args
        _many_origins(*head, out)
        out[...] = np.minimum(out, walk[:, None, :])

    def chunk(*args):
        return _coverage_chunk(*args[:-1])

    saved = raptor._many_origins, reach._coverage_chunk
    raptor._many_origins, reach._coverage_chunk = many, chunk
    try:
        yield
    finally:
        raptor._many_origins, reach._coverage_chunk = saved
