"""Walking access: the origins x services adapter over the graph search of :mod:`careblocks.network.search`.

:func:`walk_access` is the thin adapter the pipeline calls: arrays of origin and facility
nodes and snap distances in, one :class:`pandas.DataFrame` of access columns out. It runs the
bounded searches of all services first (counts, and on the way the exact nearest time of
every node within the threshold of some facility), then one nearest search per service that
starts only from the border of that set and from facilities beyond it. Unreachable is ``NaN``
in the minutes columns (never a sentinel such as 9999).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from careblocks import columns as C
from careblocks._jit import numba
from careblocks.errors import InputDataError
from careblocks.network._kernels import _seeded_nearest_kernel
from careblocks.network.cost import WalkCost
from careblocks.network.search import _counts_core, _graph, _sources, nearest_times

__all__ = ["walk_access"]



def _counts_chunk(lo: int, hi: int, *, graph, src, off, grp, n_groups: int, limit: float,
                  targets) -> tuple[np.ndarray, np.ndarray]:
    """Counts (groups x origins) and nearest seconds within the limit (groups x nodes) of
    the searches from facilities ``lo..hi-1``."""
    indptr, indices, w = graph
    return _counts_core(indptr, indices, w, src[lo:hi], off[lo:hi], grp[lo:hi], n_groups, limit,
                        targets[0], targets[1], True)


def walk_access(network: Any, origins_nodes, origins_snap_m,
                services_by_type: Mapping[str, tuple[Any, Any]], *, cost: WalkCost,
                threshold_min: float, walk_profiles: Mapping[str, WalkCost] | None = None,
                index=None) -> pd.DataFrame:
    """Walking access of every origin to every service type.

    Travel time = origin snap leg + network time + facility snap leg, the snap legs at the
    walking speed. One pass of bounded searches (all services together) gives the counts and
    the exact nearest times within the threshold; one multi-source search per service,
    seeded from the border of that set, gives the nearest times beyond it.

    Parameters
    ----------
    network : careblocks.network.graph.WalkNetwork
        Anything with ``indptr``, ``indices`` and ``length_m``.
    origins_nodes, origins_snap_m : array-like
        Node index and snap distance (metres) of each origin.
    services_by_type : mapping of str to (nodes, snap_m)
        Per service type, the facilities' node indices and snap distances (metres). A type
        with no facilities gives NaN minutes and zero counts.
    cost : careblocks.network.cost.WalkCost
        The walking cost (edge seconds, snap legs).
    threshold_min : float
        Threshold for the counts (inclusive).
    walk_profiles : mapping of str to WalkCost, optional
        Carer travel profiles, e.g. ``{"stroller": WalkCost(3.6, slope="tobler",
        avoid=("steps",))}``, adding ``walk_min_<service>_<profile>``: one search per service
        on the profile's directed edge seconds (NaN where it has no route). When neither the
        profile nor ``cost`` differs by direction on this network, every leg scales with
        1/speed: the base minutes times :meth:`WalkCost.slowdown` (no extra search).
    index : array-like, optional
        Index of the returned frame (default a RangeIndex over origins).

    Returns
    -------
    pandas.DataFrame
        Per service ``walk_min_<service>`` (float, NaN when unreachable) and
        ``n_within_<T>min_<service>`` (int32), then ``walk_min_<service>_<profile>`` for each
        profile, then ``services_within_<T>min`` (how many service types have at least one
        facility within the threshold).
    """
    if not threshold_min >= 0:
        raise InputDataError(f"access.threshold_min: {threshold_min!r}; use minutes >= 0")
    profiles = dict(walk_profiles or {})
    # the searches start at the facilities: inbound weights give the trips TO them
    indptr, indices, w = _graph(network.indptr, network.indices, cost.inbound_seconds(network))
    n = indptr.size - 1
    onodes, oleg = _sources(origins_nodes, cost.leg_seconds(origins_snap_m), n, what="origins")
    limit = cost.limit_s(threshold_min)
    names = list(services_by_type)

    all_src, all_off, all_grp = [], [], []
    for g, name in enumerate(names):
        nodes, snap_m = services_by_type[name]
        s, o = _sources(nodes, cost.leg_seconds(snap_m), n, what=f"services.{name} facilities")
        all_src.append(s)
        all_off.append(o)
        all_grp.append(np.full(s.size, g, np.int64))

    # counts: one pass of bounded searches for all services, which also gives the exact
    # nearest time of every node within the threshold of some facility; the nearest search
    # of each service then starts from the border of that set (cheaper than a full search)
    if names and np.concatenate(all_src).size:
        # one bounded search per facility: in chunks of facilities, here or on a Dask
        # cluster; counts add up and nearest times take the minimum over the chunks
        from careblocks.compute import map_chunks

        src = np.concatenate(all_src)
        parts = map_chunks(_counts_chunk, src.size, {
            "graph": (indptr, indices, w), "src": src, "off": np.concatenate(all_off),
            "grp": np.concatenate(all_grp), "n_groups": len(names), "limit": limit,
            "targets": (onodes, oleg)}, label="walk access")
        counts, best = parts[0]
        for c, b in parts[1:]:
            counts = counts + c
            best = np.minimum(best, b)
    else:
        counts = np.zeros((len(names), onodes.size), np.int32)
        best = np.full((len(names), n), np.inf)

    def _near(g):
        if all_src[g].size == 0:
            return np.full(n, np.inf)
        return _seeded_nearest_kernel(indptr, indices, w, best[g], all_src[g], all_off[g])

    # the kernels release the GIL, so the services run side by side on the available cores
    if len(names) > 1 and numba.get_num_threads() > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(len(names), numba.get_num_threads())) as ex:
            near = list(ex.map(_near, range(len(names))))
    else:
        near = [_near(g) for g in range(len(names))]

    cols: dict[str, np.ndarray] = {}
    within = np.zeros(onodes.size, np.int32)
    base: dict[str, np.ndarray] = {}
    for g, name in enumerate(names):
        total_s = near[g][onodes] + oleg
        minutes = total_s / 60.0
        minutes[~np.isfinite(minutes)] = np.nan
        base[name] = minutes
        cols[C.walk_min(name)] = minutes
        cols[C.n_within(name, threshold_min)] = counts[g]
        within += counts[g] > 0
    base_same = cost.speed_factor(network) is None
    jobs = []  # (profile, service index, weights, slowdown): one nearest search each
    for pname, pcost in profiles.items():
        if base_same and pcost.speed_factor(network) is None:  # flat both: every leg scales
            for name in names:
                cols[C.walk_min(name, pname)] = base[name] * cost.slowdown(pcost)
            continue
        pw = _graph(indptr, indices, pcost.inbound_seconds(network))[2]
        for g, name in enumerate(names):
            cols[C.walk_min(name, pname)] = np.full(onodes.size, np.nan)
            if all_src[g].size:
                jobs.append((pname, g, pw, cost.slowdown(pcost)))

    def _profile_near(job):
        pname, g, pw, slow = job
        d = nearest_times(indptr, indices, pw, all_src[g], all_off[g] * slow)
        m = (d[onodes] + oleg * slow) / 60.0
        m[~np.isfinite(m)] = np.nan
        return C.walk_min(names[g], pname), m

    if len(jobs) > 1 and numba.get_num_threads() > 1:  # the kernels release the GIL
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(len(jobs), numba.get_num_threads())) as ex:
            done = list(ex.map(_profile_near, jobs))
    else:
        done = [_profile_near(j) for j in jobs]
    cols.update(done)
    cols[C.services_within(threshold_min)] = within
    return pd.DataFrame(cols, index=index if index is not None else pd.RangeIndex(onodes.size))
