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
``sum_j w_j y_ij <= c x_i``). The MILP is solved with HiGHS through
:func:`scipy.optimize.milp`, which takes the sparse constraint matrix as it is; spopt's
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
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

from careblocks.errors import ConfigError, InputDataError

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
        Relative MIP gap HiGHS reported (0 when proven optimal), None for greedy.
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
    """Tracks the remaining weight share per origin and evaluates / applies a site."""

    def __init__(self, cov: sp.csr_matrix, w: np.ndarray, capacity: float | None):
        self.cov = cov
        self.w = w
        self.rem = np.ones(cov.shape[1], dtype=float)
        self.capacity = capacity
        if capacity is not None:
            # serve nearest origins first: order each row by its stored time
            self.order = [
                np.argsort(cov.data[cov.indptr[i] : cov.indptr[i + 1]], kind="stable")
                for i in range(cov.shape[0])
            ]

    def gain(self, i: int) -> float:
        cols = self.cov.indices[self.cov.indptr[i] : self.cov.indptr[i + 1]]
        g = float(np.dot(self.w[cols], self.rem[cols]))
        return g if self.capacity is None else min(g, self.capacity)

    def apply(self, i: int) -> float:
        cols = self.cov.indices[self.cov.indptr[i] : self.cov.indptr[i + 1]]
        if self.capacity is None:
            g = float(np.dot(self.w[cols], self.rem[cols]))
            self.rem[cols] = 0.0
            return g
        left = self.capacity
        g = 0.0
        for c in cols[self.order[i]]:
            need = self.w[c] * self.rem[c]
            if need <= 0:
                continue
            take = min(need, left)
            self.rem[c] -= take / self.w[c]
            g += take
            left -= take
            if left <= 0:
                break
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


def _greedy(cov, w, k, conflicts, dcodes, max_per_district, capacity, pair=False):
    n = cov.shape[0]
    state = _state(cov, w, capacity, pair)
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b in conflicts:
        neighbours[a].append(int(b))
        neighbours[b].append(int(a))
    blocked = np.zeros(n, dtype=bool)
    per_district: dict[int, int] = {}
    if pair:
        first = state.all_gains()
    elif capacity is None:
        first = np.asarray(cov @ w).ravel()
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
        if blocked[i]:
            continue
        if when == rnd:
            if -neg <= 0:
                break  # nothing left to gain
            g = state.apply(i)
            chosen.append(i)
            gains.append(g)
            rnd += 1
            blocked[i] = True
            for j in neighbours[i]:
                blocked[j] = True
            if dcodes is not None and dcodes[i] >= 0 and max_per_district is not None:
                d = int(dcodes[i])
                per_district[d] = per_district.get(d, 0) + 1
                if per_district[d] >= max_per_district:
                    blocked |= dcodes == d
        else:
            heapq.heappush(heap, (-state.gain(i), i, rnd))
    return np.array(chosen, dtype=np.int64), np.array(gains, dtype=float), _left(state)


def _left(state) -> np.ndarray:
    """Per origin, the share of weight still unserved (pair gains: 1 until a site serves it)."""
    return state.rem if isinstance(state, _Coverer) else (state.best <= 0).astype(float)


# --------------------------------------------------------------------------------------
# MILP (HiGHS via scipy.optimize.milp)
# --------------------------------------------------------------------------------------


def _merge_identical_columns(cov: sp.csr_matrix, w: np.ndarray):
    """Merge origins covered by the same set of candidates; returns (coverage, weights, groups)."""
    csc = cov.tocsc()
    csc.sort_indices()
    keys: dict[bytes, int] = {}
    group = np.empty(csc.shape[1], dtype=np.int64)
    for j in range(csc.shape[1]):
        key = csc.indices[csc.indptr[j] : csc.indptr[j + 1]].tobytes()
        group[j] = keys.setdefault(key, len(keys))
    n_groups = len(keys)
    merge = sp.csr_matrix(
        (np.ones(csc.shape[1]), (np.arange(csc.shape[1]), group)), shape=(csc.shape[1], n_groups)
    )
    pattern = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
    merged = (pattern @ merge).tocsr()
    merged.data[:] = 1.0
    wg = np.bincount(group, weights=w, minlength=n_groups)
    return merged, wg, group


