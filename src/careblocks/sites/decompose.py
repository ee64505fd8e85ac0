"""Exact maximal covering by independent parts, for one K or the whole curve K = 1..K_max.

Two candidates interact only through origins they both cover. On a spatial instance the
*overlap graph* (candidates joined when their catchments share an origin) often falls apart
into connected parts: districts cut off by a river, a motorway or an airport, separate towns
of a region, isolated candidates. Maximal covering with only a site count then separates
exactly: with ``f_c(k)`` the best weight part c covers with k sites,

    best(K) = max { sum_c f_c(k_c) : sum_c k_c <= K }

a multiple-choice knapsack over K, solved by dynamic programming (Martello and Toth 1990;
the same "solve the pieces, combine by DP" idea as dynamic programming over components in
network design). A part is never solved for every k: each part keeps, per k, a proven lower
bound (its best set) and an upper bound, and the DP over the upper bounds says which
(part, k) can still change the answer; only those are tightened, cheapest first:

1. upper bounds for every k at once from each LP relaxation solved: the LP value is concave
   in k and the dual of the site-count row is a supergradient, so an LP at k gives
   ``f_c(k') <= LP_c(k) + mu (k' - k)`` for every k'; tighter, the **Lagrangian bound**
   with the coverage rows' duals ``u`` as multipliers: any set of k' sites covers at most
   ``sum_j (w_j - u_j)`` plus the k' largest ``c_i = sum_{j in M_i} u_j`` (valid for any
   u in [0, w], equal to the LP at its k); also the sum of the k best single sites and the
   weight the part can reach; f_c is nondecreasing, so a bound at k' >= k bounds k too;
2. lower bounds from the nested greedy of the part, LP rounding, 1-swaps and the best sets
   of k - 1 and k + 1 (plus the best site, less the least useful one);
3. the part's MILP at that k (lean HiGHS settings: no presolve, no heuristics, no strong
   branching; two parts side by side): a kernel MILP on the LP's support and the sites of
   smallest Lagrangian reduced value for a strong set, then **Lagrangian probing**: with
   site i forced in, the origins it covers count in full and no longer add to the other
   sites' ``c_l``, so any set holding i covers at most ``base + c_i + (the k - 1 largest
   c_l - overlap_il)``, and forced out at most ``base`` + the k largest other ``c_l``; a
   site whose bound in (out) falls below the best set known is fixed out (in). This is
   computed from ``u`` alone (it does not rely on the solver's reduced costs) and is at
   least as strong as reduced-cost fixing. What is left goes to HiGHS. Any answer the fixed
   MILP misses is no better than the known set, so ``max(known set, fixed MILP)`` is the
   part's optimum and ``max(known set, HiGHS's dual bound)`` its upper bound; a site fixed
   both in and out proves the known set optimal without a MILP.

The answer for K is the DP over the lower bounds (a real set, the union of the parts'
sets) and its proven bound the DP over the upper bounds; it is exact when they meet. A
single part (no decomposition) runs the same steps, which is then LP-based Lagrangian
probing before branch and bound.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from careblocks.sites._milp import (
    MIP_REL_GAP,
    _cover_value,
    _merge_identical_columns,
    _model,
    _pad_greedy,
    _swap_search,
)

_NO_CONFLICTS = np.zeros((0, 2), dtype=np.int64)

#: a HiGHS call with less time than this left before its deadline is not started
MIN_STEP_S = 0.02


def overlap_parts(pattern: sp.csr_matrix) -> tuple[int, np.ndarray]:
    """Connected parts of the overlap graph of the candidates (rows of ``pattern``):
    (number of parts, part label per candidate)."""
    from scipy.sparse.csgraph import connected_components

    n, m = pattern.shape
    if n == 0:
        return 0, np.zeros(0, dtype=np.int64)
    # components of the bipartite candidate-origin graph (linear in the entries; the
    # candidate x candidate overlap matrix itself can be far larger)
    p = sp.csr_matrix((np.ones(pattern.nnz), pattern.indices, pattern.indptr), shape=pattern.shape)
    graph = sp.bmat([[None, p], [p.T, None]], format="csr")
    _, labels = connected_components(graph, directed=False)
    _, part = np.unique(labels[:n], return_inverse=True)  # number the parts holding candidates
    return int(part.max()) + 1, part.astype(np.int64)


def _tol(v: float) -> float:
    return MIP_REL_GAP * max(1.0, abs(v))


class _Part:
    """One connected part: its sub-instance, per-k bounds and best sets, and its HiGHS models.

    ``sub`` is candidates x origin columns (pattern), ``ws`` the columns' weights and ``own``
    per candidate the weight only it covers (folded origins)."""

    def __init__(self, rows: np.ndarray, sub: sp.csr_matrix, ws: np.ndarray, own: np.ndarray, k_max: int):
        self.rows = rows
        self.sub, self.ws, self.own = sub, ws, own
        n = sub.shape[0]
        self.n = n
        self.k_max = min(k_max, n)
        eye = sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n))), shape=(n, n))
        self.aug = sp.hstack([sub, eye], format="csr")
        self.aug.data[:] = 1.0
        self.wa = np.concatenate([ws, own])
        self.reach = float(self.wa.sum())
        km = self.k_max
        self.lo = np.zeros(km + 1)
        self.sets: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * (km + 1)
        self.hi = np.full(km + 1, self.reach)
        self.hi[0] = 0.0
        single = np.sort(np.asarray(self.aug @ self.wa).ravel())[::-1]
        self.hi[1:] = np.minimum(self.hi[1:], np.cumsum(single[:km]))
        self.lp_at: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}
        self.lp_tried: set[int] = set()
        self.mip_at: set[int] = set()
        self.mip_short: dict[int, float] = {}  # k -> time limit of a MILP that ran out of it
        self.fix_seconds = 0.0  # the longest Lagrangian probing so far (not interruptible)
        self._lp = None
        self._k_row = 0
        self.lp_seconds = self.mip_seconds = 0.0
        greedy = _pad_greedy(self.aug, self.wa, np.zeros(0, dtype=np.int64), km)
        for k in range(1, greedy.size + 1):
            self.offer(greedy[:k])
        self._tighten()

    # -- bounds -------------------------------------------------------------------------
    def offer(self, sel) -> float:
        """A feasible set of the part: raises the lower bound of its size and every larger k."""
        sel = np.unique(np.asarray(sel, dtype=np.int64))
        if sel.size > self.k_max:
            return -np.inf
        v = _cover_value(self.aug, self.wa, sel)
        better = np.flatnonzero(self.lo[sel.size :] < v - _tol(v) * 1e-3) + sel.size
        for k in better:
            self.lo[k] = v
            self.sets[k] = sel
        return v

    def _tighten(self) -> None:
        # f is nondecreasing: a bound at k' >= k bounds k; the lower bounds carry upwards
        self.hi = np.minimum.accumulate(self.hi[::-1])[::-1]
        self.hi = np.maximum(self.hi, self.lo)

    def exact(self, k: int) -> bool:
        return self.hi[k] - self.lo[k] <= _tol(self.lo[k])

    def _add_tangent(self, k: int, g: float, mu: float) -> None:
        ks = np.arange(self.k_max + 1)
        self.hi = np.minimum(self.hi, g + max(mu, 0.0) * (ks - k))
        self.hi[k] = min(self.hi[k], g)
        self._tighten()

    def _lagrangian_terms(self, u: np.ndarray) -> tuple[np.ndarray, float]:
        """For multipliers ``u`` (one per column of ``aug``, ``0 <= u <= wa``) of the
        coverage rows ``z_j <= sum_{i covers j} x_i``: each candidate's Lagrangian value
        ``c_i = sum_{j it covers} u_j`` and the constant ``sum_j (wa_j - u_j)``."""
        c = np.asarray(self.aug @ u).ravel()
        return c, float((self.wa - u).sum())

    def _add_lagrangian(self, c: np.ndarray, base: float) -> None:
        """Lagrangian bounds for every k: any set T of k sites covers at most
        ``base + sum_{i in T} c_i``, so at most ``base`` plus the k largest ``c_i``. Valid
        for any multipliers in [0, w] (it does not rely on the LP's accuracy) and, with
        the LP's duals, at least as tight as the tangent of the LP at every k."""
        top = np.concatenate([[0.0], np.cumsum(np.sort(np.maximum(c, 0.0))[::-1])])
        ks = np.minimum(np.arange(self.k_max + 1), self.n)
        bound = base + top[ks]
        self.hi = np.minimum(self.hi, bound + _tol(float(bound.max())) * 1e-3)
        self._tighten()

    # -- steps --------------------------------------------------------------------------
    def _build(self, k: int, relax: bool):
        return _model(self.sub, self.ws, k, _NO_CONFLICTS, None, None, None, own=self.own, relax=relax)

    def run_lp(self, k: int, time_limit_s: float | None) -> None:
        """The LP relaxation at k: a tangent bound for every k, LP rounding as a set."""
        t0 = time.perf_counter()
        self.lp_tried.add(k)
        if self._lp is None:
            self._lp, self._k_row = self._build(k, relax=True)
        else:  # dual simplex from the previous basis: only the site-count row changed
            self._lp.set_row_upper(self._k_row, k)
        # simplex, also the first time: faster than interior point + crossover on these LPs
        x, status, _, _, g = self._lp.solve(start=None, time_limit_s=time_limit_s, solver="simplex")
        self.lp_seconds += time.perf_counter() - t0
        if status == "time limit":
            self.lp_tried.discard(k)  # worth another try with more time
        if x is None or status != "optimal":
            return
        sol = self._lp.h.getSolution()
        rd = np.asarray(sol.row_dual, dtype=float)
        mu = abs(float(rd[self._k_row]))
        xs = x[: self.n]
        # the coverage rows' duals as Lagrange multipliers: any u in [0, w] bounds every k
        u = np.concatenate([np.clip(np.abs(rd[: self.sub.shape[1]]), 0.0, self.ws), self.own])
        c, base = self._lagrangian_terms(u)
        self.lp_at[k] = (float(g), xs, u, c, base)
        self._add_tangent(k, float(g), mu)
        self._add_lagrangian(c, base)
        top = np.argsort(-xs, kind="stable")[:k]
        top = top[xs[top] > 1e-9]
        self.offer(_swap_search(self.aug, self.wa, _pad_greedy(self.aug, self.wa, top, k), max_passes=5))
        self._tighten()

    def _probe_bounds(self, k: int, u_from: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Lagrangian probing with the LP's multipliers ``u`` at k: per site, an upper
        bound on every set of at most k sites that holds it (``in``) and that lacks it
        (``out``). With site i forced in, the origins it covers count in full and no longer
        add to the other sites' values ``c_l``, so such a set covers at most
        ``base + c_i + (the k - 1 largest c_l - overlap_il)``; forced out, at most ``base``
        plus the k largest ``c_l`` of the others. Computed from ``u`` alone (any u in
        [0, w] gives valid bounds), so it does not depend on the accuracy of the solver's
        reduced costs; with the LP's duals at least as strong as the reduced-cost test."""
        _, _, u, c, base = self.lp_at[k if u_from is None else u_from]
        n = self.n
        c = np.maximum(c, 0.0)
        order = np.argsort(-c, kind="stable")
        top = float(c[order[:k]].sum())
        nxt = float(c[order[k]]) if n > k else 0.0
        b_out = np.full(n, base + top)
        b_out[order[:k]] = base + top - c[order[:k]] + nxt
        b_in = np.empty(n)
        kk = min(k - 1, n - 1)
        weighted = self.aug.multiply(u[None, :]).tocsr()
        at = self.aug.T.tocsc()
        block = max(1, min(n, 2_000_000 // max(1, n)))
        for start in range(0, n, block):
            rows = np.arange(start, min(n, start + block))
            overlap = (weighted[rows] @ at).toarray()  # overlap[b, l] = sum of u over M_b & M_l
            rest = np.maximum(c[None, :] - overlap, 0.0)
            rest[np.arange(rows.size), rows] = 0.0
            if kk <= 0:
                best_rest = np.zeros(rows.size)
            elif kk >= n - 1:
                best_rest = rest.sum(axis=1)
            else:
                best_rest = -np.partition(-rest, kk - 1, axis=1)[:, :kk].sum(axis=1)
            b_in[rows] = base + c[rows] + best_rest
        return b_in, b_out

    def _fixings(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Sites that take a known value in every set better than the best known one:
        (fixed at 0, fixed at 1) masks, from :meth:`_probe_bounds` with the multipliers of
        the LPs at k and, where solved, k - 1 and k + 1 (any multipliers give valid bounds;
        the smaller of them holds)."""
        b_in, b_out = self._probe_bounds(k)
        for other in (k - 1, k + 1):
            if other in self.lp_at:
                oi, oo = self._probe_bounds(k, u_from=other)
                b_in, b_out = np.minimum(b_in, oi), np.minimum(b_out, oo)
        inc = self.lo[k]
        cut = inc - 1e-9 * max(1.0, abs(inc))  # float sums of the bounds
        return b_in < cut, b_out < cut

    def _restricted(self, k: int, free: np.ndarray, ones: np.ndarray, deadline: float | None):
        """Best set with ``ones`` chosen and the rest among ``free`` (masks), as a compact
        MILP solved until ``deadline`` (counted from when HiGHS starts, after the model is
        built; not started with less than ``MIN_STEP_S`` left): the ones' catchments
        served, origin columns merged again among the free candidates, columns only one of
        them covers folded into it. Returns (set, status, bound) with the bound on the
        whole part's objective (infinite when HiGHS did not run)."""
        one = np.flatnonzero(ones)
        served = np.zeros(self.aug.shape[1], dtype=bool)
        for i in one:
            served[self.aug.indices[self.aug.indptr[i] : self.aug.indptr[i + 1]]] = True
        base = float(self.wa[served].sum())
        rows = np.flatnonzero(free & ~ones)
        k_left = k - one.size
        if rows.size == 0 or k_left <= 0:
            return one, "optimal", base
        sub = self.aug[rows][:, np.flatnonzero(~served)]
        w = self.wa[~served]
        sub, w, _ = _merge_identical_columns(sub, w)
        deg = np.diff(sub.tocsc().indptr)
        csc = sub.tocsc()
        single = np.flatnonzero(deg == 1)
        own = np.bincount(csc.indices[csc.indptr[single]], weights=w[single], minlength=rows.size)
        multi = np.flatnonzero(deg > 1)
        sub, w = sub[:, multi], w[multi]
        model, _ = _model(sub, w, k_left, _NO_CONFLICTS, None, None, None, own=own)
        model.lean()
        start = np.flatnonzero(np.isin(rows, self.sets[k]))[:k_left]
        x0 = np.zeros(model.n_var)
        x0[start] = 1.0
        hit = np.zeros(sub.shape[1], dtype=bool)
        for i in start:
            hit[sub.indices[sub.indptr[i] : sub.indptr[i + 1]]] = True
        x0[rows.size :] = hit
        limit = None if deadline is None else deadline - time.perf_counter()
        if limit is not None and limit < MIN_STEP_S:
            return one, "time limit", np.inf
        x, status, _, bound, _ = model.solve(start=x0, time_limit_s=limit)
        chosen = one if x is None else np.concatenate([one, rows[np.flatnonzero(x[: rows.size] > 0.5)]])
        return chosen, status, base + float(bound) if np.isfinite(bound) else np.inf

    def may_mip(self, k: int, limit: float | None) -> bool:
        """Whether a MILP at k is worth running with this time limit."""
        if k not in self.mip_at:
            return True
        short = self.mip_short.get(k)
        return short is not None and (limit is None or limit >= 2 * short) and not self.exact(k)

    def _neighbour_sets(self, k: int) -> None:
        """Strong sets for k from the best known ones: this k's, the set of k - 1 plus the
        best site, the set of k + 1 less its least useful site; each improved by 1-swaps."""
        starts = [self.sets[k]]
        if k > 1 and self.sets[k - 1].size:
            starts.append(_pad_greedy(self.aug, self.wa, self.sets[k - 1], k))
        if k + 1 <= self.k_max and self.sets[k + 1].size == k + 1:
            bigger = self.sets[k + 1]
            losses = [self.lo[k + 1] - _cover_value(self.aug, self.wa, np.delete(bigger, i))
                      for i in range(bigger.size)]
            starts.append(np.delete(bigger, int(np.argmin(losses))))
        for st in starts:
            if st.size:
                self.offer(_swap_search(self.aug, self.wa, _pad_greedy(self.aug, self.wa, st, k),
                                        max_passes=20))

    def run_mip(self, k: int, time_limit_s: float | None) -> None:
        """Branch and bound at k (the LP at k first if missing): a kernel MILP on the LP's
        support and the sites of smallest reduced cost for a strong set, then reduced-cost
        fixing with it and the MILP on what is left, which proves the part's optimum.

        ``time_limit_s`` is a hard limit for the whole step: each HiGHS call gets what is
        left of it (none is started with less than ``MIN_STEP_S``) and the probing, which
        cannot be interrupted, is not started when it took longer before than what is left."""
        t0 = time.perf_counter()
        deadline = None if time_limit_s is None else t0 + time_limit_s

        def left() -> float | None:
            return None if deadline is None else deadline - time.perf_counter()

        if k not in self.lp_tried:
            self.run_lp(k, left())
        if k not in self.lp_at:
            if k in self.lp_tried:  # the LP failed for good: nothing to fix with
                self.mip_at.add(k)
            return
        if self.exact(k):
            self.mip_at.add(k)
            return
        self._neighbour_sets(k)
        _, xs, _, c, _ = self.lp_at[k]
        # Lagrangian reduced values: distance of c_i from the k-th largest
        lam = np.sort(c)[::-1][min(k, self.n) - 1]
        kernel = np.zeros(self.n, dtype=bool)
        kernel[xs > 1e-9] = True
        kernel[np.argsort(np.abs(c - lam), kind="stable")[: max(3 * k, 30)]] = True
        kernel[self.sets[k]] = True
        rest = left()
        if kernel.sum() < self.n and (rest is None or 0.25 * rest >= MIN_STEP_S):
            sel, _, _ = self._restricted(k, kernel, np.zeros(self.n, dtype=bool),
                                         None if rest is None else time.perf_counter() + 0.25 * rest)
            self.offer(sel)
        rest = left()
        if not self.exact(k) and (rest is None or rest >= self.fix_seconds + MIN_STEP_S):
            t_fix = time.perf_counter()
            zero, one = self._fixings(k)
            self.fix_seconds = max(self.fix_seconds, time.perf_counter() - t_fix)
            rest = left()
            if (zero & one).any() or one.sum() > k:
                # every better set would both hold and lack a site: none exists
                self.hi[k] = min(self.hi[k], self.lo[k])
                self._tighten()
            elif rest is None or rest >= MIN_STEP_S:
                sel, status, bound = self._restricted(k, ~zero, one, deadline)
                self.offer(sel)
                # sets outside what was left are no better than the best known one
                self.hi[k] = min(self.hi[k], max(self.lo[k], bound if status != "optimal" else self.lo[k]))
                self._tighten()
        self.mip_at.add(k)
        if self.exact(k) or time_limit_s is None:
            self.mip_short.pop(k, None)
        else:
            self.mip_short[k] = float(time_limit_s)
        self.mip_seconds += time.perf_counter() - t0


class _Singles:
    """All parts of a single candidate together: f(k) = the k largest values, exact."""

    def __init__(self, rows: np.ndarray, values: np.ndarray, k_max: int):
        order = np.argsort(-values, kind="stable")
        self.rows = rows[order]
        self.k_max = min(k_max, rows.size)
        self.lo = np.concatenate([[0.0], np.cumsum(values[order][: self.k_max])])
        self.hi = self.lo
        self.sets = [np.arange(k, dtype=np.int64) for k in range(self.k_max + 1)]
        self.lp_at: dict = {}
        self.lp_tried: set[int] = set(range(self.k_max + 1))
        self.mip_at: set[int] = set(range(self.k_max + 1))
        self.n = rows.size
        self.lp_seconds = self.mip_seconds = 0.0

    def may_mip(self, k: int, limit: float | None) -> bool:
        return False

    def exact(self, k: int) -> bool:
        return True


def _dp(tables: list[np.ndarray], k: int) -> tuple[float, list[int]]:
    """max sum_c t_c[k_c] subject to sum_c k_c <= k (each t_c nondecreasing): the value and
    one best allocation."""
    best, allocs = _dp_all(tables, k, k)
    return float(best[k]), allocs[0]


def _dp_all(tables: list[np.ndarray], k: int, k_from: int) -> tuple[np.ndarray, list[list[int]]]:
    """The DP of :func:`_dp` once for every budget up to ``k``: the best value per budget
    and a best allocation for each budget ``k_from..k`` (the same as ``_dp`` gives)."""
    best = np.zeros(k + 1)
    choice = []
    for t in tables:
        kc = min(len(t) - 1, k)
        # new[b] = max_j best[b - j] + t[j], j <= min(b, kc)
        cand = np.full((kc + 1, k + 1), -np.inf)
        for j in range(kc + 1):
            cand[j, j:] = best[: k + 1 - j] + t[j]
        arg = np.argmax(cand, axis=0)
        choice.append(arg)
        best = cand[arg, np.arange(k + 1)]
    allocs = []
    for kk in range(k_from, k + 1):
        alloc = [0] * len(tables)
        b = kk
        for c in range(len(tables) - 1, -1, -1):
            j = int(choice[c][b])
            alloc[c] = j
            b -= j
        allocs.append(alloc)
    return best, allocs


def _run_parallel(work: list, time_limit_s: float | None) -> None:
    """Steps ``(method, k)`` of different parts side by side (one HiGHS instance per part
    and step; HiGHS releases the GIL while it solves), on at most two threads."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    workers = min(2, os.cpu_count() or 1, len(work))
    if workers <= 1:
        for step, k in work:
            step(k, time_limit_s)
        return
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda sk: sk[0](sk[1], time_limit_s), work))


def _run_lps(work: list, time_limit_s: float | None) -> None:
    """LP relaxations of different parts side by side."""
    _run_parallel([(part.run_lp, k) for part, k in work], time_limit_s)


class PartsSolver:
    """Maximal covering with a site count only, exact by parts (see the module text)."""

    def __init__(self, sub: sp.csr_matrix, ws: np.ndarray, own: np.ndarray, k_max: int):
        pattern = sp.csr_matrix((np.ones(sub.nnz), sub.indices, sub.indptr), shape=sub.shape)
        n_parts, labels = overlap_parts(pattern)
        self.n_candidates = sub.shape[0]
        self.parts: list = []
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(n_parts + 1))
        single_rows = []
        csc = pattern.tocsc()
        for c in range(n_parts):
            rows = np.sort(order[bounds[c] : bounds[c + 1]])
            if rows.size == 1:
                single_rows.append(rows[0])
                continue
            part = pattern[rows]
            cols = np.flatnonzero(np.diff(part.tocsc().indptr) > 0)
            self.parts.append(_Part(rows, part[:, cols], ws[cols], own[rows], k_max))
        if single_rows:
            rows = np.asarray(single_rows, dtype=np.int64)
            col_w = np.asarray(pattern[rows] @ ws).ravel()
            self.parts.append(_Singles(rows, col_w + own[rows], k_max))
        self.n_parts = n_parts
        del csc

    def _tables(self, upper: bool) -> list[np.ndarray]:
        return [p.hi if upper else p.lo for p in self.parts]

    def bounds(self, k: int) -> tuple[float, list[int], float, list[int]]:
        lo, a_lo = _dp(self._tables(False), k)
        hi, a_hi = _dp(self._tables(True), k)
        return lo, a_lo, max(hi, lo), a_hi

    def _pending(self, k: int, k_ahead: int) -> list[tuple[int, int]]:
        """The (part, k') still open in the DP over the upper bounds at some K = k..k_ahead,
        in the order of the first K that needs them: the proofs a curve still has to make."""
        _, allocs = _dp_all(self._tables(True), k_ahead, k)
        seen: dict[tuple[int, int], None] = {}
        for alloc in allocs:
            for c, j in enumerate(alloc):
                if not self.parts[c].exact(j):
                    seen.setdefault((c, j))
        return list(seen)

    def solve(self, k: int, deadline: float | None, lp_deadline: float | None = None,
              k_ahead: int | None = None) -> tuple[np.ndarray, float, float, bool]:
        """Best set with at most ``k`` sites (reduced positions), its value, the proven upper
        bound and whether it is proven optimal (within ``MIP_REL_GAP``) by ``deadline``.
        LP relaxations, which serve every later K too, may run until ``lp_deadline`` (a
        curve's end) when it is later. Both are hard: no HiGHS call is given time past
        them, none is started with less than ``MIN_STEP_S`` left. With ``k_ahead`` (a
        curve up to that K), the time is shared by the proofs every K to come still
        needs, and a MILP of this K that would run alone gets one of them beside it."""
        if deadline is not None and lp_deadline is not None:
            lp_deadline = max(deadline, lp_deadline)
        else:
            lp_deadline = None if deadline is None else deadline
        while True:
            lo, a_lo, hi, a_hi = self.bounds(k)
            if hi - lo <= _tol(lo):
                break
            now = time.perf_counter()
            left = None if deadline is None else deadline - now
            lp_left = None if lp_deadline is None else lp_deadline - now
            open_ = [(c, j) for c, j in enumerate(a_hi) if not self.parts[c].exact(j)]
            lp_work = []
            for c, j in open_:
                if not self.parts[c].lp_tried and a_lo[c] > 0:
                    j = a_lo[c]  # the first (cold) LP of a part where its best sets lie
                if j not in self.parts[c].lp_tried:
                    lp_work.append((c, j))
            if lp_work and (lp_left is None or lp_left >= MIN_STEP_S):
                _run_lps([(self.parts[c], j) for c, j in lp_work], lp_left)
                continue
            if left is not None and left < MIN_STEP_S:
                break
            # the time left shared by the proofs still open (for a curve: those of every K
            # to come), two side by side; a MILP that ran out of time is tried again only
            # with at least twice its time
            pending = open_ if k_ahead is None or k_ahead <= k else self._pending(k, k_ahead)
            share = None if left is None else left / max(1.0, len(pending) / 2)
            mip_work = [(c, j) for c, j in open_ if self.parts[c].may_mip(j, share)]
            if not mip_work:
                break  # everything the bound depends on was tried within its time
            # the widest gaps first
            mip_work.sort(key=lambda cj: self.parts[cj[0]].lo[cj[1]] - self.parts[cj[0]].hi[cj[1]])
            mip_work = mip_work[:2]
            if len(mip_work) == 1:  # the second thread on a proof a larger K needs
                mip_work += [(c, j) for c, j in pending if c != mip_work[0][0]
                             and self.parts[c].may_mip(j, share)][:1]
            _run_parallel([(self.parts[c].run_mip, j) for c, j in mip_work], share)
        sel = [p.rows[p.sets[j]] for p, j in zip(self.parts, a_lo, strict=True) if j > 0]
        chosen = np.sort(np.concatenate(sel)) if sel else np.zeros(0, dtype=np.int64)
        return chosen, lo, hi, hi - lo <= _tol(lo)

    def stats(self) -> dict:
        return {
            "parts": int(self.n_parts),
            "largest_part": int(max((p.n for p in self.parts), default=0)),
            "lp_seconds": round(sum(p.lp_seconds for p in self.parts), 3),
            "mip_seconds": round(sum(p.mip_seconds for p in self.parts), 3),
            "mips": int(sum(len(p.mip_at) for p in self.parts if isinstance(p, _Part))),
            "lps": int(sum(len(p.lp_at) for p in self.parts if isinstance(p, _Part))),
        }
