"""Terminal summaries (rich tables) for ``careblocks run`` and ``careblocks validate``."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
from rich.table import Table
from rich.text import Text

from careblocks import columns as C
from careblocks.demand.equity import equity_summary_rows, share_within
from careblocks.errors import InputDataError
from careblocks.i18n import N_, group_label, language
from careblocks.outputs.report import site_name
from careblocks.outputs.styles import service_label
from careblocks.results import Results
from careblocks.sites.sensitivity import robustness_sentence


def access_rows(origins: Any, services: Any, service_names: tuple[str, ...], threshold: float) -> list[dict[str, Any]]:
    """Per service: facilities, population-weighted median minutes, share within T."""
    pop = origins["population"].to_numpy(np.float64)
    total = pop.sum()
    rows = []
    for s in service_names:
        row: dict[str, Any] = {"service": s}
        row["facilities"] = int((services["service"] == s).sum()) if len(services) else 0
        for mode in ("walk", "transit", "best"):
            col = C.time_column(mode, s)
            if col not in origins:
                continue
            t = origins[col].to_numpy(np.float64)
            ok = np.isfinite(t)
            if ok.any() and total > 0:
                order = np.argsort(np.where(ok, t, np.inf), kind="stable")
                cum = np.cumsum(pop[order])
                med_idx = order[np.searchsorted(cum, total / 2.0)]
                row[f"{mode}_median_min"] = float(t[med_idx]) if ok[med_idx] else float("nan")
            else:
                row[f"{mode}_median_min"] = float("nan")
            row[f"{mode}_share_within"] = share_within(t, pop, threshold)
        rows.append(row)
    return rows


def _lang(results: Any):
    return language(getattr(getattr(results.config, "outputs", None), "language", "en"))


def _service_label(results: Any, s: str) -> str:
    return service_label(results.config, s)


def print_summary(console: Any, results: Results) -> None:
    """The run's summary tables, in ``outputs.language``."""
    L = _lang(results)
    T = results.threshold_min
    tmin = L.minutes(T)
    o = results.origins
    rows = access_rows(o, results.services, results.service_names, T)
    modes = [m for m in ("walk", "transit", "best") if f"{m}_median_min" in rows[0]] if rows else []
    mode_words = {"walk": L._("walk"), "transit": L._("transit"), "best": L._("fastest")}
    table = Table(title=L._("{study}: access to care services ({people} people)").format(
        study=results.config.study.label, people=L.integer(o["population"].sum())))
    table.add_column(L._("service"))
    table.add_column(L._("facilities"), justify="right")
    for m in modes:
        table.add_column(L._("{mode}: median minutes").format(mode=mode_words[m]), justify="right")
        table.add_column(L._("{mode}: within {minutes}").format(mode=mode_words[m], minutes=tmin),
                         justify="right")
    for r in rows:
        cells = [_service_label(results, r["service"]), L.integer(r["facilities"])]
        for m in modes:
            med = r[f"{m}_median_min"]
            cells.append(L._("unreachable") if not np.isfinite(med) else L.number(med, 1))
            cells.append(L.percent(r[f"{m}_share_within"]))
        table.add_row(*cells)
    console.print(table)
    col = C.services_within(T)
    if col in o:
        n = len(results.service_names)
        share_all = o.loc[o[col] >= n, "population"].sum() / max(o["population"].sum(), 1e-9)
        console.print(L._("People with all {n} services within {minutes} on foot: {share}").format(
            n=n, minutes=tmin, share=L.percent(share_all)))
    if results.equity is not None and len(results.equity):
        print_equity(
            console, results.equity, T, title=L._("Share of each group within {minutes}").format(minutes=tmin),
            after=results.equity_after, results=results,
        )
    if results.selected is not None and len(results.selected):
        t3 = Table(title=L._("Proposed Care Blocks"))
        t3.add_column("#", justify="right")
        t3.add_column(L._("site"))
        t3.add_column(L._("why"))
        for _, r in results.selected.iterrows():
            t3.add_row(str(r.get("order", "")), site_name(r, L), str(r.get("rationale", "")))
        console.print(t3)
        line = selection_line(results.metadata.get("stats", {}), L.code)
        if line:
            console.print(line, markup=False, highlight=False)
        sens = results.sensitivity
        if sens is not None and len(sens):
            sentence = robustness_sentence(sens, L.code)
            if sentence:
                console.print(sentence, markup=False, highlight=False)
    n_warn = len(results.metadata.get("warnings", []))
    if n_warn:
        console.print("[yellow]" + L.ngettext("{n} data-quality warning", "{n} data-quality warnings", n_warn)
                      .format(n=n_warn) + "[/yellow]; " + L._("listed in run_metadata and the report"))


