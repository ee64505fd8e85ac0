"""Numba kernels of :mod:`careblocks.access` (shortest paths on CSR arrays).

Private: call them through :mod:`careblocks.access`, which validates the arrays. Every
kernel takes ``indptr`` (int64), ``indices`` (int32) and ``w`` (float64 seconds, >= 0) of a
graph storing both directions of each edge; limits are inclusive.
"""

from __future__ import annotations

import numpy as np

from careblocks._jit import njit, numba, prange

_INF = np.inf


# --------------------------------------------------------------------------- heap primitives
# A 4-ary heap with lazy deletion (a node is pushed again when its distance improves; stale
# entries are skipped when popped): fewer levels and better cache use than a binary heap.
@njit(cache=True, nogil=True, inline="always")
def _push(hk, hv, size, key, val):
    """Push onto a 4-ary min-heap (keys ``hk``, values ``hv``); return the new size."""
    i = size
    while i > 0:
        p = (i - 1) >> 2
        if hk[p] <= key:
            break
        hk[i] = hk[p]
        hv[i] = hv[p]
        i = p
    hk[i] = key
    hv[i] = val
    return size + 1


@njit(cache=True, nogil=True, inline="always")
def _pop(hk, hv, size):
    """Remove the root (read ``hk[0], hv[0]`` before calling); return the new size."""
    size -= 1
    key = hk[size]
    val = hv[size]
    i = 0
    while True:
        c = 4 * i + 1
        if c >= size:
            break
        m = c
        mk = hk[c]
        for j in range(c + 1, min(c + 4, size)):
            if hk[j] < mk:
                mk = hk[j]
                m = j
        if mk >= key:
            break
        hk[i] = mk
        hv[i] = hv[m]
        i = m
    hk[i] = key
    hv[i] = val
    return size


# --------------------------------------------------------------------------- search kernels
@njit(cache=True, nogil=True)
def _multi_source_kernel(indptr, indices, w, sources, offsets, limit, track=True):
    """One Dijkstra from all sources at once; (dist, position of the nearest source).

    With ``track=False`` positions are not kept (``pos`` has length 0): one random write
    less per relaxation when only the times are wanted.
    """
    n = indptr.size - 1
    dist = np.full(n, _INF)
    pos = np.full(n if track else 0, -1, np.int64)
    cap = indices.size + sources.size + 1
    hk = np.empty(cap, np.float64)
    hv = np.empty(cap, np.int32)
    size = 0
    for i in range(sources.size):
        s = sources[i]
        d = offsets[i]
        if d <= limit and d < dist[s]:
            dist[s] = d
            if track:
                pos[s] = i
            size = _push(hk, hv, size, d, s)
    while size > 0:
        d = hk[0]
        u = hv[0]
        size = _pop(hk, hv, size)
        if d > dist[u]:
            continue  # stale entry
        pu = pos[u] if track else -1
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            nd = d + w[e]
            if nd < dist[v] and nd <= limit:
                dist[v] = nd
                if track:
                    pos[v] = pu
                size = _push(hk, hv, size, nd, v)
    return dist, pos


@njit(cache=True, nogil=True)
def _bounded(indptr, indices, w, s, d0, limit, dist, touched, hk, hv):
    """Single-source Dijkstra within ``limit``; reached nodes listed in ``touched[:nt]``.

    ``dist`` must be all-inf on entry; the caller reads ``dist[touched[j]]`` and resets
    those entries to inf afterwards. Returns ``nt``.
    """
    if not d0 <= limit:
        return 0
    dist[s] = d0
    touched[0] = s
    nt = 1
    size = _push(hk, hv, 0, d0, s)
    while size > 0:
        d = hk[0]
        u = hv[0]
        size = _pop(hk, hv, size)
        if d > dist[u]:
            continue
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            nd = d + w[e]
            if nd <= limit and nd < dist[v]:
                if dist[v] == _INF:
                    touched[nt] = v
                    nt += 1
                dist[v] = nd
                size = _push(hk, hv, size, nd, v)
    return nt


