"""The HTML map for a council meeting: one self-contained file that opens with no server.

One rendering path, and no template engine: the page is a fixed shell (Leaflet,
Leaflet.markercluster and ``map.js`` from ``outputs/assets``, BSD-2 and MIT licences) that
holds no data, followed by ONE ``<script type="application/json">`` block that carries every
piece of data (GeoJSON layers, names, rationale, legend and page text) as JSON, with ``<``,
``>``, ``&`` and U+2028/U+2029 escaped (:func:`json_for_html`). ``map.js`` parses that block and
builds the layers, tooltips, popups, legend and layer list with DOM calls and ``textContent``,
never ``innerHTML`` of data. A facility called ``{{7*7}}`` or ``</script>`` is shown as written.

Every string of the page lives in :data:`TEXT` as an English message id, translated through
the gettext catalogues (:mod:`careblocks.i18n`) into ``outputs.language`` and filled with
``str.format`` from values, never the reverse; ``<html lang>`` is that language.

Origins are drawn as areas: census polygons as given, or, for point origins, H3 cells that
aggregate the points (population summed, travel times population-weighted). The default base
is drawn from the data and needs no network: the walking network's streets and the study
area's and districts' outlines, simplified, in the same JSON block; OpenStreetMap tiles are an
optional base layer (online). The map opens fitted to where people live and the proposed
sites, in the part of the window no panel covers. Proposed sites are never clustered and are
drawn above every other marker (their own pane); every symbol drawn has a legend row.
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

from careblocks.columns import service_of, services_within
from careblocks.i18n import (
    LANGUAGES,
    N_,
    Language,
    category_label,
    component_label,
    language,
    lower_first,
)
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
        feats.append({"type": "Feature", "properties": pr, "geometry": _geometry_json(g)})
    return {"type": "FeatureCollection", "features": feats}


def _split(coords: list, counts: np.ndarray) -> list:
    ends = np.cumsum(counts).tolist()
    return [coords[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def _geometry_json(g: Any) -> dict:
    """``shapely.geometry.mapping(g)`` as the same JSON (lists for tuples), built from one
    coordinate array per geometry rather than a Python object per vertex (lines and polygons;
    other geometries through ``mapping``)."""
    t = g.geom_type
    if g.is_empty or shapely.has_z(g) or t not in ("LineString", "MultiLineString", "Polygon", "MultiPolygon"):
        return shapely.geometry.mapping(g)
    if t == "LineString":
        return {"type": t, "coordinates": shapely.get_coordinates(g).tolist()}
    if t == "MultiLineString":
        parts = shapely.get_parts(g)
        return {"type": t, "coordinates": _split(shapely.get_coordinates(parts).tolist(),
                                                 shapely.get_num_coordinates(parts))}
    polys = [g] if t == "Polygon" else list(shapely.get_parts(g))
    out = []
    for poly in polys:
        rings = shapely.get_rings(poly)  # the exterior, then the holes
        out.append(_split(shapely.get_coordinates(rings).tolist(), shapely.get_num_coordinates(rings)))
    return {"type": t, "coordinates": out[0] if t == "Polygon" else out}


def _streets(results) -> dict | None:
    """The walking network as one light MultiLineString in EPSG:4326 (or None): every edge
    once, merged into lines and simplified to 3 m, coordinates to 5 decimals (about 1 m).
    Cached by the digest of the arrays it is drawn from (:mod:`careblocks.outputs._cached`)."""
    net = getattr(results, "network", None)
    if net is None or not hasattr(net, "indptr"):
        return None
    indptr, indices = np.asarray(net.indptr), np.asarray(net.indices)
    x, y = np.asarray(net.x), np.asarray(net.y)
    crs = getattr(net, "crs", results.crs)
    if not (np.arange(len(indptr) - 1).repeat(np.diff(indptr)) < indices).any():
        return None

    def make() -> bytes:
        return json.dumps(_streets_feature(indptr, indices, x, y, crs)).encode("utf-8")

    from careblocks.outputs._cached import cached_bytes, code_version

    blob = cached_bytes(getattr(results, "config", None), "map_streets",
                        {"indptr": indptr, "indices": indices, "x": x, "y": y, "crs": str(crs)}, make,
                        code=code_version(__name__, libraries=("shapely", "pyproj", "numpy")))
    return json.loads(blob)


def _streets_feature(indptr, indices, x, y, crs: Any) -> dict:
    u = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    keep = u < indices
    u, v = u[keep], indices[keep].astype(np.int64)
    coords = np.stack([np.column_stack([x[u], y[u]]), np.column_stack([x[v], y[v]])], axis=1)
    lines = shapely.linestrings(coords)
    parts = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(lines)))
    merged = shapely.multilinestrings(shapely.simplify(parts, 3.0, preserve_topology=False))
    geo = gpd.GeoSeries([merged], crs=crs).to_crs("EPSG:4326")
    g = _round_geoms(geo.to_numpy(), 5)[0]
    return {"type": "Feature", "properties": {}, "geometry": _geometry_json(g)}


def _outline(geoms: gpd.GeoSeries) -> dict | None:
    """Polygon outlines as one MultiLineString in EPSG:4326, simplified to 5 m."""
    lines = shapely.get_parts(geoms.boundary.simplify(5.0).to_crs("EPSG:4326").to_numpy())
    lines = lines[~shapely.is_empty(lines)] if len(lines) else lines
    if not len(lines):
        return None
    g = shapely.multilinestrings(shapely.get_parts(_round_geoms(lines, 5)))
    return {"type": "Feature", "properties": {}, "geometry": _geometry_json(g)}


def _base(results) -> dict:
    """The light base drawn from the data (needs no network): streets, the study area's
    outline and the districts' outlines (each None when absent)."""
    area = getattr(results, "area", None)
    area_line = None
    if area is not None and not area.is_empty and area.geom_type in ("Polygon", "MultiPolygon"):
        area_line = _outline(gpd.GeoSeries([area], crs=results.crs))
    districts = None
    d = getattr(results, "districts", None)
    if d is not None and len(d):
        d = d.set_crs(results.crs) if d.crs is None else d
        d = d[d.geom_type.isin(["Polygon", "MultiPolygon"])]
        districts = _outline(d.geometry) if len(d) else None
    return {"streets": _streets(results), "area": area_line, "districts": districts}


