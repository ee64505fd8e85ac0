"""Two runs side by side: ``careblocks compare RUN_A RUN_B``.

A council compares scenarios: 5 blocks against 8, walking speed against a carer's with a
stroller. :func:`compare_runs` reads the two GeoPackages the runs wrote and returns one table
of the figures a council reads (people, shares within T per service with the proposed blocks,
people newly within reach, first access, caregiver hours, robustness, seats per child);
:func:`write_comparison` writes that table as CSV, a self-contained HTML page with the table
and a map of both proposals (inline SVG drawn from the data, no tiles, every text escaped) and
a GeoPackage with the sites and catchments of both runs (``sites_a``, ``sites_b``,
``catchments_a``, ``catchments_b``, the ``comparison`` table) for QGIS.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from careblocks.errors import InputDataError

__all__ = ["compare_runs", "read_run", "write_comparison"]


def _gpkg(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "careblocks.gpkg"
    if not p.is_file():
        raise InputDataError(
            f"{p}: no careblocks GeoPackage here; give a run's output folder (--out DIR of "
            "careblocks run) or its careblocks.gpkg"
        )
    return p


def read_run(path: str | os.PathLike[str]) -> dict:
    """The layers of a run's GeoPackage that a comparison needs (missing ones are None)."""
    import pyogrio

    p = _gpkg(path)
    try:
        names = {str(n) for n, _ in pyogrio.list_layers(p)}
    except Exception as exc:  # not a GeoPackage at all
        raise InputDataError(f"{p}: cannot be read as a GeoPackage ({exc}); give a careblocks.gpkg") from None
    if "origins" not in names or "run_metadata" not in names:
        raise InputDataError(f"{p}: not a careblocks run (no origins or run_metadata layer); give a careblocks.gpkg")
    out: dict = {"path": p}
    for layer in ("origins", "selected_sites", "catchments"):
        out[layer] = pyogrio.read_dataframe(p, layer=layer) if layer in names else None
    for layer in ("equity", "sensitivity", "run_metadata"):
        out[layer] = pyogrio.read_dataframe(p, layer=layer, read_geometry=False) if layer in names else None
    meta = out["run_metadata"].set_index("key")["value"].to_dict()
    out["meta"] = {k: json.loads(v) for k, v in meta.items() if isinstance(v, str) and v[:1] in "{[\"0123456789tfn-"}
    return out


def _config(run: dict) -> dict:
    cfg = run["meta"].get("config") or {}
    return cfg if isinstance(cfg, dict) else {}


def _share_with_sites(run: dict, service: str, threshold: float) -> tuple[float, float]:
    eq = run["equity"]
    if eq is None or "scenario" not in eq.columns:
        return np.nan, np.nan
    m = (eq["service"] == service) & (eq["group"] == "population") & (eq["district"] == "all") \
        & np.isclose(eq["threshold_min"].astype(float), threshold)
    if "mode" in eq.columns:
        m &= eq["mode"] == "walk"
    now = eq[m & (eq["scenario"] == "current")]["share_within"]
    after = eq[m & (eq["scenario"] == "with_sites")]["share_within"]
    return (float(now.iloc[0]) if len(now) else np.nan, float(after.iloc[0]) if len(after) else np.nan)


def _figures(run: dict) -> dict[str, float | str]:
    cfg = _config(run)
    o = run["origins"]
    sel = run["selected_sites"]
    threshold = float((cfg.get("access") or {}).get("threshold_min", 15.0))
    sites_t = (cfg.get("sites") or {}).get("threshold_min")
    t_sites = float(sites_t) if sites_t is not None else threshold
    f: dict[str, float | str] = {
        "study": str(run["meta"].get("study", "")),
        "walking speed (km/h)": float((cfg.get("walk") or {}).get("speed_kmh", np.nan)),
        "threshold (min)": threshold,
        "people": float(pd.to_numeric(o["population"], errors="coerce").sum()),
        "Care Blocks proposed": float(len(sel)) if sel is not None else 0.0,
    }
    if sel is not None and len(sel):
        for col, label in (("new_population_covered", f"people newly within {t_sites:g} min of a block"),
                           ("new_hours_returned_week", "caregiver hours returned a week (trips made today)")):
            if col in sel.columns:
                f[label] = float(sel[col].sum())
        first = [c for c in sel.columns if c.startswith("new_first_access_")]
        if first:
            f["people gaining first access (person-services)"] = float(sel[first].to_numpy(float).sum())
    services = [s for s in (cfg.get("services") or {}) if f"walk_min_{s}" in o.columns]
    for s in services:
        now, after = _share_with_sites(run, s, threshold)
        f[f"{s}: share within {threshold:g} min today"] = now
        f[f"{s}: share within {threshold:g} min with the blocks"] = after
        if f"fca_{s}" in o.columns:
            pop = pd.to_numeric(o["population"], errors="coerce").fillna(0).to_numpy(float)
            fca = pd.to_numeric(o[f"fca_{s}"], errors="coerce").fillna(0).to_numpy(float)
            f[f"{s}: capacity per 1,000 people in need (2SFCA, mean over people)"] = \
                float(1000 * (pop * fca).sum() / pop.sum()) if pop.sum() > 0 else np.nan
    sens = run["sensitivity"]
    if sens is not None and len(sens) and "order" in sens.columns:
        proposed = sens[sens["order"].notna()]
        if len(proposed):
            f["lowest share of weightings choosing a proposed site"] = float(proposed["selected_share"].min())
    return f


