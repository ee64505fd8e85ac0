"""The ``sites`` stage: candidates -> catchments -> scores -> selection -> after.

Wires :mod:`careblocks.sites.candidates`, :mod:`careblocks.sites.scoring`,
:mod:`careblocks.sites.selection` and :mod:`careblocks.sites.rationale` on the pipeline's
context. See ``docs/site_selection.md``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from careblocks import columns as C
from careblocks.accessibility import block_capacity, need_counts
from careblocks.columns import CENSUS_GROUPS
from careblocks.demand.census import TOTAL
from careblocks.demand.equity import equity_table
from careblocks.errors import DataQualityWarning
from careblocks.i18n import language
from careblocks.io.layers import read_vector, representative_xy
from careblocks.network.cost import WalkCost
from careblocks.network.graph import file_digest
from careblocks.network.search import gather_targets, min_union, reach_from
from careblocks.pipeline import cache as stage_cache
from careblocks.pipeline.context import Context
from careblocks.sites.candidates import build_candidates, costs_and_fixed
from careblocks.sites.hours import current_minutes, hours_pair_values
from careblocks.sites.rationale import fixed_first, marginal_figures, selected_sites
from careblocks.sites.scoring import (
    Catchments,
    access_after,
    block_minutes,
    catchment_polygons,
    score_candidates,
    selection_inputs,
    sites_threshold_min,
)
from careblocks.sites.selection import (
    CurvePoint,
    SelectionResult,
    coverage_curve,
    min_sites_for_coverage,
    select_sites,
)
from careblocks.sites.sensitivity import sensitivity
from careblocks.transit.reach import transit_coverage
from careblocks.transit.timetable import Timetable


def curve_k_max(setting: int | None, k: int, n_candidates: int) -> int:
    """K up to which the coverage curve is solved: ``sites.curve_k_max``, unset = the larger
    of 10 and 2 x ``sites.k``; never more than the candidates; 0 = no curve."""
    want = max(10, 2 * int(k)) if setting is None else int(setting)
    return max(0, min(want, int(n_candidates)))


def capacitated_inputs(config, origins, scored, *, threshold_min: float):
    """People in need per origin and offered service (only those beyond T of the service
    today with the ``gap_closed`` objective), and each candidate's ``capacity_<s>``: the
    inputs of capacitated maximal covering (one seat, bed or machine serves one person in
    need, in the unit of ``services.<s>.capacity_unit``)."""

    offers = list(config.sites.offers)
    need = np.zeros((len(origins), len(offers)))
    cap = np.zeros((len(scored), len(offers)))
    for j, s in enumerate(offers):
        n, _ = need_counts(origins, s, config)
        if config.sites.objective == "gap_closed":
            cur = current_minutes(origins, s)
            n = np.where(~np.isfinite(cur) | (cur > threshold_min), n, 0.0)
        need[:, j] = n
        cap[:, j] = scored[f"capacity_{s}"].to_numpy(float)
    return need, cap


def curve_table(points: Sequence[CurvePoint], *, candidate_ids, coverage: sp.csr_matrix, origins,
                hours: sp.csr_matrix, objective: str, total_weight: float):
    """The ``coverage_curve`` table: one row per K with the objective covered, its share,
    the people within T of at least one chosen block, the caregiver hours a week those
    blocks return (each origin counted with its nearest chosen block), whether the point
    is proven optimal, its gap and bound, and the chosen candidate ids."""
    pop = pd.to_numeric(origins["population"], errors="coerce").fillna(0).to_numpy(float)
    cov = sp.csr_matrix(coverage)
    hv = sp.csr_matrix(hours)
    rows = []
    for p in points:
        sel = np.asarray(p.selected, dtype=np.int64)
        hit = np.zeros(cov.shape[1], dtype=bool)
        best = np.zeros(cov.shape[1])
        for i in sel:
            hit[cov.indices[cov.indptr[i] : cov.indptr[i + 1]]] = True
            a, b = hv.indptr[i], hv.indptr[i + 1]
            np.maximum.at(best, hv.indices[a:b], hv.data[a:b])
        rows.append({
            "k": int(p.k), "objective": objective, "covered": float(p.objective),
            "covered_share": float(p.share), "people_within": float(pop[hit].sum()),
            "people_within_share": float(pop[hit].sum() / pop.sum()) if pop.sum() > 0 else 0.0,
            "hours_returned_week": float(best.sum()), "exact": bool(p.exact),
            "gap": None if p.gap is None else float(p.gap),
            "bound": None if p.bound is None else float(p.bound),
            "status": p.status, "seconds": round(float(p.seconds), 3),
            "candidate_ids": ", ".join(str(candidate_ids[i]) for i in sel),
        })
    return pd.DataFrame(rows)


def _candidate_districts(cands, districts) -> np.ndarray | None:
    if districts is None or len(districts) == 0 or "district" not in districts.columns:
        return None
    d = districts[["district", districts.geometry.name]].to_crs(cands.crs)
    pts = gpd.GeoDataFrame(geometry=cands.geometry.to_numpy(), crs=cands.crs)
    hit = gpd.sjoin(pts, d, predicate="within", how="left")
    hit = hit[~hit.index.duplicated(keep="first")]
    return hit["district"].reindex(range(len(cands))).astype(object).where(lambda s: s.notna(), None).to_numpy()


def _existing_coverage(ctx, catchments_limit_s: float, timetable=None):
    """Coverage (existing sites x origins, seconds) of ``sites.existing``, or None; with a
    ``timetable``, the union of walking and walk + transit (as for the candidates)."""
    cfg = ctx.config
    if cfg.sites.existing is None:
        return None
    bbox = tuple(ctx.area_4326.bounds) if ctx.area_4326 is not None else None
    ex = read_vector(cfg.sites.existing, what="existing Care Blocks (sites.existing)", bbox_4326=bbox,
                     allow_empty=True)
    if len(ex) == 0:
        return None
    x, y = representative_xy(ex.to_crs(ctx.crs).geometry)
    node, dist = ctx.network.snap(x, y)
    cost = WalkCost.from_config(cfg.walk)
    reach = reach_from(ctx.network, node, cost.leg_seconds(dist), cost=cost, limit_s=catchments_limit_s)
    o = ctx.origins
    cov = gather_targets(reach, o["node"].to_numpy(np.int64), cost.leg_seconds(o["snap_m"].to_numpy(float)),
                         catchments_limit_s)
    if timetable is not None:
        cov = min_union(cov, _transit_seconds(ctx, timetable, node, dist, catchments_limit_s))
    return cov


def _transit_seconds(ctx, timetable, nodes, snap_m, limit_s: float) -> sp.csr_matrix:
    """Targets x origins seconds within ``limit_s`` by walk + transit (or on foot)."""
    cfg = ctx.config
    m = transit_coverage(ctx.network, timetable, ctx.origins["node"].to_numpy(np.int64),
                         ctx.origins["snap_m"].to_numpy(np.float64), np.asarray(nodes, np.int64),
                         np.asarray(snap_m, np.float64), cfg.transit, cost=WalkCost.from_config(cfg.walk),
                         limit_min=limit_s / 60.0)
    m.data = m.data * 60.0
    return m


def _sites_timetable(ctx: Context) -> Timetable | None:
    """The timetable for walk + transit catchments, or None when ``sites.use_transit`` is off
    (unset means on whenever transit is enabled; set true without transit: a warning)."""
    cfg = ctx.config
    if cfg.sites.use_transit is False or (cfg.sites.use_transit is None and not cfg.transit.enabled):
        return None
    if not cfg.transit.enabled:
        warnings.warn(
            "sites.use_transit: transit is not enabled, so sites are scored and selected on foot "
            "only; set transit.enabled = true with transit.feeds and transit.date",
            DataQualityWarning,
            stacklevel=3,
        )
        return None
    if ctx.timetable is None:  # the transit stage did not run (e.g. the sites stage called on its own)
        ctx.timetable, _, ctx.timetable_key = stage_cache.load_timetable_cached(
            cfg, ctx.network, area_4326=ctx.area_4326, crs=ctx.crs, status=ctx.cache_status)
    return ctx.timetable


def run_sites_stage(ctx: Context) -> None:
    """The ``sites`` stage: candidates -> catchments -> scores -> selection -> after.

    Reads ``ctx.config``, ``ctx.osm_path``, ``ctx.area_4326``, ``ctx.crs``, ``ctx.network``,
    ``ctx.origins`` (with access columns), ``ctx.services``, ``ctx.districts``, ``ctx.equity``.
    With ``sites.use_transit`` and transit enabled, the timetable of the transit stage
    (``ctx.timetable``, loaded here when absent) gives walk + transit catchments
    (:func:`careblocks.transit.reach.transit_coverage`): the ``transit_population_covered``
    component and, for selection, the union (min time) of walking and walk + transit.
    Sets ``ctx.candidates`` (all components, ``score``, ``rank``), ``ctx.selected`` (order,
    marginal gain, cumulative gain, rationale), ``ctx.catchments`` (walkable area of each
    selected site), ``ctx.equity_after`` (when ``ctx.equity`` exists), adds
    ``walk_min_<s>_after`` / ``services_within_<T>min_after`` to ``ctx.origins`` and
    ``ctx.stats["sites"]``.
    """
    cfg, sc = ctx.config, ctx.config.sites
    T = sites_threshold_min(cfg)
    timetable = _sites_timetable(ctx)
    cands = _candidates(ctx)
    catch = stage_cache.catchments_cached(cfg, cands, ctx.origins, ctx.network, services=ctx.services,
                                          status=ctx.cache_status)
    transit_cov, transit_stats = _transit_catchments(ctx, timetable, cands, catch.limit_s)
    scored = score_candidates(cfg, cands, ctx.origins, ctx.services, catch, transit_coverage=transit_cov)
    for s in sc.offers:  # what a new block offers (services.<s>.block_capacity), for selection
        scored[f"capacity_{s}"] = block_capacity(cfg, s)
    # selection: walking coverage, or the union (min time) of walking and walk + transit
    coverage = catch.coverage if transit_cov is None else min_union(catch.coverage, transit_cov)
    pick = _select(ctx, cands, scored, coverage, catch.limit_s, timetable, threshold_min=T)
    k_max = curve_k_max(sc.curve_k_max, sc.k, len(cands))
    if k_max > 0:
        _coverage_curve(ctx, pick, cands, coverage, k_max)
    if sc.coverage_target is not None and not pick.pair and pick.constraints["capacity"] is None:
        _coverage_target(ctx, pick, cands)
    sel, kept = _selected(ctx, pick, scored, catch, coverage if transit_cov is not None else None, timetable,
                          threshold_min=T)
    polys = _catchment_polygons(ctx, sel, catch.reach[kept.selected], catch.limit_s)
    origins, after = _origins_after(ctx, sel, timetable, threshold_min=T)
    ctx.origins = origins
    ctx.candidates, ctx.selected, ctx.catchments = scored, sel, polys
    if ctx.equity is not None:
        ctx.equity_after = _equity_after(ctx, origins, after)
    result = pick.result
    ctx.stats["sites"] = {
        "candidates": cands.attrs.get("stats", {}), "n_candidates": int(len(cands)),
        "threshold_min": T, "objective": sc.objective, "method": result.method,
        "status": result.status, "mip_gap": result.mip_gap, "objective_value": result.objective,
        "objective_bound": result.bound, "capacitated": bool(sc.capacitated and not pick.pair),
        "total_weight": result.total_weight, "existing_weight": result.existing_weight,
        "fixed": cands["candidate_id"].astype(str).to_numpy()[pick.fixed].tolist(),
        "budget": sc.budget,
        "cost_selected": None if pick.cost is None else float(pick.cost[result.selected].sum()),
        "coverage_entries": int(catch.coverage.nnz), "use_transit": timetable is not None,
        **transit_stats, **result.info,
    }


def site_candidates(ctx: Context) -> gpd.GeoDataFrame:
    """The candidate sites of the study (through the stage cache): what the sites stage and
    ``validate`` (to check ``sites.fixed`` and the costs) both read."""
    cfg, sc = ctx.config, ctx.config.sites
    osm = Path(str(ctx.osm_path)) if ctx.osm_path is not None else None
    return stage_cache.frame_cached(cfg, "candidates", {
        "sites": {k: getattr(sc, k) for k in ("candidates_osm_anchors", "anchor_tags", "candidates_layer",
                                               "h3_resolution", "exclusions", "cost_column", "default_cost",
                                               "fixed", "fixed_column")},
        "max_snap_m": cfg.walk.max_snap_m, "files": stage_cache.input_files_digest(cfg),
        "osm": file_digest(osm) if osm is not None and osm.is_file() else str(ctx.osm_path),
        "network": stage_cache.network_digest(ctx.network), "crs": ctx.crs,
        "area": ctx.area_4326.wkb.hex() if ctx.area_4326 is not None else None,
        "origins": stage_cache.frame_digest(ctx.origins, ["population"]),
        "language": cfg.outputs.language,  # unnamed places are named in it
    }, lambda: build_candidates(cfg, osm_path=ctx.osm_path, area_4326=ctx.area_4326, crs=ctx.crs,
                                network=ctx.network, origins=ctx.origins), status=ctx.cache_status)


def _candidates(ctx: Context) -> gpd.GeoDataFrame:
    """The candidate sites; a warning when there are fewer than K."""
    sc = ctx.config.sites
    cands = site_candidates(ctx)
    if sc.k > len(cands):
        warnings.warn(
            f"sites.k = {sc.k} but the study has only {len(cands)} candidate sites; at most "
            f"{len(cands)} can be selected (add candidates: sites.candidates_layer, "
            "sites.h3_resolution)", DataQualityWarning, stacklevel=3)
    return cands


def _transit_catchments(ctx: Context, timetable: Timetable | None, cands: gpd.GeoDataFrame, limit_s: float
                        ) -> tuple[sp.csr_matrix | None, dict[str, Any]]:
    """Candidates x origins seconds by walk + transit (through the cache) and its stats;
    ``(None, {})`` without a timetable."""
    if timetable is None:
        return None, {}
    t0 = time.perf_counter()
    cov = stage_cache.transit_coverage_cached(
        ctx.config, ctx.timetable_key, cands, ctx.origins, limit_s,
        lambda: _transit_seconds(ctx, timetable, cands["node"].to_numpy(np.int64),
                                 cands["snap_m"].to_numpy(np.float64), limit_s),
        status=ctx.cache_status)
    return cov, {"transit_coverage_entries": int(cov.nnz),
                 "transit_coverage_seconds": round(time.perf_counter() - t0, 3)}


@dataclass
class _Pick:
    """What selection ran on and what it chose: the matrix and weights of the objective,
    whether gains are per pair (``hours_returned``), the constraints, the result."""

    matrix: sp.csr_matrix
    weights: np.ndarray | None
    pair: bool
    constraints: dict[str, Any]
    result: SelectionResult
    #: each candidate's cost (``sites.cost_column`` / ``default_cost``) or None
    cost: np.ndarray | None
    #: positions of the candidates that stay (``sites.fixed``)
    fixed: np.ndarray


def _select(ctx: Context, cands: gpd.GeoDataFrame, scored: gpd.GeoDataFrame, coverage: sp.csr_matrix,
            limit_s: float, timetable: Timetable | None, *, threshold_min: float) -> _Pick:
    """Choose ``sites.k`` sites (through the cache) under the configured constraints."""
    cfg, sc = ctx.config, ctx.config.sites
    matrix, weights, pair = selection_inputs(cfg, ctx.origins, coverage, threshold_min=threshold_min)
    capacity = sc.capacity
    if sc.capacitated and not pair:
        weights, capacity = capacitated_inputs(cfg, ctx.origins, scored, threshold_min=threshold_min)
    cost, fixed = costs_and_fixed(cfg, cands)
    constraints = dict(
        min_spacing_m=sc.min_spacing_m, candidate_xy=np.column_stack([cands.geometry.x, cands.geometry.y]),
        districts=_candidate_districts(cands, ctx.districts) if sc.max_per_district is not None else None,
        max_per_district=sc.max_per_district, existing=_existing_coverage(ctx, limit_s, timetable),
        capacity=capacity, cost=cost, budget=sc.budget, fixed=fixed if len(fixed) else None,
    )
    result = stage_cache.selection_cached(
        cfg, matrix, weights,
        {**constraints, "pair_gains": pair, "k": sc.k, "method": sc.method, "time_limit_s": sc.time_limit_s},
        lambda: select_sites(matrix, weights, k=sc.k, method=sc.method, pair_gains=pair,
                             time_limit_s=sc.time_limit_s, **constraints), status=ctx.cache_status)
    return _Pick(matrix, weights, pair, constraints, result, cost, fixed)


def _coverage_curve(ctx: Context, pick: _Pick, cands: gpd.GeoDataFrame, coverage: sp.csr_matrix,
                    k_max: int) -> None:
    """Solve K = 1 .. ``k_max`` (through the cache): ``ctx.coverage_curve`` and its stats."""
    cfg, sc = ctx.config, ctx.config.sites
    t0 = time.perf_counter()
    curve_method = "greedy" if pick.result.method == "greedy" else "milp"
    points = stage_cache.curve_cached(
        cfg, pick.matrix, pick.weights,
        {**pick.constraints, "pair_gains": pick.pair, "k_max": k_max, "method": curve_method,
         "time_limit_s": sc.curve_time_limit_s},
        lambda: coverage_curve(pick.matrix, pick.weights, k_max=k_max, time_limit_s=sc.curve_time_limit_s,
                               method=curve_method, pair_gains=pick.pair, **pick.constraints),
        status=ctx.cache_status)
    ctx.coverage_curve = curve_table(
        points, candidate_ids=cands["candidate_id"].astype(str).to_numpy(), coverage=coverage,
        origins=ctx.origins, hours=hours_pair_values(cfg, ctx.origins, coverage), objective=sc.objective,
        total_weight=pick.result.total_weight)
    gaps = [p.gap for p in points if not p.exact and p.gap is not None]
    ctx.stats["sites_curve"] = {"seconds": round(time.perf_counter() - t0, 3), "points": len(points),
                                "exact": int(sum(p.exact for p in points)),
                                "max_gap": max(gaps) if gaps else None}


def _coverage_target(ctx: Context, pick: _Pick, cands: gpd.GeoDataFrame) -> None:
    """The fewest blocks that reach ``sites.coverage_target``: ``ctx.stats["sites_target"]``."""
    sc = ctx.config.sites
    tgt = min_sites_for_coverage(pick.matrix, pick.weights, target_share=sc.coverage_target,
                                 existing=pick.constraints["existing"], fixed=pick.constraints["fixed"],
                                 cost=pick.cost, time_limit_s=sc.time_limit_s)
    ctx.stats["sites_target"] = {
        "target_share": sc.coverage_target, "status": tgt.status, "min_blocks": int(tgt.k),
        "cost": None if pick.cost is None else float(pick.cost[tgt.selected].sum()),
        "share_reached": (tgt.objective / tgt.total_weight) if tgt.total_weight > 0 else 0.0,
        "candidate_ids": cands["candidate_id"].astype(str).to_numpy()[tgt.selected].tolist(),
    }


def _selected(ctx: Context, pick: _Pick, scored: gpd.GeoDataFrame, catch: Catchments,
              transit: sp.csr_matrix | None, timetable: Timetable | None, *, threshold_min: float
              ) -> tuple[gpd.GeoDataFrame, SelectionResult]:
    """The selected-sites table (blocks that stay first, then the new ones: marginal
    figures, rationale, cost, how exact the answer is) and the selection in that order;
    with ``[sensitivity]`` draws, ``ctx.sensitivity``. ``transit``: the walk-or-transit
    coverage selection ran on (None on foot only)."""
    cfg, sc, result, fixed = ctx.config, ctx.config.sites, pick.result, pick.fixed
    labels = {s: v.label for s, v in cfg.services.items()}
    existing_walk = _existing_coverage(ctx, catch.limit_s) if cfg.sites.existing is not None else None
    kept = fixed_first(result, fixed, pick.matrix, pick.weights, pair=pick.pair,
                       capacitated=pick.constraints["capacity"] is not None,
                       existing=pick.constraints["existing"])
    marginal = marginal_figures(
        cfg, ctx.origins, catch.coverage, kept.selected, existing=existing_walk,
        transit=transit,
        existing_transit=_existing_coverage(ctx, catch.limit_s, timetable) if transit is not None
        and cfg.sites.existing is not None else None,
    )
    sel = selected_sites(scored, kept, threshold_min=threshold_min, offers=sc.offers, objective=sc.objective,
                         labels=labels, marginal=marginal, cap_min=sc.current_time_cap_min,
                         language=cfg.outputs.language)
    if len(fixed):  # blocks that stay come first, marked; the new ones follow in their order
        sel["fixed"] = np.arange(len(sel)) < len(fixed)
        kept_words = language(cfg.outputs.language)._("A block that stays (sites.fixed).")
        sel.loc[sel["fixed"], "rationale"] = kept_words + " " + sel.loc[sel["fixed"], "rationale"].astype(str)
    if pick.cost is not None:
        sel["cost"] = pick.cost[kept.selected]
    if cfg.sensitivity.draws > 0 and len(sel):
        t0 = time.perf_counter()
        ids = sel["candidate_id"].astype(str).tolist()[len(fixed):]  # the fixed blocks are not drawn
        kw = {**pick.constraints, "capacity": sc.capacity}
        coverage = catch.coverage if transit is None else transit
        ctx.sensitivity = stage_cache.table_cached(cfg, "sensitivity", {
            "sensitivity": stage_cache._jsonable(cfg.sensitivity), "sites": stage_cache._jsonable(cfg.sites),
            "scored": stage_cache.columns_digest(scored), "origins": stage_cache.columns_digest(ctx.origins),
            "coverage": stage_cache._param_digest(coverage), "selected": ids, "threshold_min": threshold_min,
            "select_kw": {k: stage_cache._param_digest(v) for k, v in kw.items()},
        }, lambda: sensitivity(cfg, scored, ctx.origins, coverage, ids, threshold_min=threshold_min,
                               select_kw=kw), status=ctx.cache_status)
        ctx.stats["sensitivity_seconds"] = round(time.perf_counter() - t0, 3)
    # how exact the answer is, on every row (a time limit keeps its proven gap with the sites)
    sel["selection_status"] = result.status
    sel["selection_gap"] = np.nan if result.mip_gap is None else float(result.mip_gap)
    return sel, kept


def _catchment_polygons(ctx: Context, sel: gpd.GeoDataFrame, rows: sp.csr_matrix, limit_s: float
                        ) -> gpd.GeoDataFrame:
    """The walkable area of each selected site (through the cache), with its people covered."""
    polys = stage_cache.frame_cached(ctx.config, "catchment_polygons", {
        "network": stage_cache.network_digest(ctx.network), "ids": sel["candidate_id"].tolist(),
        "reach": stage_cache._param_digest(rows), "limit_s": float(limit_s)},
        lambda: catchment_polygons(ctx.network, rows, ids=sel["candidate_id"].tolist(), limit_s=limit_s),
        status=ctx.cache_status)
    polys["population"] = sel["population_covered"].to_numpy()
    return polys


def _origins_after(ctx: Context, sel: gpd.GeoDataFrame, timetable: Timetable | None, *,
                   threshold_min: float) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """A copy of the origins with ``walk_min_<s>_after`` (``best_min_<s>_after``) and
    ``services_within_<T>min_after`` (by the faster mode on transit studies); the after times."""
    cfg, sc = ctx.config, ctx.config.sites
    # on transit studies a new block is also reached by walk + transit, and today's time is
    # the faster of the two modes (best_min_<s>): the after scenario compares like with like
    transit_block = None
    if timetable is not None and any(f"best_min_{s}" in ctx.origins.columns for s in sc.offers):
        transit_block = _transit_block_minutes(ctx, timetable, sel)
    cost = WalkCost.from_config(cfg.walk)
    nodes, snap = sel["node"].to_numpy(np.int64), sel["snap_m"].to_numpy(np.float64)
    block = stage_cache.array_cached(
        cfg, "block_minutes",
        {"network": stage_cache.network_digest(ctx.network), "walk": stage_cache._jsonable(cfg.walk),
         "origins": stage_cache.points_digest(ctx.origins), "sites": stage_cache.array_digest(nodes, snap)},
        lambda: block_minutes(ctx.network, ctx.origins, nodes, snap, cost=cost), status=ctx.cache_status)
    after = access_after(ctx.network, ctx.origins, nodes, snap, cost=cost, offers=sc.offers,
                         transit_block_min=transit_block, block_min=block)
    origins = ctx.origins.copy()
    for s in sc.offers:
        origins[C.walk_min(s, after=True)] = after[C.walk_min(s)].to_numpy()
        if C.best_min(s) in after.columns:
            origins[C.best_min(s) + "_after"] = after[C.best_min(s)].to_numpy()
    mode = "best" if transit_block is not None else "walk"
    n_after = np.zeros(len(origins), dtype=np.int32)
    for s in cfg.service_names:
        c = C.best_min(s) if mode == "best" else C.walk_min(s)
        if c not in origins.columns:
            continue
        v = origins[c + "_after"] if c + "_after" in origins.columns else origins[c]
        n_after += (v.to_numpy(dtype=float, na_value=np.nan) <= threshold_min)
    origins[C.services_within(threshold_min, after=True)] = n_after
    return origins, after


def _transit_block_minutes(ctx, timetable, sel) -> np.ndarray:
    """Walk + transit minutes (report percentile) from every origin to the nearest selected
    block, NaN where none is reached within ``transit.max_trip_min`` or only in as long as
    the origin's slowest offered service takes today.

    The after times take the faster of today's time and the block's, so a block no faster
    than every offered service today changes nothing: each origin's times are capped there
    (``transit_access(cap_s=)``), so only a faster block is reported."""
    cfg = ctx.config
    cap_s = None
    if cfg.sites.offers:
        today = np.column_stack([current_minutes(ctx.origins, s) for s in cfg.sites.offers])
        slowest = today.max(axis=1)  # NaN when a service is out of reach today: no cap
        cap_s = np.where(np.isnan(slowest), np.inf, np.ceil(slowest * 60.0) + 1.0)
    res = stage_cache.transit_access_cached(
        cfg, ctx.network, timetable, ctx.timetable_key, ctx.origins,
        {"block": (sel["node"].to_numpy(np.int64), sel["snap_m"].to_numpy(np.float64))},
        status=ctx.cache_status, name="transit_after", cap_s=cap_s)
    return res["block"][:, list(cfg.transit.percentiles).index(cfg.transit.report_percentile)]


def _equity_after(ctx, origins, after):
    """The equity table recomputed with the after times: walking, and on transit studies the
    faster of walking and walk + transit (``mode`` = ``walk`` / ``best``, as the current table)."""
    cfg = ctx.config
    o = origins.copy()
    for c in after.columns:
        if c.startswith(("walk_min_", "best_min_")):
            o[c] = after[c].to_numpy()
    groups = [g for g in ("population", TOTAL, *CENSUS_GROUPS) if g in o.columns]
    if ctx.equity is not None and "group" in ctx.equity.columns:
        # the same groups as today's table (census_total is left out there when it is
        # the population), so the two read side by side
        groups = [g for g in dict.fromkeys(ctx.equity["group"]) if g in o.columns]
    district_col = "district" if "district" in o.columns else None
    parts = []
    for mode in ("walk", "best"):
        if mode == "best" and not any(c.startswith("best_min_") for c in after.columns):
            continue
        t = equity_table(o, list(cfg.service_names), groups, time_prefix=f"{mode}_min_",
                         thresholds=cfg.access.equity_thresholds_min, district_col=district_col)
        t.insert(0, "mode", mode)
        parts.append(pd.DataFrame(t))
    return pd.concat(parts, ignore_index=True)
