"""The GeoPackage for GIS teams: every result layer, run metadata and QGIS styles.

Layers (see ``docs/outputs.md`` for every column): ``origins``, ``services``,
``candidates``, ``selected_sites``, ``catchments``, ``districts`` (those present in the
results), ``network_nodes`` (junction heights, when ``network.elevation`` is set), the
non-spatial tables ``equity`` (one table, ``scenario`` = ``current`` or ``with_sites``),
``coverage_curve`` (best coverage for K = 1, 2, ... blocks), ``sensitivity`` (when the sites
stage drew weightings) and ``run_metadata`` (``key``, ``value`` as JSON text), and QGIS's
``layer_styles`` table so ``origins`` opens with graduated travel-time colours and
``services`` with one symbol per service type.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from careblocks.errors import ConfigError
from careblocks.i18n import language, lower_first
from careblocks.outputs import styles
from careblocks.outputs._atomic import atomic_path
from careblocks.outputs._common import (
    config_to_dict,
    normalized_metadata,
    output_time,
    sanitize_frame,
    services_in,
    source_date_epoch,
    time_column,
    to_json,
)

__all__ = ["GPKG_LAYERS", "write_geopackage"]

#: spatial layers in the order they are written, with the Results attribute they come from
GPKG_LAYERS = {
    "origins": "origins",
    "services": "services",
    "candidates": "candidates",
    "selected_sites": "selected",
    "catchments": "catchments",
    "districts": "districts",
}

_DESCRIPTIONS = {
    "origins": "Where people live: population, care groups and travel times (minutes) to each service",
    "services": "Existing care facilities by service type, snapped to the walking network",
    "candidates": "Candidate Care Block sites with score components, score and rank",
    "selected_sites": "Selected Care Block sites in order of selection, with marginal gain and rationale",
    "catchments": "Walking catchment polygons of the selected sites",
    "districts": "Districts used for the equity summaries",
    "study_area": "The study area: where people are counted and services and sites looked for",
    "network_nodes": "Walk-network junctions with their ground height from the DEM (metres)",
    "equity": "Share of people by care group and district within each travel-time threshold",
    "coverage_curve": "Best coverage for K = 1, 2, ... Care Blocks, exact or with its proven gap",
    "sensitivity": "How often each candidate is selected when the score weights and trip rates vary",
    "run_metadata": "Version, config, input digests, stage timings and warning counts (JSON values)",
}

GEOMETRY_COLUMN = "geom"


def _output_crs(results, crs: str) -> str:
    if crs == "local":
        return results.crs
    try:
        from pyproj import CRS

        CRS.from_user_input(crs)
    except Exception:
        raise ConfigError(
            f"config key 'outputs.crs': {crs!r} is not a CRS; use \"EPSG:4326\" or \"local\""
        ) from None
    return crs


def _prepare(gdf: gpd.GeoDataFrame, results, crs: str) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        gdf = gdf.set_crs(results.crs)
    gdf = gdf.to_crs(crs)
    gdf = gdf.reset_index(drop=True)
    return sanitize_frame(gdf)


def study_area_layer(results) -> gpd.GeoDataFrame | None:
    """The study area as one feature (``name``: the study's title, ``area_km2``), None
    when the results have none."""
    area = getattr(results, "area", None)
    if area is None or area.is_empty:
        return None
    study = getattr(getattr(results.config, "study", None), "label", None) or ""
    return gpd.GeoDataFrame({"name": [str(study)], "area_km2": [float(area.area) / 1e6]},
                            geometry=[area], crs=results.crs)


def network_nodes_layer(results) -> gpd.GeoDataFrame | None:
    """Walk-network junctions with their ground height (``node_id``, ``elevation_m``), when the
    study reads a DEM (``network.elevation``); None otherwise."""
    net = getattr(results, "network", None)
    z = getattr(net, "z", None)
    if z is None:
        return None
    g = net.nodes_gdf()
    keep = g["node_id"].to_numpy() >= 0  # the OSM junctions, not the points snapped onto streets
    g = g.loc[keep, ["node_id", "geometry"]].copy()
    g["elevation_m"] = z[keep]
    return g


def equity_layer(results) -> pd.DataFrame | None:
    """``equity`` and ``equity_after`` stacked with a ``scenario`` column."""
    parts = []
    for frame, scenario in ((results.equity, "current"), (results.equity_after, "with_sites")):
        if frame is None or len(frame) == 0:
            continue
        f = pd.DataFrame(frame).reset_index(drop=True)
        if "geometry" in f.columns:
            f = f.drop(columns="geometry")
        if "scenario" not in f.columns:
            f.insert(0, "scenario", scenario)
        parts.append(f)
    if not parts:
        return None
    return sanitize_frame(pd.concat(parts, ignore_index=True))


def _without_volatile(obj: Any) -> Any:
    """Drop what differs between identical runs: wall-clock ``seconds`` / ``*_seconds`` and
    whether a cache was hit (``cache``)."""
    if isinstance(obj, dict):
        return {k: _without_volatile(v) for k, v in obj.items()
                if not (k in ("seconds", "cache") or str(k).endswith("_seconds"))}
    if isinstance(obj, list):
        return [_without_volatile(v) for v in obj]
    return obj


def _volatile_columns_null(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its wall-clock columns (``seconds`` / ``*_seconds``, e.g. the coverage
    curve's solver time) set to null: they differ on every run. The columns stay, so the
    table's schema does not depend on ``SOURCE_DATE_EPOCH``."""
    cols = [c for c in df.columns if c == "seconds" or str(c).endswith("_seconds")]
    if not cols:
        return df
    df = df.copy()
    for c in cols:
        df[c] = pd.Series(float("nan"), index=df.index, dtype=float)
    return df


def metadata_rows(results, *, crs: str, layers: list[str]) -> pd.DataFrame:
    """Key / JSON-value rows of the run metadata."""
    meta: dict[str, Any] = normalized_metadata(results.metadata)
    if "config" not in meta and getattr(results, "config", None) is not None:
        meta["config"] = config_to_dict(results.config)
    if "version" not in meta:
        from careblocks._version import __version__

        meta["version"] = __version__
    meta.setdefault("input_digests", {})
    meta.setdefault("stage_timings", {})
    meta.setdefault("warning_counts", {})
    meta["output_crs"] = crs
    meta["working_crs"] = results.crs
    meta["layers"] = layers
    stamp = output_time(meta)
    meta["written_at"] = stamp.isoformat(timespec="seconds")
    if source_date_epoch() is not None:  # reproducible outputs: one fixed time, no timings
        meta["created_utc"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["stage_timings"] = None
        meta = {k: _without_volatile(v) for k, v in meta.items()}
    first = ["version", "config", "input_digests", "stage_timings", "warning_counts"]
    keys = first + sorted(k for k in meta if k not in first)
    return pd.DataFrame({"key": keys, "value": [to_json(meta[k]) for k in keys]})


def _geom_kind(gdf: gpd.GeoDataFrame) -> str:
    types = set(gdf.geom_type.dropna().unique())
    if types & {"Polygon", "MultiPolygon"}:
        return "fill"
    if types & {"LineString", "MultiLineString"}:
        return "line"
    return "marker"


def style_rows(results, frames: dict[str, gpd.GeoDataFrame]) -> list[dict[str, Any]]:
    """Rows of the QGIS ``layer_styles`` table for the layers written."""
    rows: list[dict[str, Any]] = []

    def add(layer: str, name: str, qml: str, sld: str, default: bool, description: str) -> None:
        rows.append(
            {
                "f_table_name": layer,
                "f_geometry_column": GEOMETRY_COLUMN,
                "styleName": name,
                "styleQML": qml,
                "styleSLD": sld,
                "useAsDefault": 1 if default else 0,
                "description": description,
            }
        )

    origins = frames.get("origins")
    if origins is not None and len(origins):
        kind = _geom_kind(origins)
        breaks = styles.time_breaks(results.threshold_min)
        lang = getattr(getattr(results.config, "outputs", None), "language", "en")
        labels = styles.time_labels(results.threshold_min, lang)
        L = language(lang)
        first = True
        for svc in services_in(results):
            col = time_column(origins.columns, svc)
            if col is None:
                continue
            add(
                "origins",
                col,
                styles.qml_graduated(col, breaks, styles.TIME_COLORS, labels, kind=kind),
                styles.sld_graduated("origins", col, breaks, styles.TIME_COLORS, labels, kind=kind),
                first,
                L._("Minutes to the nearest {service}").format(
                    service=lower_first(styles.service_label(results.config, svc))),
            )
            first = False
    services = frames.get("services")
    if services is not None and len(services) and "service" in services.columns:
        order = services_in(results)
        present = [s for s in order if s in set(services["service"].astype(str))]
        cats = [
            (s, styles.service_label(results.config, s), styles.service_color(s, order))
            for s in present
        ]
        kind = _geom_kind(services)
        add(
            "services",
            "service type",
            styles.qml_categorized("service", cats, kind=kind),
            styles.sld_categorized("services", "service", cats, kind=kind),
            True,
            "One colour per service type",
        )
    for layer, (color, symbol) in styles.LAYER_SYMBOLS.items():
        gdf = frames.get(layer)
        if gdf is None or not len(gdf):
            continue
        kind = _geom_kind(gdf)
        add(layer, "default", styles.qml_single(color, kind=kind, **symbol),
            styles.sld_single(layer, color, kind=kind), True, _DESCRIPTIONS[layer])
    return rows


_LAYER_STYLES_DDL = """
CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  f_table_catalog TEXT(256),
  f_table_schema TEXT(256),
  f_table_name TEXT(256),
  f_geometry_column TEXT(256),
  styleName TEXT(30),
  styleQML TEXT,
  styleSLD TEXT,
  useAsDefault BOOLEAN,
  description TEXT,
  owner TEXT(30),
  ui TEXT(30),
  update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)
"""


def _write_layer_styles(path: Path, rows: list[dict[str, Any]], now: str) -> None:
    """Add QGIS's ``layer_styles`` table (registered in gpkg_contents as attributes)."""
    if not rows:
        return
    con = sqlite3.connect(path)
    try:
        with con:
            con.execute(_LAYER_STYLES_DDL)
            con.executemany(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui, update_time) VALUES ('', '', :f_table_name, :f_geometry_column, "
                ":styleName, :styleQML, :styleSLD, :useAsDefault, :description, '', NULL, :now)",
                [dict(r, now=now) for r in rows],
            )
            con.execute(
                "INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, "
                "description, last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', "
                "'QGIS layer styles', ?)",
                (now,),
            )
            has_ogr = con.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='gpkg_ogr_contents'"
            ).fetchone()
            if has_ogr:
                con.execute(
                    "INSERT OR REPLACE INTO gpkg_ogr_contents (table_name, feature_count) "
                    "VALUES ('layer_styles', ?)",
                    (len(rows),),
                )
    finally:
        con.close()


@contextlib.contextmanager
def _gdal_options(**options: str):
    """Set GDAL config options for the block, restoring the previous values after it."""
    old = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(old)


def write_geopackage(
    results, path: str | os.PathLike[str], *, crs: str = "EPSG:4326"
) -> Path:
    """Write the results to a GeoPackage, atomically, and return its path.

    Parameters
    ----------
    results
        A :class:`careblocks.results.Results`; parts that are ``None`` are not written.
    path
        The ``.gpkg`` file; an existing file is replaced only once the new one is complete.
    crs
        ``"EPSG:4326"`` (default), ``"local"`` for the working projected CRS of the run, or
        any CRS pyproj understands.

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    out_crs = _output_crs(results, crs)
    frames: dict[str, gpd.GeoDataFrame] = {}
    for layer, attr in GPKG_LAYERS.items():
        gdf = getattr(results, attr, None)
        if gdf is None:
            continue
        if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
            continue
        frames[layer] = _prepare(gdf, results, out_crs)
    area = study_area_layer(results)
    if area is not None:
        frames["study_area"] = _prepare(area, results, out_crs)
    nodes = network_nodes_layer(results)
    if nodes is not None:
        frames["network_nodes"] = _prepare(nodes, results, out_crs)
    equity = equity_layer(results)
    extra_tables = [(name, sanitize_frame(pd.DataFrame(df).reset_index(drop=True)))
                    for name, df in ((n, getattr(results, n)) for n in ("coverage_curve", "sensitivity"))
                    if df is not None and len(df)]
    if source_date_epoch() is not None:  # reproducible outputs: solver wall-clock times as null
        extra_tables = [(name, _volatile_columns_null(df)) for name, df in extra_tables]
    layers = list(frames) + (["equity"] if equity is not None else []) + [n for n, _ in extra_tables] \
        + ["run_metadata"]
    meta = metadata_rows(results, crs=out_crs, layers=layers)

    # every change date GDAL writes (gpkg_contents.last_change) is the run's one timestamp
    now = output_time(results.metadata).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with atomic_path(target) as tmp, _gdal_options(OGR_CURRENT_DATE=now):
        first = True
        for layer, gdf in frames.items():
            pyogrio.write_dataframe(
                gdf,
                tmp,
                layer=layer,
                driver="GPKG",
                dataset_options={"VERSION": "1.3"} if first else None,
                layer_options={"GEOMETRY_NAME": GEOMETRY_COLUMN, "DESCRIPTION": _DESCRIPTIONS[layer]},
            )
            first = False
        tables = ([("equity", equity)] if equity is not None else []) + extra_tables + [("run_metadata", meta)]
        for layer, df in tables:
            pyogrio.write_dataframe(
                df,
                tmp,
                layer=layer,
                driver="GPKG",
                dataset_options={"VERSION": "1.3"} if first else None,
                layer_options={"DESCRIPTION": _DESCRIPTIONS[layer]},
            )
            first = False
        _write_layer_styles(tmp, style_rows(results, frames), now)
    return target