def compare_runs(run_a: str | os.PathLike[str], run_b: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per figure, columns ``figure``, ``A``, ``B`` and ``B - A`` (numbers only)."""
    a, b = read_run(run_a), read_run(run_b)
    fa, fb = _figures(a), _figures(b)
    rows = []
    for k in list(dict.fromkeys([*fa, *fb])):
        va, vb = fa.get(k, np.nan), fb.get(k, np.nan)
        diff = (vb - va) if isinstance(va, float) and isinstance(vb, float) else None
        rows.append({"figure": k, "A": va, "B": vb, "B - A": diff})
    out = pd.DataFrame(rows)
    out.attrs["runs"] = (a, b)
    return out


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) < 1 and v != 0:
        return f"{v:.3f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"


_COLORS = ("#2b83ba", "#d7191c")


def _svg_map(runs, width: int = 640, height: int = 480) -> str:
    """Both proposals drawn from their catchments and sites (projected to a local CRS)."""
    import geopandas as gpd

    parts = []
    for i, run in enumerate(runs):
        for layer in ("catchments", "selected_sites"):
            g = run[layer]
            if g is not None and len(g):
                parts.append((i, layer, g))
    if not parts:
        return "<p>No proposed sites to draw.</p>"
    allg = pd.concat([g.geometry.to_crs(4326) for _, _, g in parts])
    crs = gpd.GeoSeries(allg, crs=4326).estimate_utm_crs()
    proj = [(i, layer, g.to_crs(crs)) for i, layer, g in parts]
    x0, y0, x1, y1 = pd.concat([g.geometry for _, _, g in proj]).total_bounds
    span = max(x1 - x0, y1 - y0, 1.0) * 1.05
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = min(width, height) / span

    def pt(x, y):
        return (width / 2 + (x - cx) * scale, height / 2 - (y - cy) * scale)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="Proposed Care Blocks of runs A and B">',
           f'<rect width="{width}" height="{height}" fill="#f7f7f7"/>']
    for i, layer, g in proj:
        col = _COLORS[i]
        if layer == "catchments":
            for geom in g.geometry:
                if geom is None or geom.is_empty:
                    continue
                polys = getattr(geom, "geoms", [geom])
                for poly in polys:
                    if not hasattr(poly, "exterior"):
                        continue
                    d = " ".join(f"{a:.1f},{b:.1f}" for a, b in (pt(x, y) for x, y in poly.exterior.coords))
                    out.append(f'<polygon points="{d}" fill="{col}" fill-opacity="0.15" stroke="{col}" '
                               'stroke-width="1"/>')
        else:
            orders = g["order"].tolist() if "order" in g.columns else list(range(1, len(g) + 1))
            names = g["name"].tolist() if "name" in g.columns else [None] * len(g)
            for geom, o, n in zip(g.geometry, orders, names, strict=True):
                if geom is None or geom.is_empty:
                    continue
                px, py = pt(geom.centroid.x, geom.centroid.y)
                label = html.escape(f"{'AB'[i]}{int(o)}" + (f": {n}" if isinstance(n, str) and n else ""))
                out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" fill="{col}" stroke="#fff" '
                           f'stroke-width="1.5"><title>{label}</title></circle>')
                out.append(f'<text x="{px + 8:.1f}" y="{py + 4:.1f}" font-size="11" fill="{col}">'
                           f'{html.escape("AB"[i] + str(int(o)))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def write_comparison(table: pd.DataFrame, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``compare.csv``, ``compare.html`` and ``compare.gpkg`` into ``out_dir``
    (each atomically); returns the paths."""
    import geopandas as gpd
    import pyogrio

    from careblocks.outputs._atomic import atomic_path, write_text_atomic
    from careblocks.outputs._common import sanitize_frame

    a, b = table.attrs["runs"]
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    written = [write_text_atomic(d / "compare.csv", table.to_csv(index=False))]
    head = (f"<p><b>A</b>: {html.escape(str(a['path']))}<br/><b>B</b>: {html.escape(str(b['path']))}</p>")
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in ("figure", "A", "B", "B - A")) + "</tr>"
        for _, r in table.iterrows()
    )
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/><title>Care Blocks: two runs "
            "compared</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
            "td:not(:first-child){text-align:right}</style></head><body>"
            "<h1>Two runs compared</h1>" + head +
            "<table><tr><th>figure</th><th>A</th><th>B</th><th>B - A</th></tr>" + rows + "</table>"
            "<h2>Map</h2><p>Proposed Care Blocks and their catchments: "
            f"<span style=\"color:{_COLORS[0]}\">A</span> and <span style=\"color:{_COLORS[1]}\">B</span>.</p>"
            + _svg_map((a, b)) + "</body></html>\n")
    written.append(write_text_atomic(d / "compare.html", page))
    with atomic_path(d / "compare.gpkg") as tmp:
        for key, tag in (("selected_sites", "sites"), ("catchments", "catchments")):
            for run, suffix in ((a, "a"), (b, "b")):
                g = run[key]
                if g is None or not len(g):
                    continue
                pyogrio.write_dataframe(sanitize_frame(gpd.GeoDataFrame(g)), tmp, layer=f"{tag}_{suffix}",
                                        driver="GPKG")
        # exact numbers in A / B / B - A; text figures (the study names) in A_text / B_text
        t = pd.DataFrame({"figure": table["figure"]})
        for c in ("A", "B"):
            t[c] = pd.to_numeric(table[c].map(lambda v: None if isinstance(v, str) else v), errors="coerce")
            t[f"{c}_text"] = table[c].map(lambda v: v if isinstance(v, str) else None)
        t["B - A"] = pd.to_numeric(table["B - A"], errors="coerce")
        pyogrio.write_dataframe(t, tmp, layer="comparison", driver="GPKG")
    written.append(d / "compare.gpkg")
    return written
