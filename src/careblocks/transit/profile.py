"""Stop profiles: from every stop, the earliest arrival at the nearest facility of a service.

A backward profile connection scan (Dibbelt, Pajor, Strasser and Wagner's CSA profile query,
made multi-target and with a vehicle limit), compiled with numba. One scan per service over
the timetable's elementary connections (a vehicle from one stop to the next), latest
departure first, gives each stop ``s`` and each number of vehicles ``j`` a Pareto list of
``(leave s at, arrive at the facility)`` pairs. The travel time of an origin at departure
minute ``t`` is then ``min over its access stops a of f(a, t + walk to a) - t``, where
``f(a, tau)`` is the earliest arrival among the pairs leaving ``a`` at ``tau`` or later: a
lookup, not a search. Where many origins share a timetable (a metro area: 200,000 origins,
four services) this replaces one Range-RAPTOR per origin by four scans and a sweep per origin.

The journeys counted are exactly those of :mod:`careblocks.transit.raptor`'s Range-RAPTOR:
the access walk to a stop, at most ``n_rounds`` vehicles, one walking transfer (or none) at
the stop where a vehicle stops before boarding the next, boarding any trip leaving at or
after one is at the stop, and the egress walk from the stop where the last vehicle stops;
arrivals later than ``t + max_trip_s`` do not count. Both are tested against the
exhaustive connection scan of the tests' reference, and against each other.

Ties: a connection is scanned after every connection leaving later; among those leaving at
the same second, connections that take time come first, and zero-duration hops (GTFS times
repeat at minute precision) are scanned until nothing changes, so a zero-minute transfer
onto a zero-minute hop is never missed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from careblocks._jit import njit, prange
from careblocks.transit.raptor import INF32


@dataclass(frozen=True, eq=False)
class StopProfiles:
    """Pareto lists per service and stop: entries ``ptr[v, s]:ptr[v, s + 1]`` of ``dep``
    (leave stop ``s``, non-increasing) and ``arr`` (arrive at service ``v``'s nearest
    facility, strictly decreasing), int32 seconds after midnight."""

    ptr: np.ndarray  # int64 (n_services, n_stops + 1), absolute offsets into dep / arr
    dep: np.ndarray  # int32
    arr: np.ndarray  # int32

    @property
    def nbytes(self) -> int:
        return int(self.ptr.nbytes + self.dep.nbytes + self.arr.nbytes)


def connections(tt, t_lo: int, t_hi: int) -> tuple[np.ndarray, ...]:
    """Elementary connections leaving at ``t_lo`` or later and arriving by ``t_hi``, in scan
    order (latest departure first; see the module docstring for ties).

    Returns ``dep, arr, frm, to, nxt, zero``: times, stops, the scan index of the same
    trip's next connection (-1: none kept) and whether the hop takes no time.
    """
    L = np.diff(tt.route_stops_ptr)
    T = np.diff(tt.route_trips_ptr)
    n = L * T
    r_of = np.repeat(np.arange(L.size), n)
    flat = np.arange(tt.departure.size)
    off = flat - np.repeat(tt.route_st_ptr[:-1], n)
    Lr = L[r_of]
    pos = off % np.maximum(Lr, 1)
    ok = pos < Lr - 1
    ok[ok] &= (tt.departure[flat[ok]] >= t_lo) & (tt.arrival[flat[ok] + 1] <= t_hi)
    f = flat[ok]
    dep = tt.departure[f].astype(np.int32)
    arr = tt.arrival[f + 1].astype(np.int32)
    base = tt.route_stops_ptr[r_of[ok]]
    frm = tt.route_stops[base + pos[ok]].astype(np.int32)
    to = tt.route_stops[base + pos[ok] + 1].astype(np.int32)
    order = np.lexsort((-pos[ok], -arr.astype(np.int64), -dep.astype(np.int64)))
    dep, arr, frm, to, f = dep[order], arr[order], frm[order], to[order], f[order]
    at = np.full(tt.departure.size + 1, -1, np.int64)
    at[f] = np.arange(f.size)
    nxt = at[f + 1]
    return dep, arr, frm, to, nxt, arr == dep


@njit(cache=True, inline="always")
def _find(p_dep, base, n, tau):
    """How many of the ``n`` entries at ``base`` leave at ``tau`` or later (a prefix)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if p_dep[base + mid] >= tau:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _scan_one(dep, arr, frm, to, nxt, zero, cap_ptr, transfer_ptr, transfer_to, transfer_s,
              egress, n_rounds, p_dep, p_arr, p_cnt, x, b):
    """The backward scan for one service.

    Stop ``s``'s list is ``p_dep[cap_ptr[s]:][:p_cnt[s]]`` with, per entry, the earliest
    arrival with 1..``n_rounds`` vehicles in ``p_arr[entry, :]`` (each column non-increasing
    down the list, so the last entry leaving at ``tau`` or later holds every level's best:
    one binary search serves all levels). ``x[c, j - 1]``: the earliest arrival after
    boarding connection ``c`` with ``j`` vehicles left (this one included).
    """
    n_c = dep.shape[0]
    R = n_rounds
    c = 0
    while c < n_c:
        d = dep[c]
        g1 = c
        while g1 < n_c and dep[g1] == d:
            g1 += 1
        z0 = g1  # zero-duration hops come last in a group of equal departures
        while z0 > c and zero[z0 - 1]:
            z0 -= 1
        passes = 0
        while True:
            changed = False
            lo = c if passes == 0 else z0
            for i in range(lo, g1):
                w = to[i]
                a = np.int64(arr[i])
                e = egress[w]
                first = np.int64(INF32)
                if e < INF32:
                    first = a + e
                for j in range(R):
                    b[j] = first
                k = nxt[i]
                if k >= 0:  # stay on the vehicle
                    for j in range(R):
                        if x[k, j] < b[j]:
                            b[j] = x[k, j]
                if R > 1:  # get off at w and board again there, or walk one transfer first
                    m = p_cnt[w]
                    if m > 0:
                        h = _find(p_dep, cap_ptr[w], m, a)
                        if h > 0:
                            q = cap_ptr[w] + h - 1
                            for j in range(1, R):
                                if p_arr[q, j - 1] < b[j]:
                                    b[j] = p_arr[q, j - 1]
                    for t in range(transfer_ptr[w], transfer_ptr[w + 1]):
                        tw = transfer_s[t]
                        if tw < 0:
                            continue
                        qs = transfer_to[t]
                        m = p_cnt[qs]
                        if m == 0:
                            continue
                        last = cap_ptr[qs] + m - 1  # the best qs offers at any time
                        useful = False
                        for j in range(1, R):
                            if p_arr[last, j - 1] < b[j]:
                                useful = True
                                break
                        if not useful:
                            continue
                        h = _find(p_dep, cap_ptr[qs], m, a + tw)
                        if h > 0:
                            q = cap_ptr[qs] + h - 1
                            for j in range(1, R):
                                if p_arr[q, j - 1] < b[j]:
                                    b[j] = p_arr[q, j - 1]
                better = False
                for j in range(R):
                    if b[j] < x[i, j]:
                        x[i, j] = b[j]
                        better = True
                if not better:
                    continue
                changed = True
                u = frm[i]
                base = cap_ptr[u]
                m = p_cnt[u]
                if m > 0:  # keep each column non-increasing: the new entry is the running min
                    last = base + m - 1
                    improves = False
                    for j in range(R):
                        if p_arr[last, j] < b[j]:
                            b[j] = p_arr[last, j]
                        elif b[j] < p_arr[last, j]:
                            improves = True
                    if not improves:
                        continue
                    if p_dep[last] == d:
                        for j in range(R):
                            p_arr[last, j] = b[j]
                        continue
                p_dep[base + m] = d
                for j in range(R):
                    p_arr[base + m, j] = b[j]
                p_cnt[u] = m + 1
            passes += 1
            if z0 == g1 or not changed or passes > g1 - z0 + 1:
                break
        c = g1