def _dominated(cov: sp.csr_matrix) -> np.ndarray:
    """Candidates whose covered origins are a subset of another candidate's (identical sets:
    all but the first). Dropping them keeps the optimum when there are no spacing, district
    or capacity constraints: any optimal set can swap them for their dominator."""
    pattern = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
    sizes = np.diff(pattern.indptr)
    overlap = (pattern @ pattern.T).tocsr()
    rows = np.repeat(np.arange(overlap.shape[0]), np.diff(overlap.indptr))
    cols = overlap.indices
    sub = (rows != cols) & (overlap.data == sizes[rows])
    dom = sub & ((sizes[cols] > sizes[rows]) | (cols < rows))
    out = np.zeros(cov.shape[0], dtype=bool)
    out[rows[dom]] = True
    out[sizes == 0] = True
    return out


def _milp(cov, w, k, conflicts, dcodes, max_per_district, capacity, time_limit_s, pair=False):
    from scipy.optimize import Bounds, LinearConstraint, milp

    n_c, n_o = cov.shape
    pattern = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
    rows: list[sp.spmatrix] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    if pair:
        # variables: x (n_c) then y (one per entry); origin j takes the value of one chosen
        # site: sum_i y_ij <= 1, y_ij <= x_i; maximise sum v_ij y_ij
        nnz = cov.nnz
        n_var = n_c + nnz
        row_of = np.repeat(np.arange(n_c), np.diff(cov.indptr))
        ent = np.arange(nnz)
        c = np.concatenate([np.zeros(n_c), -cov.data])
        rows.append(sp.csr_matrix((np.ones(nnz), (cov.indices, n_c + ent)), shape=(n_o, n_var)))
        lo.append(np.full(n_o, -np.inf))
        hi.append(np.ones(n_o))
        rows.append(sp.csr_matrix(
            (np.concatenate([np.ones(nnz), -np.ones(nnz)]),
             (np.concatenate([ent, ent]), np.concatenate([n_c + ent, row_of]))),
            shape=(nnz, n_var)))
        lo.append(np.full(nnz, -np.inf))
        hi.append(np.zeros(nnz))
        ub = np.ones(n_var)
    elif capacity is None:
        # variables: x (n_c) then z (n_o); z_j - sum_i a_ij x_i <= 0
        n_var = n_c + n_o
        c = np.concatenate([np.zeros(n_c), -w])
        rows.append(sp.hstack([-pattern.T, sp.identity(n_o)], format="csr"))
        lo.append(np.full(n_o, -np.inf))
        hi.append(np.zeros(n_o))
        ub = np.ones(n_var)
    else:
        # variables: x (n_c) then y (one per coverage entry, row-major)
        nnz = cov.nnz
        n_var = n_c + nnz
        row_of = np.repeat(np.arange(n_c), np.diff(cov.indptr))
        ent = np.arange(nnz)
        c = np.concatenate([np.zeros(n_c), -w[cov.indices]])
        # each origin served at most once: sum_i y_ij <= 1
        a1 = sp.csr_matrix((np.ones(nnz), (cov.indices, n_c + ent)), shape=(n_o, n_var))
        rows.append(a1)
        lo.append(np.full(n_o, -np.inf))
        hi.append(np.ones(n_o))
        # capacity: sum_j w_j y_ij - cap x_i <= 0
        a2 = sp.csr_matrix(
            (
                np.concatenate([w[cov.indices], np.full(n_c, -float(capacity))]),
                (np.concatenate([row_of, np.arange(n_c)]), np.concatenate([n_c + ent, np.arange(n_c)])),
            ),
            shape=(n_c, n_var),
        )
        rows.append(a2)
        lo.append(np.full(n_c, -np.inf))
        hi.append(np.zeros(n_c))
        ub = np.ones(n_var)

    def x_rows(data_rows, data_cols, n_rows):
        return sp.csr_matrix(
            (np.ones(len(data_rows)), (data_rows, data_cols)), shape=(n_rows, n_var)
        )

    rows.append(x_rows(np.zeros(n_c, dtype=np.int64), np.arange(n_c), 1))
    lo.append(np.array([-np.inf]))
    hi.append(np.array([float(k)]))
    if len(conflicts):
        m = len(conflicts)
        rows.append(x_rows(np.repeat(np.arange(m), 2), conflicts.ravel(), m))
        lo.append(np.full(m, -np.inf))
        hi.append(np.ones(m))
    if dcodes is not None and max_per_district is not None:
        inside = np.flatnonzero(dcodes >= 0)
        if inside.size:
            nd = int(dcodes.max()) + 1
            rows.append(x_rows(dcodes[inside], inside, nd))
            lo.append(np.full(nd, -np.inf))
            hi.append(np.full(nd, float(max_per_district)))
    a = sp.vstack(rows, format="csr")
    b = np.concatenate(hi)
    # The LP relaxation first (HiGHS interior point + crossover, several times faster than
    # the MIP's dual simplex at this size): when its x is already 0/1 it is proven optimal.
    from scipy.optimize import linprog

    lp = linprog(c, A_ub=a, b_ub=b, bounds=np.column_stack([np.zeros(n_var), ub]), method="highs-ipm",
                 options={"time_limit": float(time_limit_s)} if time_limit_s is not None else None)
    if lp.status == 0 and lp.x is not None:
        xs = lp.x[:n_c]
        if np.all(np.minimum(np.abs(xs), np.abs(1 - xs)) <= 1e-7):
            return np.flatnonzero(xs > 0.5), "optimal", 0.0
    integrality = np.zeros(n_var)
    integrality[:n_c] = 1
    options = {"disp": False, "mip_rel_gap": 1e-6}
    if time_limit_s is not None:
        options["time_limit"] = float(time_limit_s)
    res = milp(
        c,
        constraints=LinearConstraint(a, np.concatenate(lo), np.concatenate(hi)),
        integrality=integrality,
        bounds=Bounds(np.zeros(n_var), ub),
        options=options,
    )
    if res.x is None:
        raise InputDataError(f"site selection: the MILP found no solution ({res.message}); try method='greedy'")
    x = np.flatnonzero(res.x[:n_c] > 0.5)
    status = "optimal" if res.status == 0 else ("time limit" if res.status == 1 else res.message)
    gap = getattr(res, "mip_gap", None)
    return x, status, (0.0 if res.status == 0 and gap is None else gap)


