"""Choose K Care Block sites: maximal covering, exact (MILP with HiGHS) or lazy greedy.

The core works on a sparse coverage matrix (candidates x origins; a stored entry means "the
origin is within the threshold of the candidate", its value the travel time, used only to
serve the nearest origins first when a capacity is set) and a weight per origin (people, care
gaps or caregiver hours). :func:`select_sites` returns a :class:`SelectionResult` with the
chosen candidate positions in order, each site's marginal gain and the cumulative coverage.

Maximal covering location problem (Church and ReVelle 1974)::

    maximise   sum_j w_j z_j
    subject to z_j <= sum_i a_ij x_i      (origin j counts once, only if a chosen site covers it)
               sum_i x_i <= K
               x_a + x_b <= 1             (pairs of candidates closer than the minimum spacing)
               sum_{i in d} x_i <= N_d    (at most N per district)
               x_i in {0, 1},  0 <= z_j <= 1

Origins already served by existing Care Blocks get weight 0. With a capacity ``c`` per site
the coverage variables become assignments ``y_ij`` (``sum_i y_ij <= 1``,
``sum_j w_j y_ij <= c x_i``). The MILP is solved with HiGHS through ``highspy``
(:mod:`careblocks.sites._milp`), on the sparse constraint matrix as it is; when only the site
count limits the choice, exactly by independent parts of the overlap graph combined by a DP
over K (:mod:`careblocks.sites.decompose`). spopt's
``MCLP`` builds its model with PuLP from a dense cost matrix (2,000 x 20,000 = 40 M cells,
built in Python loops) and has no spacing, district or existing-site constraints, so it does
not fit this matrix form. Origins with identical sets of covering candidates are merged
before solving (their weights summed), which shrinks real instances several-fold.

The lazy greedy (CELF, Leskovec et al. 2007) picks, K times, the feasible candidate with
the largest marginal gain; coverage is submodular, so stale gains are upper bounds and most
candidates are never re-evaluated. Without spacing or district constraints it reaches at
least 1 - 1/e of the optimum (Nemhauser, Wolsey and Fisher 1978). Ties are broken by the
candidate order given (sort candidates by ``candidate_id`` first), both in greedy and when
ordering the MILP's sites.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp

from careblocks.errors import ConfigError, InputDataError
from careblocks.sites._milp import (
    MIP_REL_GAP,
    _cover_value,
    _HighsModel,
    _merge_identical_columns,
    _model,
    _pad_greedy,
    _start_vector,
    _swap_search,
)
from careblocks.sites.decompose import MIN_STEP_S, PartsSolver

Method = Literal["milp", "greedy", "auto"]

#: "auto" solves exactly up to this many candidates / coverage entries, greedy above
AUTO_MAX_CANDIDATES = 5_000
AUTO_MAX_NNZ = 5_000_000


@dataclass(frozen=True)
class SelectionResult:
    """The chosen sites, in the order they add coverage.

    Attributes
    ----------
    selected
        Candidate positions (rows of the coverage matrix), in selection order.
    marginal_gain
        Weight each site adds on top of the sites before it (and the existing ones).
    cumulative
        Running total of ``marginal_gain``.
    objective
        Total weight covered by the selected sites, not counting origins already served.
    method
        ``"milp"`` or ``"greedy"`` (what actually ran).
    total_weight
        Weight of all origins not already served (the most any selection could cover).
    existing_weight
        Weight of origins served by existing sites before the selection.
    served
        Per origin, the share of its weight served after the selection (existing included),
        in [0, 1].
    status
        Solver status text (``"optimal"``, ``"time limit"``, ``"greedy"``).
    mip_gap
        Relative MIP gap HiGHS proved: (bound - objective) / objective, 0 when optimal
        (within ``MIP_REL_GAP``), None for greedy.
    bound
        Proven upper bound on the objective (HiGHS's dual bound), None for greedy.
    """

    selected: np.ndarray
    marginal_gain: np.ndarray
    cumulative: np.ndarray
    objective: float
    method: str
    total_weight: float
    existing_weight: float
    served: np.ndarray
    status: str = "optimal"
    mip_gap: float | None = None
    info: dict = field(default_factory=dict)
    bound: float | None = None

    @property
    def k(self) -> int:
        return int(self.selected.size)


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------


def _as_coverage(coverage: sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    if isinstance(coverage, np.ndarray):
        coverage = sp.csr_matrix(coverage)
    if not sp.issparse(coverage):
        raise InputDataError("coverage: expected a scipy sparse matrix (candidates x origins)")
    c = sp.csr_matrix(coverage)
    c.sum_duplicates()
    c.sort_indices()
    return c


def _existing_served(existing, n_origins: int) -> np.ndarray:
    if existing is None:
        return np.zeros(n_origins, dtype=bool)
    if sp.issparse(existing):
        ex = sp.csr_matrix(existing)
        if ex.shape[1] != n_origins:
            raise InputDataError(
                f"existing: coverage of existing sites has {ex.shape[1]} origins, expected {n_origins}"
            )
        served = np.zeros(n_origins, dtype=bool)
        served[ex.indices] = True
        return served
    served = np.asarray(existing, dtype=bool)
    if served.shape != (n_origins,):
        raise InputDataError(
            f"existing: expected one boolean per origin ({n_origins}), got shape {served.shape}"
        )
    return served


def conflict_pairs(candidate_xy: np.ndarray, min_spacing_m: float) -> np.ndarray:
    """Pairs ``(a, b)`` (a < b) of candidates closer than ``min_spacing_m`` (straight line)."""
    from scipy.spatial import cKDTree

    xy = np.asarray(candidate_xy, dtype=float)
    if min_spacing_m <= 0 or len(xy) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    # query_pairs uses <= r; spacing means "at least min_spacing_m apart"
    r = np.nextafter(min_spacing_m, 0)
    pairs = cKDTree(xy).query_pairs(r, output_type="ndarray")
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def _district_codes(districts, n: int) -> np.ndarray | None:
    if districts is None:
        return None
    d = np.asarray(districts, dtype=object)
    if d.shape != (n,):
        raise InputDataError(f"districts: expected one district per candidate ({n}), got {d.shape}")
    codes = np.full(n, -1, dtype=np.int64)
    ok = np.array([v is not None and not (isinstance(v, float) and math.isnan(v)) for v in d])
    if ok.any():
        _, inv = np.unique(d[ok].astype(str), return_inverse=True)
        codes[ok] = inv
    return codes  # -1: in no district (unconstrained)


# --------------------------------------------------------------------------------------
# greedy (CELF)
# --------------------------------------------------------------------------------------


class _Coverer:
    """Tracks the remaining weight share per origin (and service, when capacitated) and
    evaluates / applies a site. Capacitated: ``w`` is origins x services, ``capacity``
    candidates x services; a site serves each service's nearest origins first."""

    def __init__(self, cov: sp.csr_matrix, w: np.ndarray, capacity: np.ndarray | None):
        self.cov = cov
        self.capacity = capacity
        if capacity is None:
            self.w = w
            self.rem = np.ones(cov.shape[1], dtype=float)
        else:
            self.w = np.asarray(w, dtype=float).reshape(cov.shape[1], -1)
            self.cap = np.asarray(capacity, dtype=float).reshape(cov.shape[0], -1)
            self.rem2 = np.ones(self.w.shape, dtype=float)
            # serve nearest origins first: order each row by its stored time
            self.order = [
                np.argsort(cov.data[cov.indptr[i] : cov.indptr[i + 1]], kind="stable")
                for i in range(cov.shape[0])
            ]

    def left_share(self) -> np.ndarray:
        """Per origin, the share of its weight still unserved (over all services)."""
        if self.capacity is None:
            return self.rem
        tot = self.w.sum(axis=1)
        left = (self.w * self.rem2).sum(axis=1)
        return np.divide(left, tot, out=np.ones_like(tot), where=tot > 0)

    def gain(self, i: int) -> float:
        cols = self.cov.indices[self.cov.indptr[i] : self.cov.indptr[i + 1]]
        if self.capacity is None:
            return float(np.dot(self.w[cols], self.rem[cols]))
        need = (self.w[cols] * self.rem2[cols]).sum(axis=0)
        return float(np.minimum(need, self.cap[i]).sum())

    def apply(self, i: int) -> float:
        cols = self.cov.indices[self.cov.indptr[i] : self.cov.indptr[i + 1]]
        if self.capacity is None:
            g = float(np.dot(self.w[cols], self.rem[cols]))
            self.rem[cols] = 0.0
            return g
        g = 0.0
        ordered = cols[self.order[i]]
        for s in range(self.w.shape[1]):
            left = float(self.cap[i, s])
            for c in ordered:
                if left <= 0:
                    break
                need = self.w[c, s] * self.rem2[c, s]
                if need <= 0:
                    continue
                take = min(need, left)
                self.rem2[c, s] -= take / self.w[c, s]
                g += take
                left -= take
        return g


class _PairGains:
    """Facility-location state: each origin keeps the best value of the chosen sites;
    a site's gain is what it adds over those bests (``values`` = candidates x origins)."""

    def __init__(self, values: sp.csr_matrix):
        self.cov = values
        self.best = np.zeros(values.shape[1], dtype=float)

    def gain(self, i: int) -> float:
        a, b = self.cov.indptr[i], self.cov.indptr[i + 1]
        return float(np.maximum(0.0, self.cov.data[a:b] - self.best[self.cov.indices[a:b]]).sum())

    def apply(self, i: int) -> float:
        g = self.gain(i)
        a, b = self.cov.indptr[i], self.cov.indptr[i + 1]
        cols = self.cov.indices[a:b]
        self.best[cols] = np.maximum(self.best[cols], self.cov.data[a:b])
        return g

    def all_gains(self) -> np.ndarray:
        v = np.maximum(0.0, self.cov.data - self.best[self.cov.indices])
        rows = np.repeat(np.arange(self.cov.shape[0]), np.diff(self.cov.indptr))
        return np.bincount(rows, weights=v, minlength=self.cov.shape[0])


def _state(cov, w, capacity, pair: bool):
    return _PairGains(cov) if pair else _Coverer(cov, w, capacity)


def _greedy(cov, w, k, conflicts, dcodes, max_per_district, capacity, pair=False, *,
            fixed=None, cost=None, budget=None):
    """Lazy greedy; ``fixed`` sites are applied first (not returned, not counted in ``k``,
    but they block their spacing neighbours and fill their district); with a ``budget``,
    candidates whose ``cost`` no longer fits are skipped."""
    n = cov.shape[0]
    state = _state(cov, w, capacity, pair)
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b in conflicts:
        neighbours[a].append(int(b))
        neighbours[b].append(int(a))
    blocked = np.zeros(n, dtype=bool)
    per_district: dict[int, int] = {}
    left_budget = float(budget) if budget is not None else np.inf

    def take(i: int) -> float:
        g = state.apply(i)
        blocked[i] = True
        for j in neighbours[i]:
            blocked[j] = True
        if dcodes is not None and dcodes[i] >= 0 and max_per_district is not None:
            d = int(dcodes[i])
            per_district[d] = per_district.get(d, 0) + 1
            if per_district[d] >= max_per_district:
                blocked[dcodes == d] = True
        return g

    for i in (fixed if fixed is not None else ()):
        take(int(i))
    if pair:
        first = state.all_gains()
    elif capacity is None:
        pattern = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
        first = np.asarray(pattern @ (w * state.rem)).ravel()
    else:
        first = np.array([state.gain(i) for i in range(n)])
    # heap of (-gain, position, round evaluated); position breaks ties deterministically
    heap = [(-float(g), i, 0) for i, g in enumerate(first)]
    heapq.heapify(heap)
    chosen: list[int] = []
    gains: list[float] = []
    rnd = 0
    while heap and len(chosen) < k:
        neg, i, when = heapq.heappop(heap)
        if blocked[i] or (cost is not None and cost[i] > left_budget + 1e-9):
            continue
        if when == rnd:
            if -neg <= 0:
                break  # nothing left to gain
            gains.append(take(i))
            chosen.append(i)
            if cost is not None:
                left_budget -= float(cost[i])
            rnd += 1
        else:
            heapq.heappush(heap, (-state.gain(i), i, rnd))
    return np.array(chosen, dtype=np.int64), np.array(gains, dtype=float), _left(state)


def _left(state) -> np.ndarray:
    """Per origin, the share of weight still unserved (pair gains: 1 until a site serves it)."""
    return state.left_share() if isinstance(state, _Coverer) else (state.best <= 0).astype(float)


# --------------------------------------------------------------------------------------
# MILP (HiGHS via scipy.optimize.milp)
# --------------------------------------------------------------------------------------


def _dominated(cov: sp.csr_matrix, cost: np.ndarray | None = None) -> np.ndarray:
    """Candidates whose covered origins are a subset of another candidate's (identical sets:
    all but the first) that costs no more. Dropping them keeps the optimum when there are
    no spacing, district or capacity constraints: any optimal set can swap them for their
    dominator."""
    pattern = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
    sizes = np.diff(pattern.indptr)
    overlap = (pattern @ pattern.T).tocsr()
    rows = np.repeat(np.arange(overlap.shape[0]), np.diff(overlap.indptr))
    cols = overlap.indices
    sub = (rows != cols) & (overlap.data == sizes[rows])
    dom = sub & ((sizes[cols] > sizes[rows]) | (cols < rows))
    if cost is not None:
        dom &= (cost[cols] < cost[rows]) | ((cost[cols] == cost[rows]) & ((sizes[cols] > sizes[rows]) | (cols < rows)))
    out = np.zeros(cov.shape[0], dtype=bool)
    out[rows[dom]] = True
    out[sizes == 0] = True
    return out


def _canonical_swaps(cov, w, sites, conflicts, dcodes, max_per_district, *, cost=None,
                     blocked=None) -> np.ndarray:
    """Replace each chosen site by the first candidate (smallest position) that covers as much.

    Solvers return any one of several optimal sets; this pass makes ties independent of the
    solver: for each chosen site, in increasing position, the weight it alone covers is
    compared with what every other feasible candidate would add in its place (one sparse
    product), and the site is swapped for the first candidate that does at least as well.
    """
    pattern = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
    chosen = set(int(s) for s in sites)
    nbr: dict[int, set[int]] = {}
    for a, b in conflicts:
        nbr.setdefault(int(a), set()).add(int(b))
        nbr.setdefault(int(b), set()).add(int(a))
    count = np.asarray(pattern[sorted(chosen)].sum(axis=0)).ravel() if chosen else np.zeros(cov.shape[1])
    for s in sorted(chosen):
        row = cov.indices[cov.indptr[s] : cov.indptr[s + 1]]
        count[row] -= 1
        gains = pattern @ (w * (count == 0))
        tol = 1e-9 * max(1.0, float(np.abs(w).sum()))
        others = chosen - {s}
        for c in np.flatnonzero(gains[:s] >= gains[s] - tol):
            c = int(c)
            if c in others or nbr.get(c, set()) & others:
                continue
            if (cost is not None and cost[c] > cost[s]) or (blocked is not None and blocked[c]):
                continue
            if dcodes is not None and max_per_district is not None and dcodes[c] >= 0 and dcodes[c] != dcodes[s]:
                if sum(1 for o in others if dcodes[o] == dcodes[c]) >= max_per_district:
                    continue
            chosen = others | {c}
            s = c
            break
        row = cov.indices[cov.indptr[s] : cov.indptr[s + 1]]
        count[row] += 1
    return np.array(sorted(chosen), dtype=np.int64)


def _canonical_swaps_pair(values, sites, conflicts, dcodes, max_per_district) -> np.ndarray:
    """:func:`_canonical_swaps` for pair values (facility location)."""
    chosen = sorted(int(s) for s in sites)
    nbr: dict[int, set[int]] = {}
    for a, b in conflicts:
        nbr.setdefault(int(a), set()).add(int(b))
        nbr.setdefault(int(b), set()).add(int(a))
    tol = 1e-9 * max(1.0, float(values.data.sum()))
    for s in list(chosen):
        others = [o for o in chosen if o != s]
        st = _PairGains(values)
        for o in others:
            st.apply(o)
        gains = st.all_gains()
        for c in np.flatnonzero(gains[:s] >= gains[s] - tol):
            c = int(c)
            if c in others or nbr.get(c, set()) & set(others):
                continue
            if dcodes is not None and max_per_district is not None and dcodes[c] >= 0 and dcodes[c] != dcodes[s]:
                if sum(1 for o in others if dcodes[o] == dcodes[c]) >= max_per_district:
                    continue
            chosen = sorted([*others, c])
            break
    return np.array(chosen, dtype=np.int64)


def _order_sites(cov, w, sites: np.ndarray, capacity, pair=False, fixed=None):
    """Order chosen sites greedily (largest marginal gain first, ties by position), after
    the ``fixed`` ones."""
    state = _state(cov, w, capacity, pair)
    for i in (fixed if fixed is not None else ()):
        state.apply(int(i))
    left = sorted(int(s) for s in sites)
    order, gains = [], []
    while left:
        g = [state.gain(i) for i in left]
        best = int(np.argmax(g))  # first maximum = smallest position
        i = left.pop(best)
        gains.append(state.apply(i))
        order.append(i)
    return np.array(order, dtype=np.int64), np.array(gains, dtype=float), _left(state)


# --------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------


@dataclass
class _Problem:
    """A validated selection problem (full size) and its reduced form for the MILP."""

    cov: sp.csr_matrix  # candidates x origins (pair: values x weights)
    w: np.ndarray | None  # per origin (capacitated: origins x services); None for pair
    w_eff: np.ndarray | None
    conflicts: np.ndarray
    dcodes: np.ndarray | None
    max_per_district: int | None
    capacity: np.ndarray | None  # candidates x services
    pair: bool
    cost: np.ndarray | None
    budget: float | None
    fixed: np.ndarray  # candidate positions always chosen (not counted in k)
    served0: np.ndarray
    total: float
    existing_weight: float
    info: dict
    # reduced instance (filled by _reduce)
    sub: sp.csr_matrix | None = None
    ws: np.ndarray | None = None
    alive: np.ndarray | None = None
    own: np.ndarray | None = None
    sub_fixed: np.ndarray | None = None
    sub_conflicts: np.ndarray | None = None
    sub_dcodes: np.ndarray | None = None
    sub_cost: np.ndarray | None = None

    @property
    def plain(self) -> bool:
        """Maximal covering with at most a count of sites (no spacing, district or budget
        rows): the case where dominance, swaps and the local search are exact moves."""
        return (not self.pair and self.capacity is None and not len(self.conflicts) and self.budget is None
                and (self.dcodes is None or self.max_per_district is None))


def _prepare(coverage, origin_weights, *, k, method, min_spacing_m, candidate_xy, districts,
             max_per_district, existing, capacity, pair_gains, cost, budget, fixed) -> _Problem:
    cov = _as_coverage(coverage)
    n_c, n_o = cov.shape
    if origin_weights is None and not pair_gains:
        raise InputDataError("origin_weights: needed unless pair_gains=True (one weight per origin)")
    w = np.ones(n_o) if origin_weights is None else np.asarray(origin_weights, dtype=float)
    if w.ndim == 2 and capacity is None and w.shape[0] == n_o:
        w = w.sum(axis=1)  # people-services when no capacity separates the services
    if w.shape[0] != n_o or w.ndim not in (1, 2):
        raise InputDataError(f"origin_weights: expected {n_o} values (one per origin), got {w.shape}")
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise InputDataError("origin_weights: weights must be finite and >= 0; fill missing values with 0")
    if k < 0:
        raise ConfigError(f"config key 'sites.k': must be >= 0, got {k}")
    if method not in ("milp", "greedy", "auto"):
        raise ConfigError(f"config key 'sites.method': {method!r} is not allowed; use 'milp', 'greedy' or 'auto'")
    cap = None
    if capacity is not None:
        if pair_gains:
            raise ConfigError("config key 'sites.capacity': not available with the hours_returned objective")
        n_s = 1 if w.ndim == 1 else w.shape[1]
        cap = np.asarray(capacity, dtype=float)
        if cap.ndim == 0:
            cap = np.full((n_c, n_s), float(cap))
        elif cap.ndim == 1 and n_s == 1 and cap.shape[0] == n_c:
            cap = cap.reshape(n_c, 1)
        elif cap.ndim == 1 and cap.shape[0] == n_s:
            cap = np.tile(cap, (n_c, 1))
        if cap.shape != (n_c, n_s):
            raise InputDataError(f"capacity: expected one value per candidate and service ({n_c} x {n_s}), "
                                 f"got shape {cap.shape}")
        if np.any(~np.isfinite(cap)) or np.any(cap < 0) or not np.any(cap > 0):
            raise ConfigError("config key 'sites.capacity': capacities must be finite, >= 0 and not all 0")
    if max_per_district is not None and max_per_district < 0:
        raise ConfigError(f"config key 'sites.max_per_district': must be >= 0, got {max_per_district}")
    if min_spacing_m > 0 and candidate_xy is None:
        raise InputDataError("candidate_xy: needed when min_spacing_m > 0 (one x, y per candidate)")
    if budget is not None:
        if cost is None:
            raise InputDataError("cost: needed with a budget (one cost per candidate)")
        if not np.isfinite(budget) or budget < 0:
            raise ConfigError(f"config key 'sites.budget': must be a number >= 0, got {budget}")
    if cost is not None:
        cost = np.asarray(cost, dtype=float)
        if cost.shape != (n_c,) or np.any(~np.isfinite(cost)) or np.any(cost < 0):
            raise InputDataError(f"cost: expected one finite cost >= 0 per candidate ({n_c}); "
                                 "fill missing costs")
    fx = np.unique(np.asarray([] if fixed is None else fixed, dtype=np.int64))
    if fx.size and (fx.min() < 0 or fx.max() >= n_c):
        raise InputDataError(f"fixed: candidate positions must lie in 0..{n_c - 1}")
    conflicts = (conflict_pairs(candidate_xy, min_spacing_m) if candidate_xy is not None
                 else np.zeros((0, 2), dtype=np.int64))
    dcodes = _district_codes(districts, n_c)
    served0 = _existing_served(existing, n_o)
    if fx.size and cap is None and not pair_gains:  # kept blocks serve their catchment like existing ones
        served0 = served0.copy()
        for i in fx:
            served0[cov.indices[cov.indptr[i] : cov.indptr[i + 1]]] = True
    w_eff = np.where(served0 if w.ndim == 1 else served0[:, None], 0.0, w)
    total = float(w_eff.sum())
    existing_weight = float(w[served0].sum())
    if pair_gains:
        if np.any(~np.isfinite(cov.data)) or np.any(cov.data < 0):
            raise InputDataError("coverage: pair gains must be finite and >= 0")
        best = np.zeros(n_o)
        np.maximum.at(best, cov.indices, cov.data)
        total, existing_weight = float((best * w_eff).sum()), float((best * w)[served0].sum())
        cov = sp.csr_matrix((cov.data * w_eff[cov.indices], cov.indices, cov.indptr), shape=cov.shape)
        cov.eliminate_zeros()
    if cap is not None:  # a site can serve no more than it covers
        total = float(w_eff.sum())
    info: dict = {"n_candidates": n_c, "n_origins": n_o, "n_conflicts": int(len(conflicts))}
    if fx.size:
        info["fixed"] = fx.tolist()
    return _Problem(cov=cov, w=None if pair_gains else w, w_eff=None if pair_gains else w_eff,
                    conflicts=conflicts, dcodes=dcodes, max_per_district=max_per_district, capacity=cap,
                    pair=pair_gains, cost=cost, budget=budget, fixed=fx, served0=served0, total=total,
                    existing_weight=existing_weight, info=info)


def _reduce(pb: _Problem, merge_origins: bool) -> None:
    """The smaller instance the MILP sees (same optimum): origins that cannot count dropped,
    origins with identical covering sets merged, dominated candidates dropped and origins
    that only one candidate covers folded into that candidate's objective coefficient."""
    cov = pb.cov
    n_c, n_o = cov.shape
    pb.alive = np.arange(n_c)
    pb.sub_fixed, pb.sub_conflicts, pb.sub_dcodes, pb.sub_cost = pb.fixed, pb.conflicts, pb.dcodes, pb.cost
    pb.own = None
    if pb.pair:
        keep = np.flatnonzero(np.bincount(cov.indices, minlength=n_o) > 0)
        pb.sub, pb.ws = cov[:, keep], None
        pb.info["milp_origins"] = int(keep.size)
        return
    wsum = pb.w_eff if pb.w_eff.ndim == 1 else pb.w_eff.sum(axis=1)
    keep = np.flatnonzero((wsum > 0) & (np.bincount(cov.indices, minlength=n_o) > 0))
    sub = cov[:, keep]
    ws = pb.w_eff[keep]
    if pb.capacity is not None:
        if merge_origins:
            # origins with the same covering sites are one assignment column: any split of
            # the group's demand maps onto its members and back (the assignments are
            # continuous), so the optimum is the same. Stored times: the group's mean, used
            # only to serve the nearest first in the starting set
            pattern = sp.csr_matrix((np.ones(sub.nnz), sub.indices, sub.indptr), shape=sub.shape)
            merged, _, group = _merge_identical_columns(pattern, np.zeros(sub.shape[1]))
            to_group = sp.csr_matrix((np.ones(group.size), (np.arange(group.size), group)),
                                     shape=(group.size, merged.shape[1]))
            times = (sub @ to_group).tocsr()
            counts = (pattern @ to_group).tocsr()
            times.sort_indices()
            counts.sort_indices()
            times.data = times.data / counts.data
            ws = np.asarray(to_group.T @ ws)
            sub = times
        pb.sub, pb.ws = sub, ws
        pb.info["milp_origins"] = int(sub.shape[1])
        return
    if merge_origins:
        sub, ws, _ = _merge_identical_columns(sub, ws)
    no_side = not len(pb.conflicts) and (pb.dcodes is None or pb.max_per_district is None)
    if no_side:
        alive = np.flatnonzero(~_dominated(sub, pb.cost) & ~np.isin(np.arange(n_c), pb.fixed))
        sub = sub[alive]
        pb.alive = alive
        pb.sub_fixed = np.zeros(0, dtype=np.int64)  # their coverage is already served
        pb.sub_cost = None if pb.cost is None else pb.cost[alive]
        if merge_origins:  # fewer candidates: more origins now share a covering set
            sub, ws, _ = _merge_identical_columns(sub, ws)
        # an origin column only one candidate covers: z_j = x_i, so fold w_j into x_i
        deg = np.bincount(sub.indices, minlength=sub.shape[1])
        single = np.flatnonzero(deg == 1)
        if single.size:
            csc = sub.tocsc()
            owner = csc.indices[csc.indptr[single]]
            pb.own = np.bincount(owner, weights=ws[single], minlength=sub.shape[0])
            multi = np.flatnonzero(deg > 1)
            sub, ws = sub[:, multi], ws[multi]
        pb.info["milp_folded_origins"] = int(single.size)
    pb.sub, pb.ws = sub, ws
    pb.info["milp_origins"] = int(sub.shape[1])
    pb.info["milp_candidates"] = int(pb.alive.size)


def _best_start(pb: _Problem, k: int, extra: Sequence[np.ndarray] = ()) -> np.ndarray:
    """A MIP start on the reduced instance: the lazy greedy, improved by 1-swaps when the
    problem has no side rows, and compared with ``extra`` starts (e.g. the previous K's
    answer plus one site); returns reduced positions."""
    sub, n = pb.sub, pb.sub.shape[0]
    own = pb.own if pb.own is not None else np.zeros(n)
    if pb.pair or pb.capacity is not None:
        sel, _, _ = _greedy(sub, pb.ws, k, pb.sub_conflicts, pb.sub_dcodes, pb.max_per_district,
                            pb.capacity[pb.alive] if pb.capacity is not None else None, pb.pair,
                            fixed=pb.sub_fixed, cost=pb.sub_cost, budget=pb.budget)
        return sel
    # uncapacitated: the singleton-folded weight enters as a column only that site covers
    aug = sp.hstack([sub, sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n))), shape=(n, n))],
                    format="csr")
    aug.data[:] = 1.0
    wa = np.concatenate([pb.ws, own])
    sel, _, _ = _greedy(aug, wa, k, pb.sub_conflicts, pb.sub_dcodes, pb.max_per_district, None,
                        fixed=pb.sub_fixed, cost=pb.sub_cost, budget=pb.budget)
    best, best_v = sel, _cover_value(aug, wa, sel)
    if pb.plain:
        # the best of the starts (extra ones padded to k by greedy additions), then 1-swaps on it
        for cand in extra:
            cand = _pad_greedy(aug, wa, np.asarray(cand, dtype=np.int64)[:k], k)
            v = _cover_value(aug, wa, cand)
            if v > best_v:
                best, best_v = cand, v
        best = _swap_search(aug, wa, best, max_passes=5)
    return np.asarray(best, dtype=np.int64)


