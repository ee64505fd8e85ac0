"""The HiGHS layer of site selection: one model object kept between solves, the maximal
covering / capacitated / facility-location MILP built on a sparse coverage matrix, MIP
starts, and the plain-coverage helpers (value of a set, greedy padding, 1-swap search) that
the exact solvers share."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: relative MIP gap at which HiGHS stops and the answer is called optimal
MIP_REL_GAP = 1e-6

_HIGHS_QUIET = False


def _new_highs():
    """A quiet ``highspy.Highs`` (its one-time banner goes to the C-level stdout, so it is
    silenced once at the file-descriptor level)."""
    import os

    import highspy

    global _HIGHS_QUIET
    if not _HIGHS_QUIET:
        _HIGHS_QUIET = True
        try:
            fd = os.dup(1)
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                try:
                    h = highspy.Highs()
                finally:
                    os.dup2(fd, 1)
                    os.close(fd)
        except OSError:  # no usable stdout file descriptor
            h = highspy.Highs()
    else:
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


class _HighsModel:
    """One HiGHS model (maximise ``c @ v`` s.t. ``lo <= A v <= hi``, ``lb <= v <= ub``, the
    first ``n_int`` variables binary), kept between solves: the row of the site count and
    the MIP start change, the rest is not rebuilt (used for the coverage curve)."""

    def __init__(self, c, a: sp.csr_matrix, lo, hi, lb, ub, n_int: int):
        import highspy

        self.h = _new_highs()
        self.n_var = int(c.size)
        self.n_int = n_int
        lp = highspy.HighsLp()
        lp.num_col_ = self.n_var
        lp.num_row_ = int(a.shape[0])
        lp.col_cost_ = np.asarray(c, dtype=float)
        lp.col_lower_ = np.asarray(lb, dtype=float)
        lp.col_upper_ = np.asarray(ub, dtype=float)
        inf = highspy.kHighsInf
        lp.row_lower_ = np.where(np.isfinite(lo), lo, -inf).astype(float)
        lp.row_upper_ = np.where(np.isfinite(hi), hi, inf).astype(float)
        csc = sp.csc_matrix(a)
        csc.sort_indices()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data.astype(float)
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.integrality_ = ([highspy.HighsVarType.kInteger] * n_int
                           + [highspy.HighsVarType.kContinuous] * (self.n_var - n_int))
        self.h.passModel(lp)
        self.h.setOptionValue("mip_rel_gap", MIP_REL_GAP)

    def lean(self) -> _HighsModel:
        """Settings for the small proof MILPs of :mod:`careblocks.sites.decompose`, which
        start from a strong set and have few nodes: no presolve, no primal heuristics, no
        strong branching (pseudo-costs from the first branchings). On a 342-candidate
        part of the benchmark instance this proves the optimum 3-7x faster than the
        defaults, which spend the time in presolve, heuristics and strong branching."""
        h = self.h
        h.setOptionValue("presolve", "off")
        h.setOptionValue("mip_heuristic_effort", 0.0)
        for name in ("mip_heuristic_run_rins", "mip_heuristic_run_rens",
                     "mip_heuristic_run_feasibility_jump", "mip_heuristic_run_root_reduced_cost"):
            h.setOptionValue(name, False)
        h.setOptionValue("mip_pscost_minreliable", 0)
        return self

    def set_row_upper(self, row: int, value: float) -> None:
        import highspy

        self.h.changeRowBounds(int(row), -highspy.kHighsInf, float(value))

    def solve(self, *, start: np.ndarray | None, time_limit_s: float | None, solver: str = "choose"):
        import highspy

        h = self.h
        h.setOptionValue("solver", solver)
        # HiGHS compares ``time_limit`` with the run time the object has accumulated over
        # all its runs, so a kept model (the coverage curve's LP) given 1 s after 5 s of
        # earlier solves would stop at once: the limit is set from that clock
        limit = highspy.kHighsInf if time_limit_s is None else h.getRunTime() + max(0.0, float(time_limit_s))
        h.setOptionValue("time_limit", limit)
        if start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = np.asarray(start, dtype=float).tolist()
            h.setSolution(sol)
        h.run()
        st = h.getModelStatus()
        info = h.getInfo()
        x = np.asarray(h.getSolution().col_value, dtype=float) if info.primal_solution_status >= 1 else None
        obj = float(info.objective_function_value) if x is not None else float("nan")
        bound = float(info.mip_dual_bound) if self.n_int else obj
        if st == highspy.HighsModelStatus.kOptimal:
            status = "optimal"
        elif st == highspy.HighsModelStatus.kTimeLimit:
            status = "time limit"
        elif st == highspy.HighsModelStatus.kInfeasible:
            status = "infeasible"
        else:
            status = h.modelStatusToString(st)
        if x is not None and status == "optimal":
            gap = max(0.0, (bound - obj) / max(abs(obj), 1e-9)) if np.isfinite(bound) else 0.0
        elif x is not None:
            gap = (bound - obj) / max(abs(obj), 1e-9) if np.isfinite(bound) else None
        else:
            gap = None
        return x, status, gap, bound, obj


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


def _model(cov, w, k, conflicts, dcodes, max_per_district, capacity, *, pair=False, cost=None,
           budget=None, fixed=None, own=None, relax=False):
    """Build the MILP of :func:`select_sites` for HiGHS; returns (model, k_row).

    Variables: ``x`` (one per candidate, binary) first, then ``z`` (one per origin column,
    uncapacitated), or ``y`` (one per coverage entry and service: assignments, capacitated
    or pair values). ``own`` is weight that a candidate alone covers (origins it is the only
    candidate of, folded into its objective coefficient). ``fixed`` candidates have x = 1
    and do not count against ``k``; ``cost``/``budget`` add ``sum cost_i x_i <= budget``
    (costs of fixed candidates excluded).
    """
    n_c, n_o = cov.shape
    pattern = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
    rows: list[sp.spmatrix] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    x_cost = np.zeros(n_c) if own is None else np.asarray(own, dtype=float)
    if pair:
        # origin j takes the value of one chosen site: sum_i y_ij <= 1, y_ij <= x_i
        nnz = cov.nnz
        n_var = n_c + nnz
        row_of = np.repeat(np.arange(n_c), np.diff(cov.indptr))
        ent = np.arange(nnz)
        c = np.concatenate([x_cost, cov.data])
        rows.append(sp.csr_matrix((np.ones(nnz), (cov.indices, n_c + ent)), shape=(n_o, n_var)))
        lo.append(np.full(n_o, -np.inf))
        hi.append(np.ones(n_o))
        rows.append(sp.csr_matrix(
            (np.concatenate([np.ones(nnz), -np.ones(nnz)]),
             (np.concatenate([ent, ent]), np.concatenate([n_c + ent, row_of]))),
            shape=(nnz, n_var)))
        lo.append(np.full(nnz, -np.inf))
        hi.append(np.zeros(nnz))
    elif capacity is None:
        # z_j - sum_i a_ij x_i <= 0
        n_var = n_c + n_o
        c = np.concatenate([x_cost, w])
        rows.append(sp.hstack([-pattern.T, sp.identity(n_o)], format="csr"))
        lo.append(np.full(n_o, -np.inf))
        hi.append(np.zeros(n_o))
    else:
        # per service s: y_ijs assignments; sum_i y_ijs <= 1; sum_j W_js y_ijs <= C_is x_i
        W = np.asarray(w, dtype=float).reshape(n_o, -1)
        C = np.asarray(capacity, dtype=float).reshape(n_c, -1)
        n_s = W.shape[1]
        nnz = cov.nnz
        n_var = n_c + nnz * n_s
        row_of = np.repeat(np.arange(n_c), np.diff(cov.indptr))
        ent = np.arange(nnz)
        c = np.concatenate([x_cost, *[W[cov.indices, s] for s in range(n_s)]])
        for s in range(n_s):
            off = n_c + s * nnz
            rows.append(sp.csr_matrix((np.ones(nnz), (cov.indices, off + ent)), shape=(n_o, n_var)))
            lo.append(np.full(n_o, -np.inf))
            hi.append(np.ones(n_o))
            rows.append(sp.csr_matrix(
                (np.concatenate([W[cov.indices, s], -C[:, s]]),
                 (np.concatenate([row_of, np.arange(n_c)]), np.concatenate([off + ent, np.arange(n_c)]))),
                shape=(n_c, n_var)))
            lo.append(np.full(n_c, -np.inf))
            hi.append(np.zeros(n_c))
            # y_ijs <= x_i (tightens the LP; capacity alone allows tiny x)
            rows.append(sp.csr_matrix(
                (np.concatenate([np.ones(nnz), -np.ones(nnz)]),
                 (np.concatenate([ent, ent]), np.concatenate([off + ent, row_of]))),
                shape=(nnz, n_var)))
            lo.append(np.full(nnz, -np.inf))
            hi.append(np.zeros(nnz))

    def x_rows(data_rows, data_cols, n_rows, vals=None):
        v = np.ones(len(data_rows)) if vals is None else vals
        return sp.csr_matrix((v, (data_rows, data_cols)), shape=(n_rows, n_var))

    fixed_mask = np.zeros(n_c, dtype=bool)
    if fixed is not None and len(fixed):
        fixed_mask[np.asarray(fixed, dtype=np.int64)] = True
    k_row = sum(r.shape[0] for r in rows)
    free = np.flatnonzero(~fixed_mask)
    rows.append(x_rows(np.zeros(free.size, dtype=np.int64), free, 1))
    lo.append(np.array([-np.inf]))
    hi.append(np.array([float(k)]))
    if budget is not None:
        rows.append(x_rows(np.zeros(free.size, dtype=np.int64), free, 1, np.asarray(cost, float)[free]))
        lo.append(np.array([-np.inf]))
        hi.append(np.array([float(budget)]))
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
    lb = np.zeros(n_var)
    lb[:n_c][fixed_mask] = 1.0
    model = _HighsModel(c, a, np.concatenate(lo), np.concatenate(hi), lb, np.ones(n_var), 0 if relax else n_c)
    return model, k_row


def _start_vector(model_nvar, n_c, sel, cov, w, capacity, pair):
    """A MIP start for the model of :func:`_model` from chosen positions ``sel`` (the
    assignment part filled in: z = covered; y by the nearest-first greedy assignment)."""
    x = np.zeros(model_nvar)
    sel = np.asarray(sel, dtype=np.int64)
    x[sel] = 1.0
    if pair:
        # each origin takes its best chosen site
        best_val = np.full(cov.shape[1], -1.0)
        best_ent = np.full(cov.shape[1], -1, dtype=np.int64)
        for i in sel:
            a, b = cov.indptr[i], cov.indptr[i + 1]
            for e in range(a, b):
                j = cov.indices[e]
                if cov.data[e] > best_val[j]:
                    best_val[j], best_ent[j] = cov.data[e], e
        ok = best_ent >= 0
        x[n_c + best_ent[ok]] = 1.0
    elif capacity is None:
        if sel.size:
            x[n_c:] = (np.bincount(cov.indices[np.concatenate(
                [np.arange(cov.indptr[i], cov.indptr[i + 1]) for i in sel])], minlength=cov.shape[1]) > 0)
    else:
        W = np.asarray(w, dtype=float).reshape(cov.shape[1], -1)
        C = np.asarray(capacity, dtype=float).reshape(n_c, -1)
        nnz = cov.nnz
        for s in range(W.shape[1]):
            rem = np.ones(cov.shape[1])
            for i in sel:
                a, b = cov.indptr[i], cov.indptr[i + 1]
                left = C[i, s]
                for e in a + np.argsort(cov.data[a:b], kind="stable"):
                    j = cov.indices[e]
                    need = W[j, s] * rem[j]
                    if need <= 0 or left <= 0:
                        continue
                    take = min(need, left)
                    frac = take / W[j, s]
                    x[n_c + s * nnz + e] = frac
                    rem[j] -= frac
                    left -= take
    return x


def _swap_search(pattern: sp.csr_matrix, w: np.ndarray, sel, *, max_passes: int = 20) -> np.ndarray:
    """1-swap local search (Teitz and Bart 1968) for maximal covering with no side
    constraints: swap a chosen site for the candidate that adds most in its place while
    that covers more. One sparse product per chosen site and pass."""
    sel = [int(i) for i in sel]
    if not sel:
        return np.zeros(0, dtype=np.int64)
    cnt = np.asarray(pattern[sel].sum(axis=0)).ravel()
    tol = 1e-9 * max(1.0, float(w.sum()))
    for _ in range(max_passes):
        improved = False
        for pos in range(len(sel)):
            i = sel[pos]
            row = pattern.indices[pattern.indptr[i] : pattern.indptr[i + 1]]
            cnt[row] -= 1
            loss = float(w[row][cnt[row] == 0].sum())
            gains = pattern @ (w * (cnt == 0))
            gains[sel] = -np.inf
            j = int(np.argmax(gains))
            if gains[j] > loss + tol:
                sel[pos] = j
                row = pattern.indices[pattern.indptr[j] : pattern.indptr[j + 1]]
                improved = True
            cnt[row] += 1
        if not improved:
            break
    return np.array(sel, dtype=np.int64)


def _pad_greedy(pattern: sp.csr_matrix, w: np.ndarray, sel: np.ndarray, k: int) -> np.ndarray:
    """``sel`` plus, while fewer than ``k``, the candidate adding the most weight."""
    sel = [int(i) for i in sel]
    if len(sel) >= k:
        return np.array(sel, dtype=np.int64)
    rem = np.ones(pattern.shape[1])
    for i in sel:
        rem[pattern.indices[pattern.indptr[i] : pattern.indptr[i + 1]]] = 0.0
    while len(sel) < k:
        gains = pattern @ (w * rem)
        gains[sel] = -1.0
        j = int(np.argmax(gains))
        if gains[j] <= 0:
            break
        sel.append(j)
        rem[pattern.indices[pattern.indptr[j] : pattern.indptr[j + 1]]] = 0.0
    return np.array(sel, dtype=np.int64)


def _cover_value(pattern: sp.csr_matrix, w: np.ndarray, sel) -> float:
    hit = np.zeros(pattern.shape[1], dtype=bool)
    for i in sel:
        hit[pattern.indices[pattern.indptr[i] : pattern.indptr[i + 1]]] = True
    return float(w[hit].sum())
