"""The HTML map for a council meeting: one self-contained file that opens with no server.

Leaflet and Leaflet.markercluster are embedded in the page (``outputs/assets``, BSD-2 and
MIT licences), so the map works offline except for the OpenStreetMap background tiles; the
street network is drawn as a light grey layer so the map still reads without them.

Origins are drawn as areas: census polygons as given, or, for point origins, H3 cells that
aggregate the points (population summed, travel times population-weighted). Every string
that comes from data (facility and site names, district names, rationale) is HTML-escaped.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import branca.colormap as bcm
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element
from folium.plugins import MarkerCluster

from careblocks.columns import service_of, services_within, threshold_tag
from careblocks.outputs import styles
from careblocks.outputs._atomic import write_text_atomic
from careblocks.outputs._common import (
    all_within_column,
    run_date,
    services_in,
    time_column,
)

__all__ = ["build_map", "map_areas", "write_map"]

ASSETS = Path(__file__).resolve().parent / "assets"
#: polygon origins smaller than this (median) are grouped into H3 cells instead of drawn
MIN_DRAWN_AREA_M2 = 10_000.0
#: at most this many candidate sites are drawn (the best by score)
MAX_CANDIDATES = 5000
_NEED_COLORS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
_ALL_COLORS = ("#f7fcf5", "#c7e9c0", "#74c476", "#31a354", "#006d2c")


def esc(text: str) -> str:
    """HTML-escape text from data; also backticks and ``$`` (folium puts popup HTML in JS
    template literals, where `` ` `` and ``${`` would end the literal)."""
    return html.escape(str(text), quote=True).replace("`", "&#96;").replace("$", "&#36;")


#: folium's popups parse their HTML with jQuery's ``$(html)[0]``; this stands in for jQuery
_JQUERY_SHIM = (
    "<script>window.$ = window.$ || function (h) {"
    "var t = document.createElement('template'); t.innerHTML = String(h).trim();"
    "return [t.content.firstElementChild];};</script>"
)


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


def _feature_collection(gdf: gpd.GeoDataFrame, props: list[str], decimals: dict[str, int]) -> dict:
    feats = []
    geoms = gdf.geometry.to_numpy()
    cols = {p: gdf[p].to_numpy() for p in props}
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            continue
        pr: dict[str, Any] = {}
        for p in props:
            v = cols[p][i]
            if isinstance(v, str):
                pr[p] = esc(v)
            elif v is None or (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA:
                pr[p] = None
            elif isinstance(v, (int, np.integer)):
                pr[p] = int(v)
            else:
                try:
                    pr[p] = round(float(v), decimals.get(p, 2))
                except (TypeError, ValueError):
                    pr[p] = esc(str(v))
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
# Map pieces
# --------------------------------------------------------------------------------------


def _time_colormap(threshold_min: float) -> bcm.StepColormap:
    b = styles.time_breaks(threshold_min)
    return bcm.StepColormap(
        list(styles.TIME_COLORS), index=[*b, b[-1] * 10], vmin=0, vmax=b[-1] * 10,
        caption="minutes",
    )


def _area_layer(fc: dict, name: str, prop: str, color_of, tooltip_fields, aliases, show: bool):
    def style(feature):
        v = feature["properties"].get(prop)
        return {
            "fillColor": color_of(v),
            "color": "#ffffff",
            "weight": 0.3,
            "fillOpacity": 0.7 if v is not None else 0.35,
        }

    layer = folium.GeoJson(
        fc,
        name=name,
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=tooltip_fields, aliases=aliases, localize=True),
        show=show,
        smooth_factor=1.0,
    )
    return layer


def _service_icon(service: str, order: list[str]) -> folium.DivIcon:
    color = styles.service_color(service, order)
    glyph = esc(styles.service_glyph(service, order))
    return folium.DivIcon(
        html=(
            f'<div class="cb-icon" style="background:{color}">{glyph}</div>'
        ),
        icon_size=(22, 22),
        icon_anchor=(11, 11),
        class_name="cb-div-icon",
    )


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = []
    for k, v in rows:
        if isinstance(v, float):
            v = f"{v:,.3g}" if abs(v) < 10 else f"{v:,.0f}"
        cells.append(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>")
    return '<table class="cb-table">' + "".join(cells) + "</table>"


_SKIP_SITE_COLS = {"geometry", "node", "snap_m"}


def _site_popup(row: pd.Series, title: str) -> folium.Popup:
    rows = []
    for k, v in row.items():
        if k in _SKIP_SITE_COLS or k == "rationale":
            continue
        if isinstance(v, (float, np.floating)) and not np.isfinite(v):
            continue
        if isinstance(v, (np.integer, np.floating)):
            v = v.item()
        if v is None or isinstance(v, (shapely.Geometry,)):
            continue
        rows.append((k, v))
    body = f"<b>{esc(title)}</b>"
    if "rationale" in row and isinstance(row["rationale"], str):
        body += f'<p class="cb-rationale">{esc(row["rationale"])}</p>'
    body += _table(rows)
    return folium.Popup(body, max_width=360)


def _facility_counts(results) -> dict[str, int]:
    svc = results.services
    if svc is None or not len(svc) or "service" not in svc.columns:
        return {}
    return {str(k): int(v) for k, v in svc["service"].astype(str).value_counts().items()}


def _legend_html(results, services: list[str], has_need: bool, has_all: bool) -> str:
    t = threshold_tag(results.threshold_min)
    labels = styles.time_labels(results.threshold_min)
    parts = ['<div class="cb-box cb-legend"><b>Travel time (minutes)</b>']
    for color, label in zip(styles.TIME_COLORS, labels, strict=False):
        parts.append(f'<div><i style="background:{color}"></i>{esc(label)}</div>')
    parts.append(f'<div><i style="background:{styles.UNREACHABLE_COLOR}"></i>not reachable</div>')
    if has_all:
        parts.append(f"<b>People with all {len(services)} services within {t} min</b>")
        parts.append(
            '<div class="cb-ramp" style="background:linear-gradient(to right,'
            + ",".join(_ALL_COLORS) + ')"></div><div class="cb-ramp-l"><span>0%</span><span>100%</span></div>'
        )
    if has_need:
        parts.append("<b>Care-need index</b>")
        parts.append(
            '<div class="cb-ramp" style="background:linear-gradient(to right,'
            + ",".join(_NEED_COLORS) + ')"></div><div class="cb-ramp-l"><span>low</span><span>high</span></div>'
        )
    parts.append("<b>Existing services</b>")
    counts = _facility_counts(results)
    for s in services:
        none = " (none found)" if counts.get(s, 0) == 0 else ""
        parts.append(
            f'<div><span class="cb-icon cb-icon-s" style="background:{styles.service_color(s, services)}">'
            f"{esc(styles.service_glyph(s, services))}</span>"
            f"{esc(styles.service_label(results.config, s) + none)}</div>"
        )
    parts.append("</div>")
    return "".join(parts)


def _inline_assets(m: folium.Map) -> None:
    """Embed Leaflet and markercluster instead of linking to CDNs."""
    def clear(el) -> None:
        if hasattr(el, "default_js"):
            el.default_js = []
            el.default_css = []
        for child in el._children.values():
            clear(child)

    clear(m)
    fig = m.get_root()
    css = (ASSETS / "leaflet.css").read_text() + (ASSETS / "MarkerCluster.css").read_text()
    fig.header.add_child(Element(f"<style>{css}</style>"), name="cb_leaflet_css")
    fig.header.add_child(Element(f"<script>{(ASSETS / 'leaflet.js').read_text()}</script>"),
                         name="cb_leaflet_js")
    fig.header.add_child(
        Element(f"<script>{(ASSETS / 'leaflet.markercluster.js').read_text()}</script>"),
        name="cb_markercluster_js",
    )
    fig.header.add_child(Element(_JQUERY_SHIM), name="cb_jquery_shim")


def build_map(results, *, h3_resolution: int | None = None, title: str | None = None,
              inline_assets: bool = True) -> folium.Map:
    """Build the folium map of a run (see :func:`write_map`)."""
    services = services_in(results)
    order = services
    cfg = results.config
    # open on where people live (the study area can be much larger: the network's extent)
    o = results.origins
    extent = (o.set_crs(results.crs) if o.crs is None else o) if len(o) else None
    if extent is None:
        extent = gpd.GeoSeries([results.area], crs=results.crs)
    x0, y0, x1, y1 = extent.to_crs("EPSG:4326").total_bounds
    m = folium.Map(location=[(y0 + y1) / 2, (x0 + x1) / 2], tiles=None, control_scale=True,
                   prefer_canvas=True)
    folium.TileLayer("OpenStreetMap", name="OpenStreetMap", control=True).add_to(m)
    m.fit_bounds([[y0, x0], [y1, x1]])

    streets = _streets(results)
    if streets is not None:
        folium.GeoJson(streets, name="Streets (walking network)", interactive=False,
                       style_function=lambda f: {"color": "#9a9a9a", "weight": 0.8, "opacity": 0.8}
                       ).add_to(m)

    areas = map_areas(results, h3_resolution=h3_resolution)
    tcmap = _time_colormap(results.threshold_min)
    t = threshold_tag(results.threshold_min)

    def time_color(v):
        return styles.UNREACHABLE_COLOR if v is None else tcmap(min(float(v), tcmap.vmax - 1e-6))

    counts = _facility_counts(results)
    time_layers = [(s, c) for s in services if (c := time_column(areas.columns, s))]
    # open on the first service that has a facility in reach somewhere (not an all-grey map)
    shown = next((s for s, c in time_layers if areas[c].notna().any()), None)
    for s, col in time_layers:
        label = styles.service_label(cfg, s)
        mode = "Travel" if col.startswith("best_") else ("Transit" if col.startswith("transit_") else "Walking")
        none = " (none found)" if counts.get(s, 0) == 0 else ""
        fc = _feature_collection(areas, ["area_id", "population", col], {"population": 0, col: 1})
        _area_layer(fc, esc(f"{mode} time to {label.lower()}{none}"), col, time_color,
                    ["population", col], ["people", "minutes to nearest"], s == shown).add_to(m)

    has_all = "all_within_share" in areas and len(services) > 1
    all_cmap = bcm.LinearColormap(list(_ALL_COLORS), vmin=0, vmax=1)
    if has_all:
        fc = _feature_collection(areas, ["population", "all_within_share"], {"all_within_share": 2, "population": 0})
        _area_layer(fc, esc(f"All {len(services)} services within {t} min"), "all_within_share",
                    lambda v: styles.UNREACHABLE_COLOR if v is None else all_cmap(v),
                    ["population", "all_within_share"], ["people", "share with all services"],
                    False).add_to(m)

    has_need = "care_need_index" in areas and areas["care_need_index"].notna().any()
    if has_need:
        v = areas["care_need_index"].dropna()
        need_cmap = bcm.LinearColormap(list(_NEED_COLORS), vmin=float(v.min()),
                                       vmax=float(v.max()) if v.max() > v.min() else float(v.min()) + 1)
        fc = _feature_collection(areas, ["population", "care_need_index"], {"care_need_index": 3, "population": 0})
        _area_layer(fc, "Care-need index", "care_need_index",
                    lambda x: styles.UNREACHABLE_COLOR if x is None else need_cmap(x),
                    ["population", "care_need_index"], ["people", "care-need index"], False).add_to(m)

    # existing services, one clustered layer per type
    svc = results.services
    if svc is not None and len(svc):
        svc = (svc.set_crs(results.crs) if svc.crs is None else svc).to_crs("EPSG:4326")
        for s in services:
            sub = svc[svc["service"].astype(str) == s]
            if not len(sub):
                continue
            label = styles.service_label(cfg, s)
            fg = folium.FeatureGroup(name=esc(f"{label} ({len(sub)})"), show=True)
            cluster = MarkerCluster(options={"maxClusterRadius": 40, "disableClusteringAtZoom": 16})
            cluster.add_to(fg)
            geoms = sub.geometry.representative_point()
            for (_, row), g in zip(sub.iterrows(), geoms, strict=False):
                name = row.get("name")
                name = name if isinstance(name, str) and name else f"{label} (unnamed)"
                popup = f"<b>{esc(name)}</b>" + _table(
                    [("service", label), ("source", row.get("source", "")),
                     ("category", row.get("category", "")),
                     ("distance to street (m)", float(row.get("snap_m", np.nan)))]
                )
                folium.Marker(
                    [round(g.y, 6), round(g.x, 6)], icon=_service_icon(s, order),
                    tooltip=esc(name), popup=folium.Popup(popup, max_width=300),
                ).add_to(cluster)
            fg.add_to(m)

    # candidate sites sized by score
    cand = results.candidates
    if cand is not None and len(cand) and "score" in cand:
        cand = (cand.set_crs(results.crs) if cand.crs is None else cand)
        cand = cand.sort_values("score", ascending=False).head(MAX_CANDIDATES).to_crs("EPSG:4326")
        cand = cand.set_geometry(_round_geoms(cand.geometry.representative_point().to_numpy(), 6))
        sc = pd.to_numeric(cand["score"], errors="coerce")
        lo, hi = float(sc.min()), float(sc.max())
        cand = cand.assign(radius=(3 + 9 * ((sc - lo) / (hi - lo) if hi > lo else 0.5)).round(1))
        fields = [c for c in ("candidate_id", "name", "kind", "score", "rank") if c in cand]
        fc = _feature_collection(cand, [*fields, "radius"], {"score": 3, "radius": 1})
        folium.GeoJson(
            fc, name=f"Candidate sites ({len(cand)})", show=False,
            marker=folium.CircleMarker(radius=5, fill=True),
            style_function=lambda f: {"radius": f["properties"]["radius"] or 4, "color": "#555",
                                      "weight": 1, "fillColor": "#bdbdbd", "fillOpacity": 0.8},
            tooltip=folium.GeoJsonTooltip(fields=fields, localize=True),
        ).add_to(m)

    # selected Care Blocks with catchments
    sel = results.selected
    if sel is not None and len(sel):
        fg = folium.FeatureGroup(name=f"Proposed Care Blocks ({len(sel)}) and walking catchments", show=True)
        if results.catchments is not None and len(results.catchments):
            c = results.catchments
            c = (c.set_crs(results.crs) if c.crs is None else c)
            c = c.set_geometry(c.geometry.simplify(5.0)).to_crs("EPSG:4326")
            c = c.set_geometry(_round_geoms(c.geometry.to_numpy(), 6))
            props = [p for p in ("candidate_id", "population") if p in c]
            folium.GeoJson(
                _feature_collection(c, props, {"population": 0}), name="catchments",
                style_function=lambda f: {"color": "#e6550d", "weight": 2, "fillColor": "#fdae6b",
                                          "fillOpacity": 0.04, "dashArray": "4 3"},
                tooltip=folium.GeoJsonTooltip(fields=props) if props else None,
            ).add_to(fg)
        s2 = (sel.set_crs(results.crs) if sel.crs is None else sel).to_crs("EPSG:4326")
        if "order" in s2:
            s2 = s2.sort_values("order")
        for i, ((_, row), g) in enumerate(zip(s2.iterrows(), s2.geometry.representative_point(), strict=False)):
            order_no = int(row["order"]) if "order" in row and pd.notna(row["order"]) else i + 1
            name = row.get("name")
            site_title = f"Care Block {order_no}" + (f": {name}" if isinstance(name, str) and name else "")
            folium.Marker(
                [round(g.y, 6), round(g.x, 6)],
                icon=folium.DivIcon(html=f'<div class="cb-site">{order_no}</div>', icon_size=(30, 30),
                                    icon_anchor=(15, 15), class_name="cb-div-icon"),
                tooltip=esc(site_title), popup=_site_popup(row, site_title),
            ).add_to(fg)
        fg.add_to(m)

    if "all_within_share_after" in areas:
        what = (f"all {len(services)} services" if len(services) > 1
                else styles.service_label(cfg, services[0]).lower())
        fc = _feature_collection(areas, ["population", "all_within_share", "all_within_share_after"],
                                 {"all_within_share": 2, "all_within_share_after": 2, "population": 0})
        _area_layer(fc, esc(f"After the Care Blocks: {what} within {t} min"),
                    "all_within_share_after",
                    lambda v: styles.UNREACHABLE_COLOR if v is None else all_cmap(v),
                    ["population", "all_within_share", "all_within_share_after"],
                    ["people", "share with all services today", "share with all, with the Care Blocks"],
                    False).add_to(m)

    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    _add_boxes(m, results, services, title=title, has_need=has_need, has_all=has_all,
               h3_res=areas.attrs.get("h3_resolution"))
    if inline_assets:
        _inline_assets(m)
    return m


def _add_boxes(m, results, services, *, title, has_need, has_all, h3_res) -> None:
    study = getattr(getattr(results.config, "study", None), "name", "") or "study"
    title = title or f"Care Blocks: access to care services in {study}"
    date = run_date(results.metadata)
    t = threshold_tag(results.threshold_min)
    speed = getattr(getattr(results.config, "walk", None), "speed_kmh", None)
    areas_txt = (f"hexagonal cells (H3 resolution {h3_res}) that group the homes inside them; "
                 "travel times are averaged over the people in each cell"
                 if h3_res is not None else "the population areas of the input (census units or grid cells)")
    transit = any(c.startswith(("best_min_", "transit_min_")) for c in results.origins.columns)
    trip = "a short trip" if transit else "a short walk"
    tr = getattr(results.config, "transit", None)
    transit_txt = (
        f"<p>Travel times are the faster of walking and public transport (the "
        f"p{tr.report_percentile} over departures {esc(tr.window_start)}–{esc(tr.window_end)}).</p>"
        if transit and tr is not None else ""
    )
    howto = (
        f"<details open><summary>How to read this map</summary>"
        f"<p>Coloured areas are {esc(areas_txt)}. Blue means the nearest service is {trip}, "
        f"red a long one; grey means no route was found. Use the layer list (top right) to switch "
        f"between services, the share of people with all {len(services)} services within {esc(t)} "
        f"minutes{', the care-need index' if has_need else ''} and the proposed Care Blocks. "
        f"Click a marker for details.</p>"
        + transit_txt
        + (f"<p>Walking speed {speed:g} km/h.</p>" if speed else "")
        + "</details>"
    )
    root = m.get_root()
    root.header.add_child(Element(f"<title>{esc(title)}</title>"), name="cb_title")
    css = (ASSETS / "map.css").read_text(encoding="utf-8")
    root.header.add_child(Element(f"<style>{css}</style>"), name="cb_css")
    root.html.add_child(Element(
        f'<div class="cb-box cb-title"><h1>{esc(title)}</h1>'
        f'<div>{esc(str(date))} · threshold {esc(t)} min · careblocks</div></div>'
    ))
    root.html.add_child(Element(f'<div class="cb-box cb-howto">{howto}</div>'))
    root.html.add_child(Element(_legend_html(results, services, has_need, has_all)))


def write_map(results, path: str | os.PathLike[str], *, h3_resolution: int | None = None,
              title: str | None = None, inline_assets: bool = True) -> Path:
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
    inline_assets
        Embed Leaflet in the page (default) so it opens offline; False links to CDNs.
    """
    m = build_map(results, h3_resolution=h3_resolution, title=title, inline_assets=inline_assets)
    text = m.get_root().render()
    return write_text_atomic(path, text)


