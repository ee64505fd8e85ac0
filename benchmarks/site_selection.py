"""Benchmark: site-selection catchments and the exact maximal-covering MILP.

Graph: copies of the real Fontibón (Bogotá) walking network tiled in x/y and joined by a few
edges (``benchmarks/_common.tile_network``), about 400,000 nodes with the default 28 copies.

1. Catchments: 10,000 candidate sites at random nodes (fixed seed, snap legs 0-80 m), their
   15-minute walking catchments over 100,000 origins (random nodes, snap legs 0-80 m), as the
   sparse candidates x origins coverage matrix that scoring and selection use
   (:func:`careblocks.sites.scoring.compute_catchments`: numba bounded searches
   ``careblocks.network.search.reach_sparse`` + the gather to origins). Baseline in the same run:
   ``scipy.sparse.csgraph.dijkstra(limit=...)`` on blocks of 25 candidates, timed on a
   sample of candidates and scaled to all of them (it builds dense rows of every node).
2. Exact MILP: 2,000 candidates x 20,000 origins (lognormal populations) from the same kind of
   real-network coverage (a 4-copy block of the graph, 15 minutes), K = 20 and K = 50, solved
   with HiGHS (:func:`careblocks.sites.selection.select_sites`, ``method="milp"``: origins merged,
   dominated candidates dropped, then exact by independent parts of the overlap graph,
   :mod:`careblocks.sites.decompose`); compared in the same process with the code before the
   parts (the same reductions, one HiGHS model, LP first, branch and bound from greedy + swaps),
   the lazy greedy (time, objective) and, at ``--textbook-k``, the textbook MILP as is.
3. The coverage curve K = 1..50 in one call, each point exact or with its proven gap, and
   greedy / exact per K, within twice the time of one K = 50 solve: its limit is twice the
   K = 50 time measured just before, in the same run, both timed around the whole call.
   Beside it, the whole curve as it was at ``--curve-baseline-rev`` (its selection, parts
   solver and HiGHS layer read from git) with the same limit.

Baseline for 2 and 3 ("before"): the exact-by-parts solver as it was at ``--baseline-rev``
(its ``sites/decompose.py`` read from git and run in this process in place of today's, through
the same ``select_sites`` / ``coverage_curve``), so that both are timed at the same load.
4. Capacitated maximal covering on a subset of the same instance (see
   ``benchmarks/capacitated_fontibon.py`` for the real Fontibón instance).

The instance: the 4 tiled copies are joined by 3 edges per pair of neighbours across 100 m
gaps, so almost no 15-minute catchment crosses from one copy to the next and the overlap graph
of the candidates falls into one part per copy (printed). That is what a region of separate
towns looks like; a single contiguous city of the same size would be one part (``--links``
joins the copies by more edges, ``--gap`` narrows the gaps).

Usage: ``.venv/bin/python benchmarks/site_selection.py [--copies 38] [--candidates 10000]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from _common import fontibon_network, grid_shape, machine, tile_network, timed  # noqa: E402

from careblocks.config import config_from_dict  # noqa: E402
from careblocks.network.search import _reach_fallback  # noqa: E402
from careblocks.sites.decompose import overlap_parts  # noqa: E402
from careblocks.sites.scoring import compute_catchments  # noqa: E402
from careblocks.sites.selection import coverage_curve, select_sites  # noqa: E402

SPEED_KMH = 4.8
THRESHOLD_MIN = 15.0


def _points(rng, n_nodes: int, count: int) -> pd.DataFrame:
    return pd.DataFrame({"node": rng.integers(0, n_nodes, count).astype(np.int64),
                         "snap_m": rng.uniform(0.0, 80.0, count)})


def bench_catchments(base, copies: int, n_cand: int, n_orig: int, sample: int) -> dict:
    nx, ny = grid_shape(copies)
    net = tile_network(base, nx, ny)
    rng = np.random.default_rng(1)
    cands = _points(rng, net.n_nodes, n_cand)
    origins = _points(rng, net.n_nodes, n_orig)
    cfg = config_from_dict({"access": {"threshold_min": THRESHOLD_MIN}, "walk": {"speed_kmh": SPEED_KMH}})
    compute_catchments(cfg, cands.iloc[:50], origins, net)  # compile outside the timing
    t_ours, cat = timed(lambda: compute_catchments(cfg, cands, origins, net))

    def fallback(network, nodes, off, *, cost, limit_s):
        return _reach_fallback(network.indptr, network.indices, cost.edge_seconds(network),
                               nodes, off, limit_s)

    sub = cands.iloc[:sample]
    t_base, ref = timed(lambda: compute_catchments(cfg, sub, origins, net, reach_fn=fallback))
    same = (ref.coverage.nnz == cat.coverage[:sample].nnz
            and abs(ref.coverage - cat.coverage[:sample]).max() < 1e-6)
    return {
        "nodes": net.n_nodes, "candidates": n_cand, "origins": n_orig,
        "reach_entries": int(cat.reach.nnz), "coverage_entries": int(cat.coverage.nnz),
        "ours_s": t_ours, "scipy_s_est": t_base * n_cand / sample, "scipy_sample": sample,
        "same_result": bool(same),
    }


def textbook_milp(cov, w, k: int, time_limit_s: float) -> tuple[float, str]:
    """The textbook maximal covering MILP passed straight to HiGHS (scipy.optimize.milp): no
    origin merging, no dominated-candidate removal, no LP-first. The baseline."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n_c, n_o = cov.shape
    pat = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
    a = sp.vstack([sp.hstack([-pat.T, sp.identity(n_o)]),
                   sp.hstack([sp.csr_matrix(np.ones((1, n_c))), sp.csr_matrix((1, n_o))])], format="csr")
    res = milp(np.concatenate([np.zeros(n_c), -w]),
               constraints=LinearConstraint(a, -np.inf, np.r_[np.zeros(n_o), k]),
               integrality=np.r_[np.ones(n_c), np.zeros(n_o)], bounds=Bounds(0, 1),
               options={"time_limit": time_limit_s, "mip_rel_gap": 1e-6})
    return (-res.fun if res.x is not None else float("nan")), ("optimal" if res.status == 0 else res.message)


