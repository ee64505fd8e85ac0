"""Walking access: shortest-path kernels on CSR arrays, and the origins x services adapter.

The numeric cores take a graph as three CSR arrays (``indptr`` int64, ``indices`` int32,
``weights_s`` float64 seconds, both directions of every edge stored) and compile with numba:

- :func:`nearest_times` / :func:`nearest_with_source`: ONE multi-source Dijkstra per call
  (binary heap), each source starting at its own offset (the facility's snap leg).
- :func:`counts_within`, :func:`counts_within_at`: how many sources reach each node (or each
  target, with its own extra leg) within a limit. One bounded search per source, run in
  parallel over sources; each search touches only the nodes it reaches and resets only those
  entries of a per-thread distance array (no dense ``sources x nodes`` array is ever built).
- :func:`reach_sparse`: the same bounded searches, returned as a ``scipy.sparse.csr_matrix``
  (rows = sources, columns = nodes, data = seconds) for catchments, coverage matrices of site
  selection and transit access/egress legs.

Conventions shared by every kernel:

- Limits are **inclusive**: a node whose travel time equals ``limit_s`` exactly is reached.
- A source whose own offset exceeds the limit reaches nothing.
- Unreachable is ``inf`` in seconds arrays, ``-1`` in position arrays, ``NaN`` in the
  adapter's minutes columns (never a sentinel such as 9999).
- The graph is undirected (both directions stored), so source -> node equals node -> source.

:func:`walk_access` is the thin adapter the pipeline calls: arrays of origin and facility
nodes and snap distances in, one :class:`pandas.DataFrame` of access columns out. It runs the
bounded searches of all services first (counts, and on the way the exact nearest time of
every node within the threshold of some facility), then one nearest search per service that
starts only from the border of that set and from facilities beyond it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp

from careblocks._access_kernels import (
    _counts_kernel,
    _multi_source_kernel,
    _reach_kernel,
    _scatter_rows,
    _seeded_nearest_kernel,
)
from careblocks.errors import InputDataError

__all__ = [
    "REACH_ZERO_S",
    "counts_within",
    "counts_within_at",
    "format_threshold",
    "nearest_times",
    "nearest_with_source",
    "reach_sparse",
    "walk_access",
]

#: Seconds stored by :func:`reach_sparse` for a node reached in exactly 0 s (a source's own
#: node when its offset is 0). A true 0 would be an explicit zero that scipy drops in
#: ``eliminate_zeros``, ``M != 0`` or ``M.astype(bool).sum()``; one microsecond survives all
#: of those and stays nonzero after converting to minutes or hours.
REACH_ZERO_S = 1e-6

_REACH_MIN_CAP = 1 << 16  # entries per thread buffer in reach_sparse (grows on demand)


# --------------------------------------------------------------------------- validation
def _graph(indptr, indices, weights_s):
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    w = np.ascontiguousarray(weights_s, dtype=np.float64)
    if indptr.ndim != 1 or indptr.size < 1 or indptr[0] != 0 or indptr[-1] != indices.size:
        raise InputDataError(
            "indptr: not a CSR row pointer (must start at 0 and end at len(indices)); "
            "build the graph with careblocks.network or scipy.sparse.csr_matrix"
        )
    if w.shape != indices.shape:
        raise InputDataError(
            f"weights_s: {w.size} weights for {indices.size} edges; pass one weight per CSR entry"
        )
    n = indptr.size - 1
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise InputDataError(f"indices: node index outside 0..{n - 1}; rebuild the CSR arrays")
    if w.size and not (w.min() >= 0.0):  # also catches NaN
        raise InputDataError(
            "weights_s: negative or NaN edge seconds; edge times must be >= 0 "
            "(check lengths and the walking speed)"
        )
    return indptr, indices, w


def _sources(sources, offsets, n, what="sources"):
    src = np.ascontiguousarray(sources, dtype=np.int64).reshape(-1)
    if src.size and (src.min() < 0 or src.max() >= n):
        raise InputDataError(
            f"{what}: node index outside 0..{n - 1}; snap points to the same network first"
        )
    if offsets is None:
        off = np.zeros(src.size, np.float64)
    else:
        off = np.ascontiguousarray(offsets, dtype=np.float64).reshape(-1)
        if off.shape != src.shape:
            raise InputDataError(
                f"{what} offsets: {off.size} offsets for {src.size} {what}; pass one per {what[:-1]}"
            )
        if off.size and not (off.min() >= 0.0):
            raise InputDataError(f"{what} offsets: negative or NaN seconds; offsets must be >= 0")
    return src, off


def _limit(limit_s) -> float:
    limit = float(limit_s)
    if math.isnan(limit) or limit < 0:
        raise InputDataError(f"limit_s: {limit_s!r} is not a time limit; pass seconds >= 0 or inf")
    return limit


def _n_slots() -> int:
    return max(int(numba.config.NUMBA_NUM_THREADS), int(numba.get_num_threads()), 1)


# --------------------------------------------------------------------------- public cores
def nearest_with_source(indptr, indices, weights_s, sources, source_offsets_s=None, *,
                        limit_s: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """Travel time from every node to its nearest source, and which source that is.

    One multi-source Dijkstra: every source starts at its offset (e.g. the facility's snap
    leg in seconds), so the result is ``min over sources of offset + network time``.

    Parameters
    ----------
    indptr, indices, weights_s : numpy.ndarray
        CSR graph: row pointer (int64, ``n + 1``), target node per entry (int32) and edge
        seconds per entry (float64, >= 0). Both directions of every edge stored.
    sources : array-like of int
        Source node indices; repeats are allowed (the smaller offset wins).
    source_offsets_s : array-like of float, optional
        Seconds already spent when a source's search starts (default 0).
    limit_s : float
        Stop at this many seconds (inclusive); nodes beyond stay unreachable.

    Returns
    -------
    dist_s : numpy.ndarray
        float64 seconds per node, ``inf`` when no source reaches it within ``limit_s``.
    source_pos : numpy.ndarray
        int64 position in ``sources`` of the nearest source, ``-1`` when unreachable. Ties
        are broken deterministically (first settled).
    """
    indptr, indices, w = _graph(indptr, indices, weights_s)
    src, off = _sources(sources, source_offsets_s, indptr.size - 1)
    return _multi_source_kernel(indptr, indices, w, src, off, _limit(limit_s), True)


def nearest_times(indptr, indices, weights_s, sources, source_offsets_s=None, *,
                  limit_s: float = np.inf) -> np.ndarray:
    """Seconds from every node to its nearest source (``inf`` when unreachable).

    Same search and parameters as :func:`nearest_with_source`, returning only the times.
    """
    indptr, indices, w = _graph(indptr, indices, weights_s)
    src, off = _sources(sources, source_offsets_s, indptr.size - 1)
    return _multi_source_kernel(indptr, indices, w, src, off, _limit(limit_s), False)[0]


def counts_within_at(indptr, indices, weights_s, sources, source_offsets_s, limit_s,
                     target_nodes, target_offsets_s=None, *,
                     source_groups=None) -> np.ndarray:
    """How many sources reach each target within ``limit_s``, per group of sources.

    Source ``i`` counts for target ``k`` when ``source_offsets_s[i] + network time +
    target_offsets_s[k] <= limit_s`` (inclusive). Targets sit on nodes and carry their own
    extra leg (an origin's snap leg), so counts agree with ``nearest + origin leg <= limit``.

    Parameters
    ----------
    indptr, indices, weights_s, sources, source_offsets_s, limit_s
        As in :func:`counts_within`.
    target_nodes : array-like of int
        Node of each target (several targets may share a node).
    target_offsets_s : array-like of float, optional
        Extra seconds per target (default 0).
    source_groups : array-like of int, optional
        Group label ``0..G-1`` per source (e.g. the service type); one search pass counts all
        groups at once. Default: one group.

    Returns
    -------
    numpy.ndarray
        int32 array of shape ``(G, n_targets)``.
    """
    indptr, indices, w = _graph(indptr, indices, weights_s)
    n = indptr.size - 1
    src, off = _sources(sources, source_offsets_s, n)
    tnodes, toff = _sources(target_nodes, target_offsets_s, n, what="targets")
    limit = _limit(limit_s)
    if source_groups is None:
        groups = np.zeros(src.size, np.int64)
        n_groups = 1
    else:
        groups = np.ascontiguousarray(source_groups, dtype=np.int64).reshape(-1)
        if groups.shape != src.shape or (groups.size and groups.min() < 0):
            raise InputDataError("source_groups: one label >= 0 per source is needed")
        n_groups = int(groups.max()) + 1 if groups.size else 1
    if src.size == 0 or tnodes.size == 0:
        return np.zeros((n_groups, tnodes.size), np.int32)
    return _counts_core(indptr, indices, w, src, off, groups, n_groups, limit, tnodes, toff,
                        False)[0]


def _counts_core(indptr, indices, w, src, off, groups, n_groups, limit, tnodes, toff,
                 want_min):
    """Validated arrays in; (counts per group and target, min seconds per group and node)."""
    n = indptr.size - 1
    order = np.argsort(tnodes, kind="stable")
    tptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(tnodes, minlength=n), out=tptr[1:])
    counts, best = _counts_kernel(indptr, indices, w, src, off, groups, n_groups, limit,
                                  tptr, toff[order], tnodes.size, _n_slots(),
                                  np.argsort(src, kind="stable"), want_min)
    out = np.empty_like(counts)
    out[:, order] = counts
    return out, best


def counts_within(indptr, indices, weights_s, sources, source_offsets_s, limit_s) -> np.ndarray:
    """How many sources reach each node within ``limit_s`` seconds (inclusive).

    One bounded Dijkstra per source, in parallel over sources; each touches only the nodes
    it reaches. Memory is O(nodes + edges) per thread, whatever the number of sources.

    Parameters
    ----------
    indptr, indices, weights_s : numpy.ndarray
        CSR graph (see :func:`nearest_with_source`).
    sources : array-like of int
        Source node indices; a repeated node counts once per occurrence.
    source_offsets_s : array-like of float or None
        Seconds spent before each source's search starts (snap leg); None for zeros.
    limit_s : float
        Time limit in seconds, inclusive.

    Returns
    -------
    numpy.ndarray
        int32 count per node.
    """
    indptr, indices, w = _graph(indptr, indices, weights_s)
    n = indptr.size - 1
    return counts_within_at(indptr, indices, w, sources, source_offsets_s, limit_s,
                            np.arange(n, dtype=np.int64))[0]


def reach_sparse(indptr, indices, weights_s, sources, source_offsets_s, limit_s, *,
                 block_size: int = 1024) -> sp.csr_matrix:
    """Seconds from each source to every node it reaches within ``limit_s``, as sparse rows.

    Parameters
    ----------
    indptr, indices, weights_s, sources, source_offsets_s, limit_s
        As in :func:`counts_within`.
    block_size : int
        Sources per parallel call (bounds the temporary buffers); results do not depend on it.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape ``(len(sources), n_nodes)``, sorted column indices. ``data`` is seconds
        (offset + network time). A node reached in exactly 0 s is stored as
        :data:`REACH_ZERO_S` (1e-6 s) rather than an explicit zero, so the sparsity pattern is
        exactly the reach set and survives ``eliminate_zeros()``, ``M != 0`` and
        ``astype(bool)``.
    """
    indptr, indices, w = _graph(indptr, indices, weights_s)
    n = indptr.size - 1
    src, off = _sources(sources, source_offsets_s, n)
    limit = _limit(limit_s)
    ns = src.size
    # search in node order for cache locality (see _counts_kernel), rows put back at the end
    order = np.argsort(src, kind="stable")
    src, off = src[order], off[order]
    rowlen = np.zeros(ns, np.int64)
    pieces: list[tuple[int, np.ndarray, np.ndarray]] = []
    slots = max(int(numba.get_num_threads()), 1)
    cap = max(n, _REACH_MIN_CAP)
    work = [(a, min(a + block_size, ns)) for a in range(0, ns, max(block_size, 1))]
    while work:
        a, b = work.pop(0)
        bounds = np.linspace(a, b, slots + 1).astype(np.int64)
        lo, hi = bounds[:-1].copy(), bounds[1:].copy()
        rl, done, fill, oi, od = _reach_kernel(indptr, indices, w, src, off, limit, lo, hi,
                                               cap, REACH_ZERO_S)
        redo = []
        for t in range(slots):
            rowlen[lo[t]:done[t]] = rl[lo[t]:done[t]]
            if fill[t]:
                pieces.append((int(lo[t]), oi[t, : fill[t]].copy(), od[t, : fill[t]].copy()))
            if done[t] < hi[t]:
                redo.append((int(done[t]), int(hi[t])))
        if redo:
            rows = int(sum(done - lo))
            mean = fill.sum() / max(rows, 1)
            cap = max(cap, int(1.3 * mean * max(hi - lo)) + n)
            work = redo + work
    ptr = np.zeros(ns + 1, np.int64)
    np.cumsum(rowlen[np.argsort(order)], out=ptr[1:])  # row lengths in the caller's order
    cols = np.empty(ptr[-1], np.int32)
    data = np.empty(ptr[-1], np.float64)
    while pieces:
        lo, pi, pd_ = pieces.pop()
        _scatter_rows(cols, data, ptr, order, rowlen, lo, pi, pd_)
    m = sp.csr_matrix((data, cols, ptr), shape=(ns, n))
    m.has_sorted_indices = True
    return m


# --------------------------------------------------------------------------- adapter
def format_threshold(threshold_min: float) -> str:
    """``15.0 -> "15"``, ``7.5 -> "7.5"``: the threshold as it appears in column names."""
    t = float(threshold_min)
    return str(int(t)) if t.is_integer() else repr(t)


def walk_access(network: Any, origins_nodes, origins_snap_m,
                services_by_type: Mapping[str, tuple[Any, Any]], *, speed_kmh: float,
                threshold_min: float, walk_profiles: Mapping[str, float] | None = None,
                index=None) -> pd.DataFrame:
    """Walking access of every origin to every service type.

    Travel time = origin snap leg + network time + facility snap leg, the snap legs at the
    walking speed. One pass of bounded searches (all services together) gives the counts and
    the exact nearest times within the threshold; one multi-source search per service,
    seeded from the border of that set, gives the nearest times beyond it.

    Parameters
    ----------
    network : careblocks.network.WalkNetwork
        Anything with ``indptr``, ``indices`` and ``edge_seconds(speed_kmh)``.
    origins_nodes, origins_snap_m : array-like
        Node index and snap distance (metres) of each origin.
    services_by_type : mapping of str to (nodes, snap_m)
        Per service type, the facilities' node indices and snap distances (metres). A type
        with no facilities gives NaN minutes and zero counts.
    speed_kmh : float
        Walking speed.
    threshold_min : float
        Threshold for the counts (inclusive).
    walk_profiles : mapping of str to float, optional
        Extra named speeds (km/h), e.g. ``{"stroller": 3.6}``, adding
        ``walk_min_<service>_<profile>``. Every leg scales with 1/speed, so these are the
        base minutes times ``speed_kmh / profile_speed`` (no extra search).
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
    if not speed_kmh > 0:
        raise InputDataError(f"walk.speed_kmh: {speed_kmh!r} is not a speed; use a value > 0")
    if not threshold_min >= 0:
        raise InputDataError(f"access.threshold_min: {threshold_min!r}; use minutes >= 0")
    profiles = dict(walk_profiles or {})
    for name, v in profiles.items():
        if not v > 0:
            raise InputDataError(f"walk.profiles.{name}: {v!r} is not a speed; use a value > 0")
    mps = speed_kmh / 3.6
    indptr, indices, w = _graph(network.indptr, network.indices, network.edge_seconds(speed_kmh))
    n = indptr.size - 1
    onodes, oleg = _sources(origins_nodes, np.asarray(origins_snap_m, np.float64) / mps, n,
                            what="origins")
    limit = float(threshold_min) * 60.0
    tname = format_threshold(threshold_min)
    names = list(services_by_type)

    all_src, all_off, all_grp = [], [], []
    for g, name in enumerate(names):
        nodes, snap_m = services_by_type[name]
        s, o = _sources(nodes, np.asarray(snap_m, np.float64) / mps, n,
                        what=f"services.{name} facilities")
        all_src.append(s)
        all_off.append(o)
        all_grp.append(np.full(s.size, g, np.int64))

    # counts: one pass of bounded searches for all services, which also gives the exact
    # nearest time of every node within the threshold of some facility; the nearest search
    # of each service then starts from the border of that set (cheaper than a full search)
    if names and np.concatenate(all_src).size:
        counts, best = _counts_core(indptr, indices, w, np.concatenate(all_src),
                                    np.concatenate(all_off), np.concatenate(all_grp),
                                    len(names), limit, onodes, oleg, True)
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
        cols[f"walk_min_{name}"] = minutes
        cols[f"n_within_{tname}min_{name}"] = counts[g]
        within += counts[g] > 0
    for pname, pspeed in profiles.items():
        for name in names:
            cols[f"walk_min_{name}_{pname}"] = base[name] * (speed_kmh / pspeed)
    cols[f"services_within_{tname}min"] = within
    return pd.DataFrame(cols, index=index if index is not None else pd.RangeIndex(onodes.size))