# --------------------------------------------------------------------------------------
# Page text: every string the page shows, in one place (templates filled with str.format;
# data only ever fills a template, it never is one)
# --------------------------------------------------------------------------------------

#: the language of a map whose config names none (``<html lang>``, numbers in tooltips)
LOCALE = "en"

#: every string the page shows, in English (the message ids of the catalogues); a page is
#: written in ``outputs.language`` through :func:`_t`. Values fill the templates, never the reverse.
TEXT: dict[str, str] = {
    "page_title": N_("Care Blocks: access to care services in {study}"),
    "default_study": N_("the study area"),
    "subtitle": N_("{date} · threshold {t} · careblocks"),
    "howto_summary": N_("How to read this map"),
    "howto_areas_h3": N_("hexagonal cells (H3 resolution {res}) that group the homes inside them; "
                         "travel times are averaged over the people in each cell"),
    "howto_areas_given": N_("the population areas of the input (census units or grid cells)"),
    "howto_trip_transit": N_("a short trip"),
    "howto_trip_walk": N_("a short walk"),
    "howto_main": N_("Coloured areas are {areas}. Blue means the nearest service is {trip}, red a "
                     "long one; grey means no route was found. Use the layer list (top right) to "
                     "switch between services, the share of people with all {n} services within "
                     "{t}{need} and the proposed Care Blocks. Click a marker for details."),
    "howto_need": N_(", the care-need index"),
    "howto_transit": N_("Travel times are the faster of walking and public transport (the p{pct} over "
                        "departures {start}–{end})."),
    "howto_speed": N_("Walking speed {speed} km/h."),
    "base_light": N_("Light base: streets and study area (offline)"),
    "base_osm": N_("OpenStreetMap tiles (online)"),
    "osm_attribution": N_("OpenStreetMap contributors"),
    "mode_best": N_("Travel time to {service}{none}"),
    "mode_transit": N_("Transit time to {service}{none}"),
    "mode_walk": N_("Walking time to {service}{none}"),
    "none_found": N_(" (none found)"),
    "all_layer": N_("All {n} services within {t}"),
    "need_layer": N_("Care-need index"),
    "service_layer": N_("{label} ({n})"),
    "unnamed": N_("{label} (unnamed)"),
    "candidates_layer": N_("Candidate sites ({n})"),
    "sites_layer": N_("Proposed Care Blocks ({n}) and walking catchments"),
    "site_title": N_("Care Block {order}"),
    "site_title_named": N_("Care Block {order}: {name}"),
    "site_title_fixed": N_("Care Block {order}, which stays"),
    "site_title_fixed_named": N_("Care Block {order}, which stays: {name}"),
    "after_layer": N_("After the Care Blocks: {what} within {t}"),
    "after_what_all": N_("all {n} services"),
    "tip_people": N_("people"),
    "tip_minutes": N_("minutes to the nearest"),
    "tip_share_all": N_("share with all services"),
    "tip_need": N_("care-need index"),
    "tip_share_today": N_("share with all services today"),
    "tip_share_after": N_("share with all, with the Care Blocks"),
    "row_service": N_("service"),
    "row_source": N_("source"),
    "row_category": N_("type"),
    "row_snap": N_("distance to the street (m)"),
    "row_name": N_("name"),
    "row_score": N_("score (0-1)"),
    "row_rank": N_("rank"),
    "row_reach": N_("people within {t}"),
    "row_new": N_("people brought within {t} by this block"),
    "row_hours": N_("caregiver hours returned a week"),
    "legend_title": N_("Legend"),
    "legend_time": N_("Travel time"),
    "legend_unreachable": N_("not reachable"),
    "legend_all": N_("People with all {n} services within {t}"),
    "legend_need": N_("Care-need index"),
    "legend_need_low": N_("low"),
    "legend_need_high": N_("high"),
    "legend_services": N_("Existing services"),
    "legend_cluster": N_("several services of one type close together (their number; click to "
                         "zoom in)"),
    "legend_sites": N_("Proposed Care Blocks"),
    "legend_site": N_("proposed Care Block, in the order chosen"),
    "legend_site_fixed": N_("Care Block that stays, counted before the new ones"),
    "legend_catchment": N_("within {t} on foot of a proposed Care Block; darker where two or "
                           "more catchments overlap"),
    "legend_candidate": N_("candidate site (larger: higher score)"),
    "legend_base": N_("Base"),
    "legend_streets": N_("streets (walking network)"),
    "legend_area": N_("study area"),
    "legend_districts": N_("districts"),
    "no_value": "–",  # not a word: the same in every language
}


