"""Range-RAPTOR over flat timetable arrays, compiled with numba.

One Range-RAPTOR per origin covers every departure minute of the window: minutes are
processed latest-first and the labels of a later minute stay valid upper bounds for an
earlier one (leaving earlier, one can always wait), so each minute only re-scans what
improves. Origins run in parallel (``numba.prange``) in blocks; each block allocates its
work arrays once and, after an origin, resets only the stops that origin touched, so the
cost of an origin follows what it reaches rather than the size of the timetable (a metro
feed has tens of thousands of stops, a 15-minute catchment reaches a few hundred).

Labels: ``tau[k, s]`` is the earliest arrival at stop ``s`` using at most ``k`` vehicles
(``k = 0``: the access walk), by any means; ``ride[k, s]`` the earliest arrival *on a
vehicle* (as R5 keeps "best non-transfer times" apart). Keeping both monotone in ``k`` (an
improvement in round ``k`` is copied up to every higher round) makes pruning against them
exact under a transfer limit even when labels are reused across minutes. Walking transfers
are one hop after a vehicle (never chained, never right after the access walk); the egress
walk also starts where a vehicle stops.

Per minute ``t`` and service ``v`` the travel time is
``min_s(ride*[s] + egress[s, v]) - t`` where ``egress`` is the walk from stop ``s`` to the
nearest facility of ``v`` (within the walk limit); it is kept incrementally, only stops
whose overall label improves are visited. Trips longer than ``max_trip_s`` are unreachable.

Pruning (all exact, checked against :mod:`reference_transit`): labels later than
``t + max_trip_s`` or not earlier than every service's best arrival so far are dropped
(target pruning; off when some service is unreachable, and when there are no services);
an improved stop is scanned again only for routes with a trip leaving it between its new and
its old label (otherwise it would board the same trips as before).
"""

from __future__ import annotations

import numpy as np

from careblocks._jit import njit, prange

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


def workspace(n_stops, n_routes, n_rounds, n_serv):
    """The work arrays of one Range-RAPTOR, allocated once and reused for many origins.

    Between origins every label is ``INF32`` and every flag clear: :func:`_origin_done`
    resets only the stops the last origin touched (as R5 and OTP do), so an origin costs what
    it reaches, not the size of the timetable.
    """
    return _workspace(int(n_stops), int(n_routes), int(n_rounds), int(n_serv))


@njit(cache=True)
def _workspace(n_stops, n_routes, n_rounds, n_serv):
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
    seen = np.zeros(n_stops, np.bool_)  # stops with a label (to reset after the origin)
    slist = np.empty(n_stops, np.int32)
    imp = np.zeros(n_stops, np.bool_)  # stops whose overall ride label improved this minute
    ilist = np.empty(n_stops, np.int32)
    count = np.zeros(2, np.int64)  # [stops in slist, stops in ilist]
    return (tau, ride, best, marked, mlist, oldlab, rmark, rlist, qpos, qlist, seen, slist, imp,
            ilist, count)


@njit(cache=True, inline="always")
def _seen(seen, slist, count, p):
    if not seen[p]:
        seen[p] = True
        slist[count[0]] = p
        count[0] += 1


@njit(cache=True, error_model="numpy")
def _minute(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
            departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
            transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_stops, acc_s, t,
            n_rounds, max_trip_s, egress, ws):
    """One departure minute ``t`` of a Range-RAPTOR (the labels of later minutes in ``ws``).

    Stops whose overall ride label improves are listed in ``ilist[:count[1]]`` (flagged in
    ``imp``; the caller clears both); stops given a label for the first time since the
    workspace was clean are appended to ``slist``.
    """
    (tau, ride, best, marked, mlist, oldlab, rmark, rlist, qpos, qlist, seen, slist, imp,
     ilist, count) = ws
    n_serv = egress.shape[1]
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
            _seen(seen, slist, count, p)
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
                            if not imp[p]:
                                imp[p] = True
                                ilist[count[1]] = p
                                count[1] += 1
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
                            _seen(seen, slist, count, p)
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
                    _seen(seen, slist, count, qs)
                    if not marked[qs] and _leaves_between(stop_dep_ptr, stop_dep, qs, a, old):
                        marked[qs] = True
                        mlist[nm] = qs
                        oldlab[qs] = old
                        nm += 1
    for m in range(nm):
        marked[mlist[m]] = False


@njit(cache=True, inline="always")
def _minute_done(ws):
    """Clear the improved-ride list of the last minute."""
    imp, ilist, count = ws[12], ws[13], ws[14]
    for m in range(count[1]):
        imp[ilist[m]] = False
    count[1] = 0