def milp_instance(base, n_cand: int, n_orig: int, links: int = 3, gap_m: float = 100.0):
    """2,000 candidates x 20,000 origins (default) on a 4-copy tiled Fontibón, 15 minutes."""
    net = tile_network(base, 2, 2, n_links=links, gap_m=gap_m)
    rng = np.random.default_rng(2)
    cands = _points(rng, net.n_nodes, n_cand)
    origins = _points(rng, net.n_nodes, n_orig)
    w = np.round(rng.lognormal(4.0, 1.0, n_orig))
    cfg = config_from_dict({"access": {"threshold_min": THRESHOLD_MIN}, "walk": {"speed_kmh": SPEED_KMH}})
    return compute_catchments(cfg, cands, origins, net).coverage, w


def one_model_milp(cov, w, k: int, time_limit_s: float):
    """The exact path before the parts (baseline): the same reductions, then one HiGHS model
    of the whole instance, LP relaxation first, branch and bound from greedy + swaps."""
    from careblocks.sites import selection as S

    pb = S._prepare(cov, w, k=k, method="milp", min_spacing_m=0.0, candidate_xy=None, districts=None,
                    max_per_district=None, existing=None, capacity=None, pair_gains=False, cost=None,
                    budget=None, fixed=None)
    S._reduce(pb, True)
    x, status, gap, bound = S._CurveSolver(pb).solve(k, time_limit_s=time_limit_s)
    return S._finish(pb, x, status, gap, bound, k, "milp")