def _t(L: Language, key: str, **values: Any) -> str:
    """A page text in the map's language, filled with values."""
    return L._(TEXT[key]).format(**values)


def _lang(results) -> Language:
    return language(getattr(getattr(results.config, "outputs", None), "language", None) or LOCALE)


# --------------------------------------------------------------------------------------
# The map's data: one JSON document
# --------------------------------------------------------------------------------------


def _fmt_cell(v: Any, L: Language) -> str:
    """A popup value as text in the map's language: counts rounded for people, measures to
    three significant digits (:meth:`Language.smart`)."""
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        v = v.item()
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return L.integer(v)
    if isinstance(v, float):
        return L.smart(v) if np.isfinite(v) else _t(L, "no_value")
    return str(v)


def _rows(pairs: list[tuple[str, Any]], L: Language) -> list[list[str]]:
    return [[str(k), _fmt_cell(v, L)] for k, v in pairs]


def _facility_counts(results) -> dict[str, int]:
    svc = results.services
    if svc is None or not len(svc) or "service" not in svc.columns:
        return {}
    return {str(k): int(v) for k, v in svc["service"].astype(str).value_counts().items()}


def _in_wgs84(gdf: gpd.GeoDataFrame, crs) -> gpd.GeoDataFrame:
    return (gdf.set_crs(crs) if gdf.crs is None else gdf).to_crs("EPSG:4326")