@njit(cache=True)
def _origin_done(ws):
    """Reset the labels of the stops the last origin touched: the workspace is clean again."""
    tau, ride, best, seen, slist, count = ws[0], ws[1], ws[2], ws[10], ws[11], ws[14]
    _minute_done(ws)
    for j in range(count[0]):
        p = slist[j]
        seen[p] = False
        for k in range(tau.shape[0]):
            tau[k, p] = INF32
            ride[k, p] = INF32
    count[0] = 0
    for v in range(best.shape[0]):
        best[v] = INF32


@njit(cache=True, error_model="numpy")
def _range_raptor(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                  departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                  transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_stops, acc_s, deps,
                  n_rounds, max_trip_s, egress, walk, out, record, stop_out, ws):
    """Range-RAPTOR for one origin on a clean workspace ``ws`` (left clean).
    ``out[d, v]`` = travel seconds (INF32 unreachable): the faster of transit and ``walk[v]``
    (seconds on foot all the way, INF32 = not an option), which also bounds target pruning.

    With ``record`` 1, ``stop_out[d, s]`` receives the earliest arrival at every stop (by
    any means); ``record`` 0: no per-stop output.
    """
    tau, best = ws[0], ws[2]
    n_stops = tau.shape[1]
    n_serv = egress.shape[1]
    for di in range(deps.shape[0] - 1, -1, -1):
        t = deps[di]
        # arriving on foot at t + walk: a ride arriving later cannot make a service faster
        for v in range(n_serv):
            if walk[v] < INF32 and t + walk[v] < best[v]:
                best[v] = t + walk[v]
        _minute(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_stops, acc_s, t,
                n_rounds, max_trip_s, egress, ws)
        _minute_done(ws)
        for v in range(n_serv):
            tt = best[v] - t
            out[di, v] = tt if tt <= max_trip_s else INF32
        if record > 0:
            for s in range(n_stops):
                a = tau[n_rounds, s]
                stop_out[di, s] = a if a <= t + max_trip_s else INF32
    _origin_done(ws)


