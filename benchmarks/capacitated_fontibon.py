"""Benchmark: capacitated maximal covering on the real Bogotá Fontibón study (issue 11).

The study of ``configs/bogota_fontibon.toml`` (OSM anchors as candidates, building-based
origins, 800 m spacing, objective = care gaps closed) is run up to the scores once
(:func:`careblocks.pipeline.analyse`, no sensitivity draws). Then, on its walking catchments,
with the people in need per offered service as demand
(:func:`careblocks.pipeline.sites_stage.capacitated_inputs`, as a run with
``sites.capacitated = true`` builds them) and, per service, a block capacity that binds: the
first quartile over the candidates of the people in need within their catchment (so a
quarter of the blocks could serve everyone in need around them; the config's defaults, one
unit for services without ``block_capacity``, would make every block full at once), for each K:

- **ours**: ``select_sites(..., capacity=C, method="milp")``: origins with the same covering
  sites merged, assignments per service with ``y_ijs <= x_i`` rows, LP relaxation first
  (at most half the limit), branch and bound started from the greedy (nearest first)
  answer; out of time, the proven gap;
- **plain** (baseline, same process): the textbook capacitated formulation (``x_i``,
  ``y_ijs``, ``sum_i y_ijs <= 1``, ``sum_j W_js y_ijs <= C_is x_i``, ``sum x <= K``, the same
  spacing rows) handed to HiGHS as is (``scipy.optimize.milp``);
- the uncapacitated answer (plain maximal covering of the same people), to show what the
  capacity changes.

Also printed: the parts of the overlap graph of the real candidates (the decomposition of
``careblocks.sites.decompose`` applies to the plain problem without spacing).

Usage: ``.venv/bin/python benchmarks/capacitated_fontibon.py [--k 3,5,10] [--time-limit 60]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from careblocks.accessibility import block_capacity  # noqa: E402
from careblocks.config import PROJECT_ROOT, load_config  # noqa: E402
from careblocks.errors import DataQualityWarning  # noqa: E402
from careblocks.pipeline import analyse  # noqa: E402
from careblocks.pipeline.sites_stage import capacitated_inputs  # noqa: E402
from careblocks.sites.decompose import overlap_parts  # noqa: E402
from careblocks.sites.scoring import compute_catchments, sites_threshold_min  # noqa: E402
from careblocks.sites.selection import conflict_pairs, select_sites  # noqa: E402


def textbook(cov, W, C, conflicts, k: int, time_limit_s: float) -> tuple[float, str]:
    """The capacitated MILP as usually written, per service, straight to HiGHS."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n_c, n_o = cov.shape
    n_s = W.shape[1]
    nnz = cov.nnz
    row_of = np.repeat(np.arange(n_c), np.diff(cov.indptr))
    ent = np.arange(nnz)
    n_var = n_c + n_s * nnz
    blocks, hi = [], []
    for s in range(n_s):
        off = n_c + s * nnz
        blocks.append(sp.csr_matrix((np.ones(nnz), (cov.indices, off + ent)), shape=(n_o, n_var)))
        hi.append(np.ones(n_o))
        blocks.append(sp.csr_matrix((np.r_[W[cov.indices, s], -C[:, s]],
                                     (np.r_[row_of, np.arange(n_c)], np.r_[off + ent, np.arange(n_c)])),
                                    shape=(n_c, n_var)))
        hi.append(np.zeros(n_c))
    blocks.append(sp.csr_matrix((np.ones(n_c), (np.zeros(n_c, int), np.arange(n_c))), shape=(1, n_var)))
    hi.append(np.array([float(k)]))
    if len(conflicts):
        m = len(conflicts)
        blocks.append(sp.csr_matrix((np.ones(2 * m), (np.repeat(np.arange(m), 2), conflicts.ravel())),
                                    shape=(m, n_var)))
        hi.append(np.ones(m))
    c = np.r_[np.zeros(n_c), np.concatenate([W[cov.indices, s] for s in range(n_s)])]
    res = milp(-c, constraints=LinearConstraint(sp.vstack(blocks, format="csr"), -np.inf, np.concatenate(hi)),
               integrality=np.r_[np.ones(n_c), np.zeros(n_var - n_c)], bounds=Bounds(0, 1),
               options={"time_limit": time_limit_s, "mip_rel_gap": 1e-6})
    return (-res.fun if res.x is not None else float("nan")), ("optimal" if res.status == 0 else "time limit")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", default="3,5,10")
    ap.add_argument("--time-limit", type=float, default=60.0)
    a = ap.parse_args(argv)
    print(machine())
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    cfg = load_config(PROJECT_ROOT / "configs" / "bogota_fontibon.toml")
    cfg = dataclasses.replace(cfg, sensitivity=dataclasses.replace(cfg.sensitivity, draws=0),
                              sites=dataclasses.replace(cfg.sites, curve_k_max=0))
    warnings.simplefilter("ignore", DataQualityWarning)
    t0 = time.perf_counter()
    ctx = analyse(cfg)
    print(f"pipeline to the scores: {time.perf_counter() - t0:.1f} s")
    cands, origins = ctx.candidates, ctx.origins
    T = sites_threshold_min(cfg)
    cov = compute_catchments(cfg, cands, origins, ctx.network, services=ctx.services).coverage
    scored = cands.copy()
    for s in cfg.sites.offers:
        scored[f"capacity_{s}"] = block_capacity(cfg, s)
    W, C = capacitated_inputs(cfg, origins, scored, threshold_min=T)
    pattern = sp.csr_matrix((np.ones(cov.nnz), cov.indices, cov.indptr), shape=cov.shape)
    C = np.tile(np.quantile(np.asarray(pattern @ W), 0.25, axis=0), (cov.shape[0], 1))
    xy = np.column_stack([cands.geometry.x, cands.geometry.y])
    conflicts = conflict_pairs(xy, cfg.sites.min_spacing_m)
    n_parts, labels = overlap_parts(cov)
    sizes = np.sort(np.bincount(labels))[::-1]
    print(f"{cov.shape[0]} candidates x {cov.shape[1]} origins, {cov.nnz:,} coverage entries, "
          f"{W.shape[1]} offered services ({', '.join(cfg.sites.offers)}), capacity per block "
          f"{', '.join(f'{c:g}' for c in C[0])}, people in need {W.sum():,.0f}, "
          f"{len(conflicts)} spacing pairs ({cfg.sites.min_spacing_m:g} m)")
    print(f"overlap graph: {n_parts} parts, largest {sizes[:5].tolist()}")
    kw = {"min_spacing_m": cfg.sites.min_spacing_m, "candidate_xy": xy}
    print("\n  K   ours s  status       gap      plain s  status       plain/ours  plain obj/ours  "
          "greedy/ours  uncapacitated/ours")
    for k in [int(x) for x in a.k.split(",")]:
        t = time.perf_counter()
        ours = select_sites(cov, W, k=k, method="milp", capacity=C, time_limit_s=a.time_limit, **kw)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        obj_t, st_t = textbook(cov, W, C, conflicts, k, a.time_limit)
        t_plain = time.perf_counter() - t
        g = select_sites(cov, W, k=k, method="greedy", capacity=C, **kw)
        u = select_sites(cov, W.sum(axis=1), k=k, method="milp", time_limit_s=a.time_limit, **kw)
        gap = f"{ours.mip_gap:.3%}" if ours.mip_gap else "0"
        print(f"  {k:<3d} {t_ours:7.2f}  {ours.status:11s}  {gap:7s}  {t_plain:7.2f}  {st_t:11s}  "
              f"{t_plain / t_ours:9.1f}x  {obj_t / ours.objective:14.4f}  {g.objective / ours.objective:11.4f}  "
              f"{u.objective / ours.objective:8.2f}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