@njit(parallel=True, cache=True)
def _scan(dep, arr, frm, to, nxt, zero, cap_ptr, transfer_ptr, transfer_to, transfer_s, egress,
          n_rounds, out_cnt, out_dep, out_arr):
    """One backward scan per service (in parallel); of the last level (all ``n_rounds``
    vehicles) the entries that improve on the one before are copied out at
    ``out_*[v, cap_ptr[s]:...]``, ``out_cnt[v, s]`` of them."""
    n_c = dep.shape[0]
    n_s = cap_ptr.shape[0] - 1
    R = n_rounds
    for v in prange(egress.shape[1]):
        p_dep = np.empty(n_c, np.int32)
        p_arr = np.empty((n_c, R), np.int32)
        p_cnt = np.zeros(n_s, np.int64)
        x = np.full((n_c, R), INF32, np.int32)
        b = np.empty(R, np.int64)
        _scan_one(dep, arr, frm, to, nxt, zero, cap_ptr, transfer_ptr, transfer_to, transfer_s,
                  np.ascontiguousarray(egress[:, v]), R, p_dep, p_arr, p_cnt, x, b)
        for s in range(n_s):
            m = 0
            prev = np.int64(INF32)
            for i in range(cap_ptr[s], cap_ptr[s] + p_cnt[s]):
                if p_arr[i, R - 1] < prev:
                    prev = p_arr[i, R - 1]
                    out_dep[v, cap_ptr[s] + m] = p_dep[i]
                    out_arr[v, cap_ptr[s] + m] = prev
                    m += 1
            out_cnt[v, s] = m