@njit(parallel=True, cache=True, error_model="numpy")
def _many_origins(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                  departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                  transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_ptr, acc_stops, acc_s,
                  deps, n_rounds, max_trip_s, egress, walk, out, n_blocks):
    """Origins in ``n_blocks`` contiguous blocks run in parallel, one workspace per block."""
    n_o = acc_ptr.shape[0] - 1
    nb = min(n_o, n_blocks)
    dummy = np.empty((1, 1), np.int32)
    for b in prange(nb):
        ws = _workspace(stop_routes_ptr.shape[0] - 1, route_stops_ptr.shape[0] - 1, n_rounds,
                        egress.shape[1])
        for o in range(b * n_o // nb, (b + 1) * n_o // nb):
            a0 = acc_ptr[o]
            a1 = acc_ptr[o + 1]
            _range_raptor(route_stops_ptr, route_stops, route_trips_ptr, route_st_ptr, arrival,
                          departure, stop_routes_ptr, stop_routes, stop_routes_pos, transfer_ptr,
                          transfer_to, transfer_s, stop_dep_ptr, stop_dep, acc_stops[a0:a1],
                          acc_s[a0:a1], deps, n_rounds, max_trip_s, egress, walk[o], out[o], 0, dummy,
                          ws)


def n_blocks(n_items: int) -> int:
    """Blocks of origins per parallel call: a few per thread (load balance), each with its
    own workspace."""
    import numba

    return max(1, min(int(n_items), 4 * numba.get_num_threads()))


def stop_departures(tt) -> tuple[np.ndarray, np.ndarray]:
    """CSR per stop of every departure time (sorted), for the round-0 marking rule."""
    L = np.diff(tt.route_stops_ptr)
    T = np.diff(tt.route_trips_ptr)
    # stop of each flat stop-time entry: route r, trip j, position i -> route_stops[ptr[r] + i]
    r_of = np.repeat(np.arange(L.size), L * T)
    off = np.arange(tt.departure.size) - np.repeat(tt.route_st_ptr[:-1], L * T)
    stop = tt.route_stops[tt.route_stops_ptr[r_of] + off % np.repeat(L, L * T)]
    o = np.lexsort((tt.departure, stop))
    ptr = np.zeros(tt.n_stops + 1, np.int64)
    np.cumsum(np.bincount(stop, minlength=tt.n_stops), out=ptr[1:])
    return ptr, tt.departure[o].astype(np.int32)


def _tt_arrays(tt, transfer_s):
    sdp, sd = stop_departures(tt)
    return (tt.route_stops_ptr, tt.route_stops, tt.route_trips_ptr, tt.route_st_ptr,
            tt.arrival, tt.departure, tt.stop_routes_ptr, tt.stop_routes, tt.stop_routes_pos,
            tt.transfer_ptr, tt.transfer_to, transfer_s, sdp, sd)


def range_raptor(tt, transfer_s: np.ndarray, acc_ptr: np.ndarray, acc_stops: np.ndarray,
                 acc_s: np.ndarray, departures_s: np.ndarray, *, max_transfers: int,
                 max_trip_s: int, egress_s: np.ndarray, walk_s: np.ndarray | None = None) -> np.ndarray:
    """Travel seconds per origin, departure and service (INF32 when unreachable).

    Parameters
    ----------
    tt
        :class:`~careblocks.transit.timetable.Timetable`.
    transfer_s
        int32 seconds per transfer entry (``-1`` = not allowed).
    acc_ptr, acc_stops, acc_s
        CSR of access legs: origin ``o`` reaches ``acc_stops[acc_ptr[o]:acc_ptr[o+1]]`` after
        ``acc_s`` seconds (int32, origin snap leg included).
    departures_s
        int32 departure times (ascending).
    max_transfers, max_trip_s
        At most ``max_transfers + 1`` vehicles; arrivals later than departure + max_trip_s
        are ignored.
    egress_s
        int32 ``(n_stops, n_services)`` walk from each stop to the nearest facility of each
        service (INF32 when none within the walk limit).
    walk_s
        Optional ``(n_origins, n_services)`` whole seconds of walking all the way (INF32:
        not within ``max_trip_s``). The result is then the faster of transit and walking (as
        ``np.minimum`` of the two would be), and target pruning stops at what walking
        already achieves.

    Returns
    -------
    int32 array ``(n_origins, n_departures, n_services)``.
    """
    n_o = acc_ptr.size - 1
    out = np.empty((n_o, departures_s.size, egress_s.shape[1]), np.int32)
    if walk_s is None:
        walk = np.full((n_o, egress_s.shape[1]), INF32, np.int64)
    else:
        walk = np.minimum(np.asarray(walk_s, np.int64), INF32).reshape(n_o, egress_s.shape[1])
    _many_origins(*_tt_arrays(tt, transfer_s.astype(np.int32)), acc_ptr.astype(np.int64),
                  acc_stops.astype(np.int32), acc_s.astype(np.int32),
                  departures_s.astype(np.int32), int(max_transfers) + 1, int(max_trip_s),
                  np.ascontiguousarray(egress_s, dtype=np.int32), np.ascontiguousarray(walk), out,
                  n_blocks(n_o))
    return out


def earliest_arrivals(tt, transfer_s: np.ndarray, acc_stops: np.ndarray, acc_s: np.ndarray,
                      departures_s: np.ndarray, *, max_transfers: int,
                      max_trip_s: int) -> np.ndarray:
    """Earliest arrival (int seconds, INF32 unreachable) at every stop for every departure of
    one origin: ``(n_departures, n_stops)``. For tests and diagnostics."""
    deps = departures_s.astype(np.int32)
    out = np.empty((deps.size, 1), np.int32)
    stop_out = np.empty((deps.size, tt.n_stops), np.int32)
    egress = np.full((tt.n_stops, 1), INF32, np.int32)
    ws = workspace(tt.n_stops, tt.n_routes, int(max_transfers) + 1, 1)
    _range_raptor(*_tt_arrays(tt, transfer_s.astype(np.int32)), acc_stops.astype(np.int32),
                  acc_s.astype(np.int32), deps, int(max_transfers) + 1, int(max_trip_s),
                  egress, np.full(1, INF32, np.int64), out, 1, stop_out, ws)
    return stop_out


def nearest_rank_percentiles(seconds: np.ndarray, percentiles, axis: int = -1) -> np.ndarray:
    """Nearest-rank percentiles in minutes (NaN where unreachable) along ``axis``.

    ``INF32`` counts as infinitely long, so a p50 is NaN when more than half the departure
    minutes cannot reach the service. Ranks: ``ceil(p / 100 * n)`` (at least 1).
    """
    s = np.sort(np.moveaxis(seconds, axis, -1).astype(np.float64), axis=-1)
    s[s >= INF32] = np.inf
    n = s.shape[-1]
    res = []
    for p in percentiles:
        rank = max(int(np.ceil(p / 100.0 * n)), 1) - 1
        res.append(s[..., rank])
    out = np.stack(res, axis=-1) / 60.0
    out[~np.isfinite(out)] = np.nan
    return out
