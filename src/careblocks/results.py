"""The :class:`Results` of a run: what the pipeline hands to the writers and to Python users."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry.base import BaseGeometry

    from careblocks.config import Config
    from careblocks.network.graph import WalkNetwork


@dataclass
class Results:
    """Everything one study run produced, all geometries in the working CRS (``crs``).

    Attributes
    ----------
    origins
        One row per origin: ``origin_id``, ``population``, care groups, ``node``, ``snap_m``,
        ``walk_min_<service>``, ``n_within_<T>min_<service>``, ``services_within_<T>min`` and,
        when configured, ``transit_min_<service>``, ``best_min_<service>``, ``care_need_index``.
    services
        One row per facility: ``service_id``, ``service``, ``name``, ``source``, ``category``,
        ``node``, ``snap_m``.
    metadata
        Version, config, input digests, stage timings and warning counts.
    """

    config: Config
    crs: str
    area: BaseGeometry
    network: WalkNetwork
    origins: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    equity: pd.DataFrame | None = None
    equity_after: pd.DataFrame | None = None
    districts: gpd.GeoDataFrame | None = None
    candidates: gpd.GeoDataFrame | None = None
    selected: gpd.GeoDataFrame | None = None
    catchments: gpd.GeoDataFrame | None = None
    #: the objective covered at each K (1 .. ``sites.curve_k_max``), when solved
    coverage_curve: pd.DataFrame | None = None
    #: how often each chosen site stays chosen under other weightings (``[sensitivity]``)
    sensitivity: pd.DataFrame | None = None

    @property
    def threshold_min(self) -> float:
        return self.config.access.threshold_min

    @property
    def service_names(self) -> tuple[str, ...]:
        return self.config.service_names