def stop_profiles(tt, transfer_s: np.ndarray, egress_s: np.ndarray, *, max_transfers: int,
                  t_lo: int, t_hi: int) -> StopProfiles:
    """Profiles of every stop to every service (columns of ``egress_s``).

    Parameters
    ----------
    tt
        :class:`~careblocks.transit.timetable.Timetable`.
    transfer_s
        int32 seconds per transfer entry (``-1`` = not allowed).
    egress_s
        int32 ``(n_stops, n_services)`` walk from each stop to the nearest facility of each
        service (INF32 when none within the walk limit).
    max_transfers
        At most ``max_transfers + 1`` vehicles.
    t_lo, t_hi
        The first departure minute and the last one plus the longest trip: connections
        leaving earlier or arriving later cannot be part of a counted journey.
    """
    dep, arr, frm, to, nxt, zero = connections(tt, int(t_lo), int(t_hi))
    n_s, n_v = tt.n_stops, egress_s.shape[1]
    cap_ptr = np.zeros(n_s + 1, np.int64)
    np.cumsum(np.bincount(frm, minlength=n_s), out=cap_ptr[1:])
    cnt = np.zeros((n_v, n_s), np.int64)
    o_dep = np.empty((n_v, dep.size), np.int32)
    o_arr = np.empty((n_v, dep.size), np.int32)
    _scan(dep, arr, frm, to, nxt, zero, cap_ptr, tt.transfer_ptr, tt.transfer_to,
          np.asarray(transfer_s, np.int32), np.ascontiguousarray(egress_s, dtype=np.int64),
          int(max_transfers) + 1, cnt, o_dep, o_arr)
    # compact: each service's lists back to back
    sizes = np.diff(cap_ptr)
    keep = (np.arange(dep.size) - np.repeat(cap_ptr[:-1], sizes))[None, :] < np.repeat(cnt, sizes, axis=1)
    ptr = np.zeros((n_v, n_s + 1), np.int64)
    start = 0
    for v in range(n_v):
        ptr[v, 0] = start
        ptr[v, 1:] = start + np.cumsum(cnt[v])
        start = int(ptr[v, -1])
    return StopProfiles(ptr=ptr, dep=o_dep[keep], arr=o_arr[keep])


@njit(parallel=True, cache=True)
def _query(ptr, p_dep, p_arr, acc_ptr, acc_stops, acc_s, deps, max_trip_s, walk, out):
    n_o = acc_ptr.shape[0] - 1
    n_v = ptr.shape[0]
    n_d = deps.shape[0]
    for o in prange(n_o):
        best = np.empty(n_d, np.int64)
        for v in range(n_v):
            for di in range(n_d):
                best[di] = INF32
            for a in range(acc_ptr[o], acc_ptr[o + 1]):
                s = acc_stops[a]
                b = ptr[v, s]
                n = ptr[v, s + 1] - b
                if n == 0:
                    continue
                w = acc_s[a]
                p = 0  # entries leaving at tau or later: grows as tau decreases
                for di in range(n_d - 1, -1, -1):
                    tau = deps[di] + w
                    while p < n and p_dep[b + p] >= tau:
                        p += 1
                    if p > 0 and p_arr[b + p - 1] < best[di]:
                        best[di] = p_arr[b + p - 1]
            for di in range(n_d):
                tt = best[di] - deps[di]
                r = tt if tt <= max_trip_s else np.int64(INF32)
                if walk[o, v] < r:
                    r = walk[o, v]
                out[o, di, v] = r


def profile_access(prof: StopProfiles, acc_ptr: np.ndarray, acc_stops: np.ndarray,
                   acc_s: np.ndarray, departures_s: np.ndarray, *, max_trip_s: int,
                   walk_s: np.ndarray | None = None) -> np.ndarray:
    """Travel seconds per origin, departure and service from the stop profiles: the same
    array, element for element, as :func:`careblocks.transit.raptor.range_raptor` with the
    same access legs, limits, egress and ``walk_s``."""
    n_o = acc_ptr.size - 1
    n_v = prof.ptr.shape[0]
    out = np.empty((n_o, departures_s.size, n_v), np.int32)
    if walk_s is None:
        walk = np.full((n_o, n_v), INF32, np.int64)
    else:
        walk = np.minimum(np.asarray(walk_s, np.int64), INF32).reshape(n_o, n_v)
    _query(prof.ptr, prof.dep, prof.arr, np.asarray(acc_ptr, np.int64),
           np.asarray(acc_stops, np.int32), np.asarray(acc_s, np.int32),
           np.asarray(departures_s, np.int64), int(max_trip_s), np.ascontiguousarray(walk), out)
    return out
