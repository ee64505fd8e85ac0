"""Site selection for the pipeline: per-site table, rationale sentences and the ``sites`` stage.

The thin layer between the GeoDataFrames of a study and the array cores:
:mod:`careblocks.candidates` (candidate sites), :mod:`careblocks.scoring` (catchments,
components, score, rank) and :mod:`careblocks.selection` (maximal covering / facility
location on a sparse matrix). :func:`run_sites_stage` wires them for
``careblocks.pipeline.stage_sites``; :func:`selected_sites` turns a
:class:`~careblocks.selection.SelectionResult` into the ``selected_sites`` layer with one
plain-language :func:`rationale` per site. See ``docs/site_selection.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from careblocks.selection import SelectionResult, select_sites

_GROUP_WORDS = {
    "children_under5": "children under 5",
    "children_5_14": "children aged 5 to 14",
    "older_80plus": "people over 80",
    "older_60plus": "people over 60",
    "people_with_disabilities": "people with disabilities",
    "women_caregivers": "women caregivers",
}


def round_sensibly(x: float) -> int:
    """Round for a sentence: < 100 exact, < 1,000 to 10, < 100,000 to 100, else to 1,000."""
    x = float(x)
    if not np.isfinite(x):
        return 0
    step = 1 if abs(x) < 100 else 10 if abs(x) < 1_000 else 100 if abs(x) < 100_000 else 1_000
    return int(round(x / step) * step)


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def rationale(row, *, threshold_min: float, offers: Sequence[str], labels: dict[str, str] | None = None,
              cap_min: float = 60.0) -> str:
    """One sentence a council member can read, from a site's figures.

    For a selected site (``new_*`` columns from :func:`marginal_figures`) every figure is
    marginal, what the site adds to the sites before it, so the sentences of a proposal add
    up to no more than the population: "Brings 18,400 more people within 15 minutes, 2,900
    of them children under 5; brings daycare within reach of 6,100 and health of 900; first
    community kitchen within 60 minutes for 1,200 people; returns about 4,300 caregiver hours
    a week on trips made today." For a candidate alone (component columns, no ``new_*``) the
    gross figures: "Serves 18,400 people within 15 minutes, ...". Care groups appear only when
    the origins carry them; services only when at least 1 person. With transit catchments
    (``sites.use_transit``) the first clause says "on foot" and is followed by "31,000 within 15
    minutes by walk + transit".
    """
    labels = labels or {}
    t = int(threshold_min) if float(threshold_min).is_integer() else threshold_min
    cap = int(cap_min) if float(cap_min).is_integer() else cap_min
    marginal = "new_population_covered" in row.index
    pre = "new_" if marginal else ""

    def val(col: str) -> float | None:
        c = pre + col
        return float(row[c]) if c in row.index and np.isfinite(row[c]) else None

    transit = val("transit_population_covered") is not None
    people = round_sensibly(val("population_covered") or 0.0)
    s = (f"Brings {people:,} more people within {t} minutes" if marginal
         else f"Serves {people:,} people within {t} minutes")
    if transit:
        s += " on foot"
    groups = [f"{round_sensibly(val(f'{g}_covered')):,} {w}" for g, w in _GROUP_WORDS.items()
              if (val(f"{g}_covered") or 0.0) >= 1][:2]
    if groups:
        s += ", " + _join(groups).replace(" ", " of them ", 1)
    if transit:
        s += f"; {round_sensibly(val('transit_population_covered')):,} within {t} minutes by walk + transit"
    name = {sv: labels.get(sv, sv.replace("_", " ")).lower() for sv in offers}
    gaps = [(name[sv], val(f"gap_closed_{sv}")) for sv in offers if (val(f"gap_closed_{sv}") or 0.0) >= 1]
    if gaps:
        first = f"{gaps[0][0]} within reach of {round_sensibly(gaps[0][1]):,}"
        rest = [f"{n} of {round_sensibly(v):,}" for n, v in gaps[1:]]
        s += "; brings " + _join([first, *rest])
    new = [(name[sv], val(f"first_access_{sv}")) for sv in offers]
    new = [(n, v) for n, v in new if (v or 0.0) >= 1]
    if new:
        n, v = max(new, key=lambda x: x[1])
        s += f"; first {n} within {cap} minutes for {round_sensibly(v):,} people"
    hours = val("hours_returned_week")
    if hours is not None and hours >= 1:
        s += f"; returns about {round_sensibly(hours):,} caregiver hours a week on trips made today"
    return s + "."


def marginal_figures(config, origins, coverage_s: sp.csr_matrix, order: Sequence[int], *,
                     existing: sp.csr_matrix | None = None, transit: sp.csr_matrix | None = None,
                     existing_transit: sp.csr_matrix | None = None):
    """What each site adds to the sites before it (and to existing Care Blocks).

    Parameters
    ----------
    config
        ``sites.offers``, the threshold, the hours model's settings.
    origins
        ``population``, ``walk_min_<s>`` and optional care groups.
    coverage_s
        Candidates x origins walking seconds within T (the catchments).
    order
        Rows of ``coverage_s`` in selection order.
    existing
        Existing Care Blocks x origins walking seconds within T (their people count as served).
    transit, existing_transit
        The same by walk + transit (adds ``new_transit_population_covered``).

    Returns
    -------
    pandas.DataFrame
        One row per site in ``order``: ``new_population_covered``, ``new_<group>_covered``,
        ``new_gap_closed_<s>`` (people beyond T of ``<s>`` today, first within T of a block
        here), ``new_first_access_<s>`` (of them, people who cannot reach ``<s>`` today: no
        facility within the cap), ``new_hours_returned_week`` (the hours the proposal returns with this
        site minus without it, each origin using its nearest block) and
        ``new_transit_population_covered``. Each column sums over the sites to the figure of
        the whole proposal, so no column can exceed the people who live in the study area.
    """
    import pandas as pd

    from careblocks.scoring import (
        CARE_GROUPS,
        _counts,
        current_minutes,
        sites_threshold_min,
        today_minutes,
    )

    T = sites_threshold_min(config)
    cap = float(config.sites.current_time_cap_min)
    offers = list(config.sites.offers)
    pop = _counts(origins, "population")
    weights = {"population_covered": pop}
    for g in CARE_GROUPS:
        if g in origins.columns:
            weights[f"{g}_covered"] = _counts(origins, g)
    for sv in offers:
        cur = current_minutes(origins, sv)
        weights[f"gap_closed_{sv}"] = pop * (~np.isfinite(cur) | (cur > T))
        weights[f"first_access_{sv}"] = pop * ~np.isfinite(today_minutes(cur, cap))
    n_o = len(origins)

    def served_by(m) -> np.ndarray:
        hit = np.zeros(n_o, dtype=bool)
        if m is not None and m.shape[0]:
            hit[sp.csr_matrix(m).indices] = True
        return hit

    cov = sp.csr_matrix(coverage_s)
    covered = served_by(existing)
    hours = hours_pair_values(config, origins, cov)
    best = np.zeros(n_o)
    if existing is not None and existing.shape[0]:
        ex = hours_pair_values(config, origins, existing)
        np.maximum.at(best, ex.indices, ex.data)
    tcov = sp.csr_matrix(transit) if transit is not None else None
    tcovered = served_by(existing_transit if existing_transit is not None else existing)
    rows = []
    for i in order:
        i = int(i)
        idx = cov.indices[cov.indptr[i]:cov.indptr[i + 1]]
        new = idx[~covered[idx]]
        row = {f"new_{k}": float(w[new].sum()) for k, w in weights.items()}
        covered[new] = True
        h_idx = hours.indices[hours.indptr[i]:hours.indptr[i + 1]]
        h_val = hours.data[hours.indptr[i]:hours.indptr[i + 1]]
        gain = np.maximum(0.0, h_val - best[h_idx])
        row["new_hours_returned_week"] = float(gain.sum())
        best[h_idx] = np.maximum(best[h_idx], h_val)
        if tcov is not None:
            t_idx = tcov.indices[tcov.indptr[i]:tcov.indptr[i + 1]]
            t_new = t_idx[~tcovered[t_idx]]
            row["new_transit_population_covered"] = float(pop[t_new].sum())
            tcovered[t_new] = True
        rows.append(row)
    cols = [f"new_{k}" for k in weights] + ["new_hours_returned_week"]
    if tcov is not None:
        cols.append("new_transit_population_covered")
    return pd.DataFrame(rows, columns=cols)


def selected_sites(scored, result: SelectionResult, *, threshold_min: float, offers: Sequence[str],
                   objective: str, labels: dict[str, str] | None = None, marginal=None,
                   cap_min: float = 60.0):
    """The chosen candidates (rows of ``scored`` at ``result.selected``) in selection order.

    Adds ``order`` (1..K), ``objective``, ``marginal_gain``, ``cumulative_gain``,
    ``cumulative_share`` (of the weight not already served), the ``new_*`` columns of
    ``marginal`` (:func:`marginal_figures`, same order) and ``rationale``.
    """
    out = scored.iloc[result.selected].copy()
    out.insert(0, "order", np.arange(1, len(out) + 1))
    out["objective"] = objective
    out["marginal_gain"] = result.marginal_gain
    out["cumulative_gain"] = result.cumulative
    out["cumulative_share"] = result.cumulative / result.total_weight if result.total_weight > 0 else 0.0
    if marginal is not None:
        for c in marginal.columns:
            out[c] = marginal[c].to_numpy()
    out["rationale"] = [rationale(r, threshold_min=threshold_min, offers=offers, labels=labels, cap_min=cap_min)
                        for _, r in out.iterrows()]
    return out.reset_index(drop=True)


def hours_pair_values(config, origins, coverage_s: sp.csr_matrix, *,
                      services: Sequence[str] | None = None) -> sp.csr_matrix:
    """Caregiver hours a week origin j gets back from site i, for every catchment entry.

    ``sum_s trips_s x 2 x max(0, current_js - t_ij) x users_js / 60`` over the offered
    services, for trips made today (``scoring.today_minutes``): the per-pair terms of ``scoring.hours_returned``, so a site's row sum
    is its ``hours_returned_week`` column. Used with ``select_sites(..., pair_gains=True)``
    for ``sites.objective = "hours_returned"``. ``services`` restricts the sum (default
    ``sites.offers``).
    """
    from careblocks.config import DEFAULT_SERVICES
    from careblocks.scoring import current_minutes, household_size, today_minutes, user_households

    cov = sp.csr_matrix(coverage_s)
    t_min = cov.data / 60.0
    cap = float(config.sites.current_time_cap_min)
    hh = household_size(config)
    vals = np.zeros(cov.nnz)
    for s in (config.sites.offers if services is None else services):
        svc = config.services.get(s)
        trips = svc.trips_per_week if svc is not None and svc.trips_per_week is not None \
            else DEFAULT_SERVICES.get(s, {}).get("trips_per_week", 0.0)
        cur = np.nan_to_num(today_minutes(current_minutes(origins, s), cap), nan=0.0)
        users = user_households(origins, s, hh, config)
        vals += float(trips) * 2.0 * np.maximum(0.0, cur[cov.indices] - t_min) * users[cov.indices] / 60.0
    out = sp.csr_matrix((vals, cov.indices.copy(), cov.indptr.copy()), shape=cov.shape)
    out.eliminate_zeros()
    return out


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
    from careblocks.scoring import gather_targets, reach_from

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
    mps = cfg.walk.speed_kmh / 3.6
    reach = reach_from(ctx.network, node, dist / mps, speed_kmh=cfg.walk.speed_kmh, limit_s=catchments_limit_s)
    o = ctx.origins
    cov = gather_targets(reach, o["node"].to_numpy(np.int64), o["snap_m"].to_numpy(float) / mps,
                         catchments_limit_s)
    if timetable is not None:
        cov = min_union(cov, _transit_seconds(ctx, timetable, node, dist, catchments_limit_s))
    return cov


def min_union(a: sp.csr_matrix, b: sp.csr_matrix) -> sp.csr_matrix:
    """Entry-wise minimum of two sparse time matrices where a missing entry means
    "not within the limit" (infinitely long), unlike ``scipy``'s ``minimum`` (zero)."""
    a, b = sp.coo_matrix(a), sp.coo_matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"min_union: shapes {a.shape} and {b.shape} differ")
    r = np.concatenate([a.row, b.row]).astype(np.int64)
    c = np.concatenate([a.col, b.col]).astype(np.int64)
    v = np.concatenate([a.data, b.data]).astype(np.float64)
    o = np.lexsort((v, c, r))
    r, c, v = r[o], c[o], v[o]
    first = np.r_[True, (r[1:] != r[:-1]) | (c[1:] != c[:-1])]
    m = sp.csr_matrix((v[first], (r[first], c[first])), shape=a.shape)
    m.sort_indices()
    return m