def _problem_greedy(pb: _Problem, k: int):
    """Lazy greedy on the whole problem (kept blocks first where they are variables):
    method "greedy", the greedy curve and the safety net of an exact answer all run this."""
    w_use = None if pb.pair else pb.w_eff
    fixed = pb.fixed if (pb.capacity is not None or pb.pair) else None
    return _greedy(pb.cov, w_use, k, pb.conflicts, pb.dcodes, pb.max_per_district, pb.capacity, pb.pair,
                   fixed=fixed, cost=pb.cost, budget=pb.budget)


def _greedy_result(pb: _Problem, k: int) -> SelectionResult:
    sel, gains, rem = _problem_greedy(pb, k)
    nz = gains > 0
    return SelectionResult(selected=sel[nz], marginal_gain=gains[nz], cumulative=np.cumsum(gains[nz]),
                           objective=float(gains.sum()), method="greedy", total_weight=pb.total,
                           existing_weight=pb.existing_weight, served=np.where(pb.served0, 1.0, 1.0 - rem),
                           status="greedy", mip_gap=None, info=pb.info)


def _finish(pb: _Problem, x: np.ndarray, status: str, gap, bound, k: int, used: str,
            greedy_value: float | None = None) -> SelectionResult:
    """Canonical ties, selection order, marginal gains, and the greedy safety net
    (``greedy_value``: the greedy's objective at k when known, so that the greedy runs
    again only when it is better)."""
    cov = pb.cov
    if pb.capacity is not None and used == "milp":
        return _finish_capacitated(pb, x, status, gap, bound, used)
    if not pb.pair and pb.capacity is None:
        blocked = np.zeros(cov.shape[0], dtype=bool)
        blocked[pb.fixed] = True
        x = _canonical_swaps(cov, pb.w_eff, x, pb.conflicts, pb.dcodes, pb.max_per_district,
                             cost=pb.cost, blocked=blocked)
    elif pb.pair:
        x = _canonical_swaps_pair(cov, x, pb.conflicts, pb.dcodes, pb.max_per_district) \
            if pb.budget is None and not pb.fixed.size else x
    w_use = None if pb.pair else pb.w_eff
    fixed_order = pb.fixed if (pb.capacity is not None or pb.pair) else None
    sel, gains, rem = _order_sites(cov, w_use, x, pb.capacity, pb.pair, fixed=fixed_order)
    if status != "optimal" and (greedy_value is None or greedy_value > gains.sum() + 1e-9):
        g_sel, g_gains, g_rem = _problem_greedy(pb, k)
        if g_gains.sum() > gains.sum() + 1e-9:
            sel, gains, rem, used = g_sel, g_gains, g_rem, "greedy"
            status = f"{status}; greedy was better"
    nz = gains > 0  # drop sites that add nothing (the solver may pick any of them)
    sel, gains = sel[nz], gains[nz]
    if pb.capacity is not None and fixed_order is not None and len(fixed_order):
        # fixed blocks served first: count what they serve as already served
        st = _state(cov, w_use, pb.capacity, False)
        pb.info["fixed_served"] = float(sum(st.apply(int(i)) for i in fixed_order))
    served = np.where(pb.served0, 1.0, 1.0 - rem)
    obj = float(gains.sum())
    if bound is not None and np.isfinite(bound):
        bound = max(float(bound), obj)
    return SelectionResult(selected=sel, marginal_gain=gains, cumulative=np.cumsum(gains), objective=obj,
                           method=used, total_weight=pb.total, existing_weight=pb.existing_weight,
                           served=served, status=status, mip_gap=gap, info=dict(pb.info), bound=bound)