def parts_before(rev: str):
    """The exact-by-parts module as it was at git revision ``rev`` (None if git or the
    revision is not available)."""
    import importlib.util
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    try:
        text = subprocess.run(["git", "-C", str(root), "show", f"{rev}:src/careblocks/sites/decompose.py"],
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "decompose_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("careblocks_decompose_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def curve_before(rev: str):
    """``coverage_curve`` as it was at git revision ``rev``: its ``sites/_milp.py``,
    ``sites/decompose.py`` and ``sites/selection.py`` read from git and loaded as private
    modules (their imports of each other redirected), so that the curve before a change is
    timed in the same run as today's (None if git or the revision is not available)."""
    import importlib.util
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp())
    names = {"_milp": "careblocks_before_milp", "decompose": "careblocks_before_decompose",
             "selection": "careblocks_before_selection"}
    mods = {}
    for short, name in names.items():
        try:
            text = subprocess.run(["git", "-C", str(root), "show", f"{rev}:src/careblocks/sites/{short}.py"],
                                  capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        for other, other_name in names.items():
            text = text.replace(f"careblocks.sites.{other} ", f"{other_name} ")
        path = tmp / f"{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        mods[short] = mod
    return mods["selection"].coverage_curve


def with_parts(mod, fn):
    """Run ``fn`` with ``mod.PartsSolver`` as the exact solver of select_sites / coverage_curve
    (today's curve passes ``k_ahead``, which an older solver does not take: dropped)."""
    import inspect

    from careblocks.sites import selection as S

    saved = S.PartsSolver
    solver = mod.PartsSolver
    if "k_ahead" not in inspect.signature(solver.solve).parameters:
        class solver(mod.PartsSolver):  # noqa: N801
            def solve(self, k, deadline, lp_deadline=None, **_):
                return super().solve(k, deadline, lp_deadline)
    S.PartsSolver = solver
    try:
        return fn()
    finally:
        S.PartsSolver = saved


def bench_milp(cov, w, ks: list[int], textbook_k: int | None, time_limit_s: float, before=None,
               one_model: bool = False) -> list[dict]:
    rows = []
    for k in ks:
        t_g, g = timed(lambda k=k: select_sites(cov, w, k=k, method="greedy"))
        t_m, m = timed(lambda k=k: select_sites(cov, w, k=k, method="milp", time_limit_s=time_limit_s))
        t_b, b = (None, None)
        if before is not None:
            t_b, b = timed(lambda k=k: with_parts(before, lambda: select_sites(
                cov, w, k=k, method="milp", time_limit_s=time_limit_s)))
        t_o, o = (None, None)
        if one_model:
            t_o, o = timed(lambda k=k: one_model_milp(cov, w, k, time_limit_s))
        tb = None
        if k == textbook_k:
            t_t, (obj_t, st_t) = timed(lambda k=k: textbook_milp(cov, w, k, 5 * time_limit_s))
            tb = (t_t, obj_t, st_t)
        rows.append({"k": k, "nnz": int(cov.nnz), "milp_s": t_m, "greedy_s": t_g, "textbook": tb,
                     "one_s": t_o, "one": o, "info": m.info, "before_s": t_b, "before": b,
                     "milp_obj": m.objective, "greedy_obj": g.objective, "status": m.status,
                     "mip_gap": m.mip_gap, "bound": m.bound,
                     "milp_origins": m.info.get("milp_origins"),
                     "milp_candidates": m.info.get("milp_candidates"), "total": m.total_weight})
    return rows


def bench_curve(cov, w, k_max: int, time_limit_s: float, before=None, old_curve=None) -> dict:
    """The whole curve K = 1..k_max in one call (parts' LPs re-solved from the previous
    basis, bounds and sets shared by every K), the same with the parts solver before, the
    curve as it was before (``old_curve``, same limit), and the greedy curve."""
    t_c, curve = timed(lambda: coverage_curve(cov, w, k_max=k_max, time_limit_s=time_limit_s))
    t_b, prev = (None, None)
    if before is not None:
        t_b, prev = timed(lambda: with_parts(before, lambda: coverage_curve(
            cov, w, k_max=k_max, time_limit_s=time_limit_s)))
    t_o, old = (None, None)
    if old_curve is not None:
        t_o, old = timed(lambda: old_curve(cov, w, k_max=k_max, time_limit_s=time_limit_s))
    t_g, greedy = timed(lambda: coverage_curve(cov, w, k_max=k_max, method="greedy"))
    return {"seconds": t_c, "greedy_seconds": t_g, "curve": curve, "greedy": greedy,
            "before_seconds": t_b, "before": prev, "old_seconds": t_o, "old": old}


def textbook_capacitated(cov, w, cap: float, k: int, time_limit_s: float) -> tuple[float, str]:
    """Capacitated maximal covering as usually written (x_i, y_ij, sum_i y_ij <= 1,
    sum_j w_j y_ij <= cap x_i, sum x <= K), straight to HiGHS through scipy."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n_c, n_o = cov.shape
    nnz = cov.nnz
    row_of = np.repeat(np.arange(n_c), np.diff(cov.indptr))
    ent = np.arange(nnz)
    n_var = n_c + nnz
    a1 = sp.csr_matrix((np.ones(nnz), (cov.indices, n_c + ent)), shape=(n_o, n_var))
    a2 = sp.csr_matrix((np.r_[w[cov.indices], np.full(n_c, -cap)],
                        (np.r_[row_of, np.arange(n_c)], np.r_[n_c + ent, np.arange(n_c)])), shape=(n_c, n_var))
    a3 = sp.csr_matrix((np.ones(n_c), (np.zeros(n_c, int), np.arange(n_c))), shape=(1, n_var))
    res = milp(np.r_[np.zeros(n_c), -w[cov.indices]],
               constraints=LinearConstraint(sp.vstack([a1, a2, a3]), -np.inf, np.r_[np.ones(n_o), np.zeros(n_c), k]),
               integrality=np.r_[np.ones(n_c), np.zeros(nnz)], bounds=Bounds(0, 1),
               options={"time_limit": time_limit_s, "mip_rel_gap": 1e-6})
    return (-res.fun if res.x is not None else float("nan")), ("optimal" if res.status == 0 else res.message)


def bench_capacitated(cov, w, n_cand: int, k: int, time_limit_s: float) -> dict:
    sub = cov[:n_cand]
    keep = np.flatnonzero(np.bincount(sub.indices, minlength=sub.shape[1]) > 0)
    sub, ws = sub[:, keep], w[keep]
    cap = float(np.quantile(np.asarray(sp.csr_matrix((np.ones(sub.nnz), sub.indices, sub.indptr),
                                                     shape=sub.shape) @ ws), 0.25))
    t_m, m = timed(lambda: select_sites(sub, ws, k=k, method="milp", capacity=cap, time_limit_s=time_limit_s))
    t_t, (obj_t, st_t) = timed(lambda: textbook_capacitated(sub, ws, cap, k, time_limit_s))
    t_g, g = timed(lambda: select_sites(sub, ws, k=k, method="greedy", capacity=cap))
    t_u, u = timed(lambda: select_sites(sub, ws, k=k, method="milp", time_limit_s=time_limit_s))
    return {"candidates": n_cand, "origins": int(keep.size), "capacity": cap, "k": k, "milp_s": t_m,
            "milp": m, "textbook_s": t_t, "textbook_obj": obj_t, "textbook_status": st_t, "greedy_s": t_g,
            "greedy": g, "uncap_s": t_u, "uncap": u}


def _ranges(ks: list[int]) -> str:
    """1, 2, 3, 5, 7, 8 -> '1-3, 5, 7-8'."""
    out, run = [], []
    for k in ks:
        if run and k != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else f"{run[0]}")
            run = []
        run.append(k)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else f"{run[0]}")
    return ", ".join(out) or "none"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=28)
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--origins", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--skip-catchments", action="store_true", help="only the selection parts (2-4)")
    ap.add_argument("--milp-candidates", type=int, default=2_000)
    ap.add_argument("--milp-origins", type=int, default=20_000)
    ap.add_argument("--k", default="20,50")
    ap.add_argument("--time-limit", type=float, default=60.0, help="MILP time limit of one K (s)")
    ap.add_argument("--links", type=int, default=3, help="edges joining neighbouring copies")
    ap.add_argument("--gap", type=float, default=100.0, help="gap between copies (m)")
    ap.add_argument("--textbook-k", type=int, default=0,
                    help="also solve the textbook MILP (baseline) at this K; 0 to skip")
    ap.add_argument("--curve-k", type=int, default=50, help="coverage curve K = 1..this; 0 to skip")
    ap.add_argument("--curve-time-limit", type=float, default=0.0,
                    help="time for the whole curve (s); 0: twice the K = curve-k solve (120 s without one)")
    ap.add_argument("--baseline-rev", default="761435f",
                    help="git revision whose exact-by-parts solver is the baseline ('' to skip)")
    ap.add_argument("--curve-baseline-rev", default="fd97f83",
                    help="git revision whose whole coverage curve (selection, parts solver, HiGHS "
                         "layer) is timed beside today's with the same limit ('' to skip)")
    ap.add_argument("--one-model", action="store_true",
                    help="also time the one-HiGHS-model code that came before the parts")
    ap.add_argument("--cap-candidates", type=int, default=300, help="capacitated instance: first N candidates")
    ap.add_argument("--cap-k", type=int, default=10)
    a = ap.parse_args(argv)
    print(machine())
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    base = fontibon_network()
    print(f"Fontibón walk network: {base.n_nodes:,} nodes")
    t0 = time.perf_counter()
    if not a.skip_catchments:
        r = bench_catchments(base, a.copies, a.candidates, a.origins, a.sample)
        print(f"\n1. Catchments, {r['candidates']:,} candidates x {r['origins']:,} origins, "
              f"{THRESHOLD_MIN:g} min, {r['nodes']:,}-node tiled graph")
        print(f"   reach entries {r['reach_entries']:,}, coverage entries {r['coverage_entries']:,}")
        print(f"   ours (reach_sparse + gather): {r['ours_s']:.2f} s")
        print(f"   scipy dijkstra(limit) per block of 25, est. from {r['scipy_sample']} candidates: "
              f"{r['scipy_s_est']:.1f} s  -> ratio {r['scipy_s_est'] / r['ours_s']:.1f}x")
        print(f"   same coverage as the baseline on the sample: {r['same_result']}")
    cov, w = milp_instance(base, a.milp_candidates, a.milp_origins, a.links, a.gap)
    n_parts, labels = overlap_parts(cov)
    sizes = np.sort(np.bincount(labels))[::-1]
    per_origin = np.bincount(cov.indices, minlength=cov.shape[1])
    print(f"\ninstance: {cov.shape[0]:,} candidates x {cov.shape[1]:,} origins, {cov.nnz:,} entries; "
          f"candidates per origin: median {np.median(per_origin):.0f} (max {per_origin.max()}), "
          f"{int((per_origin == 0).sum())} origins reached by none; overlap graph: {n_parts} parts, "
          f"largest {sizes[:6].tolist()} (copies joined by {a.links} edges across {a.gap:g} m gaps)")
    before = parts_before(a.baseline_rev) if a.baseline_rev else None
    if a.baseline_rev and before is None:
        print(f"(baseline at {a.baseline_rev} not available: git or the revision missing)")
    rows = bench_milp(cov, w, [int(k) for k in a.k.split(",")], a.textbook_k or None, a.time_limit,
                      before=before, one_model=a.one_model)
    print(f"\n2. Maximal covering, {a.milp_candidates:,} candidates x {a.milp_origins:,} origins "
          f"(15-min coverage on a 4-copy tiled Fontibón, {rows[0]['nnz']:,} entries), "
          f"time limit {a.time_limit:g} s")
    for row in rows:
        gap = "" if not row["mip_gap"] else f", proven gap {row['mip_gap']:.3%}, bound {row['bound']:,.0f}"
        print(f"   K={row['k']}: MILP {row['milp_s']:.2f} s ({row['status']}{gap}, "
              f"{row['milp_origins']:,} origin columns, {row['milp_candidates']:,} candidates after "
              f"dominance), greedy {row['greedy_s']:.3f} s; greedy/MILP objective "
              f"{row['greedy_obj'] / row['milp_obj']:.4f}; MILP covers {row['milp_obj'] / row['total']:.1%}")
        o, info = row["one"], row["info"]
        print(f"        parts: {info.get('milp_parts')} (largest {info.get('milp_largest_part')} candidates), "
              f"LP {info.get('milp_lp_seconds')} s, {info.get('milp_mips')} part MILPs in "
              f"{info.get('milp_mip_seconds')} s (summed over 2 threads)")
        b = row["before"]
        if b is not None:
            b_gap = "" if b.status == "optimal" else f", proven gap {b.mip_gap:.3%}"
            print(f"        parts solver before ({a.baseline_rev}): {row['before_s']:.2f} s ({b.status}{b_gap}, "
                  f"objective {b.objective:,.0f}) -> time ratio before / ours {row['before_s'] / row['milp_s']:.2f}; "
                  f"objective ours / before {row['milp_obj'] / b.objective:.5f}")
        if o is not None:
            o_gap = "" if o.status == "optimal" else f", proven gap {o.mip_gap:.3%}"
            print(f"        one HiGHS model (before the parts): {row['one_s']:.2f} s ({o.status}{o_gap}, "
                  f"objective {o.objective:,.0f}) -> time ratio / ours {row['one_s'] / row['milp_s']:.2f}")
        if row["textbook"] is not None:
            t_t, obj_t, st_t = row["textbook"]
            print(f"        textbook MILP (HiGHS, no reductions): {t_t:.1f} s ({st_t}) -> "
                  f"ours {t_t / row['milp_s']:.1f}x faster; same objective: "
                  f"{abs(obj_t - row['milp_obj']) <= 1e-6 * max(1.0, row['milp_obj'])}")
    one = {row["k"]: row["milp_s"] for row in rows}
    if a.curve_k:
        limit = a.curve_time_limit or (2 * one[a.curve_k] if a.curve_k in one else 120.0)
        old_curve = curve_before(a.curve_baseline_rev) if a.curve_baseline_rev else None
        if a.curve_baseline_rev and old_curve is None:
            print(f"(curve at {a.curve_baseline_rev} not available: git or the revision missing)")
        c = bench_curve(cov, w, a.curve_k, limit, before=before, old_curve=old_curve)
        pts, gr = c["curve"], c["greedy"]
        n_exact = sum(p.exact for p in pts)
        print(f"\n3. Coverage curve K = 1..{a.curve_k} in one call (time for the curve "
              f"{limit:.0f} s): {c['seconds']:.1f} s, {n_exact} of {len(pts)} points proven "
              f"optimal; greedy curve {c['greedy_seconds']:.2f} s")
        if c["before"] is not None:
            bp = c["before"]
            worst = max((p.gap for p in bp if not p.exact), default=0.0)
            print(f"   parts solver before, same time: {c['before_seconds']:.1f} s, "
                  f"{sum(p.exact for p in bp)} of {len(bp)} points proven optimal (widest gap {worst:.3%})")
        if c["old"] is not None:
            op = c["old"]
            worst = max((p.gap for p in op if not p.exact), default=0.0)
            print(f"   the curve before ({a.curve_baseline_rev}), same time: {c['old_seconds']:.1f} s, "
                  f"{sum(p.exact for p in op)} of {len(op)} points proven optimal (widest gap {worst:.3%})")
        if a.curve_k in one:
            print(f"   curve / one K={a.curve_k} solve: {c['seconds'] / one[a.curve_k]:.3f}"
                  + (f"; the curve before: {c['old_seconds'] / one[a.curve_k]:.3f}" if c["old"] else ""))
        proven = [p.k for p in pts if p.exact]
        print(f"   proven: K = {_ranges(proven)}; bounded: K = {_ranges([p.k for p in pts if not p.exact])}"
              + (f" (gaps {min(p.gap for p in pts if not p.exact):.3%}-{max(p.gap for p in pts if not p.exact):.3%})"
                 if len(proven) < len(pts) else ""))
        print("   K   covered share  exact  gap      greedy/best  seconds")
        for p, g in zip(pts, gr, strict=True):
            gap = "" if p.exact else f"{p.gap:.3%}"
            print(f"   {p.k:<3d} {p.share:13.4f}  {('yes' if p.exact else 'no'):5s}  {gap:8s} "
                  f"{g.objective / p.objective:11.4f}  {p.seconds:7.2f}")
    if a.cap_candidates:
        r = bench_capacitated(cov, w, a.cap_candidates, a.cap_k, a.time_limit)
        m, g, u = r["milp"], r["greedy"], r["uncap"]
        print(f"\n4. Capacitated maximal covering, first {r['candidates']} candidates x {r['origins']:,} "
              f"origins, capacity {r['capacity']:,.0f} per site (a quarter of the sites could serve "
              f"everyone they reach), K={r['k']}")
        print(f"   ours {r['milp_s']:.2f} s ({m.status}); textbook capacitated MILP {r['textbook_s']:.2f} s "
              f"({r['textbook_status']}) -> ratio {r['textbook_s'] / r['milp_s']:.1f}x; same objective: "
              f"{abs(r['textbook_obj'] - m.objective) <= 1e-5 * max(1.0, m.objective)}")
        print(f"   greedy (nearest first) {r['greedy_s']:.3f} s, objective / MILP {g.objective / m.objective:.4f}; "
              f"uncapacitated MILP {r['uncap_s']:.2f} s counts {u.objective / m.objective:.2f}x the people")
    print(f"\ntotal {time.perf_counter() - t0:.1f} s; load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