def _transit_seconds(ctx, timetable, nodes, snap_m, limit_s: float) -> sp.csr_matrix:
    """Targets x origins seconds within ``limit_s`` by walk + transit (or on foot)."""
    from careblocks.transit.reach import transit_coverage

    cfg = ctx.config
    m = transit_coverage(ctx.network, timetable, ctx.origins["node"].to_numpy(np.int64),
                         ctx.origins["snap_m"].to_numpy(np.float64), np.asarray(nodes, np.int64),
                         np.asarray(snap_m, np.float64), cfg.transit, speed_kmh=cfg.walk.speed_kmh,
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
                               speed_kmh=cfg.walk.speed_kmh)
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
    from careblocks.candidates import build_candidates
    from careblocks.scoring import (
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

        from careblocks.sensitivity import sensitivity

        t0 = time.perf_counter()
        ctx.extra["sensitivity"] = sensitivity(
            cfg, scored, ctx.origins, coverage, sel["candidate_id"].astype(str).tolist(),
            threshold_min=T, select_kw=constraints)
        ctx.stats["sensitivity_seconds"] = round(time.perf_counter() - t0, 3)
    polys = catchment_polygons(ctx.network, catch.reach[result.selected], ids=sel["candidate_id"].tolist(),
                               limit_s=catch.limit_s)
    polys["population"] = sel["population_covered"].to_numpy()
    after = access_after(ctx.network, ctx.origins, sel["node"].to_numpy(), sel["snap_m"].to_numpy(),
                         speed_kmh=cfg.walk.speed_kmh, offers=sc.offers)
    origins = ctx.origins.copy()
    for s in sc.offers:
        origins[f"walk_min_{s}_after"] = after[f"walk_min_{s}"].to_numpy()
    from careblocks.access import format_threshold

    tcols = [f"walk_min_{s}" for s in cfg.service_names if f"walk_min_{s}" in origins.columns]
    n_after = np.zeros(len(origins), dtype=np.int32)
    for c in tcols:
        s = c[len("walk_min_"):]
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


def _equity_after(ctx, origins, after):
    """The equity table recomputed with the after times (walking mode)."""
    import pandas as pd

    from careblocks.demand import GROUPS, TOTAL
    from careblocks.equity import equity_table

    cfg = ctx.config
    o = origins.copy()
    for c in after.columns:
        if c.startswith("walk_min_"):
            o[c] = after[c].to_numpy()
    groups = [g for g in ("population", TOTAL, *GROUPS) if g in o.columns]
    district_col = "district" if "district" in o.columns else None
    t = equity_table(o, list(cfg.service_names), groups, time_prefix="walk_min_",
                     thresholds=cfg.access.equity_thresholds_min, district_col=district_col)
    t.insert(0, "mode", "walk")
    return pd.DataFrame(t)
