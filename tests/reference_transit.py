"""Slow reference implementations, for tests and benchmarks only.

* :func:`brute_force_arrivals`: an exhaustive round-based search over *every trip* of the
  GTFS tables (no route patterns, no overtaking split, no binary search, no label reuse
  across departures, no pruning): one independent query per departure minute. It follows
  the same journey model as :mod:`careblocks.transit.raptor` (access walk, up to
  ``max_transfers + 1`` vehicles, one walking transfer after each vehicle, egress after a
  vehicle), so earliest arrivals must be identical to the second.
* :func:`python_range_raptor`: the Range-RAPTOR of :mod:`~careblocks.transit.raptor` in plain
  Python on lists, the baseline of ``benchmarks/transit.py``.
"""

from __future__ import annotations

import numpy as np

from careblocks.io.gtfs import GTFSTables

INF = 2**31 - 1


class TripArrays:
    """GTFS stop times as flat arrays sorted by trip and sequence."""

    def __init__(self, tables: GTFSTables, stop_ids: np.ndarray):
        import pandas as pd

        st = tables.stop_times
        self.stop = pd.Index(stop_ids).get_indexer(st["stop_id"]).astype(np.int64)
        self.arr = st["arrival_s"].to_numpy(np.int64)
        self.dep = np.maximum(st["departure_s"].to_numpy(np.int64), self.arr)
        tid = st["trip_id"].to_numpy()
        self.first = np.r_[True, tid[1:] != tid[:-1]]
        self.trip_start = np.maximum.accumulate(np.where(self.first, np.arange(len(tid)), 0))
        self.n_stops = len(stop_ids)


def brute_force_arrivals(trips: TripArrays, transfer_ptr, transfer_to, transfer_s,
                         acc_stops, acc_s, departures_s, *, max_transfers: int,
                         max_trip_s: int, egress_s=None):
    """Earliest arrival at every stop for each departure, by exhaustive search.

    Returns
    -------
    arrivals, service_seconds
        int64 ``(n_departures, n_stops)`` (``INF`` unreachable) and, when ``egress_s``
        (``n_stops x n_services``) is given, int64 ``(n_departures, n_services)`` travel
        seconds via transit (``INF`` unreachable), else None.
    """
    n = trips.n_stops
    # transfers as a dense list of (from, to, seconds)
    tp = np.asarray(transfer_ptr)
    t_from = np.repeat(np.arange(n), np.diff(tp))
    t_to = np.asarray(transfer_to, np.int64)
    t_s = np.asarray(transfer_s, np.int64)
    ok = t_s >= 0
    t_from, t_to, t_s = t_from[ok], t_to[ok], t_s[ok]
    out = np.full((len(departures_s), n), INF, np.int64)
    serv = None if egress_s is None else np.full((len(departures_s), egress_s.shape[1]), INF, np.int64)
    for d, t in enumerate(np.asarray(departures_s, np.int64)):
        limit = t + max_trip_s
        board = np.full(n, INF, np.int64)
        np.minimum.at(board, np.asarray(acc_stops, np.int64), t + np.asarray(acc_s, np.int64))
        ride = np.full(n, INF, np.int64)
        for _k in range(max_transfers + 1):
            can = board[trips.stop] <= trips.dep
            c = np.cumsum(can)
            before = c - can - (c[trips.trip_start] - can[trips.trip_start])
            on = before > 0  # boarded at an earlier stop of the same trip
            r_k = np.full(n, INF, np.int64)
            np.minimum.at(r_k, trips.stop[on], trips.arr[on])
            ride = np.minimum(ride, r_k)
            walk = np.full(n, INF, np.int64)
            np.minimum.at(walk, t_to, np.where(r_k[t_from] < INF, r_k[t_from] + t_s, INF))
            board = np.minimum(board, np.minimum(r_k, walk))
        res = np.where(board <= limit, board, INF)
        out[d] = res
        if egress_s is not None:
            e = np.asarray(egress_s, np.int64)
            rr = np.where(ride <= limit, ride, INF)
            tot = np.where((rr[:, None] < INF) & (e < INF), rr[:, None] + e, INF).min(axis=0)
            serv[d] = np.where(tot - t <= max_trip_s, tot - t, INF)
    return out, serv