def _assign_lp(cov: sp.csr_matrix, W: np.ndarray, C: np.ndarray, sites) -> tuple[float, np.ndarray, np.ndarray]:
    """Best assignment of origins to the given ``sites`` under capacity (a transportation
    LP on HiGHS): (weight served, load per site, share served per origin and service)."""
    sites = np.asarray(sorted(int(i) for i in sites), dtype=np.int64)
    n_o, n_s = W.shape
    share = np.zeros((n_o, n_s))
    if sites.size == 0:
        return 0.0, np.zeros(0), share
    sub = cov[sites]
    nnz = sub.nnz
    row_of = np.repeat(np.arange(sites.size), np.diff(sub.indptr))
    ent = np.arange(nnz)
    n_var = nnz * n_s
    c = np.concatenate([W[sub.indices, s] for s in range(n_s)])
    blocks, hi = [], []
    for s in range(n_s):
        off = s * nnz
        blocks.append(sp.csr_matrix((np.ones(nnz), (sub.indices, off + ent)), shape=(n_o, n_var)))
        hi.append(np.ones(n_o))
        blocks.append(sp.csr_matrix((W[sub.indices, s], (row_of, off + ent)), shape=(sites.size, n_var)))
        hi.append(C[sites, s])
    a = sp.vstack(blocks, format="csr")
    hi_all = np.concatenate(hi)
    model = _HighsModel(c, a, np.full(hi_all.size, -np.inf), hi_all, np.zeros(n_var), np.ones(n_var), 0)
    y, status, _, _, obj = model.solve(start=None, time_limit_s=None)
    if y is None:
        raise InputDataError(f"site selection: the capacity assignment LP failed ({status})")
    load = np.zeros(sites.size)
    for s in range(n_s):
        ys = y[s * nnz : (s + 1) * nnz]
        np.add.at(load, row_of, ys * W[sub.indices, s])
        np.add.at(share[:, s], sub.indices, ys)
    out_load = np.zeros(cov.shape[0])
    out_load[sites] = load
    return float(obj), out_load, np.clip(share, 0.0, 1.0)


