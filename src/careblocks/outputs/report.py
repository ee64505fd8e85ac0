"""The report for decision makers: one self-contained ``report.html`` (figures embedded as PNG).

Sections: summary, study area and data, who is underserved (by care group and district),
proposed Care Blocks with their rationale and a map of them, before / after, charts, method
and assumptions (from the config), data sources and licences. Every sentence goes through
:mod:`careblocks.i18n` in ``outputs.language``; numbers and dates are formatted for it. No
PDF: the Python libraries that render HTML to PDF well (WeasyPrint) need system libraries
(Pango); print the HTML from a browser instead (the page has A4 print styles).
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careblocks.columns import CENSUS_GROUPS
from careblocks.i18n import (
    N_,
    Language,
    category_label,
    component_label,
    group_label,
    language,
    lower_first,
    profile_label,
)
from careblocks.outputs import styles
from careblocks.outputs._atomic import write_text_atomic
from careblocks.outputs._common import (
    all_within_column,
    normalized_metadata,
    run_date,
    services_in,
    time_column,
)

__all__ = ["write_report"]



def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _lang(results) -> Language:
    return language(getattr(getattr(results.config, "outputs", None), "language", "en"))


def _fmt(v: Any, kind: str, L: Language) -> str:
    if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return L._("yes") if v else L._("no")
    if kind == "pct":
        return L.percent(v)
    if kind == "pp":
        return L.points(v)
    if kind == "share2":
        return L.number(v, 2)
    if isinstance(v, (int, np.integer)):
        return L.integer(v)
    if isinstance(v, (float, np.floating)):
        return L.smart(v)
    return esc(v)


def _table(df: pd.DataFrame, L: Language, kinds: dict[str, str] | None = None,
           *, cls: str = "") -> str:
    kinds = kinds or {}
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = "".join(
            f'<td class="t">{esc(v)}</td>' if isinstance(v, str)
            else f"<td>{_fmt(v, kinds.get(c, 'num'), L)}</td>"
            for c, v in zip(df.columns, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


#: the libraries a figure's pixels depend on (their versions are in its cache key)
_FIGURE_LIBRARIES = ("matplotlib", "numpy", "geopandas", "shapely", "babel")


def _figure(results, name: str, alt: str, spec: dict, draw, L: Language) -> str:
    """An ``<img>`` of the PNG that ``draw(spec, L)`` (a matplotlib figure drawn from ``spec``
    only) makes, through the output cache (:mod:`careblocks.outputs._cached`): keyed by the
    digest of ``spec``, the language, this module's source and the libraries' versions, so a
    rerun with the same data embeds the same bytes without importing matplotlib."""
    from careblocks.outputs._cached import cached_bytes, code_version

    def make() -> bytes:
        _, plt = _pyplot()
        with _text_is_text():
            fig = draw(spec, L)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
            plt.close(fig)
        return buf.getvalue()

    png = cached_bytes(getattr(results, "config", None), f"report_{name}", {"spec": spec, "language": L.code},
                       make, code=code_version(__name__, libraries=_FIGURE_LIBRARIES))
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"/>'


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9})
    return matplotlib, plt


# --------------------------------------------------------------------------------------
# Tables from the results
# --------------------------------------------------------------------------------------


def _groups(results) -> list[str]:
    cols = results.origins.columns
    return [g for g in ("population", *CENSUS_GROUPS) if g in cols]


_MODE_PREFERENCE = ("best", "walk", "transit")


def equity_parts(
    results, *, common: bool = False
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str | None]:
    """(today, with the Care Blocks, mode) equity rows of one travel mode.

    The pipeline may give the after-scenario as ``equity_after`` or as rows of ``equity``
    with ``scenario == "with_sites"``. With a ``mode`` column one mode is used: best, else
    walk, else the first; with ``common=True`` one that both scenarios have.
    """
    cur, after = results.equity, results.equity_after
    if cur is not None and "scenario" in cur.columns:
        scen = cur["scenario"].astype(str)
        if after is None and (scen == "with_sites").any():
            after = cur[scen == "with_sites"]
        cur = cur[scen != "with_sites"]
    mode = None
    if cur is not None and "mode" in cur.columns and len(cur):
        modes = list(pd.unique(cur["mode"].astype(str)))
        if common and after is not None and "mode" in after.columns:
            both = [m for m in modes if m in set(after["mode"].astype(str))]
            modes = both or modes
        mode = next((m for m in _MODE_PREFERENCE if m in modes), modes[0])
        cur = cur[cur["mode"].astype(str) == mode]
        if after is not None and "mode" in after.columns:
            after = after[after["mode"].astype(str) == mode]
    return cur, (after if after is not None and len(after) else None), mode


def _mode_label(mode: str, L: Language) -> str:
    if mode == "best":
        return L._("walking or public transport, whichever is faster")
    if mode == "transit":
        return L._("public transport")
    if mode.startswith("walk_"):
        return L._("walking, {profile} speed").format(profile=profile_label(mode[5:], L))
    return L._("walking") if mode == "walk" else mode


def _labels(results, L: Language | None = None) -> dict[str, str]:
    return {s: styles.service_label(results.config, s) for s in services_in(results)}


def coverage_by_group(results, equity: pd.DataFrame | None = None) -> pd.DataFrame:
    """Share of each group within T of each service (rows: groups, columns: service labels)."""
    L = _lang(results)
    t = float(results.threshold_min)
    services = services_in(results)
    labels = _labels(results)
    eq = equity if equity is not None else equity_parts(results)[0]
    if eq is not None and len(eq) and {"group", "service", "share_within"} <= set(eq.columns):
        sel = eq
        if "district" in sel.columns:
            sel = sel[sel["district"].astype(str) == "all"]
        if "threshold_min" in sel.columns:
            sel = sel[np.isclose(sel["threshold_min"].astype(float), t)]
        if len(sel):
            piv = sel.pivot_table(index="group", columns="service", values="share_within", aggfunc="first")
            piv = piv.reindex(columns=[s for s in services if s in piv.columns])
            known = [g for g in ("population", *CENSUS_GROUPS) if g in piv.index]
            piv = piv.reindex(known + sorted(g for g in piv.index if g not in known))
            piv.index = [group_label(g, L) for g in piv.index]
            return piv.rename(columns=labels)
    # fall back to the origins
    o = results.origins
    rows = {}
    for g in _groups(results):
        w = pd.to_numeric(o[g], errors="coerce").fillna(0).to_numpy()
        row = {}
        for s in services:
            c = time_column(o.columns, s)
            if c is None:
                continue
            v = pd.to_numeric(o[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            row[labels[s]] = float(w[np.nan_to_num(v, nan=np.inf) <= t].sum() / w.sum()) if w.sum() else np.nan
        rows[group_label(g, L)] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def coverage_by_district(results) -> pd.DataFrame | None:
    eq = equity_parts(results)[0]
    if eq is None or "district" not in eq.columns:
        return None
    t = float(results.threshold_min)
    sel = eq[(eq["district"].astype(str) != "all") & (eq["group"] == "population")]
    if "threshold_min" in sel.columns:
        sel = sel[np.isclose(sel["threshold_min"].astype(float), t)]
    if not len(sel):
        return None
    services = services_in(results)
    piv = sel.pivot_table(index="district", columns="service", values="share_within", aggfunc="first")
    piv = piv.reindex(columns=[s for s in services if s in piv.columns])
    people = sel.groupby("district")["people"].first()
    piv = piv.rename(columns=_labels(results))
    piv.insert(0, "people", people.reindex(piv.index))
    return piv.sort_values(piv.columns[1] if piv.shape[1] > 1 else "people")


def before_after(results) -> pd.DataFrame | None:
    """Rows group x service: ``today``, ``with Care Blocks`` and ``change`` (shares 0-1)."""
    cur, after, _ = equity_parts(results, common=True)
    if cur is None or after is None:
        return None
    b = coverage_by_group(results, cur)
    a = coverage_by_group(results, after)
    rows = []
    for g in b.index:
        for s in b.columns:
            if g in a.index and s in a.columns:
                rows.append({"group": g, "service": s, "today": b.loc[g, s],
                             "with Care Blocks": a.loc[g, s], "change": a.loc[g, s] - b.loc[g, s]})
    return pd.DataFrame(rows) if rows else None


def site_name(row, L: Language) -> str:
    """What to call a candidate site: its name, else its building type, never its id."""
    name = row.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    cat = category_label(row.get("category"), L)
    return cat[:1].upper() + cat[1:] if cat else L._("Unnamed site")


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def _chart_times(results, L: Language) -> str | None:
    """Cumulative share of people within x minutes of each service."""
    o = results.origins
    w_all = pd.to_numeric(o.get("population", pd.Series(1.0, index=o.index)), errors="coerce").fillna(0)
    services = services_in(results)
    t = float(results.threshold_min)
    lines = []
    for s in services:
        c = time_column(o.columns, s)
        if c is None:
            continue
        v = pd.to_numeric(o[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        w = w_all.to_numpy(dtype=float)
        if w.sum() <= 0:
            continue
        ok = np.isfinite(v)
        order = np.argsort(v[ok])
        lines.append({"x": v[ok][order], "y": np.cumsum(w[ok][order]) / w.sum(),
                      "color": styles.service_color(s, services),
                      "label": styles.service_label(results.config, s)})
    if not lines:
        return None
    title = L._("How far people live from each service")
    spec = {"lines": lines, "t": t, "t_label": " " + L.minutes(t), "title": title,
            "xlabel": L._("minutes to the nearest facility"), "ylabel": L._("share of people within")}
    return _figure(results, "chart_times", title, spec, _draw_times, L)


def _draw_times(spec: dict, L: Language):
    matplotlib, plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for line in spec["lines"]:
        ax.step(line["x"], line["y"], where="post", color=line["color"], label=line["label"])
    t = spec["t"]
    ax.axvline(t, color="#444", ls="--", lw=1)
    ax.text(t, 0.02, spec["t_label"], fontsize=8)
    ax.set_xlim(0, max(3 * t, 10))
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: L.percent(v)))
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    ax.set_title(spec["title"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _chart_groups_before_after(results, L: Language) -> str | None:
    """Per care group, the minutes to reach every service the Care Blocks offer, today
    (solid) and with them (dashed): the cumulative share of the group within x minutes."""
    o = results.origins
    offers = [s for s in getattr(results.config.sites, "offers", ()) if f"walk_min_{s}" in o.columns
              and f"walk_min_{s}_after" in o.columns]
    if not offers:
        return None
    now = np.nanmax(np.column_stack([pd.to_numeric(o[f"walk_min_{s}"], errors="coerce")
                                     .to_numpy(dtype=float, na_value=np.nan) for s in offers]), axis=1)
    after = np.nanmax(np.column_stack([pd.to_numeric(o[f"walk_min_{s}_after"], errors="coerce")
                                       .to_numpy(dtype=float, na_value=np.nan) for s in offers]), axis=1)
    # a service nobody can reach counts as unreachable, not as the other services' time
    for s in offers:
        now[~np.isfinite(pd.to_numeric(o[f"walk_min_{s}"], errors="coerce").to_numpy(dtype=float, na_value=np.nan))] = np.inf
        after[~np.isfinite(pd.to_numeric(o[f"walk_min_{s}_after"], errors="coerce")
                           .to_numpy(dtype=float, na_value=np.nan))] = np.inf
    t = float(results.threshold_min)
    lines = []
    for i, g in enumerate(_groups(results)[:6]):
        w = pd.to_numeric(o[g], errors="coerce").fillna(0).to_numpy(dtype=float)
        if w.sum() <= 0:
            continue
        for v, ls, suffix in ((now, "-", L._("today")), (after, "--", L._("with the Care Blocks"))):
            ok = np.isfinite(v)
            order = np.argsort(v[ok])
            x = np.concatenate([[0.0], v[ok][order], [max(3 * t, 10)]])
            y = np.concatenate([[0.0], np.cumsum(w[ok][order]) / w.sum()])
            y = np.append(y, y[-1])  # flat to the right edge (at 0 when nobody reaches all)
            lines.append({"x": x, "y": y, "ls": ls, "color_index": i % 10,
                          "label": f"{group_label(g, L)}, {suffix}"})
    title = L._("Travel time by care group, today and with the Care Blocks")
    spec = {"lines": lines, "t": t, "title": title,
            "xlabel": L._("minutes on foot to reach every service the Care Blocks offer"),
            "ylabel": L._("share of the group within")}
    return _figure(results, "chart_groups_before_after", title, spec, _draw_groups_before_after, L)


def _draw_groups_before_after(spec: dict, L: Language):
    matplotlib, plt = _pyplot()
    t = spec["t"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    cmap = plt.get_cmap("tab10")
    for line in spec["lines"]:
        ax.step(line["x"], line["y"], where="post", ls=line["ls"], lw=1.6, color=cmap(line["color_index"]),
                label=line["label"])
    ax.axvline(t, color="#444", ls=":", lw=1)
    ax.set_xlim(0, max(3 * t, 10))
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: L.percent(v)))
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    ax.set_title(spec["title"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _chart_groups(results, cov: pd.DataFrame, title: str, colors: dict[str, str], L: Language) -> str | None:
    """Share of each group within the threshold of each service (bars)."""
    if cov is None or cov.empty:
        return None
    spec = {"title": title, "groups": [str(g) for g in cov.index],
            "bars": [{"label": str(s), "values": cov[s].astype(float).fillna(0).to_numpy(),
                      "color": colors.get(s)} for s in cov.columns]}
    return _figure(results, "chart_groups", title, spec, _draw_groups, L)


def _draw_groups(spec: dict, L: Language):
    matplotlib, plt = _pyplot()
    bars, groups = spec["bars"], spec["groups"]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(groups) * max(1, len(bars)) / 2 + 1.4))
    n = len(bars)
    h = 0.8 / max(n, 1)
    y = np.arange(len(groups))
    for i, b in enumerate(bars):
        ax.barh(y + i * h, b["values"], height=h, label=b["label"],
                color=b["color"] if b["color"] is not None else plt.cm.tab10(i % 10))
    ax.set_yticks(y + h * (n - 1) / 2, groups)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: L.percent(v)))
    ax.set_title(spec["title"])
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _wkb(geoms) -> list[bytes]:
    import shapely

    return [bytes(b) for b in shapely.to_wkb(np.asarray(geoms, dtype=object))]


def _site_map(results, L: Language) -> str | None:
    """A static map of the proposed Care Blocks, drawn from the data (no tiles, no network):
    streets, districts, catchments outlined, existing services, numbered sites, scale bar."""
    sel = results.selected
    if sel is None or not len(sel):
        return None
    crs = results.crs
    spec: dict[str, Any] = {"streets": None, "area": None, "districts": None, "catchments": None}
    net = results.network
    if net is not None and hasattr(net, "indptr") and len(net.indices):
        src = np.repeat(np.arange(len(net.indptr) - 1), np.diff(net.indptr))
        keep = src < net.indices
        spec["streets"] = np.stack([np.column_stack([net.x[src[keep]], net.y[src[keep]]]),
                                    np.column_stack([net.x[net.indices[keep]], net.y[net.indices[keep]]])],
                                   axis=1)
    area = results.area
    if area is not None and not area.is_empty:
        spec["area"] = _wkb([area.boundary])
    if results.districts is not None and len(results.districts):
        spec["districts"] = _wkb(results.districts.to_crs(crs).boundary)
    if results.catchments is not None and len(results.catchments):
        spec["catchments"] = _wkb(results.catchments.to_crs(crs).boundary)
    services = services_in(results)
    svc = results.services
    spec["services"] = points = []
    if svc is not None and len(svc):
        svc = svc.to_crs(crs)
        for s in services:
            sub = svc[svc["service"].astype(str) == s]
            if len(sub):
                pts = sub.geometry.representative_point()
                points.append({"x": pts.x.to_numpy(float), "y": pts.y.to_numpy(float),
                               "color": styles.service_color(s, services),
                               "label": styles.service_label(results.config, s)})
    s2 = sel.to_crs(crs).sort_values("order") if "order" in sel.columns else sel.to_crs(crs)
    pts = s2.geometry.representative_point()
    spec["sites"] = {"x": pts.x.to_numpy(float), "y": pts.y.to_numpy(float),
                     "number": (s2["order"].to_numpy(np.int64) if "order" in s2.columns
                                else np.arange(1, len(s2) + 1))}
    spec["bounds"] = [float(v) for v in (area.bounds if area is not None and not area.is_empty
                                         else tuple(pts.total_bounds))]
    minx, miny, maxx, maxy = spec["bounds"]
    # scale bar: a round length near a fifth of the width
    nice = max(v for v in (50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000)
               if v <= max((maxx - minx) / 5, 50))
    title = L._("Proposed Care Blocks")
    spec.update(
        scale_m=nice, scale_label=f"{L.number(nice / 1000, 1)} km" if nice >= 1000 else f"{L.integer(nice)} m",
        site_label=L._("Proposed Care Block (number = order chosen)"),
        catchment_label=L._("Area within {minutes} on foot").format(minutes=L.minutes(results.threshold_min)),
        area_label=L._("Study area"), title=title, credit=L._("Streets: © OpenStreetMap contributors"))
    return _figure(results, "site_map", title, spec, _draw_site_map, L)


def _draw_site_map(spec: dict, L: Language):
    import geopandas as gpd
    import shapely
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    matplotlib, plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 6.4))
    if spec["streets"] is not None:
        ax.add_collection(LineCollection(spec["streets"], colors="#c8c8c8", linewidths=0.4, zorder=1))
    for part, style in (("area", {"color": "#333", "lw": 1.2}),
                        ("districts", {"color": "#777", "lw": 0.6, "ls": "--"}),
                        ("catchments", {"color": "#6a3d9a", "lw": 1.3, "zorder": 3})):
        if spec[part] is not None:
            gpd.GeoSeries(shapely.from_wkb(spec[part])).plot(ax=ax, **{"zorder": 2, **style})
    handles = []
    for p in spec["services"]:
        handles.append(ax.scatter(p["x"], p["y"], s=12, color=p["color"], edgecolor="white", linewidth=0.4,
                                  zorder=4, label=p["label"]))
    sites = spec["sites"]
    for x, y, num in zip(sites["x"], sites["y"], sites["number"], strict=True):
        ax.scatter([x], [y], s=230, color="#6a3d9a", edgecolor="white", linewidth=1.5, zorder=5)
        ax.text(x, y, str(int(num)), color="white", ha="center", va="center", fontsize=9,
                fontweight="bold", zorder=6)
    handles.append(Line2D([], [], marker="o", ls="", color="#6a3d9a", markersize=10, label=spec["site_label"]))
    handles.append(Line2D([], [], color="#6a3d9a", lw=1.3, label=spec["catchment_label"]))
    handles.append(Line2D([], [], color="#333", lw=1.2, label=spec["area_label"]))
    minx, miny, maxx, maxy = spec["bounds"]
    pad = 0.03 * max(maxx - minx, maxy - miny, 1.0)
    ax.set_xlim(minx - pad, maxx + pad)
    ax.set_ylim(miny - pad, maxy + pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    nice = spec["scale_m"]
    x0, y0 = minx + pad, miny + pad
    ax.plot([x0, x0 + nice], [y0, y0], color="black", lw=3, zorder=7, solid_capstyle="butt")
    ax.text(x0 + nice / 2, y0 + pad * 0.5, spec["scale_label"], ha="center", va="bottom", fontsize=8, zorder=7)
    ax.annotate("N", xy=(0.96, 0.96), xytext=(0.96, 0.88), xycoords="axes fraction",
                ha="center", fontsize=10, fontweight="bold",
                arrowprops={"arrowstyle": "-|>", "color": "black"})
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(spec["title"])
    ax.text(0, -0.02, spec["credit"], transform=ax.transAxes, fontsize=7, va="top", color="#555")
    return fig


#: what the curve's share measures, per ``sites.objective``, in a council's words
_OBJECTIVE_WORDS = {
    "gap_closed": N_("share of today's care gaps closed"),
    "population": N_("share of people within reach"),
    "hours_returned": N_("share of caregiver hours that could be returned"),
}
_OBJECTIVE_OTHER = N_("share of the objective covered")


def _chart_curve(results, curve: pd.DataFrame, chosen_k: int | None, ylabel: str, L: Language) -> str | None:
    """The best share of the objective against the number of Care Blocks."""
    if curve is None or curve.empty:
        return None
    title = L._("What each additional Care Block adds")
    spec = {"k": curve["k"].to_numpy(np.int64), "share": curve["covered_share"].to_numpy(float),
            "exact": curve["exact"].to_numpy(bool), "chosen_k": int(chosen_k) if chosen_k else None,
            "exact_label": L._("proven optimal"), "other_label": L._("best found (gap in the table)"),
            "chosen_label": " " + L._("proposed: {k}").format(k=chosen_k) if chosen_k else "",
            "xlabel": L._("number of new Care Blocks"), "ylabel": ylabel, "title": title}
    return _figure(results, "chart_curve", title, spec, _draw_curve, L)


def _draw_curve(spec: dict, L: Language):
    matplotlib, plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    k, share, exact = spec["k"], spec["share"], spec["exact"]
    ax.plot(k, share, color="#1b7837", lw=1.5)
    ax.scatter(k[exact], share[exact], color="#1b7837", s=16, label=spec["exact_label"], zorder=3)
    if (~exact).any():
        ax.scatter(k[~exact], share[~exact], facecolors="white", edgecolors="#1b7837", s=16,
                   label=spec["other_label"], zorder=3)
    if spec["chosen_k"]:
        ax.axvline(spec["chosen_k"], color="#444", ls="--", lw=1)
        ax.text(spec["chosen_k"], 0.03, spec["chosen_label"], fontsize=8)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: L.percent(v)))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    ax.set_title(spec["title"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def curve_section(results) -> str:
    """The coverage curve: a sentence on diminishing returns, the chart and the table."""
    curve = results.coverage_curve
    if curve is None or len(curve) == 0:
        return ""
    L = _lang(results)
    c = pd.DataFrame(curve).sort_values("k")
    chosen = len(results.selected) if results.selected is not None else None
    out = ["<h2>" + esc(L._("How many Care Blocks?")) + "</h2>"]
    first, last = c.iloc[0], c.iloc[-1]
    half = c[c["covered_share"] >= 0.5 * float(last["covered_share"])]
    words = L._(_OBJECTIVE_WORDS.get(str(c["objective"].iloc[0]), _OBJECTIVE_OTHER))
    sentence = L._("Measured as the {measure}: one block reaches {first}; {k} reach {last}").format(
        measure=words, first=_fmt(first["covered_share"], "pct", L), k=int(last["k"]),
        last=_fmt(last["covered_share"], "pct", L))
    if len(half):
        sentence += L._(", and half of that is already reached with {k}").format(k=int(half.iloc[0]["k"]))
    n_exact = int(c["exact"].sum())
    sentence += ". " + L._("{n} of the {total} points are proven optimal").format(n=n_exact, total=len(c))
    if n_exact != len(c):
        sentence += L._("; the others are the best found, within the gap shown")
    out.append(f"<p>{esc(sentence + '.')}</p>")
    chart = _chart_curve(results, c, chosen, words[:1].upper() + words[1:], L)
    if chart:
        out.append(f"<p>{chart}</p>")
    answers = []
    for e, g in zip(c["exact"], c["gap"].astype(float), strict=True):
        if e:
            answers.append(L._("optimal"))
        elif g is not None and np.isfinite(g):
            answers.append(L._("within {gap} of the optimum").format(gap=L.percent(g, 2)))
        else:
            answers.append(L._("best found"))
    share_col = words[:1].upper() + words[1:]
    tab = pd.DataFrame({
        L._("blocks"): c["k"].astype(int),
        share_col: c["covered_share"],
        L._("people within reach"): [L.rounded(v) for v in c["people_within"]],
        L._("caregiver hours a week"): [L.rounded(v) for v in c["hours_returned_week"]],
        L._("answer"): answers,
    })
    out.append(_table(tab, L, {share_col: "pct"}))
    return "<section>" + "".join(out) + "</section>"


#: the care-need index's components and indicators in words (careblocks.outputs.care_need)
_CARE_COMPONENT_WORDS = {
    "care_demand": N_("Care demand: young children, the oldest and dependants"),
    "caregiver_density": N_("Caregiver density: women doing unpaid care work, female-headed households"),
    "poverty": N_("Poverty"),
    "supply_gap": N_("Supply gap: distance to existing care services"),
}
_CARE_INDICATOR_WORDS = {
    "share_under5": N_("share of children under 5"),
    "share_80plus": N_("share of people 80+"),
    "share_60plus": N_("share of people 60+"),
    "dependency_ratio": N_("dependency ratio: children under 15 and people 65+ per person of working age"),
    "share_poverty": N_("share of people in poverty (multidimensional poverty index, IPM, where the census gives it)"),
    "gap_minutes": N_("minutes to the nearest existing service, mean over the services (at most 60)"),
}
N_("households")  # a rate's base in the care-need section's source column
_CARE_PER_WORDS = {"household": N_("{group} per household"), "km2": N_("{group} per km²"),
                   "person": N_("{group} per person")}


def _care_indicator_words(name: str, L: Language) -> str:
    if name in _CARE_INDICATOR_WORDS:
        return L._(_CARE_INDICATOR_WORDS[name])
    group, _, per = name.rpartition("_per_")
    if group and per in _CARE_PER_WORDS:
        return L._(_CARE_PER_WORDS[per]).format(group=lower_first(group_label(group, L)))
    return name


def care_need_section(results) -> str:
    """The care-need index: its components in words with their source columns and weights,
    then its figures per census unit, per district and around each proposed site (tables of
    :mod:`careblocks.outputs.care_need`; people rounded, indices to two decimals)."""
    from careblocks.outputs.care_need import COMPONENT_COLUMNS, care_need_tables

    L = _lang(results)
    bases = {"person": L._("people"), "household": L._("households")}
    t = care_need_tables(results, name=lambda g: bases.get(g) or lower_first(group_label(g, L)))
    if t is None:
        return ""
    out = ["<h2>" + esc(L._("Care need")) + "</h2><p>" + esc(L._(
        "The care-need index runs from 0 (least need in the study area) to 1 (most). Each "
        "indicator is scaled from the lowest to the highest place of the study, a component is "
        "the mean of its indicators, and the index is the weighted mean of the components.")) + "</p>"]
    first = ~t.components["component"].duplicated().to_numpy()  # component and weight once
    cfg = results.config
    sources = [", ".join(styles.service_label(cfg, x) for x in cfg.service_names) if i == "gap_minutes"
               else str(src) for i, src in zip(t.components["indicator"], t.components["source"], strict=True)]
    comp = pd.DataFrame({
        L._("component"): [L._(_CARE_COMPONENT_WORDS.get(c, c)) if f else ""
                           for c, f in zip(t.components["component"], first, strict=True)],
        L._("indicator"): [_care_indicator_words(i, L) for i in t.components["indicator"]],
        L._("source columns"): sources,
        L._("weight"): [L.number(w, 2) if f else "" for w, f in zip(t.components["weight"], first, strict=True)],
    })
    out.append(_table(comp, L, cls="wide"))
    people, index = L._("people"), L._("care-need index")
    counts = [("children_under5", group_label("children_under5", L)), ("older_80plus", group_label("older_80plus", L)),
              ("women_caregivers", group_label("women_caregivers", L))]
    comps = [(col, L._(_CARE_COMPONENT_WORDS[c]).split(":")[0]) for c, col in COMPONENT_COLUMNS.items()]

    def figures(df: pd.DataFrame, first: str, names: list[str]) -> str:
        cols: dict[str, Any] = {first: names, people: [L.rounded(v) for v in df["people"]]}
        for c, label in counts:
            if c in df.columns:
                cols[label] = [L.rounded(v) for v in df[c]]
        kinds = {}
        for c, label in comps:
            if c in df.columns:
                cols[label] = df[c].to_numpy(float)
                kinds[label] = "share2"
        if "care_need_index" in df.columns:
            cols[index] = df["care_need_index"].to_numpy(float)
            kinds[index] = "share2"
        return _table(pd.DataFrame(cols), L, kinds, cls="wide")

    if t.units is not None and len(t.units):
        lead = L._("By census unit, highest need first (people-weighted means of the places where people live):")
        if t.n_units > len(t.units):
            lead += " " + L._("the {n} of {total} with the highest need; all are in the GeoPackage.").format(
                n=L.integer(len(t.units)), total=L.integer(t.n_units))
        out.append(f"<p>{esc(lead)}</p>" + figures(t.units, L._("census unit"), list(t.units.index.astype(str))))
    if t.districts is not None and len(t.districts):
        out.append("<p>" + esc(L._("By district, highest need first:")) + "</p>"
                   + figures(t.districts, L._("district"), list(t.districts.index.astype(str))))
    if t.sites is not None and len(t.sites):
        sel = results.selected.sort_values("order") if "order" in results.selected.columns else results.selected
        names = [f"{int(k)}. {site_name(r, L)}" for k, (_, r) in zip(t.sites["order"], sel.iterrows(), strict=True)]
        o = results.origins
        w = pd.to_numeric(o.get("census_total", o["population"]), errors="coerce").fillna(0).to_numpy(float)
        v = pd.to_numeric(o["care_need_index"], errors="coerce").to_numpy(float)
        ok = np.isfinite(v)
        mean = float((v[ok] * w[ok]).sum() / w[ok].sum()) if w[ok].sum() > 0 else float("nan")
        out.append("<p>" + esc(L._("Around the proposed Care Blocks (the people within reach of each site, "
                                   "each site on its own; the study area's mean index is {mean}):").format(
            mean=L.number(mean, 2))) + "</p>" + figures(t.sites, L._("site"), names))
    if t.formula:
        out.append('<p class="note">' + esc(L._("The formula of this run:")) + '</p><pre lang="en" class="note" style="white-space:pre-wrap">'
                   + esc(t.formula) + "</pre>")
    return "<section>" + "".join(out) + "</section>"


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


def _file_name(path: Any) -> str:
    """A file as people can find it among their data: its name, never this machine's path."""
    text = str(path)
    if text.startswith("pyrosm:"):
        return text
    return Path(text).name