def _bounds(results) -> list[list[float]]:
    """South-west and north-east corners of what the map opens on: where people live and the
    proposed sites (the network's extent can be much larger)."""
    parts = []
    for gdf in (results.origins, results.selected):
        if gdf is not None and len(gdf):
            parts.append(_in_wgs84(gdf, results.crs).total_bounds)
    if not parts:
        parts.append(gpd.GeoSeries([results.area], crs=results.crs).to_crs("EPSG:4326").total_bounds)
    b = np.vstack(parts)
    x0, y0 = (float(v) for v in b[:, :2].min(axis=0))
    x1, y1 = (float(v) for v in b[:, 2:].max(axis=0))
    return [[round(y0, 6), round(x0, 6)], [round(y1, 6), round(x1, 6)]]


def _num(row: pd.Series, col: str) -> float | None:
    v = pd.to_numeric(pd.Series([row.get(col)]), errors="coerce").iloc[0]
    return float(v) if pd.notna(v) and np.isfinite(v) else None


def _site_rows(row: pd.Series, results, L: Language) -> list[list[str]]:
    """A proposed site's figures by their names: what it adds (marginal, adds up over the
    sites) and its score components; exact values stay in the GeoPackage."""
    t = L.minutes(results.threshold_min)
    rows: list[list[str]] = []
    cat = category_label(row.get("category"), L)
    if cat:
        rows.append([_t(L, "row_category"), cat])
    counts = [("new_population_covered", _t(L, "row_new", t=t)),
              ("population_covered", _t(L, "row_reach", t=t))]
    for col, label in counts:
        v = _num(row, col)
        if v is not None:
            rows.append([label, L.rounded(v)])
    hours = _num(row, "new_hours_returned_week")
    hours = hours if hours is not None else _num(row, "hours_returned_week")
    if hours is not None:
        rows.append([_t(L, "row_hours"), L.rounded(hours)])
    lab = lambda s: styles.service_label(results.config, s)  # noqa: E731
    for col in ("demand_covered", "gap_closed", "colocated_services", "score"):
        v = _num(row, col)
        name = component_label(col, L, lab)
        if v is not None and name:
            rows.append([name, L.number(v, 2) if col == "score" else L.smart(v)])
    return rows


def _service_overlays(results, services: list[str], L: Language) -> list[dict]:
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
            name = name if isinstance(name, str) and name else _t(L, "unnamed", label=label)
            source = row.get("source", "")
            category = row.get("category", "")
            points.append({
                "lat": round(float(g.y), 6), "lng": round(float(g.x), 6), "title": name,
                "rows": _rows([
                    (_t(L, "row_service"), label),
                    (_t(L, "row_source"), "" if source is None or source is pd.NA else source),
                    (_t(L, "row_category"), "" if category is None or category is pd.NA else category),
                    (_t(L, "row_snap"), float(pd.to_numeric(row.get("snap_m", np.nan), errors="coerce"))),
                ], L),
            })
        out.append({
            "kind": "services", "name": _t(L, "service_layer", label=label, n=L.integer(len(sub))),
            "show": True, "color": styles.service_color(s, services),
            "glyph": styles.service_glyph(s, services),
            "cluster": {"maxClusterRadius": 40, "disableClusteringAtZoom": 16},
            "points": points,
        })
    return out


def _site_name(row: Any, L: Language) -> str:
    name = row.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    cat = category_label(row.get("category"), L)
    return cat[:1].upper() + cat[1:]


def _candidate_overlay(results, L: Language) -> dict | None:
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
    # names and building types people recognise, never ids
    cand = cand.assign(
        radius=(3.0 + 9.0 * frac.fillna(0.1)).round(1),
        name=[_site_name({"name": n, "category": c}, L) for n, c in zip(
            cand["name"] if "name" in cand else [None] * len(cand),
            cand["category"] if "category" in cand else [None] * len(cand), strict=True)],
        type=[category_label(c, L) for c in (cand["category"] if "category" in cand else [None] * len(cand))],
    )
    fields = [["name", _t(L, "row_name"), None], ["type", _t(L, "row_category"), None],
              ["score", _t(L, "row_score"), 2]]
    if "rank" in cand:
        fields.append(["rank", _t(L, "row_rank"), 0])
    props = [f[0] for f in fields]
    return {
        "kind": "candidates", "name": _t(L, "candidates_layer", n=L.integer(len(cand))), "show": False,
        "geojson": _feature_collection(cand, [*props, "radius"], {"score": 3, "radius": 1}),
        "fields": fields,
    }