def _finish_capacitated(pb: _Problem, x, status, gap, bound, used: str) -> SelectionResult:
    """Exact figures for a capacitated selection: sites ordered by what they serve in the
    best assignment, each site's gain = best assignment with it minus without it among the
    sites before it (kept blocks first), so the gains add up to the exact objective."""
    W = pb.w_eff.reshape(pb.cov.shape[1], -1)
    C = pb.capacity
    base, _, _ = _assign_lp(pb.cov, W, C, pb.fixed)
    full, load, share = _assign_lp(pb.cov, W, C, np.union1d(pb.fixed, x))
    order = sorted((int(i) for i in x), key=lambda i: (-load[i], i))
    gains, prev, acc = [], base, list(pb.fixed)
    for i in order:
        acc.append(i)
        v = full if len(acc) == len(pb.fixed) + len(order) else _assign_lp(pb.cov, W, C, acc)[0]
        gains.append(v - prev)
        prev = v
    sel = np.array(order, dtype=np.int64)
    gains = np.array(gains, dtype=float)
    tot = W.sum(axis=1)
    done = (W * share).sum(axis=1)
    served_share = np.divide(done, tot, out=np.zeros_like(tot), where=tot > 0)
    nz = gains > 1e-9 * max(1.0, abs(full))
    sel, gains = sel[nz], gains[nz]
    info = dict(pb.info)
    if pb.fixed.size:
        info["fixed_served"] = base
    obj = full - base
    if bound is not None and np.isfinite(bound):
        bound = max(float(bound), obj)
    return SelectionResult(selected=sel, marginal_gain=gains, cumulative=np.cumsum(gains), objective=obj,
                           method=used, total_weight=pb.total, existing_weight=pb.existing_weight,
                           served=np.where(pb.served0, 1.0, served_share), status=status, mip_gap=gap,
                           info=info, bound=bound)


