"""The ``demand`` stage: census -> origins, care-need index, districts, equity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry.base import BaseGeometry

from careblocks.config import Config
from careblocks.demand.care_index import care_need_by_district, care_need_index
from careblocks.demand.census import (
    TOTAL,
    census_to_origins,
    population_from_census,
    read_districts,
)
from careblocks.demand.equity import assign_districts, equity_table
from careblocks.pipeline.context import Reporter, quiet


@dataclass
class Demand:
    """What the stage gives back: the origins with census columns, care-need components and
    ``care_need_index`` (and ``district``); the equity table; the districts; the stats."""

    origins: gpd.GeoDataFrame
    #: long table, column ``mode`` = walk, walk_<profile>, transit, best (None: no times)
    equity: pd.DataFrame | None
    #: district polygons with summed counts and the index (None: no district layer)
    districts: gpd.GeoDataFrame | None
    #: allocation stats, groups present, care-index formula and weights, equity rows
    stats: dict[str, Any]


def _time_columns(origins, services, profiles) -> list[tuple[str, str, str]]:
    """(mode, prefix, suffix) of the travel-time columns present for every service."""
    cands = [("walk", "walk_min_", "")]
    cands += [(f"walk_{p}", "walk_min_", f"_{p}") for p in profiles]
    cands += [("transit", "transit_min_", ""), ("best", "best_min_", "")]
    return [c for c in cands if all(f"{c[1]}{s}{c[2]}" in origins.columns for s in services)]


def run_demand_stage(config: Config, origins: gpd.GeoDataFrame, *, area: BaseGeometry | None,
                     area_4326: BaseGeometry | None, report: Reporter = quiet) -> Demand:
    """The ``demand`` stage: census -> origins, care-need index, districts, equity.

    ``origins`` carry the access columns; ``area`` / ``area_4326`` are the study area in the
    working CRS and in EPSG:4326; ``report`` receives the stage's info lines. Columns are
    added to the origins that the census adapter returns (a copy, unless the census is
    skipped or the origins were made from it).
    """
    origins, stats = census_to_origins(config, origins, area=area, area_4326=area_4326)
    if "skipped" in stats:
        report("info", "demand", stats["skipped"] + "; population from the estimate alone")
    if config.census.sets_population and TOTAL in origins.columns:
        stats["population_from_census"] = population_from_census(origins)
        extrapolated = stats["population_from_census"]["origins_extrapolated"]
        if extrapolated:
            report(
                "info", "demand",
                f"{extrapolated} origins outside the census units keep their estimate x "
                f"{stats['population_from_census']['census_to_estimate_ratio']:.2f} "
                "(the census/estimate ratio where both exist)",
            )
    groups = list(stats.get("groups_present", []))
    if groups:
        stats["care_index"] = _add_care_need_index(config, origins, groups)
    districts = None
    if config.census.districts is not None:
        districts = _districts(config, origins, groups, area_4326=area_4326)
    equity = _equity(config, origins, groups, stats)
    stats["equity_rows"] = 0 if equity is None else int(len(equity))
    return Demand(origins, equity, districts, stats)


def _add_care_need_index(config: Config, origins: gpd.GeoDataFrame, groups: list[str]) -> dict[str, Any]:
    """Add the care-need components and index to ``origins``; return the formula and weights."""
    polys = bool(origins.geom_type.isin(["Polygon", "MultiPolygon"]).all())
    area_km2 = (origins.geometry.area / 1e6).to_numpy() \
        if polys and config.census.allocate_by != "buildings" else None
    weights = dict(config.care_index.weights)
    gap = None
    if weights.get("supply_gap", 0) > 0:
        tcols = [f"walk_min_{s}" for s in config.service_names if f"walk_min_{s}" in origins.columns]
        gap = origins[tcols].to_numpy("float64") if tcols else None
    comp, formula = care_need_index(origins, weights, groups, area_km2=area_km2, gap_minutes=gap)
    for c in comp.columns:
        origins[c] = comp[c].to_numpy()
    plan = comp.attrs["plan"]
    return {"formula": formula, "weights": plan["weights"], "dropped": plan["dropped"],
            "density_per": plan["density_per"]}


def _districts(config: Config, origins: gpd.GeoDataFrame, groups: list[str], *,
               area_4326: BaseGeometry | None) -> gpd.GeoDataFrame | None:
    """Set ``origins["district"]``; the districts with origins, their people and care need."""
    name_col = config.census.district_name_column
    dgdf = read_districts(config, area_4326=area_4326)
    origins["district"] = assign_districts(origins, dgdf, name_col).to_numpy()
    if not groups and "population" not in origins.columns:
        return None
    by, _ = care_need_by_district(origins, "district", dict(config.care_index.weights),
                                  groups) if groups else (None, None)
    d = dgdf.to_crs(origins.crs)
    d = gpd.GeoDataFrame({"district": d[name_col].astype(str).to_numpy()},
                         geometry=d.geometry.to_numpy(), crs=d.crs)
    d = d[d["district"].isin(origins["district"].dropna().unique())]
    if "population" in origins.columns:
        d["population"] = d["district"].map(origins.groupby("district")["population"].sum()).to_numpy()
    if by is not None:
        d = d.merge(by.reset_index(), on="district", how="left")
    return d.reset_index(drop=True)


def _equity(config: Config, origins: gpd.GeoDataFrame, groups: list[str], stats: dict[str, Any]
            ) -> pd.DataFrame | None:
    """The equity table of every travel-time mode present (None when there is none)."""
    services = list(config.service_names)
    # once the census total is the population, listing both would repeat one column
    firsts = ("population",) if "population_from_census" in stats else ("population", TOTAL)
    eq_groups = [g for g in (*firsts, *groups) if g in origins.columns]
    district_col = "district" if config.census.districts is not None else None
    tables = []
    for mode, prefix, suffix in _time_columns(origins, services, config.walk.profiles):
        t = equity_table(origins, services, eq_groups, time_prefix=prefix, time_suffix=suffix,
                         thresholds=config.access.equity_thresholds_min, district_col=district_col)
        t.insert(0, "mode", mode)
        tables.append(t)
    return pd.concat(tables, ignore_index=True) if tables else None


def check_census_inputs(config: Config, origins: gpd.GeoDataFrame, *, area: BaseGeometry | None,
                        area_4326: BaseGeometry | None) -> dict[str, Any]:
    """Read and check the census layer or raster and the district layer exactly as
    :func:`run_demand_stage` does (for ``careblocks validate``); returns the census stats."""
    _, stats = census_to_origins(config, origins, area=area, area_4326=area_4326)
    read_districts(config, area_4326=area_4326)
    return stats
