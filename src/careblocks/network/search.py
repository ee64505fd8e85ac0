"""Graph search on CSR arrays: the numeric cores every layer above the network asks.

The cores take a graph as three CSR arrays (``indptr`` int64, ``indices`` int32,
``weights_s`` float64 seconds, both directions of every edge stored); the heavy loops are the
numba kernels of :mod:`careblocks.network._kernels`.

- :func:`nearest_times` / :func:`nearest_with_source`: ONE multi-source Dijkstra per call
  (binary heap), each source starting at its own offset (the facility's snap leg).
- :func:`counts_within`, :func:`counts_within_at`: how many sources reach each node (or each
  target, with its own extra leg) within a limit. One bounded search per source, run in
  parallel over sources; each search touches only the nodes it reaches and resets only those
  entries of a per-thread distance array (no dense ``sources x nodes`` array is ever built).
- :func:`reach_sparse`: the same bounded searches, returned as a ``scipy.sparse.csr_matrix``
  (rows = sources, columns = nodes, data = seconds) for catchments, coverage matrices of site
  selection and transit access/egress legs; :func:`reach_from` runs it on a ``WalkNetwork``.
- :func:`gather_targets`: from reached nodes to the targets (origins, facilities) snapped to
  them, adding each target's own snap leg.

Conventions shared by every kernel:

- Limits are **inclusive**: a node whose travel time equals ``limit_s`` exactly is reached.
- A source whose own offset exceeds the limit reaches nothing.
- Unreachable is ``inf`` in seconds arrays, ``-1`` in position arrays, ``NaN`` in the
  adapters' minutes columns (never a sentinel such as 9999).
- The graph is undirected (both directions stored), so source -> node equals node -> source.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from careblocks._jit import njit, numba
from careblocks.errors import InputDataError
from careblocks.network._kernels import (
    _counts_kernel,
    _multi_source_kernel,
    _reach_kernel,
    _scatter_rows,
)
from careblocks.network.cost import WalkCost

__all__ = [
    "REACH_ZERO_S",
    "counts_within",
    "counts_within_at",
    "gather_targets",
    "nearest_times",
    "nearest_with_source",
    "reach_from",
    "reach_sparse",
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


@njit(cache=True)
def _gather_kernel(r_indptr, r_indices, r_data, node_start, node_order, t_off, limit):
    n_rows = r_indptr.size - 1
    counts = np.zeros(n_rows, np.int64)
    for i in range(n_rows):
        c = 0
        for e in range(r_indptr[i], r_indptr[i + 1]):
            nd = r_indices[e]
            for p in range(node_start[nd], node_start[nd + 1]):
                if r_data[e] + t_off[node_order[p]] <= limit:
                    c += 1
        counts[i] = c
    ptr = np.zeros(n_rows + 1, np.int64)
    for i in range(n_rows):
        ptr[i + 1] = ptr[i] + counts[i]
    cols = np.empty(ptr[n_rows], np.int32)
    vals = np.empty(ptr[n_rows], np.float64)
    for i in range(n_rows):
        k = ptr[i]
        for e in range(r_indptr[i], r_indptr[i + 1]):
            nd = r_indices[e]
            for p in range(node_start[nd], node_start[nd + 1]):
                t = r_data[e] + t_off[node_order[p]]
                if t <= limit:
                    cols[k] = node_order[p]
                    vals[k] = t
                    k += 1
    return ptr, cols, vals


def gather_targets(
    reach: sp.csr_matrix, target_nodes: np.ndarray, target_offsets_s: np.ndarray, limit_s: float
) -> sp.csr_matrix:
    """From reached nodes to the targets (origins, facilities) snapped to them.

    Parameters
    ----------
    reach
        Sources x nodes, data = seconds (as from :func:`reach_sparse`).
    target_nodes, target_offsets_s
        Node of each target and the seconds of its own snap leg.
    limit_s
        Inclusive limit on source -> target seconds (offset legs included).

    Returns
    -------
    scipy.sparse.csr_matrix
        Sources x targets, data = seconds; column indices sorted within each row.
    """
    nodes = np.asarray(target_nodes, dtype=np.int64)
    off = np.asarray(target_offsets_s, dtype=np.float64)
    n_nodes = reach.shape[1]
    order = np.argsort(nodes, kind="stable").astype(np.int64)
    start = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.bincount(nodes, minlength=n_nodes), out=start[1:])
    r = sp.csr_matrix(reach)
    ptr, cols, vals = _gather_kernel(
        r.indptr.astype(np.int64), r.indices.astype(np.int64), r.data.astype(np.float64),
        start, order, off, float(limit_s),
    )
    m = sp.csr_matrix((vals, cols, ptr), shape=(reach.shape[0], nodes.size))
    m.sort_indices()
    return m


def _reach_fallback(indptr, indices, weights_s, sources, offsets_s, limit_s) -> sp.csr_matrix:
    """scipy ``dijkstra(limit=...)`` per block of sources (the benchmark's baseline)."""
    from scipy.sparse.csgraph import dijkstra

    n = indptr.size - 1
    g = sp.csr_matrix((weights_s, indices, indptr), shape=(n, n))
    rows = []
    for a in range(0, len(sources), 256):
        src = np.asarray(sources[a : a + 256])
        d = dijkstra(g, directed=True, indices=src, limit=float(limit_s))
        d += np.asarray(offsets_s[a : a + 256])[:, None]
        d[d > limit_s] = np.inf
        ok = np.isfinite(d)
        d = np.where(d == 0, 1e-6, d)
        rows.append(sp.csr_matrix(np.where(ok, d, 0.0)))
    return sp.vstack(rows, format="csr") if rows else sp.csr_matrix((0, n))


def reach_from(network, nodes, offsets_s, *, cost: WalkCost, limit_s: float) -> sp.csr_matrix:
    """Bounded searches from ``nodes`` on a ``WalkNetwork`` at ``cost`` (:func:`reach_sparse`).

    ``nodes`` are destinations (sites, facilities): the searches run on the inbound weights
    of ``cost``, so the seconds are those of trips from each reached node TO them.
    """
    return reach_sparse(
        network.indptr, network.indices, cost.inbound_seconds(network),
        np.asarray(nodes, dtype=np.int64), np.asarray(offsets_s, dtype=np.float64), float(limit_s),
    )


def min_union(a: sp.csr_matrix, b: sp.csr_matrix) -> sp.csr_matrix:
    """Entry-wise minimum of two sparse time matrices where a missing entry means
    "not within the limit" (infinitely long), unlike ``scipy``'s ``minimum`` (zero)."""
    a, b = sp.coo_matrix(a), sp.coo_matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"min_union: shapes {a.shape} and {b.shape} differ")
    r = np.concatenate([a.row, b.row]).astype(np.int64)
    c = np.concatenate([a.col, b.col]).astype(np.int64)
    v = np.concatenate([a.data, b.data]).astype(np.float64)
    o = np.lexsort((v, c, r))
    r, c, v = r[o], c[o], v[o]
    first = np.r_[True, (r[1:] != r[:-1]) | (c[1:] != c[:-1])]
    m = sp.csr_matrix((v[first], (r[first], c[first])), shape=a.shape)
    m.sort_indices()
    return m