def _trivial_bound(pb: _Problem, k: int) -> float:
    """An upper bound needing no LP: the K largest values single sites could add, capped by
    the weight any site can reach."""
    sub = pb.sub
    pattern = sp.csr_matrix((np.ones(sub.nnz), sub.indices, sub.indptr), shape=sub.shape)
    if pb.pair:
        rows = np.asarray(sub.sum(axis=1)).ravel()
        reach = float(np.asarray(sub.max(axis=0).todense()).sum()) if sub.nnz else 0.0
    elif pb.capacity is not None:
        W = pb.ws.reshape(sub.shape[1], -1)
        rows = np.minimum(pattern @ W, pb.capacity[pb.alive]).sum(axis=1)
        reach = float(W.sum())
    else:
        own = pb.own if pb.own is not None else np.zeros(sub.shape[0])
        rows = pattern @ pb.ws + own
        reach = float(pb.ws.sum() + own.sum())
    rows = np.asarray(rows, dtype=float).ravel()
    conflicts = pb.sub_conflicts if pb.sub_conflicts is not None else pb.conflicts
    if len(conflicts):
        # at most one site of a group of candidates pairwise closer than the spacing: a
        # set's value is at most the sum of its sites' own values, so at most the k
        # largest of the groups' best values
        label = _spacing_cliques(conflicts, rows.size, np.argsort(-rows, kind="stable"))
        best = np.zeros(int(label.max()) + 1)
        np.maximum.at(best, label, rows)
        rows = best
    top = np.sort(rows)[::-1][:k]
    return float(min(top.sum(), reach))


def _spacing_cliques(conflicts: np.ndarray, n: int, order: np.ndarray) -> np.ndarray:
    """A partition of the candidates into groups that are pairwise in conflict (closer than
    the minimum spacing), greedy in ``order``: a label per candidate."""
    nbr: list[set[int]] = [set() for _ in range(n)]
    for a, b in conflicts:
        nbr[int(a)].add(int(b))
        nbr[int(b)].add(int(a))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    label = np.full(n, -1, dtype=np.int64)
    g = 0
    for i in order:
        if label[i] >= 0:
            continue
        label[i] = g
        common = set(nbr[i])
        for j in sorted(common, key=lambda v: rank[v]):
            if label[j] < 0 and j in common:
                label[j] = g
                common &= nbr[j]
        g += 1
    return label