@njit(cache=True, nogil=True, parallel=True)
def _counts_kernel(indptr, indices, w, sources, offsets, groups, n_groups, limit,
                   tptr, textra, n_targets, n_slots, order, want_min):
    # sources are visited in ``order`` (sorted by node): node numbering follows the OSM ids,
    # which cluster in space, so consecutive searches on a thread reuse warm caches (2-3x).
    # With want_min, also the smallest time per group and node (exact for every node whose
    # nearest source of the group is within the limit; inf elsewhere).
    n = indptr.size - 1
    best = np.full((n_slots, n_groups, n if want_min else 0), _INF)
    cap = indices.size + 2
    dist = np.full((n_slots, n), _INF)
    touched = np.empty((n_slots, n), np.int32)
    hk = np.empty((n_slots, cap), np.float64)
    hv = np.empty((n_slots, cap), np.int32)
    counts = np.zeros((n_slots, n_groups, n_targets), np.int32)
    for q in prange(sources.size):
        i = order[q]
        t = numba.get_thread_id()
        dt = dist[t]
        tt = touched[t]
        ct = counts[t, groups[i]]
        bt = best[t, groups[i]]
        nt = _bounded(indptr, indices, w, sources[i], offsets[i], limit, dt, tt, hk[t], hv[t])
        for j in range(nt):
            v = tt[j]
            d = dt[v]
            for k in range(tptr[v], tptr[v + 1]):
                if d + textra[k] <= limit:
                    ct[k] += 1
            if want_min and d < bt[v]:
                bt[v] = d
            dt[v] = _INF
    out = counts[0].copy()
    bout = best[0].copy()
    for t in range(1, n_slots):
        out += counts[t]
        if want_min:
            bout = np.minimum(bout, best[t])
    return out, bout


@njit(cache=True, nogil=True)
def _seeded_nearest_kernel(indptr, indices, w, label, sources, offsets):
    """Nearest-source times given exact times ``label`` for the closed set of nodes within a
    limit (inf outside). Only the border of that set and the sources beyond the limit start
    the search, so nodes inside are not searched again."""
    n = indptr.size - 1
    dist = label.copy()
    cap = indices.size + sources.size + n + 1
    hk = np.empty(cap, np.float64)
    hv = np.empty(cap, np.int32)
    size = 0
    for u in range(n):
        if dist[u] < _INF:
            for e in range(indptr[u], indptr[u + 1]):
                if dist[indices[e]] == _INF:
                    size = _push(hk, hv, size, dist[u], u)
                    break
    for i in range(sources.size):
        s = sources[i]
        if offsets[i] < dist[s]:
            dist[s] = offsets[i]
            size = _push(hk, hv, size, offsets[i], s)
    while size > 0:
        d = hk[0]
        u = hv[0]
        size = _pop(hk, hv, size)
        if d > dist[u]:
            continue
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            nd = d + w[e]
            if nd < dist[v]:
                dist[v] = nd
                size = _push(hk, hv, size, nd, v)
    return dist


@njit(cache=True, nogil=True, parallel=True)
def _reach_kernel(indptr, indices, w, sources, offsets, limit, lo, hi, cap_out, zero_s):
    """Bounded searches for sources ``lo[t]:hi[t]`` on thread slot ``t``.

    Rows are written one after another into per-slot buffers of ``cap_out`` entries; a slot
    stops at the first row that does not fit and reports it in ``done[t]``.
    """
    n = indptr.size - 1
    n_slots = lo.size
    cap = indices.size + 2
    rowlen = np.zeros(sources.size, np.int64)
    done = hi.copy()
    fill = np.zeros(n_slots, np.int64)
    out_i = np.empty((n_slots, cap_out), np.int32)
    out_d = np.empty((n_slots, cap_out), np.float64)
    for t in prange(n_slots):
        dt = np.full(n, _INF)
        tt = np.empty(n, np.int32)
        hk = np.empty(cap, np.float64)
        hv = np.empty(cap, np.int32)
        f = 0
        for i in range(lo[t], hi[t]):
            nt = _bounded(indptr, indices, w, sources[i], offsets[i], limit, dt, tt, hk, hv)
            row = np.sort(tt[:nt])
            if f + nt > cap_out:
                for j in range(nt):
                    dt[row[j]] = _INF
                done[t] = i
                break
            for j in range(nt):
                v = row[j]
                d = dt[v]
                out_i[t, f + j] = v
                out_d[t, f + j] = d if d > 0.0 else zero_s
                dt[v] = _INF
            f += nt
            rowlen[i] = nt
        fill[t] = f
    return rowlen, done, fill, out_i, out_d


@njit(cache=True, nogil=True)
def _scatter_rows(cols, data, ptr, order, rowlen, lo, piece_i, piece_d):
    """Copy consecutive rows ``lo, lo + 1, ...`` (search order) of one piece to their rows."""
    f = 0
    k = lo
    while f < piece_i.size:
        r = order[k]
        a = ptr[r]
        for j in range(rowlen[k]):
            cols[a + j] = piece_i[f + j]
            data[a + j] = piece_d[f + j]
        f += rowlen[k]
        k += 1