_PATH = re.compile(r"(?<![\w:/.])(?:[A-Za-z]:)?(?:[\\/][^\\/\s:;,'\"()]+)+[\\/]([^\\/\s:;,'\"()]+)")


def _strip_paths(text: str) -> str:
    """A message with every absolute path shortened to its file name (no local folders in a
    document that is shared)."""
    return _PATH.sub(r"\1", text)


def _config_inputs(cfg, L: Language) -> list[tuple[str, str]]:
    items = []
    net = getattr(cfg, "network", None)
    if net is not None:
        if net.path:
            src = _file_name(net.path)
        elif net.place:
            src = str(net.place)
        else:
            src = L._("OpenStreetMap download")
        kind = {"osm": "OpenStreetMap", "road_layer": L._("road layer"),
                "download": L._("OpenStreetMap download")}.get(net.source, str(net.source))
        items.append((L._("Street network"), f"{kind}: {src}"))
    pop = getattr(cfg, "population", None)
    if pop is not None:
        kinds = {"buildings": L._("OpenStreetMap buildings"), "layer": L._("population layer"),
                 "streets": L._("spread along the streets"), "auto": L._("automatic"),
                 "census": L._("census counts spread over residential land")}
        items.append((L._("Population"), kinds.get(pop.source, str(pop.source))
                      + (f": {_file_name(pop.layer.path)}" if pop.layer else "")))
    census = getattr(cfg, "census", None)
    if census is not None and (census.layer or census.raster):
        items.append((L._("Census"), _file_name(census.layer.path if census.layer else census.raster)))
    for name, sc in (getattr(cfg, "services", {}) or {}).items():
        srcs = ([L._("OpenStreetMap tags") + " " + ", ".join(
            f"{k}={'|'.join(v) if isinstance(v, (list, tuple)) else v}" for k, v in sc.osm_tags.items())]
                if sc.use_osm else [])
        srcs += [_file_name(layer.path) for layer in sc.layers]
        items.append((L._("Service: {service}").format(service=styles.service_label(cfg, name)),
                      "; ".join(srcs)))
    tr = getattr(cfg, "transit", None)
    if tr is not None and tr.enabled:
        items.append((L._("Public transport timetables (GTFS)"), ", ".join(_file_name(f) for f in tr.feeds)))
    return items