def _model_objective(pb: _Problem, chosen) -> float:
    """The reduced instance's objective of ``chosen`` (reduced positions; uncapacitated
    exactly, otherwise by the greedy assignment, a lower bound)."""
    if pb.pair or pb.capacity is not None:
        _, gains, _ = _order_sites(pb.sub, pb.ws, chosen, pb.capacity[pb.alive] if pb.capacity is not None
                                   else None, pb.pair)
        return float(gains.sum())
    own = pb.own if pb.own is not None else np.zeros(pb.sub.shape[0])
    return _cover_value(pb.sub, pb.ws, chosen) + float(own[chosen].sum())


def _fixed_value(pb: _Problem) -> float:
    """What the fixed blocks themselves contribute inside the MILP objective (capacitated or
    pair: they are variables there; uncapacitated: their catchment is already served)."""
    if not pb.fixed.size or (pb.capacity is None and not pb.pair):
        return 0.0
    st = _state(pb.cov, None if pb.pair else pb.w_eff, pb.capacity, pb.pair)
    return float(sum(st.apply(int(i)) for i in pb.fixed))


def select_sites(
    coverage: sp.spmatrix | np.ndarray,
    origin_weights: np.ndarray | None,
    *,
    k: int,
    method: Method = "auto",
    min_spacing_m: float = 0.0,
    candidate_xy: np.ndarray | None = None,
    districts: Sequence | np.ndarray | None = None,
    max_per_district: int | None = None,
    existing: sp.spmatrix | np.ndarray | None = None,
    capacity: float | np.ndarray | None = None,
    time_limit_s: float | None = 300.0,
    merge_origins: bool = True,
    pair_gains: bool = False,
    cost: np.ndarray | None = None,
    budget: float | None = None,
    fixed: Sequence[int] | np.ndarray | None = None,
) -> SelectionResult:
    """Choose up to ``k`` candidates maximising the weight of origins covered.

    With ``pair_gains=True`` the stored values of ``coverage`` are what origin j gains from
    site i (e.g. caregiver hours returned, which depend on how near the site is), and the
    objective becomes ``sum_j w_j max_{i chosen} value_ij`` (each origin counted once, with
    its best chosen site: a facility-location objective, still submodular, solved exactly
    with assignment variables or by the same lazy greedy). No capacity in that mode.

    Parameters
    ----------
    coverage
        Candidates x origins; a stored entry (any value, zero included) means covered. The
        value (travel time) only orders origins when ``capacity`` is set.
    origin_weights
        Weight per origin (people, care gaps, hours); negative weights are an error. May be
        None (all 1) with ``pair_gains``. With a ``capacity`` per service, origins x
        services (the people who use each service); without one, such a table is summed.
    k
        Number of sites to choose (on top of ``fixed``). Selection stops early when no
        feasible candidate adds coverage.
    method
        ``"milp"`` (exact, HiGHS), ``"greedy"`` (lazy greedy) or ``"auto"`` (MILP up to
        5,000 candidates and 5 M coverage entries, else greedy).
    min_spacing_m, candidate_xy
        Chosen sites are at least ``min_spacing_m`` apart (straight line between the
        ``candidate_xy`` points, projected metres).
    districts, max_per_district
        District label per candidate (None: in no district) and the most sites per district.
    existing
        Origins already served: a boolean per origin, or the coverage matrix of the existing
        Care Blocks (existing sites x origins). Their weight counts as served.
    capacity
        Most weight one site can serve: one number, one per candidate, or candidates x
        services (with ``origin_weights`` origins x services). People count only up to the
        capacity of the site that serves them (capacitated maximal covering; the MILP
        assigns them exactly, greedy serves nearest first).
    time_limit_s
        MILP time limit; when hit, the best solution found (started from the greedy + swap
        answer) is returned with ``status = "time limit"``, ``mip_gap`` and ``bound``.
    merge_origins
        Merge origins with identical covering sets before the MILP (same optimum, smaller).
    cost, budget
        Cost per candidate and the most the chosen sites may cost together (fixed sites
        excluded).
    fixed
        Candidate positions that are always chosen (blocks that stay); they do not count in
        ``k`` and are not in ``selected``; what they cover counts as already served.

    Returns
    -------
    SelectionResult
    """
    pb = _prepare(coverage, origin_weights, k=k, method=method, min_spacing_m=min_spacing_m,
                  candidate_xy=candidate_xy, districts=districts, max_per_district=max_per_district,
                  existing=existing, capacity=capacity, pair_gains=pair_gains, cost=cost, budget=budget,
                  fixed=fixed)
    n_c = pb.cov.shape[0]
    if method == "auto":
        small = n_c <= AUTO_MAX_CANDIDATES and pb.cov.nnz <= AUTO_MAX_NNZ
        method = "milp" if small else "greedy"
    if method == "greedy" or k == 0 or n_c == 0:
        return _greedy_result(pb, k)
    _reduce(pb, merge_origins)
    solver = _exact_solver(pb, k)
    x, status, gap, bound = solver.solve(k, time_limit_s=time_limit_s)
    return _finish(pb, x, status, gap, bound, k, "milp")


def _exact_solver(pb: _Problem, k_max: int):
    """The exact solver of a reduced problem: by independent parts (:mod:`decompose`) when
    only the site count limits the choice, else one HiGHS model with every side row."""
    return _PartsCurveSolver(pb, k_max) if pb.plain else _CurveSolver(pb)


class _PartsCurveSolver:
    """:class:`careblocks.sites.decompose.PartsSolver` behind the interface of
    :class:`_CurveSolver` (reduced positions in, candidate positions out)."""

    def __init__(self, pb: _Problem, k_max: int):
        own = pb.own if pb.own is not None else np.zeros(pb.sub.shape[0])
        self.pb = pb
        self.parts = PartsSolver(pb.sub, pb.ws, own, k_max)

    def solve(self, k: int, *, time_limit_s: float | None, lp_time_limit_s: float | None = None,
              k_ahead: int | None = None, retry: float = 2.0):
        import time

        now = time.perf_counter()
        deadline = None if time_limit_s is None else now + time_limit_s
        lp_deadline = None if lp_time_limit_s is None else now + lp_time_limit_s
        chosen, lo, hi, exact = self.parts.solve(k, deadline, lp_deadline, k_ahead=k_ahead, retry=retry)
        self.pb.info.update({f"milp_{key}": v for key, v in self.parts.stats().items()})
        gap = 0.0 if exact else (hi - lo) / max(abs(lo), 1e-9)
        return self.pb.alive[chosen], ("optimal" if exact else "time limit"), gap, float(hi)