def _canonical_swaps(cov, w, sites, conflicts, dcodes, max_per_district) -> np.ndarray:
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


def _order_sites(cov, w, sites: np.ndarray, capacity, pair=False):
    """Order fixed sites greedily (largest marginal gain first, ties by position)."""
    state = _state(cov, w, capacity, pair)
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
    capacity: float | None = None,
    time_limit_s: float | None = 300.0,
    merge_origins: bool = True,
    pair_gains: bool = False,
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
        None (all 1) with ``pair_gains``.
    k
        Number of sites to choose. Selection stops early when no feasible candidate adds
        coverage.
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
        Most weight one site can serve (e.g. people); origins are served nearest first.
    time_limit_s
        MILP time limit; when hit, the best solution found is compared with greedy and the
        better one is returned (``status`` says so).
    merge_origins
        Merge origins with identical covering sets before the MILP (same optimum, smaller).

    Returns
    -------
    SelectionResult
    """
    cov = _as_coverage(coverage)
    n_c, n_o = cov.shape
    if origin_weights is None and not pair_gains:
        raise InputDataError("origin_weights: needed unless pair_gains=True (one weight per origin)")
    w = np.ones(n_o) if origin_weights is None else np.asarray(origin_weights, dtype=float)
    if w.shape != (n_o,):
        raise InputDataError(f"origin_weights: expected {n_o} values (one per origin), got {w.shape}")
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise InputDataError("origin_weights: weights must be finite and >= 0; fill missing values with 0")
    if k < 0:
        raise ConfigError(f"config key 'sites.k': must be >= 0, got {k}")
    if method not in ("milp", "greedy", "auto"):
        raise ConfigError(f"config key 'sites.method': {method!r} is not allowed; use 'milp', 'greedy' or 'auto'")
    if capacity is not None and capacity <= 0:
        raise ConfigError(f"config key 'sites.capacity': must be greater than 0, got {capacity}")
    if max_per_district is not None and max_per_district < 0:
        raise ConfigError(f"config key 'sites.max_per_district': must be >= 0, got {max_per_district}")
    if min_spacing_m > 0 and candidate_xy is None:
        raise InputDataError("candidate_xy: needed when min_spacing_m > 0 (one x, y per candidate)")
    conflicts = (
        conflict_pairs(candidate_xy, min_spacing_m)
        if candidate_xy is not None
        else np.zeros((0, 2), dtype=np.int64)
    )
    dcodes = _district_codes(districts, n_c)
    served0 = _existing_served(existing, n_o)
    w_eff = np.where(served0, 0.0, w)
    total = float(w_eff.sum())
    existing_weight = float(w[served0].sum())
    if pair_gains:
        if capacity is not None:
            raise ConfigError("config key 'sites.capacity': not available with the hours_returned objective")
        if np.any(~np.isfinite(cov.data)) or np.any(cov.data < 0):
            raise InputDataError("coverage: pair gains must be finite and >= 0")
        best = np.zeros(n_o)
        np.maximum.at(best, cov.indices, cov.data)
        total, existing_weight = float((best * w_eff).sum()), float((best * w)[served0].sum())
        cov = sp.csr_matrix((cov.data * w_eff[cov.indices], cov.indices, cov.indptr), shape=cov.shape)
        cov.eliminate_zeros()

    if method == "auto":
        small = n_c <= AUTO_MAX_CANDIDATES and cov.nnz <= AUTO_MAX_NNZ
        method = "milp" if small else "greedy"

    info: dict = {"n_candidates": n_c, "n_origins": n_o, "n_conflicts": int(len(conflicts))}
    if method == "greedy" or k == 0 or n_c == 0:
        sel, gains, rem = _greedy(cov, w_eff, k, conflicts, dcodes, max_per_district, capacity,
                                  pair_gains)
        status, gap, used = "greedy", None, "greedy"
    elif pair_gains:
        keep = np.flatnonzero(np.bincount(cov.indices, minlength=n_o) > 0)
        sub = cov[:, keep]
        info["milp_origins"] = int(keep.size)
        if keep.size == 0:
            x, status, gap = np.zeros(0, dtype=np.int64), "optimal", 0.0
        else:
            x, status, gap = _milp(sub, None, k, conflicts, dcodes, max_per_district, None,
                                   time_limit_s, pair=True)
        x = _canonical_swaps_pair(cov, x, conflicts, dcodes, max_per_district)
        sel, gains, rem = _order_sites(cov, None, x, None, pair=True)
        used = "milp"
        if status != "optimal":
            g_sel, g_gains, g_rem = _greedy(cov, None, k, conflicts, dcodes, max_per_district, None, True)
            if g_gains.sum() > gains.sum():
                sel, gains, rem, used = g_sel, g_gains, g_rem, "greedy"
                status = f"{status}; greedy was better"
        nz = gains > 0
        sel, gains = sel[nz], gains[nz]
    else:
        # drop origins that cannot count (weight 0 or covered by no candidate)
        keep = (w_eff > 0) & (np.bincount(cov.indices, minlength=n_o) > 0)
        sub = cov[:, np.flatnonzero(keep)]
        ws = w_eff[keep]
        if merge_origins and capacity is None:
            sub_m, ws_m, _ = _merge_identical_columns(sub, ws)
        else:
            sub_m, ws_m = sub, ws
        info["milp_origins"] = int(sub_m.shape[1])
        alive = np.arange(n_c)
        if capacity is None and not len(conflicts) and (dcodes is None or max_per_district is None):
            alive = np.flatnonzero(~_dominated(sub_m))
            sub_m = sub_m[alive]
            if merge_origins:  # fewer candidates: more origins now share a covering set
                sub_m, ws_m, _ = _merge_identical_columns(sub_m, ws_m)
                info["milp_origins"] = int(sub_m.shape[1])
        info["milp_candidates"] = int(alive.size)
        if alive.size == 0 or sub_m.shape[1] == 0:
            x, status, gap = np.zeros(0, dtype=np.int64), "optimal", 0.0
        else:
            x, status, gap = _milp(sub_m, ws_m, k, conflicts, dcodes, max_per_district, capacity,
                                   time_limit_s)
            x = alive[x]
        if capacity is None:
            x = _canonical_swaps(cov, w_eff, x, conflicts, dcodes, max_per_district)
        sel, gains, rem = _order_sites(cov, w_eff, x, capacity)
        used = "milp"
        if status != "optimal":
            g_sel, g_gains, g_rem = _greedy(cov, w_eff, k, conflicts, dcodes, max_per_district, capacity)
            if g_gains.sum() > gains.sum():
                sel, gains, rem, used = g_sel, g_gains, g_rem, "greedy"
                status = f"{status}; greedy was better"
        # drop sites that add nothing (the solver may pick any of them)
        nz = gains > 0
        sel, gains = sel[nz], gains[nz]
    served = np.where(served0, 1.0, 1.0 - rem)
    return SelectionResult(
        selected=sel,
        marginal_gain=gains,
        cumulative=np.cumsum(gains),
        objective=float(gains.sum()),
        method=used,
        total_weight=total,
        existing_weight=existing_weight,
        served=served,
        status=status,
        mip_gap=gap,
        info=info,
    )


def coverage_value(coverage: sp.spmatrix, origin_weights: np.ndarray, sites: Sequence[int]) -> float:
    """Weight of origins covered by at least one of ``sites`` (no capacity)."""
    cov = _as_coverage(coverage)
    hit = np.zeros(cov.shape[1], dtype=bool)
    for i in sites:
        hit[cov.indices[cov.indptr[i] : cov.indptr[i + 1]]] = True
    return float(np.asarray(origin_weights, dtype=float)[hit].sum())