#: the selection's status words (``sites.status``) as people read them
_STATUS_WORDS = {"optimal": N_("optimal"), "time limit": N_("stopped at the time limit"),
                 "infeasible": N_("infeasible"), "greedy": N_("greedy")}


def _status(status: str, L) -> str:
    words = [L._(_STATUS_WORDS[p]) if p in _STATUS_WORDS else p for p in status.split("; greedy was better")]
    return L._("{status}; greedy was better").format(status=words[0]) if len(words) > 1 else words[0]


def selection_line(stats: dict[str, Any], language: str | None = None) -> str:
    """How exact the selection is, and the coverage curve and target when computed:
    "Selection: optimal (HiGHS). Coverage curve K = 1-10: 10 of 10 points proven optimal."
    A time limit says so with the proven gap. In ``language`` (English by default)."""
    from careblocks.i18n import language as get_language

    L = get_language(language)
    st = stats.get("sites") or {}
    if not st:
        return ""
    status, gap = str(st.get("status", "")), st.get("mip_gap")
    pct = lambda v: L.percent(v, 2)  # noqa: E731
    if st.get("method") == "greedy" and status == "greedy":
        out = L._("Selection: greedy (no optimality proof).")
    elif status == "optimal":
        out = L._("Selection: optimal (HiGHS).")
    elif gap is not None:
        out = L._("Selection: {status}; proven within {gap} of the optimum.").format(
            status=_status(status, L), gap=pct(gap))
    else:
        out = L._("Selection: {status}.").format(status=_status(status, L))
    curve = stats.get("sites_curve") or {}
    if curve.get("points"):
        n = int(curve["points"])
        if curve.get("max_gap"):
            out += " " + L._("Coverage curve K = 1-{n}: {exact} of {n} points proven optimal, largest gap "
                             "{gap}.").format(n=n, exact=curve["exact"], gap=pct(curve["max_gap"]))
        else:
            out += " " + L._("Coverage curve K = 1-{n}: {exact} of {n} points proven optimal.").format(
                n=n, exact=curve["exact"])
    tgt = stats.get("sites_target") or {}
    if tgt:
        share = L.percent(tgt["target_share"])
        if tgt.get("status") == "infeasible":
            out += " " + L._("No set of candidates reaches {share} of the objective.").format(share=share)
        else:
            out += " " + L._("Fewest blocks reaching {share} of the objective: {k} ({status}).").format(
                share=share, k=tgt["min_blocks"], status=_status(str(tgt["status"]), L))
    return out


def _mode_rows(equity: Any, threshold: float, mode: str | None) -> tuple[list[str], list[list[str]]] | None:
    table = equity if mode is None or "mode" not in equity.columns else equity[equity["mode"] == mode]
    if table.empty:
        return None
    try:
        return equity_summary_rows(table, threshold)
    except InputDataError:  # threshold not among the equity thresholds
        return None


def print_equity(console: Any, equity: Any, threshold: float, *, title: str, after: Any = None,
                 results: Any = None) -> None:
    """Service x care group: the share of people within the threshold (best mode available);
    with ``after`` (the equity table with the proposed sites), each cell reads ``today -> after``."""
    L = _lang(results) if results is not None else language("en")
    mode = None
    if "mode" in equity.columns:
        modes = list(dict.fromkeys(equity["mode"]))
        mode = "best" if "best" in modes else "walk" if "walk" in modes else modes[0]
        words = {"walk": L._("walk"), "transit": L._("transit"), "best": L._("fastest")}
        title = f"{title} ({words.get(mode, mode)})"
    now = _mode_rows(equity, threshold, mode)
    if now is None:
        return
    header, rows = now
    later = _mode_rows(after, threshold, mode) if after is not None and len(after) else None
    if later is not None and later[0] == header and len(later[1]) == len(rows):
        rows = [[a[0], *(f"{x} -> {y}" for x, y in zip(a[1:], b[1:], strict=True))]
                for a, b in zip(rows, later[1], strict=True)]
        title = L._("{title}: today -> with the proposed Care Blocks").format(title=title)
    t = Table(title=title)
    for i, h in enumerate(header):
        name = L._("service") if i == 0 else group_label(h, L)
        t.add_column(name, justify="left" if i == 0 else "right")
    for r in rows:
        label = _service_label(results, r[0]) if results is not None else r[0]
        t.add_row(label, *r[1:])
    console.print(t)


