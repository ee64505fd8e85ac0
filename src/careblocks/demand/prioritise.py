"""City-wide prioritisation from the census alone: rank census units and districts by need.

Bogotá first ranks where to look across the city, then sites Care Blocks inside the chosen
areas. :func:`prioritise` does the first step without a street network:

1. every unit of ``census.layer`` (Bogotá's 641 urban census sectors) with its care groups
   (declared in ``[census.groups]``, rates from ``census.coarse``);
2. the supply gap, when facility layers are configured (``services.<s>.layers``): minutes
   from each unit's representative point to the nearest facility of each service: walking
   on the config's street network when it gives one (:func:`network_minutes`, the network,
   snapping, search and :class:`~careblocks.network.cost.WalkCost` of ``run``), else (and
   for units farther than ``walk.max_snap_m`` from a street) the straight-line distance x
   ``prioritise.detour_factor`` at ``walk.speed_kmh``;
3. the care-need index of :mod:`careblocks.demand.care_index` among the units (counts
   per household, min-max within the city), and ``rank`` (1 = most need);
4. the same index among districts (the coarse units, Bogotá's localidades) from the summed
   counts of their units, the supply gap being the people-weighted mean of their units'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from careblocks.errors import ConfigError, EmptyResultError

if TYPE_CHECKING:
    import geopandas as gpd

    from careblocks.config import Config

__all__ = ["Prioritisation", "prioritise", "straight_line_minutes", "rank_desc"]


@dataclass
class Prioritisation:
    """What :func:`prioritise` returns (GeoDataFrames in EPSG:4326)."""

    units: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame | None
    formula: str
    district_formula: str | None
    info: dict[str, Any] = field(default_factory=dict)


def rank_desc(values: Any, ids: Any) -> np.ndarray:
    """Ranks 1..n by decreasing value; ties broken by the id (ascending)."""
    v = np.asarray(values, dtype="float64")
    order = np.lexsort((np.asarray(ids).astype(str), -np.nan_to_num(v, nan=-np.inf)))
    r = np.empty(len(v), dtype=np.int64)
    r[order] = np.arange(1, len(v) + 1)
    return r


def straight_line_minutes(xy: np.ndarray, facilities_xy: np.ndarray, *, speed_kmh: float,
                          detour_factor: float) -> np.ndarray:
    """Minutes to the nearest facility along a straight line x ``detour_factor``."""
    from scipy.spatial import cKDTree

    if len(facilities_xy) == 0:
        return np.full(len(xy), np.nan)
    d, _ = cKDTree(facilities_xy).query(xy)
    return d * detour_factor / (speed_kmh * 1000.0 / 60.0)


def has_network(config: Config) -> bool:
    """Whether the config gives a street network (``network.path``, or a place to download)."""
    net = config.network
    return net.path is not None or (net.source == "download" and net.place is not None)


def network_minutes(config: Config, points_4326: Any, facilities: dict[str, Any], *,
                    area_4326: Any = None) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    """Walking minutes from each point to the nearest facility of each service on the
    config's street network (the network, cost and search that ``run`` uses: snap leg +
    network time + facility snap leg, :class:`~careblocks.network.cost.WalkCost` of
    ``[walk]``), NaN when unreachable; and which points lie farther than ``walk.max_snap_m``
    from a street (NaN too: the caller falls back to the straight line there).

    ``points_4326`` and the values of ``facilities`` are GeoSeries of points in any CRS.
    """
    import geopandas as gpd

    from careblocks.network.cost import WalkCost
    from careblocks.network.graph import load_or_build_network, snap_to_streets
    from careblocks.network.search import nearest_times

    if area_4326 is None:  # the network around the units
        area_4326 = gpd.GeoSeries(points_4326).to_crs("EPSG:4326").union_all().convex_hull.buffer(0.01)
    net, stats = load_or_build_network(config, area_4326=area_4326)
    cost = WalkCost.from_config(config.walk)
    # snapped as `run` snaps: onto the nearest point of the nearest street (split there)
    net, node, snap = snap_to_streets(net, gpd.GeoSeries(points_4326).to_crs(net.crs))
    far = snap > float(config.walk.max_snap_m)
    snapped = {}
    for name, fac in facilities.items():
        net, fnode, fsnap = snap_to_streets(net, gpd.GeoSeries(fac).to_crs(net.crs))
        snapped[name] = (fnode, fsnap)
    w = cost.inbound_seconds(net)  # searches start at the facilities: trips TO them
    out: dict[str, np.ndarray] = {}
    for name, (fnode, fsnap) in snapped.items():
        t = nearest_times(net.indptr, net.indices, w, fnode, cost.leg_seconds(fsnap))
        m = (t[node] + cost.leg_seconds(snap)) / 60.0
        m[~np.isfinite(m) | far] = np.nan
        out[name] = m
    info = {"network_nodes": int(net.n_nodes), "units_far_from_network": int(far.sum()),
            "max_snap_m": float(config.walk.max_snap_m), "network_cache": stats.get("cache")}
    return out, far, info


def _facilities(config: Config, crs: str) -> dict[str, np.ndarray]:
    """Facility points (x, y in ``crs``) per service from the configured layers."""
    import geopandas as gpd

    from careblocks.services import _layer_service

    out: dict[str, np.ndarray] = {}
    for name, svc in config.services.items():
        parts = []
        for i, layer in enumerate(svc.layers):
            gdf, _ = _layer_service(name, i, layer, None, None)
            if len(gdf):
                parts.append(gdf)
        if parts:
            g = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs="EPSG:4326").to_crs(crs)
            pts = g.geometry.representative_point()
            out[name] = np.column_stack([pts.x, pts.y])
    return out


def prioritise(config: Config) -> Prioritisation:
    """Rank every census unit and district of ``config`` by the care-need index.

    Raises
    ------
    ConfigError
        No census layer, or no care group mapped.
    """
    import geopandas as gpd

    from careblocks.columns import CENSUS_GROUPS as GROUPS
    from careblocks.demand.care_index import care_need_by_district, care_need_index
    from careblocks.demand.census import HOUSEHOLDS, TOTAL, read_census
    from careblocks.io.layers import study_area
    from careblocks.network.graph import local_crs

    cfg = config.census
    if cfg.layer is None:
        raise ConfigError(
            "census.layer: careblocks prioritise ranks census units; set census.layer and "
            "census.total_column"
        )
    area_4326 = study_area(config)
    units, info = read_census(cfg, area_4326=area_4326)
    if area_4326 is not None:
        from careblocks.io.layers import within_area

        units = units[within_area(units, area_4326)].reset_index(drop=True)
    if TOTAL not in units.columns:
        raise ConfigError("census.total_column: prioritise needs the people per unit; set it")
    groups = [g for g in GROUPS if g in units.columns]
    if not groups:
        raise ConfigError(
            "census.groups: no care group is mapped; map children_under5, older_80plus, "
            "women_caregivers, poverty ... (see docs/care_need_index.md)"
        )
    if len(units) == 0:
        raise EmptyResultError("census.layer: no census unit in the study area")
    u4326 = units.to_crs("EPSG:4326")
    crs = config.study.crs if config.study.crs != "auto" else local_crs(u4326.geometry.union_all())
    proj = units.to_crs(crs)
    rep = proj.geometry.representative_point()
    xy = np.column_stack([rep.x, rep.y])
    weights = dict(config.care_index.weights)
    fac = _facilities(config, crs)
    detour = float(config.prioritise.detour_factor)
    speed = float(config.walk.speed_kmh)
    gap = None
    gap_cols: list[str] = []
    net_info: dict[str, Any] = {}
    use_network = bool(fac) and has_network(config)
    if fac:
        mins = {s: straight_line_minutes(xy, p, speed_kmh=speed, detour_factor=detour)
                for s, p in fac.items()}
        prefix = "line_min_"
        if use_network:
            # walking times on the street network; units farther than walk.max_snap_m from
            # a street keep the straight line x detour factor (counted in info)
            walk, far, net_info = network_minutes(
                config, gpd.GeoSeries(rep, crs=crs),
                {s: gpd.GeoSeries(gpd.points_from_xy(p[:, 0], p[:, 1]), crs=crs) for s, p in fac.items()},
                area_4326=area_4326)
            mins = {s: np.where(far, m, walk[s]) for s, m in mins.items()}
            prefix = "walk_min_"
        for s, m in mins.items():
            units[f"{prefix}{s}"] = m
            gap_cols.append(f"{prefix}{s}")
        gap = np.column_stack([mins[s] for s in mins])
    elif weights.get("supply_gap", 0) > 0:
        info["supply_gap"] = "no facility layers configured: supply_gap dropped"
    comp, formula = care_need_index(units, weights, groups, unit="census units",
                                    gap_minutes=gap)
    for c in comp.columns:
        units[c] = comp[c].to_numpy()
    ids = units["census_name"] if "census_name" in units.columns else units["census_unit_id"]
    units["rank"] = rank_desc(units["care_need_index"], ids)
    units["area_km2"] = proj.geometry.area.to_numpy() / 1e6

    districts = None
    dformula = None
    if "census_coarse_name" in units.columns:
        by, dformula = care_need_by_district(units, "census_coarse_name", weights, groups)
        by = by.reset_index().rename(columns={"district": "district"})
        by["rank"] = rank_desc(by["care_need_index"], by["district"])
        by["n_units"] = by["district"].map(units["census_coarse_name"].value_counts()).to_numpy()
        shapes = u4326.assign(district=units["census_coarse_name"].to_numpy()) \
            .dissolve("district")[["geometry"]]
        districts = gpd.GeoDataFrame(by.merge(shapes, left_on="district", right_index=True),
                                     geometry="geometry", crs="EPSG:4326")
        districts = districts.sort_values("rank").reset_index(drop=True)
        units = units.rename(columns={"census_coarse_name": "district"})
    units = gpd.GeoDataFrame(units.drop(columns="geometry"), geometry=u4326.geometry.to_numpy(),
                             crs="EPSG:4326").sort_values("rank").reset_index(drop=True)
    info.update(
        units=int(len(units)), districts=0 if districts is None else int(len(districts)),
        groups=groups, weights=comp.attrs["plan"]["weights"],
        dropped=comp.attrs["plan"]["dropped"], facilities={s: int(len(p)) for s, p in fac.items()},
        distance=("network walking time (straight line x detour factor off the network)" if use_network
                  else "straight line x detour factor") if fac else None, detour_factor=detour,
        **net_info,
        speed_kmh=speed, households=HOUSEHOLDS in units.columns,
    )
    return Prioritisation(units, districts, formula, dformula, info)
