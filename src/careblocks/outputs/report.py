"""The report for decision makers: one self-contained ``report.html`` (charts embedded as PNG).

Sections: summary, study area and data, who is underserved (by care group and district),
proposed Care Blocks with their rationale, before / after, charts, method and assumptions
(from the config), data sources and licences. No PDF: the Python libraries that render
HTML to PDF well (WeasyPrint) need system libraries (Pango); print the HTML from a browser
instead (the page has print styles).
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careblocks.columns import CENSUS_GROUPS, group_label, threshold_tag
from careblocks.demand.equity import share_within
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


def _fmt(v: Any, kind: str = "num") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA:
        return "–"
    if kind == "pct":
        return f"{100 * float(v):.0f}%"
    if kind == "pp":
        return f"{100 * float(v):+.0f} pts"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f"{f:,.0f}" if abs(f) >= 100 else f"{f:,.3g}"
    return esc(v)


def _table(df: pd.DataFrame, kinds: dict[str, str] | None = None, *, index: bool = False) -> str:
    kinds = kinds or {}
    d = df.reset_index() if index else df
    head = "".join(f"<th>{esc(c)}</th>" for c in d.columns)
    body = []
    for _, row in d.iterrows():
        cells = "".join(
            f'<td class="t">{esc(row[c])}</td>' if isinstance(row[c], str)
            else f"<td>{_fmt(row[c], kinds.get(c, 'num'))}</td>"
            for c in d.columns
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _text_is_text():
    """Labels from data are plain text in charts: no mathtext (a name with two ``$`` would
    otherwise be parsed as a formula, and crash the report when it is not one)."""
    import matplotlib

    return matplotlib.rc_context({"text.parse_math": False, "text.usetex": False})


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="chart" src="data:image/png;base64,{data}"/>'


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


def _mode_label(mode: str) -> str:
    if mode == "best":
        return "walking or public transport, whichever is faster"
    if mode == "transit":
        return "public transport"
    if mode.startswith("walk_"):
        return f"walking, {mode[5:].replace('_', ' ')} speed"
    return "walking" if mode == "walk" else mode


def coverage_by_group(results, equity: pd.DataFrame | None = None) -> pd.DataFrame:
    """Share of each group within T of each service (rows: groups, columns: service labels)."""
    t = float(results.threshold_min)
    services = services_in(results)
    labels = {s: styles.service_label(results.config, s) for s in services}
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
            piv.index = [group_label(g) for g in piv.index]
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
            row[labels[s]] = share_within(v, w, t)
        rows[group_label(g)] = row
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
    piv = piv.rename(columns={s: styles.service_label(results.config, s) for s in services})
    piv.insert(0, "people", people.reindex(piv.index))
    return piv.sort_values(piv.columns[1] if piv.shape[1] > 1 else "people")


def before_after(results) -> pd.DataFrame | None:
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


# --------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------


def _chart_times(results) -> str | None:
    with _text_is_text():
        return _draw_times(results)


def _draw_times(results) -> str | None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    o = results.origins
    w_all = pd.to_numeric(o.get("population", pd.Series(1.0, index=o.index)), errors="coerce").fillna(0)
    services = services_in(results)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    drawn = False
    t = float(results.threshold_min)
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
        x = v[ok][order]
        y = np.cumsum(w[ok][order]) / w.sum()
        ax.step(x, y, where="post", color=styles.service_color(s, services),
                label=styles.service_label(results.config, s))
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.axvline(t, color="#444", ls="--", lw=1)
    ax.text(t, 0.02, f" {threshold_tag(t)} min", fontsize=8)
    ax.set_xlim(0, max(3 * t, 10))
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("minutes to the nearest facility")
    ax.set_ylabel("share of people within")
    ax.set_title("How far people live from each service")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def _chart_groups(cov: pd.DataFrame, title: str, colors: dict[str, str]) -> str | None:
    with _text_is_text():
        return _draw_groups(cov, title, colors)


def _draw_groups(cov: pd.DataFrame, title: str, colors: dict[str, str]) -> str | None:
    if cov is None or cov.empty:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(cov) * max(1, len(cov.columns)) / 2 + 1.4))
    n = len(cov.columns)
    h = 0.8 / max(n, 1)
    y = np.arange(len(cov))
    for i, s in enumerate(cov.columns):
        ax.barh(y + i * h, cov[s].astype(float).fillna(0).to_numpy(), height=h, label=s,
                color=colors.get(s, plt.cm.tab10(i % 10)))
    ax.set_yticks(y + h * (n - 1) / 2, [str(g) for g in cov.index])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


#: what the curve's share measures, per ``sites.objective``, in a council's words
_OBJECTIVE_WORDS = {
    "gap_closed": "share of today's care gaps closed",
    "population": "share of people within reach",
    "hours_returned": "share of caregiver hours that could be returned",
}


def _chart_curve(curve: pd.DataFrame, chosen_k: int | None, ylabel: str) -> str | None:
    """People within reach and hours returned against the number of Care Blocks."""
    if curve is None or curve.empty:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    k = curve["k"].to_numpy()
    share = curve["covered_share"].to_numpy(float)
    exact = curve["exact"].to_numpy(bool)
    ax.plot(k, share, color="#1b7837", lw=1.5)
    ax.scatter(k[exact], share[exact], color="#1b7837", s=16, label="proven optimal", zorder=3)
    if (~exact).any():
        ax.scatter(k[~exact], share[~exact], facecolors="white", edgecolors="#1b7837", s=16,
                   label="best found (gap in the table)", zorder=3)
    if chosen_k:
        ax.axvline(chosen_k, color="#444", ls="--", lw=1)
        ax.text(chosen_k, 0.03, f" proposed: {chosen_k}", fontsize=8)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("number of new Care Blocks")
    ax.set_ylabel(ylabel)
    ax.set_title("What each additional Care Block adds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def curve_section(results) -> str:
    """The coverage curve: a sentence on diminishing returns, the chart and the table."""
    curve = (results.extra or {}).get("coverage_curve")
    if curve is None or len(curve) == 0:
        return ""
    c = pd.DataFrame(curve).sort_values("k")
    chosen = len(results.selected) if results.selected is not None else None
    out = ["<h2>How many Care Blocks?</h2>"]
    first, last = c.iloc[0], c.iloc[-1]
    half = c[c["covered_share"] >= 0.5 * float(last["covered_share"])]
    words = _OBJECTIVE_WORDS.get(str(c["objective"].iloc[0]), "share of the objective covered")
    sentence = (f"Measured as the {words}: one block reaches {_fmt(first['covered_share'], 'pct')}; "
                f"{int(last['k'])} reach {_fmt(last['covered_share'], 'pct')}")
    if len(half):
        sentence += (f", and half of that is already reached with {int(half.iloc[0]['k'])}")
    n_exact = int(c["exact"].sum())
    sentence += (f". {n_exact} of the {len(c)} points are proven optimal"
                 + ("" if n_exact == len(c) else "; the others are the best found, within the gap shown")
                 + ".")
    out.append(f"<p>{esc(sentence)}</p>")
    words = _OBJECTIVE_WORDS.get(str(c["objective"].iloc[0]), "share of the objective covered")
    chart = _chart_curve(c, chosen, words)
    if chart:
        out.append(f"<p>{chart}</p>")
    tab = pd.DataFrame({
        "blocks": c["k"].astype(int),
        words: c["covered_share"],
        "people within reach": c["people_within"],
        "caregiver hours a week": c["hours_returned_week"],
        "answer": ["optimal" if e else f"within {g:.2%}" if g is not None and np.isfinite(g) else "best found"
                   for e, g in zip(c["exact"], c["gap"].astype(float), strict=True)],
    })
    out.append(_table(tab, {words: "pct"}))
    return "".join(out)


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


def _config_inputs(cfg) -> list[tuple[str, str]]:
    items = []
    net = getattr(cfg, "network", None)
    if net is not None:
        src = net.path or net.place or "OpenStreetMap download"
        items.append(("Street network", f"{net.source}: {src}"))
    pop = getattr(cfg, "population", None)
    if pop is not None:
        items.append(("Population", f"{pop.source}" + (f": {pop.layer.path}" if pop.layer else "")))
    census = getattr(cfg, "census", None)
    if census is not None and (census.layer or census.raster):
        items.append(("Census", str(census.layer.path if census.layer else census.raster)))
    for name, sc in (getattr(cfg, "services", {}) or {}).items():
        srcs = (["OpenStreetMap tags " + ", ".join(f"{k}={v}" for k, v in sc.osm_tags.items())]
                if sc.use_osm else [])
        srcs += [str(layer.path) for layer in sc.layers]
        items.append((f"Service: {sc.label or name}", "; ".join(srcs)))
    tr = getattr(cfg, "transit", None)
    if tr is not None and tr.enabled:
        items.append(("GTFS feeds", ", ".join(str(f) for f in tr.feeds)))
    return items


def _method(results) -> str:
    cfg = results.config
    walk, acc, tr, sites = cfg.walk, cfg.access, cfg.transit, cfg.sites
    from careblocks.network.cost import WalkCost
    from careblocks.network.profiles import describe_profile

    base, profiles = WalkCost.from_config(walk), WalkCost.profiles_from_config(walk)
    li = [
        f"Walking speed {describe_profile(base)}"
        + ("; carer profiles: " + "; ".join(f"{k} {describe_profile(v)}" for k, v in profiles.items())
           if profiles else "") + ". Times are for the trip from home to the service.",
        f"Travel time = walk from home to the nearest street + along the street network + from the "
        f"street to the facility; points more than {walk.max_snap_m:g} m from a street are flagged.",
        f"Threshold {threshold_tag(acc.threshold_min)} minutes; equity tables at "
        + ", ".join(threshold_tag(t) for t in acc.equity_thresholds_min) + " minutes.",
    ]
    if tr.enabled:
        li.append(
            f"Public transport from GTFS on {tr.date}, departures {tr.window_start}–{tr.window_end} "
            f"every {tr.step_min} min; the p{tr.report_percentile} travel time over the window is used; "
            f"at most {tr.max_walk_min:g} min walking to a stop and {tr.max_transfers} transfers."
        )
    else:
        li.append("Public transport was not modelled (walking only).")
    trips = [(styles.service_label(cfg, s), sc.trips_per_week) for s, sc in cfg.services.items()]
    trips_txt = ", ".join(f"{lbl} {t:g}" for lbl, t in trips if t is not None)
    if trips_txt:
        li.append(f"Household trips per week (for caregiver hours returned): {trips_txt}.")
    w = cfg.care_index.weights
    li.append("Care-need index weights: " + ", ".join(f"{k} {v:g}" for k, v in w.items()) + ".")
    if sites.enabled:
        li.append(
            f"Site selection: up to {sites.k} sites, method {sites.method}, objective "
            f"{sites.objective.replace('_', ' ')}; each site offers "
            + ", ".join(styles.service_label(cfg, s) for s in sites.offers)
            + ("; score weights " + ", ".join(f"{k} {v:g}" for k, v in sites.weights.items())
               if sites.weights else "")
            + (f"; at least {sites.min_spacing_m:g} m apart" if sites.min_spacing_m else "") + "."
        )
    # plain text items, escaped here and only here
    return "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in li) + "</ul>"


_CSS = """
body{font:15px/1.5 Georgia,'Times New Roman',serif;color:#222;max-width:980px;margin:2em auto;padding:0 1em}
h1{font:bold 28px Arial,Helvetica,sans-serif;margin-bottom:.2em}
h2{font:bold 20px Arial,Helvetica,sans-serif;border-bottom:2px solid #ddd;margin-top:1.8em}
.sub{color:#666;font-family:Arial,sans-serif}
table{border-collapse:collapse;margin:.6em 0;font:13px Arial,Helvetica,sans-serif}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child,td.t{text-align:left}
thead th{background:#f3f3f3}
.kpi{display:flex;flex-wrap:wrap;gap:12px}
.kpi div{background:#f6f8fb;border-radius:6px;padding:8px 14px;font-family:Arial,sans-serif}
.kpi b{display:block;font-size:22px}
img{max-width:100%}
.note{color:#555;font-size:13px}
@media print{body{margin:0;max-width:none}h2{page-break-after:avoid}table,img{page-break-inside:avoid}}
"""


def _audit_section(metadata: dict) -> str:
    """The input audit as a table (every finding), then every warning of the run in full."""
    audit = metadata.get("audit") or {}
    findings = audit.get("findings") or []
    parts = ["<h2>Input audit</h2>"]
    verdict = {"ok": "no problem found", "warning": "warnings (below)",
               "error": "errors"}.get(audit.get("verdict", ""), "not run")
    parts.append(f"<p>Checks of the input files before the analysis: {esc(verdict)}.</p>")
    if findings:
        order = {"error": 0, "warning": 1, "info": 2}
        rows = [(f["severity"], f["check"], f["where"], f["message"])
                for f in sorted(findings, key=lambda f: order.get(f["severity"], 3))]
        parts.append(_table(pd.DataFrame(rows, columns=["verdict", "check", "where", "finding"])))
    warns = metadata.get("warnings") or []
    if warns:
        parts.append("<h3>All data-quality warnings</h3><ul>"
                     + "".join(f"<li>{esc(w)}</li>" for w in warns) + "</ul>")
    return "".join(parts)


def build_report(results) -> str:
    """The report as one HTML string."""
    cfg = results.config
    o = results.origins
    services = services_in(results)
    t = float(results.threshold_min)
    tag = threshold_tag(t)
    study = getattr(cfg.study, "name", "study")
    meta = normalized_metadata(results.metadata)
    date = run_date(meta)
    version = meta.get("version", "")
    pop = pd.to_numeric(o.get("population", pd.Series(0.0, index=o.index)), errors="coerce").fillna(0)
    out: list[str] = []
    out.append(f"<h1>Care Blocks: access to care in {esc(study)}</h1>")
    out.append(f'<p class="sub">{esc(date)} · careblocks {esc(version)} · threshold {tag} minutes</p>')

    # summary
    cov = coverage_by_group(results)
    kpis = [("people", f"{pop.sum():,.0f}")]
    if "Everyone" in cov.index:
        for s in cov.columns:
            kpis.append((f"within {tag} min of {s.lower()}", _fmt(cov.loc["Everyone", s], "pct")))
    col = all_within_column(results)
    if col and pop.sum() > 0:
        share = float(pop[o[col] >= len(services)].sum() / pop.sum())
        kpis.append((f"with all {len(services)} services within {tag} min", _fmt(share, "pct")))
    out.append('<h2>Summary</h2><div class="kpi">'
               + "".join(f"<div><b>{esc(v)}</b>{esc(k)}</div>" for k, v in kpis) + "</div>")

    # study area and data
    area_km2 = float(getattr(results.area, "area", 0.0)) / 1e6
    counts = (results.services["service"].astype(str).value_counts() if results.services is not None
              and len(results.services) else pd.Series(dtype=int))
    rows = [("Study area", f"{area_km2:,.1f} km² (working CRS {results.crs})"),
            ("Origins (where people live)", f"{len(o):,}")]
    net = results.network
    if net is not None and hasattr(net, "indptr"):
        rows.append(("Walking network", f"{len(net.indptr) - 1:,} nodes, {len(net.indices) // 2:,} street segments"))
    for s in services:
        rows.append((f"Existing {styles.service_label(cfg, s).lower()} facilities", f"{int(counts.get(s, 0)):,}"))
    rows += _config_inputs(cfg)
    out.append("<h2>Study area and data used</h2>"
               + _table(pd.DataFrame(rows, columns=["item", "value"])))
    warn = meta.get("warning_counts") or {}
    full = [w for w in (meta.get("warnings") or []) if isinstance(w, str)]
    if full:
        out.append(f"<h3>Data-quality warnings ({len(full)})</h3><p>Problems in the input data "
                   "that did not stop the run, each naming the file or setting and what was "
                   "dropped:</p><ul>" + "".join(f"<li>{esc(w)}</li>" for w in full) + "</ul>")
    elif warn:
        out.append('<p class="note">Data-quality warnings during the run: '
                   + ", ".join(f"{esc(k)}: {esc(v)}" for k, v in warn.items()) + ".</p>")
    out.append(_audit_section(results.metadata or {}))

    # who is underserved
    mode_now = equity_parts(results)[2]
    mode_ba = equity_parts(results, common=True)[2]
    out.append(f"<h2>Who is underserved</h2><p>Share of each group living within {tag} minutes "
               + (f"({esc(_mode_label(mode_now))}) " if mode_now else "")
               + "of each service. Low shares mark the gaps.</p>")
    out.append(_table(cov.reset_index(names="group"), {c: "pct" for c in cov.columns}))
    dist = coverage_by_district(results)
    if dist is not None:
        out.append("<p>By district (everyone), least served first:</p>"
                   + _table(dist.reset_index(names="district"), {c: "pct" for c in dist.columns if c != "people"}))

    # proposed sites
    sel = results.selected
    if sel is not None and len(sel):
        s2 = sel.sort_values("order") if "order" in sel else sel
        keep = [c for c in ("order", "candidate_id", "name", "kind", "score", "marginal_gain",
                            "cumulative_coverage", "rationale") if c in s2.columns]
        out.append("<h2>Proposed Care Blocks</h2><p>In the order they were chosen; each adds the "
                   "marginal gain shown to those chosen before it.</p>")
        out.append(_table(pd.DataFrame(s2[keep]).reset_index(drop=True)))
        sens = (getattr(results, "extra", None) or {}).get("sensitivity")
        if sens is not None and len(sens):
            from careblocks.sites.sensitivity import robustness_sentence

            sentence = robustness_sentence(sens)
            if sentence:
                out.append(f"<p><b>How robust:</b> {esc(sentence)}</p>")
        cand = results.candidates
        if cand is not None and len(cand):
            skip = {"candidate_id", "kind", "category", "name", "rank", "node", "snap_m",
                    cand.geometry.name}
            comps = [c for c in cand.columns if c not in skip and pd.api.types.is_numeric_dtype(cand[c])]
            ids = s2["candidate_id"].astype(str).tolist() if "candidate_id" in s2 else []
            sub = pd.DataFrame(cand[cand["candidate_id"].astype(str).isin(ids)])
            if len(sub) and comps:
                sub = sub.set_index(sub["candidate_id"].astype(str)).loc[ids]
                comp = sub[comps].T  # one row per component, one column per site
                comp.columns = [f"site {i}" for i in range(1, len(ids) + 1)]
                out.append("<p>Score components of the proposed sites (site numbers as in the "
                           "table above):</p>" + _table(comp.reset_index(names="component")))
            out.append(f'<p class="note">{len(cand):,} candidate sites were scored.</p>')

    out.append(curve_section(results))

    ba = before_after(results)
    if ba is not None:
        out.append("<h2>Before and after</h2><p>Share within "
                   f"{tag} minutes today and with the proposed Care Blocks"
                   + (f" ({esc(_mode_label(mode_ba))})" if mode_ba else "") + ".</p>")
        out.append(_table(ba, {"today": "pct", "with Care Blocks": "pct", "change": "pp"}))

    # charts
    charts = [c for c in (_chart_times(results),
                          _chart_groups(cov, f"Share within {tag} min, by group and service",
                                        {styles.service_label(cfg, s): styles.service_color(s, services)
                                         for s in services})) if c]
    if charts:
        out.append("<h2>Charts</h2>" + "".join(f"<p>{c}</p>" for c in charts))

    out.append("<h2>Method and assumptions</h2>" + _method(results))
    out.append(
        "<h2>Data sources and licences</h2><ul>"
        "<li>Map data © OpenStreetMap contributors, available under the Open Database Licence "
        "(ODbL 1.0), https://www.openstreetmap.org/copyright. Derived layers (network, "
        "facilities from OSM) are shared under the same licence.</li>"
        "<li>Other layers keep the licence of their publisher (census, facility lists, GTFS "
        "feeds); check it before publishing the outputs.</li></ul>"
    )
    digests = meta.get("input_digests") or {}
    if digests:
        out.append("<p>Input files and their SHA-256 digests:</p>" + _table(
            pd.DataFrame(sorted(digests.items()), columns=["file", "digest"])))
    out.append('<p class="note">This report is HTML only: to get a PDF, print it from a web '
               "browser (the page has print styles).</p>")
    title = f"Care Blocks report: {study}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"/>'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(out) + "</body></html>\n")


def write_report(results, path: str | os.PathLike[str]) -> Path:
    """Write the self-contained HTML report of a run, atomically, and return its path."""
    return write_text_atomic(path, build_report(results))