def _sites_overlay(results, L: Language) -> dict | None:
    sel = results.selected
    if sel is None or not len(sel):
        return None
    s2 = _in_wgs84(sel, results.crs)
    if "order" in s2:
        s2 = s2.sort_values("order", kind="stable")
    sites = []
    titles: dict[str, str] = {}
    for i, ((_, row), g) in enumerate(zip(s2.iterrows(), s2.geometry.representative_point(), strict=False)):
        order_no = int(row["order"]) if "order" in row and pd.notna(row["order"]) else i + 1
        name = _site_name(row, L)
        stays = row.get("fixed", False)
        stays = bool(stays) if pd.notna(stays) else False
        key = "site_title_fixed" if stays else "site_title"
        title = (_t(L, key + "_named", order=order_no, name=name) if name
                 else _t(L, key, order=order_no))
        if "candidate_id" in row:
            titles[str(row["candidate_id"])] = title
        rationale = row.get("rationale")
        sites.append({
            "lat": round(float(g.y), 6), "lng": round(float(g.x), 6), "order": order_no, "fixed": stays,
            "title": title, "rationale": rationale if isinstance(rationale, str) else None,
            "rows": _site_rows(row, results, L),
        })
    catchments = None
    cfields: list[list] = []
    if results.catchments is not None and len(results.catchments):
        c = results.catchments
        c = c.set_crs(results.crs) if c.crs is None else c
        c = c.set_geometry(c.geometry.simplify(5.0)).to_crs("EPSG:4326")
        c = c.set_geometry(_round_geoms(c.geometry.to_numpy(), 6))
        ids = c["candidate_id"].astype(str) if "candidate_id" in c else pd.Series("", index=c.index)
        c = c.assign(title=[titles.get(i, "") for i in ids])
        props = ["title"] + [p for p in ("population",) if p in c]
        catchments = _feature_collection(c, props, {"population": 0})
        cfields = [["title", _t(L, "row_name"), None]]
        if "population" in c:
            cfields.append(["population", _t(L, "tip_people"), 0])
    return {"kind": "sites", "name": _t(L, "sites_layer", n=L.integer(len(sel))), "show": True,
            "catchments": catchments, "catchment_fields": cfields, "sites": sites}


def _page_text(results, services: list[str], L: Language, *, title: str | None, has_need: bool,
               h3_res: int | None) -> dict:
    cfg = results.config
    study = getattr(getattr(cfg, "study", None), "label", "") or _t(L, "default_study")
    t = L.minutes(results.threshold_min)
    speed = getattr(getattr(cfg, "walk", None), "speed_kmh", None)
    transit = any(c.startswith(("best_min_", "transit_min_")) for c in results.origins.columns)
    areas = (_t(L, "howto_areas_h3", res=h3_res) if h3_res is not None else _t(L, "howto_areas_given"))
    howto = [_t(L, "howto_main", areas=areas,
                trip=_t(L, "howto_trip_transit") if transit else _t(L, "howto_trip_walk"),
                n=len(services), t=t, need=_t(L, "howto_need") if has_need else "")]
    tr = getattr(cfg, "transit", None)
    if transit and tr is not None:
        howto.append(_t(L, "howto_transit", pct=tr.report_percentile, start=tr.window_start,
                        end=tr.window_end))
    if speed:
        howto.append(_t(L, "howto_speed", speed=L.number(speed, 0 if float(speed).is_integer() else 1)))
    return {
        "title": title or _t(L, "page_title", study=study),
        "subtitle": _t(L, "subtitle", date=L.date(run_date(results.metadata)), t=t),
        "howto_summary": _t(L, "howto_summary"),
        "howto": howto,
    }


