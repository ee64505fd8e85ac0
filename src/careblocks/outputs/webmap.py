"""The HTML map for a council meeting: one self-contained file that opens with no server.

One rendering path, and no template engine: the page is a fixed shell (Leaflet,
Leaflet.markercluster and ``map.js`` from ``outputs/assets``, BSD-2 and MIT licences) that
holds no data, followed by ONE ``<script type="application/json">`` block that carries every
piece of data (GeoJSON layers, names, rationale, legend and page text) as JSON, with ``<``,
``>``, ``&`` and U+2028/U+2029 escaped (:func:`json_for_html`). ``map.js`` parses that block and
builds the layers, tooltips, popups, legend and layer list with DOM calls and ``textContent``,
never ``innerHTML`` of data. A facility called ``{{7*7}}`` or ``</script>`` is shown as written.

Every English string of the page lives in :data:`TEXT` (templates filled with ``str.format``
from values, never the reverse) so the page can be translated in one place.

Origins are drawn as areas: census polygons as given, or, for point origins, H3 cells that
aggregate the points (population summed, travel times population-weighted). The map works
offline except for the OpenStreetMap background tiles; the street network is drawn as a light
grey layer so the map still reads without them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from careblocks.columns import service_of, services_within, threshold_tag
from careblocks.outputs import styles
from careblocks.outputs._atomic import write_text_atomic
from careblocks.outputs._common import (
    all_within_column,
    run_date,
    services_in,
    time_column,
)

__all__ = ["TEXT", "build_map_data", "json_for_html", "map_areas", "render_map", "write_map"]

ASSETS = Path(__file__).resolve().parent / "assets"
#: polygon origins smaller than this (median) are grouped into H3 cells instead of drawn
MIN_DRAWN_AREA_M2 = 10_000.0
#: at most this many candidate sites are drawn (the best by score)
MAX_CANDIDATES = 5000
_NEED_COLORS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
_ALL_COLORS = ("#f7fcf5", "#c7e9c0", "#74c476", "#31a354", "#006d2c")


# --------------------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------------------


def _round_geoms(geoms: np.ndarray, decimals: int) -> np.ndarray:
    return shapely.transform(geoms, lambda c: np.round(c, decimals))


def _weighted(values: pd.Series, weights: pd.Series, groups: pd.Series) -> pd.Series:
    """Population-weighted mean of ``values`` per group, ignoring nulls (null if all null)."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    w = weights.astype(float).where(v.notna(), 0.0)
    num = (v.fillna(0.0) * w).groupby(groups).sum()
    den = w.groupby(groups).sum()
    cnt = v.notna().groupby(groups).sum()
    plain = v.groupby(groups).mean()
    out = (num / den.where(den > 0)).where(den > 0, plain)
    return out.where(cnt > 0)


def _auto_h3_resolution(pts: gpd.GeoSeries) -> int:
    """A resolution whose cells are about as wide as the spacing of the points (7..10)."""
    import h3
    from scipy.spatial import cKDTree

    xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    if len(xy) < 3:
        return 9
    d, _ = cKDTree(xy).query(xy, k=2)
    spacing = float(np.median(d[:, 1])) if np.isfinite(d[:, 1]).any() else 200.0
    for res in range(10, 6, -1):
        # neighbouring cell centres are sqrt(3) x edge apart
        if np.sqrt(3) * h3.average_hexagon_edge_length(res, unit="m") >= 0.9 * spacing:
            return res
    return 7


