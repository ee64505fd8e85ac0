"""The ``sites`` stage: candidates -> catchments -> scores -> selection -> after.

Wires :mod:`careblocks.sites.candidates`, :mod:`careblocks.sites.scoring`,
:mod:`careblocks.sites.selection` and :mod:`careblocks.sites.rationale` on the pipeline's
context. See ``docs/site_selection.md``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from careblocks.network.cost import WalkCost
from careblocks.network.search import gather_targets, min_union, reach_from
from careblocks.sites.rationale import marginal_figures, selected_sites
from careblocks.sites.scoring import hours_pair_values
from careblocks.sites.selection import select_sites


def _candidate_districts(cands, districts) -> np.ndarray | None:
    import geopandas as gpd

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
    from careblocks.io.layers import read_vector, representative_xy

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
    from careblocks.transit.reach import transit_coverage

    cfg = ctx.config
    m = transit_coverage(ctx.network, timetable, ctx.origins["node"].to_numpy(np.int64),
                         ctx.origins["snap_m"].to_numpy(np.float64), np.asarray(nodes, np.int64),
                         np.asarray(snap_m, np.float64), cfg.transit, cost=WalkCost.from_config(cfg.walk),
                         limit_min=limit_s / 60.0)
    m.data = m.data * 60.0
    return m


def _sites_timetable(ctx):
    """The timetable for walk + transit catchments, or None when ``sites.use_transit`` is off
    (unset means on whenever transit is enabled; set true without transit: a warning)."""
    cfg = ctx.config
    if cfg.sites.use_transit is False or (cfg.sites.use_transit is None and not cfg.transit.enabled):
        return None
    if not cfg.transit.enabled:
        import warnings

        from careblocks.errors import DataQualityWarning

        warnings.warn(
            "sites.use_transit: transit is not enabled, so sites are scored and selected on foot "
            "only; set transit.enabled = true with transit.feeds and transit.date",
            DataQualityWarning,
            stacklevel=3,
        )
        return None
    tt = ctx.extra.get("timetable") if getattr(ctx, "extra", None) is not None else None
    if tt is None:  # the transit stage did not run (e.g. the sites stage called on its own)
        from careblocks.transit import load_timetable

        tt, _ = load_timetable(cfg.transit, ctx.network, area_4326=ctx.area_4326, crs=ctx.crs,
                               cost=WalkCost.from_config(cfg.walk))
        if getattr(ctx, "extra", None) is not None:
            ctx.extra["timetable"] = tt
    return tt


def run_sites_stage(ctx) -> None:
    """The ``sites`` stage: candidates -> catchments -> scores -> selection -> after.

    Reads ``ctx.config``, ``ctx.osm_path``, ``ctx.area_4326``, ``ctx.crs``, ``ctx.network``,
    ``ctx.origins`` (with access columns), ``ctx.services``, ``ctx.districts``, ``ctx.equity``.
    With ``sites.use_transit`` and transit enabled, the timetable of the transit stage
    (``ctx.extra["timetable"]``, loaded here when absent) gives walk + transit catchments
    (:func:`careblocks.transit.reach.transit_coverage`): the ``transit_population_covered``
    component and, for selection, the union (min time) of walking and walk + transit.
    Sets ``ctx.candidates`` (all components, ``score``, ``rank``), ``ctx.selected`` (order,
    marginal gain, cumulative gain, rationale), ``ctx.catchments`` (walkable area of each
    selected site), ``ctx.equity_after`` (when ``ctx.equity`` exists), adds
    ``walk_min_<s>_after`` / ``services_within_<T>min_after`` to ``ctx.origins`` and
    ``ctx.stats["sites"]``.
    """
    from careblocks.sites.candidates import build_candidates
    from careblocks.sites.scoring import (
        access_after,
        catchment_polygons,
        compute_catchments,
        objective_weights,
        score_candidates,
        sites_threshold_min,
    )

    cfg, sc = ctx.config, ctx.config.sites
    T = sites_threshold_min(cfg)
    timetable = _sites_timetable(ctx)
    cands = build_candidates(cfg, osm_path=ctx.osm_path, area_4326=ctx.area_4326, crs=ctx.crs,
                             network=ctx.network, origins=ctx.origins)
    catch = compute_catchments(cfg, cands, ctx.origins, ctx.network, services=ctx.services)
    transit_cov, transit_stats = None, {}
    if timetable is not None:
        import time

        t0 = time.perf_counter()
        transit_cov = _transit_seconds(ctx, timetable, cands["node"].to_numpy(np.int64),
                                       cands["snap_m"].to_numpy(np.float64), catch.limit_s)
        transit_stats = {"transit_coverage_entries": int(transit_cov.nnz),
                         "transit_coverage_seconds": round(time.perf_counter() - t0, 3)}
    scored = score_candidates(cfg, cands, ctx.origins, ctx.services, catch, transit_coverage=transit_cov)
    from careblocks.accessibility import block_capacity

    for s in sc.offers:  # what a new block offers (services.<s>.block_capacity), for selection
        scored[f"capacity_{s}"] = block_capacity(cfg, s)
    from careblocks.accessibility import block_capacity

    for s in sc.offers:  # what a new block offers (services.<s>.block_capacity), for selection
        scored[f"capacity_{s}"] = block_capacity(cfg, s)
    # selection: walking coverage, or the union (min time) of walking and walk + transit
    coverage = catch.coverage if transit_cov is None else min_union(catch.coverage, transit_cov)
    pair = sc.objective == "hours_returned"
    if pair:  # exact: each origin's hours with its nearest chosen site
        matrix, weights = hours_pair_values(cfg, ctx.origins, coverage), None
    else:
        matrix, weights = coverage, objective_weights(cfg, ctx.origins, threshold_min=T)
    constraints = dict(
        min_spacing_m=sc.min_spacing_m, candidate_xy=np.column_stack([cands.geometry.x, cands.geometry.y]),
        districts=_candidate_districts(cands, ctx.districts) if sc.max_per_district is not None else None,
        max_per_district=sc.max_per_district, existing=_existing_coverage(ctx, catch.limit_s, timetable),
        capacity=sc.capacity,
    )
    result = select_sites(matrix, weights, k=sc.k, method=sc.method, pair_gains=pair,
                          time_limit_s=sc.time_limit_s, **constraints)
    labels = {s: v.label for s, v in cfg.services.items()}
    existing_walk = _existing_coverage(ctx, catch.limit_s) if cfg.sites.existing is not None else None
    marginal = marginal_figures(
        cfg, ctx.origins, catch.coverage, result.selected, existing=existing_walk,
        transit=coverage if transit_cov is not None else None,
        existing_transit=_existing_coverage(ctx, catch.limit_s, timetable) if transit_cov is not None
        and cfg.sites.existing is not None else None,
    )
    sel = selected_sites(scored, result, threshold_min=T, offers=sc.offers, objective=sc.objective,
                         labels=labels, marginal=marginal, cap_min=sc.current_time_cap_min)
    if cfg.sensitivity.draws > 0 and len(sel):
        import time

        from careblocks.sites.sensitivity import sensitivity

        t0 = time.perf_counter()
        ctx.extra["sensitivity"] = sensitivity(
            cfg, scored, ctx.origins, coverage, sel["candidate_id"].astype(str).tolist(),
            threshold_min=T, select_kw=constraints)
        ctx.stats["sensitivity_seconds"] = round(time.perf_counter() - t0, 3)
    polys = catchment_polygons(ctx.network, catch.reach[result.selected], ids=sel["candidate_id"].tolist(),
                               limit_s=catch.limit_s)
    polys["population"] = sel["population_covered"].to_numpy()
    # on transit studies a new block is also reached by walk + transit, and today's time is
    # the faster of the two modes (best_min_<s>): the after scenario compares like with like
    transit_block = None
    if timetable is not None and any(f"best_min_{s}" in ctx.origins.columns for s in sc.offers):
        transit_block = _transit_block_minutes(ctx, timetable, sel)
    after = access_after(ctx.network, ctx.origins, sel["node"].to_numpy(), sel["snap_m"].to_numpy(),
                         cost=WalkCost.from_config(cfg.walk), offers=sc.offers,
                         transit_block_min=transit_block)
    origins = ctx.origins.copy()
    for s in sc.offers:
        origins[f"walk_min_{s}_after"] = after[f"walk_min_{s}"].to_numpy()
        if f"best_min_{s}" in after.columns:
            origins[f"best_min_{s}_after"] = after[f"best_min_{s}"].to_numpy()
    from careblocks.access import format_threshold

    mode = "best" if transit_block is not None else "walk"
    tcols = [f"{mode}_min_{s}" for s in cfg.service_names if f"{mode}_min_{s}" in origins.columns]
    n_after = np.zeros(len(origins), dtype=np.int32)
    for c in tcols:
        v = origins[f"{c}_after"] if f"{c}_after" in origins.columns else origins[c]
        n_after += (v.to_numpy(dtype=float, na_value=np.nan) <= T)
    origins[f"services_within_{format_threshold(T)}min_after"] = n_after
    ctx.origins = origins
    ctx.candidates, ctx.selected, ctx.catchments = scored, sel, polys
    if getattr(ctx, "equity", None) is not None:
        ctx.equity_after = _equity_after(ctx, origins, after)
    ctx.stats["sites"] = {
        "candidates": cands.attrs.get("stats", {}), "n_candidates": int(len(cands)),
        "threshold_min": T, "objective": sc.objective, "method": result.method,
        "status": result.status, "mip_gap": result.mip_gap, "objective_value": result.objective,
        "total_weight": result.total_weight, "existing_weight": result.existing_weight,
        "coverage_entries": int(catch.coverage.nnz), "use_transit": timetable is not None,
        **transit_stats, **result.info,
    }


def _transit_block_minutes(ctx, timetable, sel) -> np.ndarray:
    """Walk + transit minutes (report percentile) from every origin to the nearest selected
    block, NaN where none is reached within ``transit.max_trip_min``."""
    from careblocks.transit import transit_access

    cfg = ctx.config
    res = transit_access(ctx.network, timetable, ctx.origins["node"].to_numpy(np.int64),
                         ctx.origins["snap_m"].to_numpy(np.float64),
                         {"block": (sel["node"].to_numpy(np.int64), sel["snap_m"].to_numpy(np.float64))},
                         cfg.transit, cost=WalkCost.from_config(cfg.walk))
    return res["block"][:, list(cfg.transit.percentiles).index(cfg.transit.report_percentile)]


def _equity_after(ctx, origins, after):
    """The equity table recomputed with the after times: walking, and on transit studies the
    faster of walking and walk + transit (``mode`` = ``walk`` / ``best``, as the current table)."""
    import pandas as pd

    from careblocks.demand.census import GROUPS, TOTAL
    from careblocks.demand.equity import equity_table

    cfg = ctx.config
    o = origins.copy()
    for c in after.columns:
        if c.startswith(("walk_min_", "best_min_")):
            o[c] = after[c].to_numpy()
    groups = [g for g in ("population", TOTAL, *GROUPS) if g in o.columns]
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