def _method(results, L: Language) -> str:
    cfg = results.config
    walk, acc, tr, sites = cfg.walk, cfg.access, cfg.transit, cfg.sites
    from careblocks.network.cost import WalkCost
    speed = lambda v: L.number(v, 1 if not float(v).is_integer() else 0)  # noqa: E731
    profiles = ", ".join(f"{esc(profile_label(k, L))} {speed(v.speed_kmh)} km/h"
                         for k, v in WalkCost.profiles_from_config(walk).items())
    li = [
        L._("Walking speed {speed} km/h.").format(speed=speed(walk.speed_kmh))
        + (" " + L._("Other walking speeds: {profiles}.").format(profiles=profiles) if profiles else ""),
        L._("Travel time = walk from home to the nearest street + along the street network + from "
            "the street to the facility; points more than {metres} m from a street are flagged.")
        .format(metres=L.integer(walk.max_snap_m)),
        L._("Threshold {minutes}; equity tables at {thresholds} minutes.").format(
            minutes=L.minutes(acc.threshold_min),
            thresholds=L.join([L.number(t, 0 if float(t).is_integer() else 1)
                               for t in acc.equity_thresholds_min])),
    ]
    if tr.enabled:
        li.append(L._(
            "Public transport from the GTFS timetables of {date}, departures {start}–{end} every "
            "{step} min; the travel time reached on {percentile} % of the departures is used; at "
            "most {walk} min walking to a stop and {transfers} transfers."
        ).format(date=esc(L.date(tr.date)) if tr.date else "–", start=esc(tr.window_start),
                 end=esc(tr.window_end), step=tr.step_min, percentile=tr.report_percentile,
                 walk=L.integer(tr.max_walk_min), transfers=tr.max_transfers))
    else:
        li.append(L._("Public transport was not modelled (walking only)."))
    trips = [(styles.service_label(cfg, s), sc.trips_per_week) for s, sc in cfg.services.items()]
    trips_txt = ", ".join(f"{esc(lbl)} {L.smart(t)}" for lbl, t in trips if t is not None)
    if trips_txt:
        li.append(L._("Household trips per week (for caregiver hours returned): {trips}.").format(trips=trips_txt))
    w = cfg.care_index.weights
    if w:
        li.append(L._("Care-need index weights: {weights}.").format(
            weights=", ".join(f"{esc(k.replace('_', ' '))} {L.smart(v)}" for k, v in w.items())))
    if sites.enabled:
        objectives = {"gap_closed": L._("bring the most people within reach of services they lack"),
                      "hours_returned": L._("return the most caregiver hours"),
                      "population": L._("reach the most people")}
        methods = {"milp": L._("exact integer program"), "greedy": L._("greedy"),
                   "auto": L._("exact integer program, greedy for large studies")}
        txt = L._("Site selection: up to {k} sites ({method}), chosen to {objective}; each site "
                  "offers {offers}.").format(
            k=sites.k, method=methods.get(sites.method, esc(sites.method)),
            objective=objectives.get(sites.objective, esc(sites.objective)),
            offers=L.join([esc(lower_first(styles.service_label(cfg, s))) for s in sites.offers]))
        if sites.min_spacing_m:
            txt += " " + L._("Sites are at least {metres} m apart.").format(metres=L.integer(sites.min_spacing_m))
        li.append(txt)
    return "<ul>" + "".join(f"<li>{x}</li>" for x in li) + "</ul>"