def map_areas(results, *, h3_resolution: int | None = None) -> gpd.GeoDataFrame:
    """Origins as areas in EPSG:4326 with the values the map colours.

    Columns: ``area_id``, ``population``, ``<time col>`` per service (minutes),
    ``all_within_share`` (share of people with every service within the threshold),
    ``care_need_index``, ``all_within_share_after`` (when sites are selected) and geometry.
    """
    o = results.origins
    if o.crs is None:
        o = o.set_crs(results.crs)
    services = services_in(results)
    tcols = [c for c in (time_column(o.columns, s) for s in services) if c]
    pop = pd.to_numeric(o.get("population", pd.Series(1.0, index=o.index)), errors="coerce").fillna(0.0)
    n_all = len(tcols)
    within_col = all_within_column(results)
    all_flag = (o[within_col] >= n_all).astype(float) if within_col and n_all else None
    after_flag = _after_all_within(results, o, tcols)
    # census units and grid cells are drawn as given; building footprints and other small
    # polygons (median under 1 ha) are grouped into H3 cells like points
    polygonal = (
        bool(o.geom_type.isin(["Polygon", "MultiPolygon"]).all())
        and len(o) <= 50_000
        and float(o.geometry.area.median()) >= MIN_DRAWN_AREA_M2
    )

    if polygonal:
        out = gpd.GeoDataFrame(
            {"area_id": o["origin_id"].astype(str).to_numpy() if "origin_id" in o else np.arange(len(o)).astype(str),
             "population": pop.to_numpy()},
            geometry=o.geometry.simplify(5.0, preserve_topology=True).to_numpy(), crs=o.crs,
        )
        for c in tcols:
            out[c] = pd.to_numeric(o[c], errors="coerce").to_numpy()
        if all_flag is not None:
            out["all_within_share"] = all_flag.to_numpy()
        if after_flag is not None:
            out["all_within_share_after"] = after_flag.to_numpy()
        if "care_need_index" in o:
            out["care_need_index"] = pd.to_numeric(o["care_need_index"], errors="coerce").to_numpy()
        out = out.to_crs("EPSG:4326")
    else:
        import h3

        pts = o.geometry.representative_point()
        res = h3_resolution or _auto_h3_resolution(pts)
        ll = gpd.GeoSeries(pts, crs=o.crs).to_crs("EPSG:4326")
        cells = pd.Series(
            [h3.latlng_to_cell(lat, lng, res) for lat, lng in zip(ll.y.to_numpy(), ll.x.to_numpy(), strict=False)],
            index=o.index,
        )
        data: dict[str, Any] = {"population": pop.groupby(cells).sum()}
        for c in tcols:
            data[c] = _weighted(o[c], pop, cells)
        if all_flag is not None:
            data["all_within_share"] = _weighted(all_flag, pop, cells)
        if after_flag is not None:
            data["all_within_share_after"] = _weighted(after_flag, pop, cells)
        if "care_need_index" in o:
            data["care_need_index"] = _weighted(o["care_need_index"], pop, cells)
        df = pd.DataFrame(data)
        polys = [
            shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in df.index
        ]
        out = gpd.GeoDataFrame(df.reset_index(names="area_id"), geometry=polys, crs="EPSG:4326")
        out.attrs["h3_resolution"] = res
    out["geometry"] = _round_geoms(out.geometry.to_numpy(), 6)
    return out


def _after_all_within(results, o: gpd.GeoDataFrame, tcols: list[str]) -> pd.Series | None:
    """1.0 where an origin has every service within T once the selected sites exist."""
    col = services_within(results.threshold_min, after=True)
    if col in o.columns:
        return (pd.to_numeric(o[col], errors="coerce") >= len(tcols)).astype(float)
    if results.catchments is None or len(results.catchments) == 0 or not tcols:
        return None
    catch = results.catchments.to_crs(o.crs) if results.catchments.crs is not None else results.catchments
    pts = gpd.GeoDataFrame(geometry=o.geometry.representative_point(), crs=o.crs)
    hit = gpd.sjoin(pts, catch[[catch.geometry.name]], predicate="within", how="inner")
    covered = pd.Series(False, index=o.index)
    covered.loc[hit.index.unique()] = True
    offers = set(getattr(getattr(results.config, "sites", None), "offers", ()) or ())
    t = float(results.threshold_min)
    ok = pd.Series(True, index=o.index)
    for c in tcols:
        svc = service_of(c, services_in(results))
        within = pd.to_numeric(o[c], errors="coerce") <= t
        if svc in offers:
            within = within | covered
        ok &= within.fillna(False)
    return ok.astype(float)