class _CurveSolver:
    """One reduced instance and one HiGHS model, solved for several K in turn (the site
    count row changes, the previous answer plus a site is offered as a start)."""

    def __init__(self, pb: _Problem):
        self.pb = pb
        self.model = None
        self.lp = None
        self.k_row = None
        self.prev: np.ndarray | None = None  # reduced positions chosen at the previous K

    def _build(self, k: int, relax: bool):
        pb = self.pb
        cap = pb.capacity[pb.alive] if pb.capacity is not None else None
        return _model(pb.sub, pb.ws, k, pb.sub_conflicts, pb.sub_dcodes, pb.max_per_district, cap,
                      pair=pb.pair, cost=pb.sub_cost, budget=pb.budget, fixed=pb.sub_fixed, own=pb.own,
                      relax=relax)

    def solve(self, k: int, *, time_limit_s: float | None, lp_time_limit_s: float | None = None,
              k_ahead: int | None = None, retry: float = 2.0):
        """Best set for ``k``: the LP relaxation (within ``lp_time_limit_s``, default
        ``time_limit_s``), then branch and bound within what is left of ``time_limit_s``
        (none at all when it is not positive: the best start and the simple bound)."""
        import time

        pb = self.pb
        sub = pb.sub
        n = sub.shape[0]
        if n == 0 or (sub.shape[1] == 0 and (pb.own is None or not pb.own.any())):
            return np.zeros(0, dtype=np.int64), "optimal", 0.0, 0.0
        t0 = time.perf_counter()
        if time_limit_s is not None and (time_limit_s <= 0 or (lp_time_limit_s is not None
                                                               and time_limit_s < MIN_STEP_S)):
            # out of time (a curve past its deadline): the best start, the simple bound
            chosen = _best_start(pb, k, [self.prev] if self.prev is not None and self.prev.size else [])
            return self._bounded(k, chosen, np.inf, np.inf)
        # 1. the LP relaxation, kept between K: interior point the first time, then dual
        #    simplex from the previous basis (only the site-count row changes)
        if self.lp is None:
            self.lp, self.k_row = self._build(k, relax=True)
            lp_solver = "ipm"
        else:
            self.lp.set_row_upper(self.k_row, k)
            lp_solver = "simplex"
        # the LP at most half the time of one K: branch and bound keeps the rest (a large
        # capacitated model's LP alone can take the whole limit, leaving no bound at all)
        lp_limit = lp_time_limit_s if lp_time_limit_s is not None else (
            None if time_limit_s is None else 0.5 * time_limit_s)
        xl, lp_status, _, _, lp_obj = self.lp.solve(start=None, time_limit_s=lp_limit, solver=lp_solver)
        lp_bound = lp_obj if lp_status == "optimal" else np.inf
        if xl is not None and lp_status == "optimal":
            xs = xl[:n]
            if np.all(np.minimum(np.abs(xs), np.abs(1 - xs)) <= 1e-7):
                chosen = np.setdiff1d(np.flatnonzero(xs > 0.5), pb.sub_fixed)
                self.prev = chosen
                return pb.alive[chosen], "optimal", 0.0, float(lp_obj) - _fixed_value(pb)
        # 2. branch and bound from the best start: greedy, the previous K's answer plus a
        #    site, the K largest LP values (each improved by 1-swaps where that is exact)
        extra = []
        if self.prev is not None and self.prev.size:
            extra.append(self.prev)
        if xl is not None and pb.plain:
            extra.append(np.argsort(-xl[:n], kind="stable")[:k])
        start = _best_start(pb, k, extra)
        if self.model is None:
            self.model, _ = self._build(k, relax=False)
        else:
            self.model.set_row_upper(self.k_row, k)
        cap = pb.capacity[pb.alive] if pb.capacity is not None else None
        x0 = _start_vector(self.model.n_var, n, np.union1d(start, pb.sub_fixed).astype(np.int64),
                           sub, pb.ws, cap, pb.pair)
        elapsed = time.perf_counter() - t0
        if time_limit_s is None:
            left = None
        elif lp_time_limit_s is None:
            left = max(0.1, time_limit_s - elapsed)
        else:  # within a curve: this K's share, never past the curve's end
            left = min(time_limit_s, lp_time_limit_s - elapsed)
            if left < MIN_STEP_S:
                return self._bounded(k, start, np.inf, lp_bound)
        x, status, gap, bound, obj = self.model.solve(start=x0, time_limit_s=left)
        if x is None and status == "time limit" and lp_time_limit_s is not None:
            return self._bounded(k, start, np.inf, lp_bound)
        if x is None:
            raise InputDataError(f"site selection: the MILP found no solution ({status}); try method='greedy'")
        chosen = np.setdiff1d(np.flatnonzero(x[:n] > 0.5), pb.sub_fixed)
        if status != "optimal":
            return self._bounded(k, chosen, float(bound) if np.isfinite(bound) else np.inf, lp_bound)
        self.prev = chosen
        return pb.alive[chosen], status, gap, float(bound) - _fixed_value(pb)

    def _bounded(self, k: int, chosen: np.ndarray, mip_bound: float, lp_bound: float):
        """An answer not proven optimal by HiGHS, with its proven bound: HiGHS's, the LP
        relaxation's or, failing both, the K largest single-site values; the bound is on
        the model's objective, which counts the fixed blocks' service when they are
        variables there: reported net of them."""
        pb = self.pb
        self.prev = chosen
        bound = min(mip_bound, lp_bound)
        if not pb.fixed.size or not np.isfinite(bound):
            # (with kept blocks their value here is the greedy assignment's, a lower
            # bound, so this bound is only the fallback then)
            bound = min(bound, _trivial_bound(pb, k) + _fixed_value(pb))
        obj = _model_objective(pb, chosen) + _fixed_value(pb)
        gap = max(0.0, (bound - obj) / max(abs(obj), 1e-9))
        status = "time limit"
        if gap <= MIP_REL_GAP:  # the LP bound closes it: proven after all
            status, gap = "optimal", 0.0
        return pb.alive[chosen], status, gap, float(bound) - _fixed_value(pb)


#: the constraints of :func:`select_sites` that :func:`coverage_curve` passes on, and their defaults
_CONSTRAINT_DEFAULTS = {"min_spacing_m": 0.0, "candidate_xy": None, "districts": None, "max_per_district": None,
                        "existing": None, "capacity": None, "pair_gains": False, "cost": None, "budget": None,
                        "fixed": None}


@dataclass(frozen=True)
class CurvePoint:
    """One K of a coverage curve."""

    k: int
    objective: float
    share: float
    exact: bool
    gap: float | None
    bound: float | None
    selected: np.ndarray
    seconds: float
    status: str


