"""The ``accessibility`` stage: supply against demand (2SFCA, gravity, deserts) on the study's
walking and walk + transit times, after the demand stage (care groups are on the origins)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp

from careblocks.accessibility import (
    access_measures,
    add_to_equity,
    need_counts,
    summarise,
    walk_seconds,
)
from careblocks.config import Config
from careblocks.network.cost import WalkCost
from careblocks.network.graph import WalkNetwork
from careblocks.pipeline import cache as stage_cache
from careblocks.transit.reach import transit_coverage
from careblocks.transit.timetable import Timetable


@dataclass
class Accessibility:
    """What the stage gives back: the origins with ``fca_<s>``, ``gravity_<s>`` (and
    ``desert_<s>``, ``..._best``), the equity table with the group summaries joined, the
    districts with ``fca_<s>`` / ``desert_share_<s>``, and the stage's stats."""

    origins: gpd.GeoDataFrame
    equity: pd.DataFrame | None
    districts: gpd.GeoDataFrame | None
    stats: dict[str, Any]


def run_accessibility_stage(config: Config, origins: gpd.GeoDataFrame, services: gpd.GeoDataFrame,
                            network: WalkNetwork, *, equity: pd.DataFrame | None,
                            districts: gpd.GeoDataFrame | None, timetable: Timetable | None,
                            timetable_key: str | None, cache_status: dict[str, str]) -> Accessibility:
    """The ``accessibility`` stage (after demand, so care groups are on the origins).

    Adds ``fca_<s>``, ``gravity_<s>`` (and ``desert_<s>``) to the origins on walking times
    and, with transit enabled (``timetable`` given) and ``accessibility.use_transit``,
    ``..._best`` on the faster of walking and walk + transit; joins group summaries onto
    ``equity`` (modes ``walk`` and ``best``) and adds ``fca_<s>`` / ``desert_share_<s>`` (for
    the people in need) to ``districts``. The inputs are not changed.
    """
    services_ = list(config.service_names)
    walk = _walk_seconds(config, network, origins, cache_status)
    table, stats = access_measures(config, origins, services, network, walk=walk)
    origins = origins.copy()
    for c in table.columns:
        origins[c] = table[c].to_numpy()
    runs = [("walk", "")]
    tt = timetable if config.transit.enabled and config.accessibility.use_transit else None
    if tt is not None:
        transit = _transit_seconds(config, network, tt, timetable_key, origins, cache_status)
        best, _ = access_measures(config, origins, services, network, transit=transit, walk=walk,
                                  suffix="_best")
        for c in best.columns:
            origins[c] = best[c].to_numpy()
        runs.append(("best", "_best"))
    groups = ["population"] if equity is None else list(dict.fromkeys(equity["group"]))
    groups = [g for g in groups if g in origins.columns]
    for mode, sfx in runs:
        summ = summarise(origins, services_, groups, by="district" if "district" in origins.columns else None,
                         suffix=sfx)
        equity = add_to_equity(equity, summ, mode)
        if mode == "walk":
            stats["summary"] = summ[summ["district"] == "all"].to_dict("records")
    if districts is not None and "district" in origins.columns:
        districts = _district_measures(config, origins, districts)
    stats["need_groups"] = {s: need_counts(origins, s, config)[1] for s in services_}
    return Accessibility(origins, equity, districts, stats)


def _walk_seconds(config: Config, network: WalkNetwork, origins: gpd.GeoDataFrame,
                  cache_status: dict[str, str]):
    """``walk(nodes, snap_m, limit_s)`` for :func:`access_measures`: facilities x origins
    seconds on foot, cached by network, walking cost, facilities, origins and limit
    (``cache_status["accessibility_walk"]``; the walking and the walk + transit measures
    share it)."""

    def walk(nodes: np.ndarray, snap_m: np.ndarray, limit_s: float) -> sp.csr_matrix:
        pts = pd.DataFrame({"node": np.asarray(nodes, np.int64), "snap_m": np.asarray(snap_m, np.float64)})
        return stage_cache.walk_coverage_cached(
            config, network, pts, origins, limit_s,
            lambda: walk_seconds(network, origins, pts, cost=WalkCost.from_config(config.walk), limit_s=limit_s),
            status=cache_status, name="accessibility_walk")

    return walk


def _transit_seconds(config: Config, network: WalkNetwork, timetable: Timetable, timetable_key: str | None,
                     origins: gpd.GeoDataFrame, cache_status: dict[str, str]):
    """``transit(nodes, snap_m, limit_s)`` for :func:`access_measures`: facilities x origins
    seconds by walk + transit, cached by timetable, facilities, origins and limit."""

    def transit(nodes: np.ndarray, snap_m: np.ndarray, limit_s: float) -> sp.csr_matrix:
        def compute() -> sp.csr_matrix:
            m = transit_coverage(network, timetable, origins["node"].to_numpy(np.int64),
                                 origins["snap_m"].to_numpy(np.float64), nodes, snap_m, config.transit,
                                 cost=WalkCost.from_config(config.walk), limit_min=limit_s / 60.0)
            m.data = m.data * 60.0
            return m

        pts = pd.DataFrame({"node": np.asarray(nodes, np.int64), "snap_m": np.asarray(snap_m, np.float64)})
        return stage_cache.transit_coverage_cached(config, timetable_key, pts, origins, limit_s, compute,
                                                   status=cache_status, name="accessibility_transit")

    return transit


def _district_measures(config: Config, origins: gpd.GeoDataFrame, districts: gpd.GeoDataFrame
                       ) -> gpd.GeoDataFrame:
    """``fca_<s>`` (mean over the people in need) and ``desert_share_<s>`` per district."""
    d = districts.copy()
    for s in config.service_names:
        if f"fca_{s}" not in origins.columns:
            continue
        need, _ = need_counts(origins, s, config)
        frame = pd.DataFrame({"district": origins["district"].to_numpy(), "need": need,
                              "nf": need * origins[f"fca_{s}"].to_numpy(np.float64)})
        if f"desert_{s}" in origins.columns:
            frame["nd"] = need * origins[f"desert_{s}"].to_numpy(bool)
        agg = frame.groupby("district").sum(numeric_only=True)
        d[f"fca_{s}"] = d["district"].map(agg["nf"] / agg["need"].where(agg["need"] > 0)).to_numpy()
        if "nd" in agg.columns:
            d[f"desert_share_{s}"] = d["district"].map(agg["nd"] / agg["need"].where(agg["need"] > 0)).to_numpy()
    return d
