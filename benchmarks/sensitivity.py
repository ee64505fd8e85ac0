"""Benchmark: the sensitivity run (robustness of the proposal) on Bogotá Fontibón.

The real study (``configs/bogota_fontibon.toml``: OSM anchors as candidates, building-based
origins, K = 5, 800 m spacing, objective = care gaps closed) is run up to the scores once.
Then, for the same seeded weightings (``careblocks.sites.sensitivity``):

- **ours**: :func:`careblocks.sites.sensitivity.run_draws`: the objective's parts and the
  score components computed once; per draw a lazy greedy selection, 1-swap local search from
  it and from the proposal, and the perturbed score/rank.
- **plain** (baseline, same process, same draws): what a script around the pipeline would do,
  re-scoring every candidate from the catchments (``score_components``) and solving each
  draw's selection exactly (``select_sites(method="milp")``, HiGHS).

Printed: seconds per draw of each, their ratio, and how often ours picks a set as good as the
exact one (the share of draws whose objective is within 1e-9 of the optimum, and the mean
ratio of objectives).

Usage: ``.venv/bin/python benchmarks/sensitivity.py [--draws 30]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

import careblocks  # noqa: E402
from careblocks.config import PROJECT_ROOT, load_config  # noqa: E402
from careblocks.errors import DataQualityWarning  # noqa: E402
from careblocks.sites.scoring import (  # noqa: E402
    DEFAULT_WEIGHTS,
    compute_catchments,
    score_components,
    sites_threshold_min,
    weighted_score,
)
from careblocks.sites.selection import coverage_value, select_sites  # noqa: E402
from careblocks.sites.sensitivity import draw_factors, draw_rng, objective_parts, run_draws  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=30)
    args = ap.parse_args()
    print(machine())
    cfg = load_config(PROJECT_ROOT / "configs" / "bogota_fontibon.toml")
    cfg = dataclasses.replace(cfg, sensitivity=dataclasses.replace(cfg.sensitivity, draws=0))
    warnings.simplefilter("ignore", DataQualityWarning)
    t0 = time.perf_counter()
    ctx = careblocks.analyse(cfg)  # the study's Results
    print(f"pipeline to the scores and proposal: {time.perf_counter() - t0:.1f} s")
    cands, origins, sel = ctx.candidates, ctx.origins, ctx.selected
    T = sites_threshold_min(cfg)
    cat = compute_catchments(cfg, cands, origins, ctx.network, services=ctx.services)
    cov = cat.coverage
    ids = cands["candidate_id"].astype(str).tolist()
    inc = [ids.index(c) for c in sel["candidate_id"].astype(str)]
    kw = {"min_spacing_m": cfg.sites.min_spacing_m,
          "candidate_xy": np.column_stack([cands.geometry.x, cands.geometry.y])}
    kind, parts = objective_parts(cfg, origins, cov, threshold_min=T)
    base = dict(cfg.sites.weights) if cfg.sites.weights else dict(DEFAULT_WEIGHTS)
    offers = list(cfg.sites.offers)
    sc = cfg.sensitivity
    common = dict(base=base, offers=offers, objective=cfg.sites.objective, k=cfg.sites.k,
                  draws=args.draws, spread=sc.spread, part_spread=sc.spread, seed=sc.seed)
    print(f"{len(ids)} candidates x {len(origins)} origins, {cov.nnz} coverage entries, "
          f"K={cfg.sites.k}, {args.draws} draws")

    run_draws(cov, kind, parts, cands, ids, **dict(common, draws=2), select_kw=kw, incumbent=inc)  # warm
    t0 = time.perf_counter()
    chosen, _ = run_draws(cov, kind, parts, cands, ids, **common, select_kw=kw, incumbent=inc)
    t_ours = time.perf_counter() - t0

    exact_sets, exact_vals = [], []
    t0 = time.perf_counter()
    for d in range(args.draws):
        w, factors = draw_factors(draw_rng(sc.seed, d), base, parts.shape[0], spread=sc.spread, part_spread=sc.spread)
        comp = score_components(cfg, origins, cat, services=ctx.services)
        weighted_score(comp, w, ids)
        res = select_sites(cov, factors @ parts, k=cfg.sites.k, method="milp", **kw)
        exact_sets.append(res.selected)
        exact_vals.append(res.objective)
    t_plain = time.perf_counter() - t0

    ratios, same = [], 0
    for d in range(args.draws):
        _, factors = draw_factors(draw_rng(sc.seed, d), base, parts.shape[0], spread=sc.spread, part_spread=sc.spread)
        ours = coverage_value(cov, factors @ parts, np.flatnonzero(chosen[d]))
        ratios.append(ours / exact_vals[d])
        same += ours >= exact_vals[d] * (1 - 1e-9)
    print(f"ours:  {t_ours / args.draws * 1000:8.1f} ms per draw (greedy + 1-swap search, score/rank)")
    print(f"plain: {t_plain / args.draws * 1000:8.1f} ms per draw (re-score + exact MILP)")
    print(f"ratio plain / ours: {t_plain / t_ours:.1f}x")
    print(f"ours optimal in {same} of {args.draws} draws; mean objective ours/exact = "
          f"{np.mean(ratios):.5f}, worst {np.min(ratios):.5f}")


if __name__ == "__main__":
    main()