def coverage_curve(
    coverage: sp.spmatrix | np.ndarray,
    origin_weights: np.ndarray | None,
    *,
    k_max: int,
    time_limit_s: float | None = 120.0,
    per_k_time_limit_s: float | None = None,
    method: Method = "milp",
    **constraints,
) -> list[CurvePoint]:
    """Best coverage for every K = 1..``k_max``, solved incrementally.

    One reduced instance serves every K: by parts (:mod:`decompose`) the parts' bounds,
    best sets and proofs are shared by all K; else one HiGHS model whose site count row
    changes, each solve starting from the better of the lazy greedy and the previous K's
    answer plus its best extra site (both improved by 1-swaps). Each point is ``exact``
    when proven optimal, else it carries the proven ``gap`` and ``bound``.

    ``time_limit_s`` is a hard limit for the whole call, reductions included: no solve is
    given time past it, and the points whose turn comes after it are reported from the
    bounds known then (exact only where those meet). By parts, each proof a part still
    needs for any K to come gets an even share of the time left; with one model, each K
    gets an even share of it (either way, what a fast K leaves goes to the later ones;
    ``per_k_time_limit_s`` caps one K). The LP relaxations, which serve every later K,
    may use all of it. Time left at the end goes back to the points still open. ``method="greedy"`` gives the greedy
    curve (nested sets, no bounds). ``constraints`` are those of :func:`select_sites`
    (spacing, districts, existing, capacity, pair_gains, cost, budget, fixed).
    """
    import time

    t_start = time.perf_counter()
    if k_max < 1:
        raise ConfigError(f"config key 'sites.curve_k_max': must be >= 1, got {k_max}")
    merge = constraints.pop("merge_origins", True)
    unknown = sorted(set(constraints) - set(_CONSTRAINT_DEFAULTS))
    if unknown:
        raise TypeError(f"coverage_curve: unexpected arguments {unknown}")
    deadline = None if time_limit_s is None else t_start + float(time_limit_s)
    pb = _prepare(coverage, origin_weights, k=k_max, method=method if method != "auto" else "milp",
                  **{**_CONSTRAINT_DEFAULTS, **constraints})
    out: list[CurvePoint] = []
    total = pb.total
    if method == "greedy":
        t0 = time.perf_counter()
        sel, gains, _ = _problem_greedy(pb, k_max)
        dt = time.perf_counter() - t0
        cum = np.cumsum(gains)
        for k in range(1, k_max + 1):
            n = min(k, sel.size)
            v = float(cum[n - 1]) if n else 0.0
            out.append(CurvePoint(k, v, v / total if total > 0 else 0.0, False, None, None, sel[:n].copy(),
                                  dt if k == 1 else 0.0, "greedy"))
        return out
    _reduce(pb, merge)
    solver = _exact_solver(pb, k_max)
    by_parts = isinstance(solver, _PartsCurveSolver)
    greedy_at = None
    if pb.plain:
        # the lazy greedy is nested: its value at every K from one run (the safety net of
        # each point then reruns it only where it is better than the exact answer)
        _, g_gains, _ = _problem_greedy(pb, k_max)
        greedy_at = np.concatenate([[0.0], np.cumsum(g_gains)])
    finish_s = 0.0  # the longest bookkeeping of one point so far, kept back for each point to come

    raw: dict[int, tuple] = {}  # K -> (status, gap, bound) of its last solve

    def point(k: int, t0: float, limit: float | None, lp_left: float | None,
              retry: float = 2.0) -> CurvePoint | None:
        nonlocal finish_s
        x, status, gap, bound = solver.solve(k, time_limit_s=limit, lp_time_limit_s=lp_left,
                                             k_ahead=k_max, retry=retry)
        if raw.get(k) == (status, gap, bound):
            return None  # nothing learnt since the last solve of this K
        raw[k] = (status, gap, bound)
        t_fin = time.perf_counter()
        g_val = None if greedy_at is None else float(greedy_at[min(k, greedy_at.size - 1)])
        res = _finish(pb, x, status, gap, bound, k, "milp", greedy_value=g_val)
        finish_s = max(finish_s, time.perf_counter() - t_fin)
        exact = res.status == "optimal"
        return CurvePoint(k, res.objective, res.objective / total if total > 0 else 0.0, exact,
                          0.0 if exact else res.mip_gap, res.bound, res.selected,
                          time.perf_counter() - t0, res.status)

    def time_left(n_points: int) -> float | None:
        # what is left of the whole limit, less the bookkeeping of the points to come
        if deadline is None:
            return None
        return max(0.0, deadline - time.perf_counter() - finish_s * n_points)

    last = None
    for k in range(1, k_max + 1):
        t0 = time.perf_counter()
        if last is not None and last.exact and total > 0 and last.objective >= total * (1 - 1e-12):
            # everything is covered: more sites cannot add anything
            out.append(CurvePoint(k, last.objective, last.share, True, 0.0, last.objective, last.selected,
                                  0.0, "optimal"))
            continue
        # the LP relaxation serves every K (re-solved from the previous basis): it may use
        # all the time left; branch and bound gets this K's share
        lp_left = time_left(k_max - k + 1)
        limit = lp_left
        if lp_left is not None and not by_parts:
            limit = lp_left / (k_max - k + 1)
        if per_k_time_limit_s is not None:
            limit = per_k_time_limit_s if limit is None else min(limit, per_k_time_limit_s)
        out.append(point(k, t0, limit, lp_left))
        last = out[-1]
    if deadline is not None and by_parts:
        # time a fast K left over, and proofs made for a larger K, go back to the open points
        # (re-read from the shared bounds first; a point changes only where they moved);
        # nothing else waits for this time, so a proof that ran out of time runs again
        # with any longer time
        for i, p in enumerate(out):
            if p.exact:
                continue
            t0 = time.perf_counter()
            lp_left = time_left(sum(not q.exact for q in out[i:]))
            limit = lp_left
            if per_k_time_limit_s is not None:
                limit = min(limit, per_k_time_limit_s)
            q = point(p.k, t0, limit, lp_left, retry=1.25)
            if q is not None and q.objective >= p.objective and (q.exact or q.bound <= p.bound):
                out[i] = replace(q, seconds=p.seconds + q.seconds)
    return out


def min_sites_for_coverage(
    coverage: sp.spmatrix | np.ndarray,
    origin_weights: np.ndarray,
    *,
    target_share: float,
    existing: sp.spmatrix | np.ndarray | None = None,
    fixed: Sequence[int] | np.ndarray | None = None,
    cost: np.ndarray | None = None,
    time_limit_s: float | None = 120.0,
) -> SelectionResult:
    """The fewest sites (or, with ``cost``, the cheapest set) whose catchments cover at
    least ``target_share`` of the weight not already served (set covering with a coverage
    target; exact on HiGHS)::

        minimise   sum_i x_i   (or sum_i cost_i x_i)
        subject to z_j <= sum_i a_ij x_i,   sum_j w_j z_j >= target * sum_j w_j

    ``status`` is ``"infeasible"`` (and nothing is selected) when even every candidate
    together cannot reach the target.
    """
    if not 0 < target_share <= 1:
        raise ConfigError(f"config key 'sites.coverage_target': must be in (0, 1], got {target_share}")
    pb = _prepare(coverage, origin_weights, k=0, method="milp", min_spacing_m=0.0, candidate_xy=None,
                  districts=None, max_per_district=None, existing=existing, capacity=None,
                  pair_gains=False, cost=cost, budget=None, fixed=fixed)
    _reduce(pb, True)
    need = target_share * pb.total
    sub, ws = pb.sub, pb.ws
    own = pb.own if pb.own is not None else np.zeros(sub.shape[0])
    n_c, n_o = sub.shape
    reach = float(ws.sum() + own.sum())
    if reach < need * (1 - 1e-12) or n_c == 0:
        status = "infeasible" if reach < need * (1 - 1e-12) else "optimal"
        res = _finish(pb, np.zeros(0, dtype=np.int64), "optimal", 0.0, 0.0, 0, "milp")
        return SelectionResult(**{**res.__dict__, "status": status})
    pattern = sp.csr_matrix((np.ones(sub.nnz), sub.indices, sub.indptr), shape=sub.shape)
    unit = np.ones(n_c) if pb.sub_cost is None else pb.sub_cost
    # maximise -sum cost x  <=>  minimise cost
    c = np.concatenate([-unit, np.zeros(n_o)])
    a = sp.vstack([sp.hstack([-pattern.T, sp.identity(n_o)]),
                   sp.hstack([sp.csr_matrix(own.reshape(1, -1)), sp.csr_matrix(ws.reshape(1, -1))])],
                  format="csr")
    lo = np.concatenate([np.full(n_o, -np.inf), [need * (1 - 1e-9)]])
    hi = np.concatenate([np.zeros(n_o), [np.inf]])
    model = _HighsModel(c, a, lo, hi, np.zeros(n_c + n_o), np.ones(n_c + n_o), n_c)
    x, status, gap, bound, _ = model.solve(start=None, time_limit_s=time_limit_s)
    if x is None:
        raise InputDataError(f"site selection: the set covering MILP found no solution ({status})")
    chosen = pb.alive[np.flatnonzero(x[:n_c] > 0.5)]
    res = _finish(pb, chosen, status, gap, None, int(chosen.size), "milp")
    info = {**res.info, "target_share": target_share, "min_cost_bound": -bound if np.isfinite(bound) else None}
    return SelectionResult(**{**res.__dict__, "info": info})


def coverage_value(coverage: sp.spmatrix, origin_weights: np.ndarray, sites: Sequence[int]) -> float:
    """Weight of origins covered by at least one of ``sites`` (no capacity)."""
    cov = _as_coverage(coverage)
    hit = np.zeros(cov.shape[1], dtype=bool)
    for i in sites:
        hit[cov.indices[cov.indptr[i] : cov.indptr[i + 1]]] = True
    return float(np.asarray(origin_weights, dtype=float)[hit].sum())
