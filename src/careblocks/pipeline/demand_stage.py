"""The ``demand`` stage: census -> origins, care-need index, districts, equity."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from careblocks.demand.care_index import care_need_by_district, care_need_index
from careblocks.demand.census import (
    TOTAL,
    census_to_origins,
    population_from_census,
    read_districts,
)
from careblocks.demand.equity import assign_districts, equity_table


def _time_columns(origins, services, profiles) -> list[tuple[str, str, str]]:
    """(mode, prefix, suffix) of the travel-time columns present for every service."""
    cands = [("walk", "walk_min_", "")]
    cands += [(f"walk_{p}", "walk_min_", f"_{p}") for p in profiles]
    cands += [("transit", "transit_min_", ""), ("best", "best_min_", "")]
    return [c for c in cands if all(f"{c[1]}{s}{c[2]}" in origins.columns for s in services)]


def run_demand_stage(ctx) -> None:
    """The ``demand`` stage: census -> origins, care-need index, districts, equity.

    Reads ``ctx.config``, ``ctx.origins`` (with access columns), ``ctx.area``,
    ``ctx.area_4326``. Sets ``ctx.origins`` (census columns, components and
    ``care_need_index`` added; ``district`` when a district layer is configured),
    ``ctx.equity`` (long table, column ``mode`` = walk, walk_<profile>, transit, best),
    ``ctx.districts``
    (district polygons with summed counts and the index, or None) and ``ctx.stats["demand"]``
    (allocation stats, groups present, care-index formula and weights).
    """
    cfg = ctx.config
    origins, stats = census_to_origins(cfg, ctx.origins, area=ctx.area, area_4326=ctx.area_4326)
    if "skipped" in stats:
        ctx.report("info", "demand", stats["skipped"] + "; population from the estimate alone")
    if cfg.census.sets_population and TOTAL in origins.columns:
        stats["population_from_census"] = population_from_census(origins)
        extra = stats["population_from_census"]["origins_extrapolated"]
        if extra:
            ctx.report(
                "info", "demand",
                f"{extra} origins outside the census units keep their estimate x "
                f"{stats['population_from_census']['census_to_estimate_ratio']:.2f} "
                "(the census/estimate ratio where both exist)",
            )
    groups = list(stats.get("groups_present", []))
    if groups:
        polys = bool(origins.geom_type.isin(["Polygon", "MultiPolygon"]).all())
        area_km2 = (origins.geometry.area / 1e6).to_numpy() \
            if polys and cfg.census.allocate_by != "buildings" else None
        weights = dict(cfg.care_index.weights)
        gap = None
        if weights.get("supply_gap", 0) > 0:
            tcols = [f"walk_min_{s}" for s in cfg.service_names if f"walk_min_{s}" in origins.columns]
            gap = origins[tcols].to_numpy("float64") if tcols else None
        comp, formula = care_need_index(origins, weights, groups, area_km2=area_km2,
                                        gap_minutes=gap)
        for c in comp.columns:
            origins[c] = comp[c].to_numpy()
        plan = comp.attrs["plan"]
        stats["care_index"] = {"formula": formula, "weights": plan["weights"],
                               "dropped": plan["dropped"], "density_per": plan["density_per"]}
    district_col = None
    ctx.districts = None
    if cfg.census.districts is not None:
        name_col = cfg.census.district_name_column
        dgdf = read_districts(cfg, area_4326=ctx.area_4326)
        origins["district"] = assign_districts(origins, dgdf, name_col).to_numpy()
        district_col = "district"
        if groups or "population" in origins.columns:
            by, _ = care_need_by_district(origins, "district", dict(cfg.care_index.weights),
                                          groups) if groups else (None, None)
            d = dgdf.to_crs(origins.crs)
            d = gpd.GeoDataFrame({"district": d[name_col].astype(str).to_numpy()},
                                 geometry=d.geometry.to_numpy(), crs=d.crs)
            d = d[d["district"].isin(origins["district"].dropna().unique())]
            people = origins.groupby("district")["population"].sum() \
                if "population" in origins.columns else None
            if people is not None:
                d["population"] = d["district"].map(people).to_numpy()
            if by is not None:
                d = d.merge(by.reset_index(), on="district", how="left")
            ctx.districts = d.reset_index(drop=True)
    services = list(cfg.service_names)
    # once the census total is the population, listing both would repeat one column
    firsts = ("population",) if "population_from_census" in stats else ("population", TOTAL)
    eq_groups = [g for g in (*firsts, *groups) if g in origins.columns]
    tables = []
    for mode, prefix, suffix in _time_columns(origins, services, cfg.walk.profiles):
        t = equity_table(origins, services, eq_groups, time_prefix=prefix, time_suffix=suffix,
                         thresholds=cfg.access.equity_thresholds_min, district_col=district_col)
        t.insert(0, "mode", mode)
        tables.append(t)
    ctx.equity = pd.concat(tables, ignore_index=True) if tables else None
    ctx.origins = origins
    stats["equity_rows"] = 0 if ctx.equity is None else int(len(ctx.equity))
    ctx.stats["demand"] = stats
    if getattr(ctx, "results", None) is not None:
        ctx.results.origins = origins
        ctx.results.equity = ctx.equity
        ctx.results.districts = ctx.districts


def check_census_inputs(ctx) -> dict:
    """Read and check the census layer or raster and the district layer exactly as
    :func:`run_demand_stage` does (for ``careblocks validate``); returns the census stats."""
    _, stats = census_to_origins(ctx.config, ctx.origins, area=ctx.area, area_4326=ctx.area_4326)
    read_districts(ctx.config, area_4326=ctx.area_4326)
    return stats
