"""The transit adapter the pipeline calls: config + network -> timetable -> access minutes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from careblocks.config import TransitConfig
from careblocks.errors import ConfigError
from careblocks.io.gtfs import ArchiveLimits, gtfs_text_bytes, parse_date, parse_hhmm, read_gtfs
from careblocks.network.cost import WalkCost
from careblocks.network.search import REACH_ZERO_S, nearest_times, reach_sparse
from careblocks.transit.profile import StopProfiles, profile_access, stop_profiles
from careblocks.transit.raptor import INF32, nearest_rank_percentiles
from careblocks.transit.timetable import Timetable, build_timetable


def departure_times(cfg: TransitConfig) -> np.ndarray:
    """int32 departure seconds of the window: ``window_start`` up to ``window_end``
    (exclusive, like r5py's ``departure_time_window``) every ``step_min``."""
    t0 = parse_hhmm(cfg.window_start, key="transit.window_start")
    t1 = parse_hhmm(cfg.window_end, key="transit.window_end")
    if t1 <= t0:
        raise ConfigError(
            f"transit.window_end: {cfg.window_end} is not after window_start {cfg.window_start}; "
            "give a later end time"
        )
    return np.arange(t0, t1, 60 * cfg.step_min, dtype=np.int32)


def load_timetable(cfg: TransitConfig, network: Any, *, area_4326: Any = None, crs: str | None = None,
                   cost: WalkCost) -> tuple[Timetable, dict[str, Any]]:
    """Read the configured feeds for ``transit.date`` and build the timetable arrays.

    Only trips running between ``window_start`` and ``window_end + max_trip_min`` are kept.

    Parameters
    ----------
    cfg
        ``config.transit``.
    network
        The :class:`~careblocks.network.WalkNetwork` (its ``crs`` is used; ``crs`` is
        accepted for symmetry with the other loaders and must match it when given).
    area_4326
        Study-area polygon in EPSG:4326; stops outside are dropped with a warning.
    cost
        The fastest walking cost that will query the timetable: transfers are kept within
        the metres it walks in ``max_transfer_walk_min`` (slower costs then drop the longer
        ones at query time).

    Returns
    -------
    timetable, stats
        ``stats`` for the run metadata: ``feeds`` (per feed: valid dates, trips on the date,
        frequency trips, interpolated stop times, route types), ``date``, ``trips``,
        ``stops_kept``, ``stops_dropped_outside_area``, ``routes``, ``transfers``,
        ``stops_far_from_network``, ``timetable_bytes``, ``gtfs_text_bytes``, ``seconds``.
    """
    if not cfg.feeds:
        raise ConfigError("transit.feeds: transit is enabled but no GTFS feed is given; list GTFS zip files")
    if cfg.date is None:
        raise ConfigError("transit.date: no service date given; set it to a weekday inside the feed, e.g. 2019-05-13")
    if crs is not None and str(crs) != str(network.crs):
        raise ConfigError(f"study.crs: {crs} differs from the network CRS {network.crs}; build both in one CRS")
    t = time.perf_counter()
    deps = departure_times(cfg)
    parse_date(cfg.date)
    window = (float(deps[0]), float(deps[-1]) + cfg.max_trip_min * 60.0)
    tables, stats = read_gtfs(cfg.feeds, cfg.date, area_4326=area_4326, window_s=window,
                              modes=cfg.modes, limits=ArchiveLimits.from_config(cfg))
    tt, tstats = build_timetable(tables, network,
                                 max_transfer_m=cost.metres_within(cfg.max_transfer_walk_min))
    stats.update(tstats)
    stats["gtfs_text_bytes"] = gtfs_text_bytes(cfg.feeds)
    stats["seconds"] = round(time.perf_counter() - t, 3)
    return tt, stats


#: origins per walking search of :func:`_access_legs`: the search keeps every node an origin
#: reaches (thousands within a 15-minute walk), so a whole city at once would not fit in memory
ACCESS_BLOCK = 4096


def _access_legs(network: Any, tt: Timetable, origin_nodes, origin_snap_m, cost: WalkCost, limit_s: float):
    """CSR (per origin) of stops within ``limit_s`` on foot at ``cost``: network + both
    snap legs. Origins are searched :data:`ACCESS_BLOCK` at a time and only the stops kept,
    so memory follows the stops reached, not the street nodes."""
    w = cost.edge_seconds(network)
    on = np.asarray(origin_nodes, np.int64)
    off = cost.leg_seconds(origin_snap_m)
    order = np.argsort(tt.stop_node, kind="stable")
    sn = tt.stop_node[order]
    rows, stops, secs_ = [], [], []
    for b0 in range(0, max(on.size, 1), ACCESS_BLOCK):
        b1 = min(b0 + ACCESS_BLOCK, on.size)
        R = reach_sparse(network.indptr, network.indices, w, on[b0:b1], off[b0:b1], limit_s).tocsr()
        R.sort_indices()
        coo = R.tocoo()
        del R
        d = np.where(coo.data <= REACH_ZERO_S, 0.0, coo.data)
        lo = np.searchsorted(sn, coo.col, "left")
        hi = np.searchsorted(sn, coo.col, "right")
        cnt = hi - lo
        rep = np.repeat(np.arange(coo.row.size), cnt)
        pos = np.arange(rep.size) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
        stop = order[pos]
        sec = d[rep] + cost.leg_seconds(tt.stop_snap_m[stop])
        keep = sec <= limit_s
        rows.append(coo.row[rep][keep] + b0)
        stops.append(stop[keep])
        secs_.append(sec[keep])
    row, stop, secs = np.concatenate(rows), np.concatenate(stops), np.concatenate(secs_)
    o = np.lexsort((stop, row))
    row, stop, secs = row[o], stop[o], secs[o]
    ptr = np.zeros(on.size + 1, np.int64)
    np.cumsum(np.bincount(row, minlength=on.size), out=ptr[1:])
    return ptr, stop.astype(np.int32), np.ceil(secs).astype(np.int32)


def transit_access(network: Any, timetable: Timetable, origin_nodes, origin_snap_m,
                   services: Mapping[str, tuple[Any, Any]], cfg: TransitConfig, *,
                   cost: WalkCost, include_walk: bool = True,
                   return_seconds: bool = False, cap_s=None) -> dict[str, np.ndarray]:
    """Walk + transit travel minutes from each origin to the nearest facility of each service.

    Parameters
    ----------
    network
        The walking network (CSR arrays).
    timetable
        From :func:`load_timetable`.
    origin_nodes, origin_snap_m
        Network node and snap distance of each origin.
    services
        ``{service: (facility_nodes, facility_snap_m)}``.
    cfg
        ``config.transit``: window, step, percentiles, walk limits, max transfers / trip.
    cost
        Walking cost of every walk leg (access, transfers, egress). Transfers are stored in
        metres and converted by this cost (:meth:`Timetable.transfer_seconds`); those over
        ``max_transfer_walk_min`` at this cost are dropped.
    include_walk
        Count walking all the way as an option (r5py's TRANSIT mode does): the result is then
        never slower than walking alone within ``max_trip_min``.
    return_seconds
        Also return the raw per-departure seconds under ``"<service>__seconds"``
        (int32 ``n_origins x n_departures``, 2**31 - 1 = unreachable).
    cap_s
        Optional seconds per origin (``inf``: none) at and beyond which a time does not
        matter to the caller (e.g. today's time, when only a faster new option counts). Each
        departure minute's time is taken as ``min(time, cap)``; a percentile not below the
        cap is NaN, one below it is exact (a nearest rank commutes with that ``min``). Raw
        seconds are then ``min(time, cap)``.

    Notes
    -----
    Percentiles use the nearest rank over the departure minutes (``ceil(p/100 * n)``-th
    shortest time), with an unreachable minute counted as infinitely long: the reported
    value is always a travel time that occurred, and p-low <= p50 <= p-high.

    Returns
    -------
    dict
        Per service a float64 ``(n_origins, len(cfg.percentiles))`` array of minutes, NaN
        where unreachable within ``max_trip_min``. Column ``j`` is ``cfg.percentiles[j]``.
    """
    deps = departure_times(cfg)
    if len(np.atleast_1d(origin_nodes)) == 0:
        empty = np.empty((0, len(cfg.percentiles)))
        return {name: empty.copy() for name in services}
    walk_s = cost.limit_s(cfg.max_walk_min)
    max_trip_s = int(round(cost.limit_s(cfg.max_trip_min)))
    names = list(services)
    w = cost.inbound_seconds(network)  # searches from the facilities: trips TO them
    n_o = len(np.atleast_1d(origin_nodes))
    egress = np.full((timetable.n_stops, len(names)), INF32, np.int32)
    walk_only = np.full((n_o, len(names)), np.inf)
    on = np.asarray(origin_nodes, np.int64)
    osnap = cost.leg_seconds(origin_snap_m)
    for j, name in enumerate(names):
        fn, fs = services[name]
        fn = np.asarray(fn, np.int64)
        if fn.size == 0:
            continue
        fo = cost.leg_seconds(fs)
        lim = max(walk_s, max_trip_s) if include_walk else walk_s
        dist = nearest_times(network.indptr, network.indices, w, fn, fo, limit_s=lim)
        e = dist[timetable.stop_node] + cost.leg_seconds(timetable.stop_snap_m)
        ok = e <= walk_s
        egress[ok, j] = np.ceil(e[ok]).astype(np.int32)
        if include_walk:
            walk_only[:, j] = dist[on] + osnap
    tsec = timetable.transfer_seconds(cost, cfg.max_transfer_walk_min)
    wo = None
    if include_walk:
        wo = np.where(walk_only <= max_trip_s, np.ceil(walk_only), INF32).astype(np.int64)
    cap = None
    if cap_s is not None:
        c = np.asarray(cap_s, np.float64).reshape(n_o)
        cap = np.where(np.isfinite(c), np.minimum(np.ceil(c), INF32), INF32).astype(np.int64)
        wo = np.repeat(cap[:, None], len(names), axis=1) if wo is None else np.minimum(wo, cap[:, None])
    # services no stop can reach on foot (none mapped, or none near a stop) are reached by
    # walking only: left out of the profile scans (no stop would get an entry)
    live = np.flatnonzero((egress < INF32).any(axis=0))
    # every stop's profile to each service (one backward scan of the timetable per service),
    # then per origin a sweep over its access stops: here or in chunks on the Dask cluster
    prof = None
    if live.size:
        prof = stop_profiles(timetable, tsec, egress[:, live], max_transfers=int(cfg.max_transfers),
                             t_lo=int(deps[0]), t_hi=int(deps[-1]) + max_trip_s)
    from careblocks.compute import map_chunks

    parts = map_chunks(_transit_chunk, n_o, {
        "network": network, "timetable": timetable, "origin_nodes": on,
        "origin_snap_m": np.asarray(origin_snap_m, np.float64), "cost": cost, "walk_s": walk_s,
        "deps": deps, "max_trip_s": max_trip_s, "profiles": prof, "live": live, "walk_only_s": wo,
        "percentiles": tuple(cfg.percentiles), "names": tuple(names), "return_seconds": return_seconds,
    }, keep=("network", "timetable"), label="transit")
    res = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if cap is not None:  # at or beyond the cap: min(time, cap), not a time
        for name in names:
            res[name][res[name] * 60.0 >= cap[:, None] - 1e-6] = np.nan
    return res


def _transit_chunk(lo: int, hi: int, *, network: Any, timetable: Timetable, origin_nodes: np.ndarray,
                   origin_snap_m: np.ndarray, cost: WalkCost, walk_s: float, deps: np.ndarray,
                   max_trip_s: int, profiles: StopProfiles | None, live: np.ndarray,
                   walk_only_s: np.ndarray | None, percentiles: tuple[float, ...],
                   names: tuple[str, ...], return_seconds: bool) -> dict[str, np.ndarray]:
    """:func:`transit_access` of origins ``lo..hi-1`` (access legs, the stop profiles'
    sweep, percentiles)."""
    ptr, acc_stops, acc_s = _access_legs(network, timetable, origin_nodes[lo:hi],
                                         origin_snap_m[lo:hi], cost, walk_s)
    secs = np.full((hi - lo, deps.size, len(names)), INF32, np.int32)
    if live.size:
        # the faster of transit and walking all the way (and the cap), per departure minute
        walk = None if walk_only_s is None else walk_only_s[lo:hi][:, live]
        secs[:, :, live] = profile_access(profiles, ptr, acc_stops, acc_s, deps,
                                          max_trip_s=max_trip_s, walk_s=walk)
    if walk_only_s is not None:
        secs = np.minimum(secs, walk_only_s[lo:hi, None, :]).astype(np.int32)
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        out[name] = nearest_rank_percentiles(secs[:, :, j], percentiles, axis=1)
        if return_seconds:
            out[f"{name}__seconds"] = secs[:, :, j]
    return out