def print_validation(console: Any, results: Results) -> None:
    """The CLI's tables for ``careblocks validate``: the input audit, then what was read."""
    cfg = results.config
    net = results.network
    meta = results.metadata
    print_audit(console, meta["audit"])
    table = Table(title=f"{cfg.study.label}: inputs")
    table.add_column("input")
    table.add_column("features", justify="right")
    table.add_column("details")
    minx, miny, maxx, maxy = gpd.GeoSeries([results.area], crs=results.crs).to_crs("EPSG:4326").total_bounds
    table.add_row("study area", "1", f"EPSG:4326 extent {minx:.4f}, {miny:.4f}, {maxx:.4f}, {maxy:.4f}")
    table.add_row(
        "walk network",
        f"{net.n_nodes:,} nodes",
        f"{net.n_edges // 2:,} edges; working CRS {net.crs}; source {cfg.network.source}"
        + (f" {cfg.network.path}" if cfg.network.path else ""),
    )
    s = results.services
    for name in cfg.service_names:
        sel = s[s["service"] == name]
        srcs = ", ".join(f"{k} {v}" for k, v in sel["source"].value_counts().items()) if len(sel) else "none found"
        table.add_row(f"service: {name}", f"{len(sel):,}", srcs)
    o = results.origins
    table.add_row(
        "origins",
        f"{len(o):,}",
        f"population {o['population'].sum():,.0f}; source {cfg.population.source}",
    )
    if "cluster" in meta["stats"]:
        table.add_row("Dask cluster", "", meta["stats"]["cluster"])
    if "transit" in meta["stats"]:
        st = meta["stats"]["transit"]
        for feed in st.get("feeds", []):
            table.add_row(
                f"GTFS: {feed.get('feed', '')}",
                f"{feed.get('trips_on_date', 0):,} trips",
                f"on {st.get('date')}; feed valid {feed.get('valid_dates', '?')}",
            )
        table.add_row(
            "transit timetable",
            f"{st.get('stops_kept', 0):,} stops",
            f"{st.get('routes', 0):,} route patterns, {st.get('trips', 0):,} trips in the window, "
            f"{st.get('transfers', 0):,} walking transfers; "
            f"{st.get('stops_dropped_outside_area', 0):,} stops outside the area dropped",
        )
    console.print(table)
    if meta["warnings"]:
        console.print(f"[yellow]{len(meta['warnings'])} data-quality warning(s)[/yellow], printed above")


def print_prioritisation(console: Any, res: Any, *, top: int = 15) -> None:
    """The CLI's tables for ``careblocks prioritise``: top units and all districts."""
    u = res.units
    name = "census_name" if "census_name" in u.columns else "census_unit_id"
    comps = [c for c in ("care_demand", "caregiver_density", "poverty_score", "supply_gap")
             if c in u.columns]
    for title, df, key, n in (
        (f"Districts by care need ({0 if res.districts is None else len(res.districts)})",
         res.districts, "district", None),
        (f"Census units by care need (top {top} of {len(u)})", u, name, top),
    ):
        if df is None:
            continue
        t = Table(title=title)
        for c in ("#", key, *(["district"] if key != "district" and "district" in df.columns else []),
                  "people", "index", *[c.replace("_", " ") for c in comps if c in df.columns]):
            t.add_column(str(c), justify="left" if c in (key, "district") else "right")
        rows = df if n is None else df.head(n)
        for _, r in rows.iterrows():
            cells = [str(int(r["rank"])), str(r[key])]
            if key != "district" and "district" in df.columns:
                cells.append(str(r["district"]))
            cells += [f"{r['census_total']:,.0f}", f"{r['care_need_index']:.2f}"]
            cells += [f"{r[c]:.2f}" for c in comps if c in df.columns]
            t.add_row(*cells)
        console.print(t)


def print_audit(console: Any, audit: dict[str, Any]) -> None:
    """The input audit's findings (``metadata["audit"]`` of a run) as a table, errors and
    warnings first."""
    table = Table(title=f"input audit: {audit['verdict']}")
    table.add_column("verdict")
    table.add_column("check")
    table.add_column("where")
    table.add_column("finding")
    order = {"error": 0, "warning": 1, "info": 2}
    style = {"error": "red", "warning": "yellow", "info": "dim"}
    for f in sorted(audit["findings"], key=lambda f: order[f["severity"]]):
        table.add_row(Text(f["severity"], style=style[f["severity"]]), Text(f["check"]), Text(f["where"]),
                      Text(f["message"]))
    console.print(table)