#: one type family; A4 print without overflow (fixed table layout, wrapped cells)
_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",Arial,sans-serif;
color:#222;max-width:980px;margin:2em auto;padding:0 1em}
h1{font-size:28px;margin-bottom:.2em}
h2{font-size:20px;border-bottom:2px solid #ddd;margin-top:1.8em}
.sub{color:#666}
table{border-collapse:collapse;margin:.6em 0;font-size:13px;max-width:100%}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top;
overflow-wrap:break-word}
th:first-child,td:first-child,td.t{text-align:left}
thead th{background:#f3f3f3}
table.wide{table-layout:fixed;width:100%}
.kpi{display:flex;flex-wrap:wrap;gap:12px}
.kpi div{background:#f6f8fb;border-radius:6px;padding:8px 14px}
.kpi b{display:block;font-size:22px}
img{max-width:100%;height:auto}
.note{color:#555;font-size:13px}
@page{size:A4;margin:15mm}
@media print{body{margin:0;max-width:none;padding:0;font-size:11pt}
table{font-size:9pt;width:100%;table-layout:fixed}h2{page-break-after:avoid}
tr,img{page-break-inside:avoid}.kpi div{border:1px solid #ccc}}
"""


#: the stage a warning comes from (its ``stage:`` prefix) as a heading people read
_STAGE_WORDS = {
    "network": N_("Street network"), "transit": N_("Public transport"), "services": N_("Services"),
    "origins": N_("Where people live"), "population": N_("Where people live"),
    "census": N_("Where people live"), "demand": N_("Care need"), "care_need": N_("Care need"),
    "access": N_("Travel times"), "accessibility": N_("Supply against demand"),
    "sites": N_("Candidate sites"), "selection": N_("Site selection"), "sensitivity": N_("Robustness"),
    "outputs": N_("Outputs"),
}
_SEVERITY_WORDS = {"error": N_("error"), "warning": N_("warning"), "info": N_("information")}


def _audit_section(metadata: dict, L: Language) -> str:
    """The input audit as a table (every finding), then every warning of the run in full,
    grouped under the stage it comes from. Headings, columns and verdicts are in the report's
    language; the findings and warnings themselves name files, columns and config keys and
    stay as written (English, marked ``lang="en"``), with local folders removed."""
    audit = metadata.get("audit") or {}
    findings = audit.get("findings") or []
    parts = ["<h2>" + esc(L._("Input audit")) + "</h2>"]
    verdict = {"ok": L._("no problem found"), "warning": L._("warnings (below)"),
               "error": L._("errors")}.get(audit.get("verdict", ""), L._("not run"))
    parts.append("<p>" + esc(L._("Checks of the input files before the analysis: {verdict}.").format(
        verdict=verdict)) + "</p>")
    if findings:
        order = {"error": 0, "warning": 1, "info": 2}
        head = "".join(f"<th>{esc(L._(h))}</th>" for h in (N_("verdict"), N_("check"), N_("where"),
                                                             N_("finding")))
        rows = []
        for f in sorted(findings, key=lambda f: order.get(f["severity"], 3)):
            sev = _SEVERITY_WORDS.get(str(f["severity"]))
            cells = [f'<td class="t">{esc(L._(sev) if sev else str(f["severity"]))}</td>']
            cells += [f'<td class="t" lang="en">{esc(_strip_paths(str(f[k])))}</td>'
                      for k in ("check", "where", "message")]
            rows.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f'<table class="wide"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    warns = [w for w in (metadata.get("warnings") or []) if isinstance(w, str)]
    if warns:
        parts.append("<h3>" + esc(L._("All data-quality warnings")) + "</h3><p class=\"note\">"
                     + esc(L._("(technical messages for the analyst, in English)")) + "</p>")
        groups: dict[str, list[str]] = {}
        for w in warns:
            stage, sep, _ = w.partition(": ")
            key = L._(_STAGE_WORDS[stage]) if sep and stage in _STAGE_WORDS else L._("Other")
            groups.setdefault(key, []).append(w)
        for k, v in groups.items():
            parts.append(f"<p><b>{esc(k)}</b> ({L.integer(len(v))})</p><ul lang=\"en\">"
                         + "".join(f"<li>{esc(_strip_paths(x))}</li>" for x in v) + "</ul>")
    return "".join(parts)


def _text_is_text():
    """Labels from data are plain text in charts: no mathtext (a name with two ``$`` would
    otherwise be parsed as a formula, and crash the report when it is not one)."""
    import matplotlib

    return matplotlib.rc_context({"text.parse_math": False, "text.usetex": False})


def _charts(results, cov, minutes: str, services: list[str], L: Language) -> list[str]:
    cfg = results.config
    return [c for c in (
        _chart_times(results, L),
        _chart_groups_before_after(results, L),
        _chart_groups(results, cov, L._("Share within {minutes}, by group and service").format(minutes=minutes),
                      {styles.service_label(cfg, s): styles.service_color(s, services) for s in services}, L),
    ) if c]


def build_report(results) -> str:
    """The report as one HTML string, in ``outputs.language``."""
    L = _lang(results)
    cfg = results.config
    o = results.origins
    services = services_in(results)
    t = float(results.threshold_min)
    minutes = L.minutes(t)
    study = getattr(cfg.study, "label", "study")
    meta = normalized_metadata(results.metadata)
    date = L.date(run_date(meta))
    version = meta.get("version", "")
    pop = pd.to_numeric(o.get("population", pd.Series(0.0, index=o.index)), errors="coerce").fillna(0)
    out: list[str] = []
    heading = L._("Care Blocks: access to care in {study}").format(study=study)
    out.append(f"<h1>{esc(heading)}</h1>")
    out.append(f'<p class="sub">{esc(date)} · careblocks {esc(version)} · '
               + esc(L._("threshold {minutes}").format(minutes=minutes)) + "</p>")

    # summary
    cov = coverage_by_group(results)
    everyone = group_label("population", L)
    kpis = [(L._("people"), L.integer(pop.sum()))]
    if everyone in cov.index:
        for s in cov.columns:
            kpis.append((L._("within {minutes} of {service}").format(minutes=minutes, service=lower_first(s)),
                         L.percent(cov.loc[everyone, s])))
    col = all_within_column(results)
    if col and pop.sum() > 0:
        share = float(pop[o[col] >= len(services)].sum() / pop.sum())
        kpis.append((L._("with all {n} services within {minutes}").format(n=len(services), minutes=minutes),
                     L.percent(share)))
    out.append("<h2>" + esc(L._("Summary")) + "</h2><div class=\"kpi\">"
               + "".join(f"<div><b>{esc(v)}</b>{esc(k)}</div>" for k, v in kpis) + "</div>")

    # study area and data
    area_km2 = float(getattr(results.area, "area", 0.0)) / 1e6
    counts = (results.services["service"].astype(str).value_counts() if results.services is not None
              and len(results.services) else pd.Series(dtype=int))
    rows = [(L._("Study area"), f"{L.number(area_km2, 1)} km²"),
            (L._("Places where people live (origins)"), L.integer(len(o)))]
    # the network as read (the figures the terminal prints), not with the virtual nodes that
    # snapping homes and facilities onto streets adds to the arrays
    read = (meta.get("stats") or {}).get("network") or {}
    net = results.network
    if "nodes" in read and "edges" in read:
        nodes, segments = int(read["nodes"]), int(read["edges"])
    elif net is not None and hasattr(net, "indptr"):
        nodes, segments = len(net.indptr) - 1, len(net.indices) // 2
    else:
        nodes = segments = None
    if nodes is not None:
        rows.append((L._("Walking network"), L._("{nodes} junctions, {segments} street segments").format(
            nodes=L.integer(nodes), segments=L.integer(segments))))
    for s in services:
        rows.append((L._("Existing facilities: {service}").format(service=lower_first(styles.service_label(cfg, s))),
                     L.integer(int(counts.get(s, 0)))))
    rows += _config_inputs(cfg, L)
    out.append("<h2>" + esc(L._("Study area and data used")) + "</h2>"
               + _table(pd.DataFrame(rows, columns=[L._("item"), L._("value")]), L, cls="wide"))
    warn = meta.get("warning_counts") or {}
    if warn and not meta.get("warnings"):
        out.append("<p class=\"note\">" + esc(L._("Data-quality warnings during the run:")) + " "
                   + ", ".join(f"{esc(str(k).replace('_', ' '))}: {esc(v)}" for k, v in warn.items()) + "</p>")
    out.append(_audit_section(results.metadata or {}, L))

    # who is underserved
    mode_now = equity_parts(results)[2]
    mode_ba = equity_parts(results, common=True)[2]
    lead = L._("Share of each group living within {minutes} of each service").format(minutes=minutes)
    if mode_now:
        lead += f" ({_mode_label(mode_now, L)})"
    out.append("<h2>" + esc(L._("Who is underserved")) + f"</h2><p>{esc(lead)}. "
               f"" + esc(L._("Low shares mark the gaps.")) + "</p>")
    group_col = L._("group")
    out.append(_table(cov.reset_index(names=group_col), L, {c: "pct" for c in cov.columns}))
    dist = coverage_by_district(results)
    if dist is not None:
        people = L._("people")
        dist = dist.rename(columns={"people": people})
        out.append("<p>" + esc(L._("By district (everyone), least served first:")) + "</p>"
                   + _table(dist.reset_index(names=L._("district")), L,
                            {c: "pct" for c in dist.columns if c != people}))

    out.append(care_need_section(results))

    # proposed sites
    sel = results.selected
    if sel is not None and len(sel):
        s2 = (sel.sort_values("order") if "order" in sel else sel).reset_index(drop=True)
        site_col, kind_col, why_col = L._("site"), L._("type"), L._("why")
        table = pd.DataFrame({
            "#": [int(v) for v in (s2["order"] if "order" in s2 else range(1, len(s2) + 1))],
            site_col: [site_name(r, L) for _, r in s2.iterrows()],
            kind_col: [category_label(r.get("category"), L) for _, r in s2.iterrows()],
        })
        if "rationale" in s2.columns:
            table[why_col] = s2["rationale"].astype(str).to_numpy()
        out.append("<h2>" + esc(L._("Proposed Care Blocks")) + "</h2><p>"
                   + esc(L._("In the order they were chosen; each adds what the sites before it "
                             "did not already cover.")) + "</p>")
        out.append(_table(table, L, {"#": "num"}))
        sens = results.sensitivity
        if sens is not None and len(sens):
            from careblocks.sites.sensitivity import robustness_sentence

            sentence = robustness_sentence(sens, L.code)
            if sentence:
                out.append("<p><b>" + esc(L._("How robust:")) + f"</b> {esc(sentence)}</p>")
        fig = _site_map(results, L)
        if fig:
            out.append(f"<p>{fig}</p>")
        cand = results.candidates
        if cand is not None and len(cand) and "candidate_id" in s2:
            lab = lambda s: styles.service_label(cfg, s)  # noqa: E731
            comps = [(c, component_label(c, L, lab)) for c in cand.columns
                     if c in s2.columns or c in cand.columns]
            comps = [(c, n) for c, n in comps if n and pd.api.types.is_numeric_dtype(cand[c])]
            ids = s2["candidate_id"].astype(str).tolist()
            sub = pd.DataFrame(cand[cand["candidate_id"].astype(str).isin(ids)])
            if len(sub) and comps:
                sub = sub.set_index(sub["candidate_id"].astype(str)).loc[ids]
                comp = pd.DataFrame({L._("site {n}").format(n=i): [
                    float(sub.iloc[i - 1][c]) for c, _ in comps] for i in range(1, len(ids) + 1)})
                comp.insert(0, L._("score component"), [n for _, n in comps])
                out.append("<p>" + esc(L._("Score components of the proposed sites (numbers as in the table above):")) + "</p>"
                           + _table(comp, L, cls="wide" if len(ids) > 6 else ""))
            scored = L._("{n} candidate sites were scored.").format(n=L.integer(len(cand)))
            out.append(f'<p class="note">{esc(scored)}</p>')

    out.append(curve_section(results))

    ba = before_after(results)
    if ba is not None:
        lead = L._("Share within {minutes} today and with the proposed Care Blocks").format(minutes=minutes)
        if mode_ba:
            lead += f" ({_mode_label(mode_ba, L)})"
        ba = ba.rename(columns={"group": group_col, "service": L._("service"), "today": L._("today"),
                                "with Care Blocks": L._("with the Care Blocks"), "change": L._("change")})
        out.append("<h2>" + esc(L._("Before and after")) + f"</h2><p>{esc(lead)}.</p>")
        out.append(_table(ba, L, {L._("today"): "pct", L._("with the Care Blocks"): "pct",
                                  L._("change"): "pp"}))

    # charts
    charts = _charts(results, cov, minutes, services, L)
    if charts:
        out.append("<h2>" + esc(L._("Charts")) + "</h2>" + "".join(f"<p>{c}</p>" for c in charts))

    out.append("<h2>" + esc(L._("Method and assumptions")) + "</h2>" + _method(results, L))
    out.append(
        "<h2>" + esc(L._("Data sources and licences")) + "</h2><ul><li>"
        + esc(L._("Map data © OpenStreetMap contributors, available under the Open Database Licence "
                  "(ODbL 1.0), https://www.openstreetmap.org/copyright. Derived layers (network, "
                  "facilities from OSM) are shared under the same licence."))
        + "</li><li>"
        + esc(L._("Other layers keep the licence of their publisher (census, facility lists, GTFS "
                  "feeds); check it before publishing the outputs."))
        + "</li></ul>"
    )
    digests = meta.get("input_digests") or {}
    if digests:
        out.append("<p>" + esc(L._("Input files and their SHA-256 digests:")) + "</p>" + _table(
            pd.DataFrame([(_file_name(k), str(v).removeprefix("sha256:")) for k, v in sorted(digests.items())],
                         columns=[L._("file"), L._("digest")]), L, cls="wide"))
    out.append('<p class="note">' + esc(L._("This report is HTML only: to get a PDF, print it from a web "
                                            "browser (the page has print styles for A4).")) + "</p>")
    title = L._("Care Blocks report: {study}").format(study=study)
    return (f'<!DOCTYPE html><html lang="{L.code}"><head><meta charset="utf-8"/>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"/>'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(out) + "</body></html>\n")


def write_report(results, path: str | os.PathLike[str]) -> Path:
    """Write the self-contained HTML report of a run, atomically, and return its path."""
    return write_text_atomic(path, build_report(results))