def python_range_raptor(tt, transfer_s, acc_stops, acc_s, departures_s, *, max_transfers,
                        max_trip_s, egress_s):
    """Plain-Python Range-RAPTOR for one origin (lists, no numpy in the loops).

    Returns a list per departure of a list per service of travel seconds (INF unreachable).
    """
    from bisect import bisect_left

    from careblocks.transit.raptor import stop_departures

    rsp = tt.route_stops_ptr.tolist()
    rs = tt.route_stops.tolist()
    rtp = tt.route_trips_ptr.tolist()
    rst = tt.route_st_ptr.tolist()
    arrival = tt.arrival.tolist()
    departure = tt.departure.tolist()
    srp = tt.stop_routes_ptr.tolist()
    sr = tt.stop_routes.tolist()
    spos = tt.stop_routes_pos.tolist()
    tp = tt.transfer_ptr.tolist()
    tto = tt.transfer_to.tolist()
    ts = list(transfer_s)
    sdp, sd = stop_departures(tt)
    sdl = sd.tolist()
    sdep = [sdl[sdp[i]:sdp[i + 1]] for i in range(tt.n_stops)]
    eg = [list(r) for r in np.asarray(egress_s).tolist()]
    n_serv = len(eg[0]) if eg else 0
    n_stops = tt.n_stops
    K = max_transfers + 1
    tau = [[INF] * n_stops for _ in range(K + 1)]
    ride = [[INF] * n_stops for _ in range(K + 1)]
    best = [INF] * n_serv
    result = [None] * len(departures_s)
    acc = list(zip(list(acc_stops), list(acc_s), strict=True))

    def leaves(p, a, old):
        i = bisect_left(sdep[p], a)
        return i < len(sdep[p]) and sdep[p][i] < old

    def route_leaves(r, pos, a, old):
        L = rsp[r + 1] - rsp[r]
        nt = rtp[r + 1] - rtp[r]
        base = rst[r] + pos
        lo, h = 0, nt
        while lo < h:
            mid = (lo + h) // 2
            if departure[base + mid * L] >= a:
                h = mid
            else:
                lo = mid + 1
        return lo < nt and departure[base + lo * L] < old

    def lower(lab, k, p, a):
        j = k
        while j <= K and a < lab[j][p]:
            lab[j][p] = a
            j += 1
        return j > K

    for di in range(len(departures_s) - 1, -1, -1):
        t = int(departures_s[di])
        limit = min(t + max_trip_s, max(best) - 1) if best else t + max_trip_s
        marked = {}
        for p, s in acc:
            a = t + int(s)
            old = tau[0][p]
            if a <= limit and a < old:
                lower(tau, 0, p, a)
                # boarding from p changes only if a vehicle leaves p in [a, old)
                if p not in marked and leaves(p, a, old):
                    marked[p] = old
        for k in range(1, K + 1):
            if not marked:
                break
            queue = {}
            for p, old in marked.items():
                lab = tau[k - 1][p]
                for e in range(srp[p], srp[p + 1]):
                    r, pos = sr[e], spos[e]
                    if not route_leaves(r, pos, lab, old):
                        continue
                    if r not in queue or pos < queue[r]:
                        queue[r] = pos
            marked = {}
            rmarked = set()
            for r, start in queue.items():
                s0 = rsp[r]
                L = rsp[r + 1] - s0
                nt = rtp[r + 1] - rtp[r]
                base = rst[r]
                trip = -1
                for i in range(start, L):
                    p = rs[s0 + i]
                    if trip >= 0:
                        a = arrival[base + trip * L + i]
                        if a <= limit and a < ride[k][p]:
                            if lower(ride, k, p, a):
                                for v in range(n_serv):
                                    if eg[p][v] < INF and a + eg[p][v] < best[v]:
                                        best[v] = a + eg[p][v]
                            old = tau[k][p]
                            if a < old:
                                lower(tau, k, p, a)
                                if p not in marked and leaves(p, a, old):
                                    marked[p] = old
                            rmarked.add(p)
                    if i == L - 1:
                        break
                    prev = tau[k - 1][p]
                    if prev == INF or (trip >= 0 and prev > departure[base + trip * L + i]):
                        continue
                    hi = trip if trip >= 0 else nt - 1
                    lo, h = 0, hi + 1
                    while lo < h:
                        mid = (lo + h) // 2
                        if departure[base + mid * L + i] >= prev:
                            h = mid
                        else:
                            lo = mid + 1
                    if lo <= hi:
                        trip = lo
            for p in rmarked:
                for e in range(tp[p], tp[p + 1]):
                    if ts[e] < 0:
                        continue
                    q = tto[e]
                    a = ride[k][p] + ts[e]
                    old = tau[k][q]
                    if a <= limit and a < old:
                        lower(tau, k, q, a)
                        if q not in marked and leaves(q, a, old):
                            marked[q] = old
        result[di] = [(b - t) if b - t <= max_trip_s else INF for b in best]
    return result