def _legend(results, services: list[str], L: Language, *, has_need: bool, has_all: bool,
            base: dict) -> dict:
    """The legend as sections of rows, one row per symbol the map draws; ``kind`` tells
    ``map.js`` how to draw the symbol (``swatch``, ``ramp``, ``service``, ``cluster``,
    ``site``, ``site_fixed``, ``catchment``, ``candidate``, ``streets``, ``area``, ``districts``)."""
    t = L.minutes(results.threshold_min)
    counts = _facility_counts(results)
    time_rows = [{"kind": "swatch", "color": c, "label": lbl}
                 for c, lbl in zip(styles.TIME_COLORS, styles.time_labels(results.threshold_min, L.code),
                                   strict=False)]
    time_rows.append({"kind": "swatch", "color": styles.UNREACHABLE_COLOR,
                      "label": _t(L, "legend_unreachable")})
    sections: list[dict] = [{"title": _t(L, "legend_time"), "rows": time_rows}]
    if has_all:
        sections.append({"title": _t(L, "legend_all", n=len(services), t=t), "rows": [
            {"kind": "ramp", "colors": list(_ALL_COLORS), "low": L.percent(0.0), "high": L.percent(1.0)}]})
    if has_need:
        sections.append({"title": _t(L, "legend_need"), "rows": [
            {"kind": "ramp", "colors": list(_NEED_COLORS), "low": _t(L, "legend_need_low"),
             "high": _t(L, "legend_need_high")}]})
    site_rows = []
    if results.selected is not None and len(results.selected):
        site_rows.append({"kind": "site", "label": _t(L, "legend_site")})
        if "fixed" in results.selected and results.selected["fixed"].fillna(False).astype(bool).any():
            site_rows.append({"kind": "site_fixed", "label": _t(L, "legend_site_fixed")})
        if results.catchments is not None and len(results.catchments):
            site_rows.append({"kind": "catchment", "label": _t(L, "legend_catchment", t=t)})
    if results.candidates is not None and len(results.candidates) and "score" in results.candidates:
        site_rows.append({"kind": "candidate", "label": _t(L, "legend_candidate")})
    if site_rows:
        sections.append({"title": _t(L, "legend_sites"), "rows": site_rows})
    svc_rows = [{"kind": "service", "color": styles.service_color(s, services),
                 "glyph": styles.service_glyph(s, services),
                 "label": styles.service_label(results.config, s)
                 + (_t(L, "none_found") if counts.get(s, 0) == 0 else "")} for s in services]
    if sum(counts.values()) > 1:
        svc_rows.append({"kind": "cluster", "label": _t(L, "legend_cluster")})
    sections.append({"title": _t(L, "legend_services"), "rows": svc_rows})
    base_rows = []
    if base.get("streets"):
        base_rows.append({"kind": "streets", "label": _t(L, "legend_streets")})
    if base.get("area"):
        base_rows.append({"kind": "area", "label": _t(L, "legend_area")})
    if base.get("districts"):
        base_rows.append({"kind": "districts", "label": _t(L, "legend_districts")})
    if base_rows:
        sections.append({"title": _t(L, "legend_base"), "rows": base_rows})
    return {"title": _t(L, "legend_title"), "sections": sections}