def _json_value(v: Any, decimals: int = 2) -> Any:
    """A cell value as plain JSON: text as it is (escaped once, when embedded), finite
    numbers rounded, anything missing or not finite as null."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return round(f, decimals) if np.isfinite(f) else None


def _feature_collection(gdf: gpd.GeoDataFrame, props: list[str], decimals: dict[str, int]) -> dict:
    feats = []
    geoms = gdf.geometry.to_numpy()
    cols = {p: gdf[p].to_numpy() for p in props}
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            continue
        pr: dict[str, Any] = {}
        for p in props:
            pr[p] = _json_value(cols[p][i], decimals.get(p, 2))
        feats.append({"type": "Feature", "properties": pr, "geometry": shapely.geometry.mapping(g)})
    return {"type": "FeatureCollection", "features": feats}


def _streets(results) -> dict | None:
    """The walking network as one light MultiLineString in EPSG:4326 (or None)."""
    net = getattr(results, "network", None)
    if net is None or not hasattr(net, "indptr"):
        return None
    indptr, indices = np.asarray(net.indptr), np.asarray(net.indices)
    u = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    keep = u < indices
    u, v = u[keep], indices[keep].astype(np.int64)
    if len(u) == 0:
        return None
    x, y = np.asarray(net.x), np.asarray(net.y)
    coords = np.stack([np.column_stack([x[u], y[u]]), np.column_stack([x[v], y[v]])], axis=1)
    lines = shapely.linestrings(coords)
    parts = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(lines)))
    merged = shapely.multilinestrings(shapely.simplify(parts, 3.0, preserve_topology=False))
    geo = gpd.GeoSeries([merged], crs=getattr(net, "crs", results.crs)).to_crs("EPSG:4326")
    g = _round_geoms(geo.to_numpy(), 5)[0]
    return {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(g)}


# --------------------------------------------------------------------------------------
# Page text: every string the page shows, in one place (templates filled with str.format;
# data only ever fills a template, it never is one)
# --------------------------------------------------------------------------------------

#: the page's language (``<html lang>``, number formatting in tooltips)
LOCALE = "en"

TEXT: dict[str, str] = {
    "page_title": "Care Blocks: access to care services in {study}",
    "default_study": "study",
    "subtitle": "{date} · threshold {t} min · careblocks",
    "howto_summary": "How to read this map",
    "howto_areas_h3": ("hexagonal cells (H3 resolution {res}) that group the homes inside them; "
                       "travel times are averaged over the people in each cell"),
    "howto_areas_given": "the population areas of the input (census units or grid cells)",
    "howto_trip_transit": "a short trip",
    "howto_trip_walk": "a short walk",
    "howto_main": ("Coloured areas are {areas}. Blue means the nearest service is {trip}, red a long "
                   "one; grey means no route was found. Use the layer list (top right) to switch "
                   "between services, the share of people with all {n} services within {t} "
                   "minutes{need} and the proposed Care Blocks. Click a marker for details."),
    "howto_need": ", the care-need index",
    "howto_transit": ("Travel times are the faster of walking and public transport (the p{pct} over "
                      "departures {start}–{end})."),
    "howto_speed": "Walking speed {speed} km/h.",
    "base_layer": "OpenStreetMap",
    "osm_attribution": "OpenStreetMap",
    "osm_attribution_suffix": " contributors",
    "streets_layer": "Streets (walking network)",
    "mode_best": "Travel",
    "mode_transit": "Transit",
    "mode_walk": "Walking",
    "time_layer": "{mode} time to {service}{none}",
    "none_found": " (none found)",
    "all_layer": "All {n} services within {t} min",
    "need_layer": "Care-need index",
    "service_layer": "{label} ({n})",
    "unnamed": "{label} (unnamed)",
    "candidates_layer": "Candidate sites ({n})",
    "sites_layer": "Proposed Care Blocks ({n}) and walking catchments",
    "site_title": "Care Block {order}",
    "site_title_named": "Care Block {order}: {name}",
    "after_layer": "After the Care Blocks: {what} within {t} min",
    "after_what_all": "all {n} services",
    "tip_people": "people",
    "tip_minutes": "minutes to nearest",
    "tip_share_all": "share with all services",
    "tip_need": "care-need index",
    "tip_share_today": "share with all services today",
    "tip_share_after": "share with all, with the Care Blocks",
    "row_service": "service",
    "row_source": "source",
    "row_category": "category",
    "row_snap": "distance to street (m)",
    "legend_time": "Travel time (minutes)",
    "legend_unreachable": "not reachable",
    "legend_all": "People with all {n} services within {t} min",
    "legend_share_low": "0%",
    "legend_share_high": "100%",
    "legend_need": "Care-need index",
    "legend_need_low": "low",
    "legend_need_high": "high",
    "legend_services": "Existing services",
    "no_value": "–",
}


def _t(key: str, **values: Any) -> str:
    return TEXT[key].format(**values)


# --------------------------------------------------------------------------------------
# The map's data: one JSON document
# --------------------------------------------------------------------------------------


def _fmt_cell(v: Any) -> str:
    """A popup value as text: floats rounded for people (3 significant digits under 10)."""
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


def _rows(pairs: list[tuple[str, Any]]) -> list[list[str]]:
    return [[str(k), _fmt_cell(v)] for k, v in pairs]


def _facility_counts(results) -> dict[str, int]:
    svc = results.services
    if svc is None or not len(svc) or "service" not in svc.columns:
        return {}
    return {str(k): int(v) for k, v in svc["service"].astype(str).value_counts().items()}


def _in_wgs84(gdf: gpd.GeoDataFrame, crs) -> gpd.GeoDataFrame:
    return (gdf.set_crs(crs) if gdf.crs is None else gdf).to_crs("EPSG:4326")


def _bounds(results) -> list[list[float]]:
    # open on where people live (the study area can be much larger: the network's extent)
    o = results.origins
    extent = (o.set_crs(results.crs) if o.crs is None else o) if len(o) else None
    if extent is None:
        extent = gpd.GeoSeries([results.area], crs=results.crs)
    x0, y0, x1, y1 = (float(v) for v in extent.to_crs("EPSG:4326").total_bounds)
    return [[round(y0, 6), round(x0, 6)], [round(y1, 6), round(x1, 6)]]


_SKIP_SITE_COLS = {"geometry", "node", "snap_m", "rationale"}


def _site_rows(row: pd.Series) -> list[list[str]]:
    rows = []
    for k, v in row.items():
        if k in _SKIP_SITE_COLS:
            continue
        if isinstance(v, (np.integer, np.floating)):
            v = v.item()
        if v is None or v is pd.NA or isinstance(v, shapely.Geometry):
            continue
        if isinstance(v, float) and not np.isfinite(v):
            continue
        rows.append((str(k), v))
    return _rows(rows)


def _service_overlays(results, services: list[str]) -> list[dict]:
    svc = results.services
    if svc is None or not len(svc) or "service" not in svc.columns:
        return []
    svc = _in_wgs84(svc, results.crs)
    out = []
    for s in services:
        sub = svc[svc["service"].astype(str) == s]
        if not len(sub):
            continue
        label = styles.service_label(results.config, s)
        points = []
        for (_, row), g in zip(sub.iterrows(), sub.geometry.representative_point(), strict=False):
            if g is None or g.is_empty:
                continue
            name = row.get("name")
            name = name if isinstance(name, str) and name else _t("unnamed", label=label)
            source = row.get("source", "")
            category = row.get("category", "")
            points.append({
                "lat": round(float(g.y), 6), "lng": round(float(g.x), 6), "title": name,
                "rows": _rows([
                    (_t("row_service"), label),
                    (_t("row_source"), "" if source is None or source is pd.NA else source),
                    (_t("row_category"), "" if category is None or category is pd.NA else category),
                    (_t("row_snap"), float(pd.to_numeric(row.get("snap_m", np.nan), errors="coerce"))),
                ]),
            })
        out.append({
            "kind": "services", "name": _t("service_layer", label=label, n=len(sub)), "show": True,
            "color": styles.service_color(s, services), "glyph": styles.service_glyph(s, services),
            "cluster": {"maxClusterRadius": 40, "disableClusteringAtZoom": 16},
            "points": points,
        })
    return out


def _candidate_overlay(results) -> dict | None:
    cand = results.candidates
    if cand is None or not len(cand) or "score" not in cand:
        return None
    cand = cand.set_crs(results.crs) if cand.crs is None else cand
    cand = cand.sort_values("score", ascending=False, kind="stable").head(MAX_CANDIDATES)
    cand = cand.to_crs("EPSG:4326")
    cand = cand.set_geometry(_round_geoms(cand.geometry.representative_point().to_numpy(), 6))
    sc = pd.to_numeric(cand["score"], errors="coerce").astype(float)
    lo, hi = float(sc.min()), float(sc.max())
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        frac = (sc - lo) / (hi - lo)
    else:  # one candidate, or all scoring the same: every circle mid-sized
        frac = pd.Series(0.5, index=cand.index)
    cand = cand.assign(radius=(3.0 + 9.0 * frac.fillna(0.1)).round(1))
    fields = [c for c in ("candidate_id", "name", "kind", "score", "rank") if c in cand]
    return {
        "kind": "candidates", "name": _t("candidates_layer", n=len(cand)), "show": False,
        "geojson": _feature_collection(cand, [*fields, "radius"], {"score": 3, "radius": 1}),
        "fields": [[f, f, 3] for f in fields],
    }


def _sites_overlay(results) -> dict | None:
    sel = results.selected
    if sel is None or not len(sel):
        return None
    catchments = None
    cfields: list[list] = []
    if results.catchments is not None and len(results.catchments):
        c = results.catchments
        c = c.set_crs(results.crs) if c.crs is None else c
        c = c.set_geometry(c.geometry.simplify(5.0)).to_crs("EPSG:4326")
        c = c.set_geometry(_round_geoms(c.geometry.to_numpy(), 6))
        props = [p for p in ("candidate_id", "population") if p in c]
        catchments = _feature_collection(c, props, {"population": 0})
        cfields = [[p, p, 0] for p in props]
    s2 = _in_wgs84(sel, results.crs)
    if "order" in s2:
        s2 = s2.sort_values("order", kind="stable")
    sites = []
    for i, ((_, row), g) in enumerate(zip(s2.iterrows(), s2.geometry.representative_point(), strict=False)):
        order_no = int(row["order"]) if "order" in row and pd.notna(row["order"]) else i + 1
        name = row.get("name")
        title = (_t("site_title_named", order=order_no, name=name) if isinstance(name, str) and name
                 else _t("site_title", order=order_no))
        rationale = row.get("rationale")
        sites.append({
            "lat": round(float(g.y), 6), "lng": round(float(g.x), 6), "order": order_no,
            "title": title, "rationale": rationale if isinstance(rationale, str) else None,
            "rows": _site_rows(row),
        })
    return {"kind": "sites", "name": _t("sites_layer", n=len(sel)), "show": True,
            "catchments": catchments, "catchment_fields": cfields, "sites": sites}


def _page_text(results, services: list[str], *, title: str | None, has_need: bool,
               h3_res: int | None) -> dict:
    cfg = results.config
    study = getattr(getattr(cfg, "study", None), "name", "") or _t("default_study")
    t = threshold_tag(results.threshold_min)
    speed = getattr(getattr(cfg, "walk", None), "speed_kmh", None)
    transit = any(c.startswith(("best_min_", "transit_min_")) for c in results.origins.columns)
    areas = (_t("howto_areas_h3", res=h3_res) if h3_res is not None else _t("howto_areas_given"))
    howto = [_t("howto_main", areas=areas,
                trip=_t("howto_trip_transit") if transit else _t("howto_trip_walk"),
                n=len(services), t=t, need=_t("howto_need") if has_need else "")]
    tr = getattr(cfg, "transit", None)
    if transit and tr is not None:
        howto.append(_t("howto_transit", pct=tr.report_percentile, start=tr.window_start,
                        end=tr.window_end))
    if speed:
        howto.append(_t("howto_speed", speed=f"{speed:g}"))
    return {
        "title": title or _t("page_title", study=study),
        "subtitle": _t("subtitle", date=run_date(results.metadata), t=t),
        "howto_summary": _t("howto_summary"),
        "howto": howto,
    }


def _legend(results, services: list[str], *, has_need: bool, has_all: bool) -> dict:
    t = threshold_tag(results.threshold_min)
    counts = _facility_counts(results)
    legend: dict[str, Any] = {
        "time_title": _t("legend_time"),
        "time": [[c, lbl] for c, lbl in zip(styles.TIME_COLORS, styles.time_labels(results.threshold_min),
                                            strict=False)],
        "unreachable": [styles.UNREACHABLE_COLOR, _t("legend_unreachable")],
        "ramps": [],
        "services_title": _t("legend_services"),
        "services": [
            {"color": styles.service_color(s, services), "glyph": styles.service_glyph(s, services),
             "label": styles.service_label(results.config, s)
             + (_t("none_found") if counts.get(s, 0) == 0 else "")}
            for s in services
        ],
    }
    if has_all:
        legend["ramps"].append({"title": _t("legend_all", n=len(services), t=t),
                                "colors": list(_ALL_COLORS),
                                "low": _t("legend_share_low"), "high": _t("legend_share_high")})
    if has_need:
        legend["ramps"].append({"title": _t("legend_need"), "colors": list(_NEED_COLORS),
                                "low": _t("legend_need_low"), "high": _t("legend_need_high")})
    return legend


def build_map_data(results, *, h3_resolution: int | None = None, title: str | None = None) -> dict:
    """Everything the map shows, as one JSON-able document (no markup in it).

    ``overlays`` lists the layers in the order of the layer list; each has a ``kind``
    (``streets``, ``areas``, ``services``, ``candidates``, ``sites``) that ``map.js`` knows
    how to draw, a ``name`` and whether it is shown when the page opens.
    """
    services = services_in(results)
    cfg = results.config
    areas = map_areas(results, h3_resolution=h3_resolution)
    t = threshold_tag(results.threshold_min)
    counts = _facility_counts(results)
    overlays: list[dict] = []

    streets = _streets(results)
    if streets is not None:
        overlays.append({"kind": "streets", "name": _t("streets_layer"), "show": True,
                         "geojson": streets})

    time_layers = [(s, c) for s in services if (c := time_column(areas.columns, s))]
    # open on the first service that has a facility in reach somewhere (not an all-grey map)
    shown = next((s for s, c in time_layers if areas[c].notna().any()), None)
    for s, col in time_layers:
        mode = ("mode_best" if col.startswith("best_")
                else "mode_transit" if col.startswith("transit_") else "mode_walk")
        overlays.append({
            "kind": "areas", "scale": "time", "prop": col, "show": s == shown,
            "name": _t("time_layer", mode=_t(mode), service=styles.service_label(cfg, s).lower(),
                       none=_t("none_found") if counts.get(s, 0) == 0 else ""),
            "fields": [["population", _t("tip_people"), 0], [col, _t("tip_minutes"), 1]],
        })
    has_all = "all_within_share" in areas and len(services) > 1
    if has_all:
        overlays.append({
            "kind": "areas", "scale": "share", "prop": "all_within_share", "show": False,
            "name": _t("all_layer", n=len(services), t=t),
            "fields": [["population", _t("tip_people"), 0], ["all_within_share", _t("tip_share_all"), 2]],
        })
    has_need = "care_need_index" in areas and bool(areas["care_need_index"].notna().any())
    need_range = [0.0, 1.0]
    if has_need:
        v = areas["care_need_index"].dropna()
        lo, hi = float(v.min()), float(v.max())
        need_range = [lo, hi if hi > lo else lo + 1.0]
        overlays.append({
            "kind": "areas", "scale": "need", "prop": "care_need_index", "show": False,
            "name": _t("need_layer"),
            "fields": [["population", _t("tip_people"), 0], ["care_need_index", _t("tip_need"), 3]],
        })
    overlays.extend(_service_overlays(results, services))
    cand = _candidate_overlay(results)
    if cand is not None:
        overlays.append(cand)
    sites = _sites_overlay(results)
    if sites is not None:
        overlays.append(sites)
    if "all_within_share_after" in areas:
        what = (_t("after_what_all", n=len(services)) if len(services) > 1
                else styles.service_label(cfg, services[0]).lower())
        overlays.append({
            "kind": "areas", "scale": "share", "prop": "all_within_share_after", "show": False,
            "name": _t("after_layer", what=what, t=t),
            "fields": [["population", _t("tip_people"), 0],
                       ["all_within_share", _t("tip_share_today"), 2],
                       ["all_within_share_after", _t("tip_share_after"), 2]],
        })

    area_props = ["area_id", "population"] + [
        c for c in areas.columns
        if c not in ("area_id", "population", "geometry")
    ]
    decimals = {"population": 0, "all_within_share": 2, "all_within_share_after": 2,
                "care_need_index": 3}
    return {
        "format": "careblocks-map/1",
        "locale": LOCALE,
        "text": {k: TEXT[k] for k in ("base_layer", "osm_attribution", "osm_attribution_suffix",
                                      "no_value")},
        "page": _page_text(results, services, title=title, has_need=has_need,
                           h3_res=areas.attrs.get("h3_resolution")),
        "view": {"bounds": _bounds(results)},
        "scales": {
            "unreachable": styles.UNREACHABLE_COLOR,
            "time": {"breaks": styles.time_breaks(results.threshold_min),
                     "colors": list(styles.TIME_COLORS)},
            "share": {"min": 0.0, "max": 1.0, "colors": list(_ALL_COLORS)},
            "need": {"min": need_range[0], "max": need_range[1], "colors": list(_NEED_COLORS)},
        },
        "areas": _feature_collection(areas, area_props, {**{c: 1 for c in areas.columns}, **decimals}),
        "overlays": overlays,
        "legend": _legend(results, services, has_need=has_need, has_all=has_all),
    }


# --------------------------------------------------------------------------------------
# The page: fixed shell + one JSON block
# --------------------------------------------------------------------------------------

_JSON_ESCAPES = {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e", "\u2028": "\\u2028",
                 "\u2029": "\\u2029"}


def json_for_html(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script type="application/json">`` block.

    ``<``, ``>`` and ``&`` are written as ``\\u003c`` etc. (so neither ``</script>`` nor ``<!--``
    can appear), as are U+2028/U+2029; NaN and infinities are refused (write null).
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch, rep in _JSON_ESCAPES.items():
        text = text.replace(ch, rep)
    return text


_SCRIPTS = ("leaflet.js", "leaflet.markercluster.js")
_STYLES = ("leaflet.css", "MarkerCluster.css", "map.css")


def _asset(name: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    low = text.lower()
    if "</script" in low or "</style" in low or "<!--" in low:
        raise RuntimeError(f"asset {name} holds a sequence that would end its <script>/<style> block")
    return text


def render_map(data: dict) -> str:
    """The HTML page for a map document from :func:`build_map_data`.

    The page is the fixed shell (assets only) with the data as one JSON block: no template
    engine, no data text outside that block.
    """
    styles_css = "\n".join(_asset(n) for n in _STYLES)
    scripts = "".join(f"<script>{_asset(n)}</script>\n" for n in _SCRIPTS)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>careblocks</title>\n"
        f"<style>{styles_css}</style>\n{scripts}</head>\n<body>\n"
        '<div id="cb-map"></div>\n'
        f'<script type="application/json" id="careblocks-data">{json_for_html(data)}</script>\n'
        f"<script>{_asset('map.js')}</script>\n</body>\n</html>\n"
    )


def write_map(results, path: str | os.PathLike[str], *, h3_resolution: int | None = None,
              title: str | None = None) -> Path:
    """Write the HTML map of a run, atomically, and return its path.

    Parameters
    ----------
    results
        A :class:`careblocks.results.Results`; absent parts (candidates, sites, care-need
        index) are left out of the map.
    path
        The ``.html`` file.
    h3_resolution
        H3 resolution for point origins; default: chosen from the spacing of the points (7..10).
    title
        Title shown on the map; default names the study.
    """
    data = build_map_data(results, h3_resolution=h3_resolution, title=title)
    return write_text_atomic(path, render_map(data))