def write_feed(path, files: dict[str, str]):
    """Write GTFS text tables (``{"stops.txt": "stop_id,...\\n..."}``) into a zip at ``path``.

    For tests that build small feeds in code."""
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text.strip() + "\n")
    return path


def random_feed(rng, stop_lonlat, *, n_routes=8, start_s=6 * 3600 + 1800, end_s=10 * 3600,
                loops=True, minutes=False) -> dict[str, str]:
    """A random feed over the given stop coordinates: routes with random stop sequences
    (one visiting a stop twice when ``loops``), trips every few minutes with random run
    and dwell times, some of them express trips that overtake the previous one.

    ``minutes``: every time on a whole minute and a fifth of the hops taking no time, as in
    feeds published at minute precision (so vehicles arrive and leave at the same second
    at the same stops, and zero-duration hops chain across trips)."""
    unit = 60 if minutes else 1

    def hms(s):
        return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"

    n = len(stop_lonlat)
    stops = ["stop_id,stop_name,stop_lat,stop_lon"] + [
        f"s{i},Stop {i},{lat:.7f},{lon:.7f}" for i, (lon, lat) in enumerate(stop_lonlat)]
    routes = ["route_id,route_short_name,route_type"]
    trips = ["route_id,service_id,trip_id"]
    st = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    for r in range(n_routes):
        routes.append(f"r{r},R{r},{[3, 0, 1, 2, 1501][r % 5]}")
        L = int(rng.integers(4, 11))
        seq = list(rng.choice(n, size=L, replace=False))
        if loops and r == 0:
            seq.append(seq[1])
        hops = 60 * rng.integers(0, 5, size=len(seq) - 1) if minutes else rng.integers(60, 300, size=len(seq) - 1)
        t = start_s + int(rng.integers(0, 600)) // unit * unit
        k = 0
        while t < end_s:
            speed = 0.5 if rng.random() < 0.2 else 1.0  # express trips overtake
            trips.append(f"r{r},ALL,t{r}_{k}")
            cur = t
            for i, sid in enumerate(seq):
                dwell = 60 * int(rng.integers(0, 2)) if minutes else int(rng.integers(0, 40))
                st.append(f"t{r}_{k},{hms(cur)},{hms(cur + dwell)},s{sid},{i + 1}")
                cur += dwell
                if i < len(hops):
                    cur += int(hops[i] * speed) // unit * unit
            t += int(rng.integers(120, 900)) // unit * unit
            k += 1
    cal = ["service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date",
           "ALL,1,1,1,1,1,1,1,20240101,20241231"]
    return {"agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,A,http://a.org,UTC",
            "stops.txt": "\n".join(stops), "routes.txt": "\n".join(routes),
            "trips.txt": "\n".join(trips), "stop_times.txt": "\n".join(st),
            "calendar.txt": "\n".join(cal)}


def grid_network(n: int = 12, spacing_m: float = 100.0, crs: str = "EPSG:32722",
                 x0: float = 480000.0, y0: float = 6670000.0):
    """A square street grid as a :class:`careblocks.network.WalkNetwork` (for tests)."""
    from careblocks.network.graph import WalkNetwork

    idx = np.arange(n * n).reshape(n, n)
    a = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    b = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    o = np.lexsort((dst, src))
    src, dst = src[o], dst[o]
    indptr = np.zeros(n * n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n * n), out=indptr[1:])
    xx, yy = np.meshgrid(np.arange(n) * spacing_m + x0, np.arange(n) * spacing_m + y0)
    return WalkNetwork(indptr=indptr, indices=dst.astype(np.int32),
                       length_m=np.full(dst.size, spacing_m), x=xx.ravel().astype(np.float64),
                       y=yy.ravel().astype(np.float64), node_id=np.arange(n * n, dtype=np.int64),
                       crs=crs)