def build_map_data(results, *, h3_resolution: int | None = None, title: str | None = None) -> dict:
    """Everything the map shows, as one JSON-able document (no markup in it), in the run's
    ``outputs.language``.

    ``base`` holds the light base drawn from the data (streets, study area and district
    outlines; the default, offline). ``overlays`` lists the layers in the order of the layer
    list; each has a ``kind`` (``areas``, ``services``, ``candidates``, ``sites``) that
    ``map.js`` knows how to draw (its ``DRAW`` table), a ``name`` and whether it is shown when
    the page opens.
    """
    L = _lang(results)
    services = services_in(results)
    cfg = results.config
    areas = map_areas(results, h3_resolution=h3_resolution)
    t = L.minutes(results.threshold_min)
    counts = _facility_counts(results)
    overlays: list[dict] = []
    base = _base(results)

    time_layers = [(s, c) for s in services if (c := time_column(areas.columns, s))]
    # open on the first service that has a facility in reach somewhere (not an all-grey map)
    shown = next((s for s, c in time_layers if areas[c].notna().any()), None)
    for s, col in time_layers:
        mode = ("mode_best" if col.startswith("best_")
                else "mode_transit" if col.startswith("transit_") else "mode_walk")
        overlays.append({
            "kind": "areas", "scale": "time", "prop": col, "show": s == shown,
            "name": _t(L, mode, service=lower_first(styles.service_label(cfg, s)),
                       none=_t(L, "none_found") if counts.get(s, 0) == 0 else ""),
            "fields": [["population", _t(L, "tip_people"), 0], [col, _t(L, "tip_minutes"), 1]],
        })
    has_all = "all_within_share" in areas and len(services) > 1
    if has_all:
        overlays.append({
            "kind": "areas", "scale": "share", "prop": "all_within_share", "show": False,
            "name": _t(L, "all_layer", n=len(services), t=t),
            "fields": [["population", _t(L, "tip_people"), 0],
                       ["all_within_share", _t(L, "tip_share_all"), 2]],
        })
    has_need = "care_need_index" in areas and bool(areas["care_need_index"].notna().any())
    need_range = [0.0, 1.0]
    if has_need:
        v = areas["care_need_index"].dropna()
        lo, hi = float(v.min()), float(v.max())
        need_range = [lo, hi if hi > lo else lo + 1.0]
        overlays.append({
            "kind": "areas", "scale": "need", "prop": "care_need_index", "show": False,
            "name": _t(L, "need_layer"),
            "fields": [["population", _t(L, "tip_people"), 0], ["care_need_index", _t(L, "tip_need"), 2]],
        })
    overlays.extend(_service_overlays(results, services, L))
    cand = _candidate_overlay(results, L)
    if cand is not None:
        overlays.append(cand)
    sites = _sites_overlay(results, L)
    if sites is not None:
        overlays.append(sites)
    if "all_within_share_after" in areas:
        what = (_t(L, "after_what_all", n=len(services)) if len(services) > 1
                else lower_first(styles.service_label(cfg, services[0])))
        overlays.append({
            "kind": "areas", "scale": "share", "prop": "all_within_share_after", "show": False,
            "name": _t(L, "after_layer", what=what, t=t),
            "fields": [["population", _t(L, "tip_people"), 0],
                       ["all_within_share", _t(L, "tip_share_today"), 2],
                       ["all_within_share_after", _t(L, "tip_share_after"), 2]],
        })

    area_props = ["area_id", "population"] + [
        c for c in areas.columns
        if c not in ("area_id", "population", "geometry")
    ]
    decimals = {"population": 0, "all_within_share": 2, "all_within_share_after": 2,
                "care_need_index": 3}
    return {
        "format": "careblocks-map/1",
        "locale": L.code,
        "text": {k: _t(L, k) for k in ("base_light", "base_osm", "osm_attribution", "no_value")},
        "page": _page_text(results, services, L, title=title, has_need=has_need,
                           h3_res=areas.attrs.get("h3_resolution")),
        "view": {"bounds": _bounds(results)},
        "base": base,
        "scales": {
            "unreachable": styles.UNREACHABLE_COLOR,
            "time": {"breaks": styles.time_breaks(results.threshold_min),
                     "colors": list(styles.TIME_COLORS)},
            "share": {"min": 0.0, "max": 1.0, "colors": list(_ALL_COLORS)},
            "need": {"min": need_range[0], "max": need_range[1], "colors": list(_NEED_COLORS)},
            "site": styles.SITE_COLOR,
        },
        "areas": _feature_collection(areas, area_props, {**{c: 1 for c in areas.columns}, **decimals}),
        "overlays": overlays,
        "legend": _legend(results, services, L, has_need=has_need, has_all=has_all, base=base),
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
    code = str(data.get("locale") or LOCALE)
    lang = code if code in LANGUAGES else LOCALE  # a known code, never text from the data
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
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
