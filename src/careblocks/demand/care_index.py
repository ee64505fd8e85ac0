"""The care-need index: Bogotá-style components normalised within the study area.

Split out of :mod:`careblocks.demand.census` (which re-exports these functions); the formula is
documented in ``docs/care_need_index.md`` and returned as text for the run metadata.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from careblocks.errors import ConfigError, InputDataError, MissingColumnError

__all__ = ["COMPONENTS", "care_index_plan", "care_need_index", "care_need_by_district", "component_column",
           "gap_indicator"]

TOTAL = "census_total"
HOUSEHOLDS = "households"
#: the components of the index, in the order of docs/care_need_index.md
COMPONENTS = ("care_demand", "caregiver_density", "poverty", "supply_gap")
#: minutes at which the supply gap saturates (unreachable counts as this)
GAP_CAP_MIN = 60.0


# --------------------------------------------------------------------------------------


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def care_index_plan(
    groups_present: list[str] | tuple[str, ...],
    weights: dict[str, float],
    *,
    has_households: bool = False,
    has_area: bool = False,
    has_gap: bool = False,
) -> dict[str, Any]:
    """Which indicators and components can be built from the groups present.

    Returns
    -------
    dict
        ``indicators``: component -> list of (indicator name, numerator groups, denominator,
        description); ``weights``: renormalised weights of the kept components; ``dropped``:
        component -> reason; ``density_per``: "household", "km2" or "person".
    """
    g = set(groups_present)
    unknown = sorted(set(weights) - set(COMPONENTS))
    if unknown:
        raise ConfigError(
            f"care_index.weights: unknown component(s) {', '.join(unknown)}; use "
            f"{', '.join(COMPONENTS)}"
        )
    for k, v in weights.items():
        if v < 0:
            raise ConfigError(f"care_index.weights.{k}: {v} is negative; weights must be >= 0")
    per = "household" if has_households else "km2" if has_area else "person"
    den = {"household": HOUSEHOLDS, "km2": "area_km2", "person": TOTAL}[per]
    ind: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
        "care_demand": [], "caregiver_density": [], "poverty": [], "supply_gap": []}
    if "children_under5" in g:
        ind["care_demand"].append(("share_under5", ("children_under5",), TOTAL))
    if "older_80plus" in g:
        ind["care_demand"].append(("share_80plus", ("older_80plus",), TOTAL))
    elif "older_60plus" in g:
        ind["care_demand"].append(("share_60plus", ("older_60plus",), TOTAL))
    old = "older_65plus" if "older_65plus" in g else "older_60plus" if "older_60plus" in g else None
    if old and {"children_under5", "children_5_14"} <= g:
        ind["care_demand"].append(
            ("dependency_ratio", ("children_under5", "children_5_14", old), "working_age"))
    care = "women_caregivers" if "women_caregivers" in g else "women_15plus" if "women_15plus" in g else None
    if care:
        ind["caregiver_density"].append((f"{care}_per_{per}", (care,), den))
    if "female_headed_households" in g:
        ind["caregiver_density"].append(
            (f"female_headed_households_per_{per}", ("female_headed_households",), den))
    if "poverty" in g:
        ind["poverty"].append(("share_poverty", ("poverty",), TOTAL))
    if has_gap:
        ind["supply_gap"].append(("gap_minutes", (), "minutes"))
    dropped = {c: "no mapped group feeds it" if c != "supply_gap" else "no travel times given"
               for c, v in ind.items() if not v and c in weights}
    dropped.update({c: "weight 0" for c, v in weights.items() if v == 0 and c not in dropped})
    kept = {c: float(w) for c, w in weights.items() if c not in dropped}
    s = sum(kept.values())
    if s <= 0:
        raise InputDataError(
            "care_index: no component can be built from the census groups present "
            f"({', '.join(sorted(g)) or 'none'}); map children_under5, older_60plus/older_80plus, "
            "women_15plus/women_caregivers or poverty in [census.groups]"
        )
    return {
        "indicators": {c: ind[c] for c in kept},
        "weights": {c: w / s for c, w in kept.items()},
        "dropped": dropped,
        "density_per": per,
    }


def gap_indicator(minutes: Any, cap: float = GAP_CAP_MIN) -> np.ndarray:
    """Mean over services of the minutes to the nearest one, capped at ``cap``.

    ``minutes`` is (rows x services) or one column; NaN (unreachable) counts as ``cap``.
    """
    m = np.asarray(minutes, dtype="float64")
    if m.ndim == 1:
        m = m[:, None]
    m = np.where(np.isfinite(m), np.minimum(m, cap), cap)
    return m.mean(axis=1)


def _minmax(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    v = valid & np.isfinite(x)
    if not v.any():
        return out
    lo, hi = x[v].min(), x[v].max()
    out[v] = (x[v] - lo) / (hi - lo) if hi > lo else 0.0
    return out


def _formula(plan: dict[str, Any], n_units: int, unit: str) -> str:
    terms = " + ".join(f"{w:.3f} * {component_column(c)}" for c, w in plan["weights"].items())
    lines = [f"care_need_index = {terms}"]
    for c, inds in plan["indicators"].items():
        parts = []
        for name, num, den in inds:
            if den == "minutes":
                parts.append(f"mm({name} = mean over services of min(minutes to nearest, "
                             f"{GAP_CAP_MIN:g}), unreachable = {GAP_CAP_MIN:g})")
            elif den == "working_age":
                parts.append(f"mm({name} = ({' + '.join(num)}) / ({TOTAL} - {' - '.join(num)}))")
            else:
                parts.append(f"mm({name} = {' + '.join(num)} / {den})")
        lines.append(f"{component_column(c)} = mean({', '.join(parts)})")
    lines.append(
        f"mm(x) = (x - min x) / (max x - min x) over the {n_units} {unit} of the study area "
        f"with {TOTAL} > 0 (0 when max = min); units without people get index 0"
    )
    for c, why in plan["dropped"].items():
        lines.append(f"{c}: dropped ({why}); weights renormalised over the other components")
    return "\n".join(lines)


def component_column(component: str) -> str:
    """The column of a component: ``poverty`` is also the name of a care-group count, so its
    component is written as ``poverty_score`` (a count and a 0-1 score never share a column)."""
    return "poverty_score" if component == "poverty" else component


def care_need_index(
    df: pd.DataFrame,
    weights: dict[str, float],
    groups_present: list[str] | tuple[str, ...],
    *,
    total_col: str | None = None,
    area_km2: Any = None,
    unit: str = "origins",
    gap_minutes: Any = None,
) -> tuple[pd.DataFrame, str]:
    """Care-need index per row (origin or district), Bogotá's structure by default.

    Parameters
    ----------
    df
        Counts per row: the care groups in ``groups_present``, a total (``total_col``, else
        ``census_total``, else ``population``) and optionally ``households``.
    weights
        Component -> weight (``care_demand``, ``caregiver_density``, ``poverty``); components
        that cannot be built are dropped and the rest renormalised to sum to 1.
    groups_present
        Care groups available (mapped in the census).
    area_km2
        Column name or array of row areas; caregiver density is per household when
        ``households`` exists, else per km² when areas are given, else per person.
    unit
        Word used in the formula text ("origins", "districts").
    gap_minutes
        Optional (rows x services) minutes to the nearest existing care service (NaN =
        unreachable) feeding the ``supply_gap`` component when it has a weight.

    Returns
    -------
    (pandas.DataFrame, str)
        Indexed like ``df``: raw indicators, the components (each in [0, 1]) and
        ``care_need_index`` (in [0, 1]); and the formula as text. ``DataFrame.attrs["plan"]``
        holds the plan of :func:`care_index_plan` (kept/dropped components, weights).
    """
    total_col = total_col or (TOTAL if TOTAL in df.columns else "population")
    if total_col not in df.columns:
        raise MissingColumnError(
            f"care_index: no total population column ('{TOTAL}' or 'population') among "
            f"{', '.join(map(str, df.columns))}; map census.total_column"
        )
    missing = [g for g in groups_present if g not in df.columns]
    if missing:
        raise MissingColumnError(f"care_index: group columns {', '.join(missing)} are not in the table")
    has_hh = HOUSEHOLDS in df.columns and bool((df[HOUSEHOLDS] > 0).any())
    if isinstance(area_km2, str):
        area = df[area_km2].to_numpy(dtype="float64")
    elif area_km2 is not None:
        area = np.asarray(area_km2, dtype="float64")
    else:
        area = None
    gap = None
    if gap_minutes is not None and weights.get("supply_gap", 0) > 0:
        gap = gap_indicator(gap_minutes)
        if gap.shape != (len(df),):
            raise ValueError(f"gap_minutes: expected {len(df)} rows, got {gap.shape}")
    plan = care_index_plan(groups_present, weights, has_households=has_hh,
                           has_area=area is not None, has_gap=gap is not None)
    total = df[total_col].to_numpy(dtype="float64")
    valid = total > 0
    den = {TOTAL: total, HOUSEHOLDS: df[HOUSEHOLDS].to_numpy(dtype="float64") if has_hh else None,
           "area_km2": area}
    out = pd.DataFrame(index=df.index)
    index = np.zeros(len(df))
    for comp, inds in plan["indicators"].items():
        normed = []
        for name, num, d in inds:
            if d == "minutes":
                raw = gap
            else:
                numer = sum(df[g].to_numpy(dtype="float64") for g in num)
                denom = total - numer if d == "working_age" else den[d]
                raw = _ratio(numer, denom)
            out[name] = raw
            normed.append(_minmax(raw, valid))
        stack = np.vstack(normed)
        n_ok = np.isfinite(stack).sum(axis=0)
        comp_v = np.divide(np.nansum(stack, axis=0), n_ok, out=np.zeros(len(df)), where=n_ok > 0)
        comp_v = np.where(valid, comp_v, 0.0)
        out[component_column(comp)] = comp_v
        index += plan["weights"][comp] * comp_v
    out["care_need_index"] = index
    out.attrs["plan"] = plan
    return out, _formula(plan, int(valid.sum()), unit)


def care_need_by_district(
    origins: pd.DataFrame,
    district_col: str,
    weights: dict[str, float],
    groups_present: list[str] | tuple[str, ...],
) -> tuple[pd.DataFrame, str]:
    """Care-need index per district from the summed counts of its origins.

    Returns one row per district (index = district name) with the summed counts, the
    indicators, components and ``care_need_index`` computed among districts (all 0 with a
    single district), plus ``care_need_index_mean``: the people-weighted mean of the origins'
    ``care_need_index`` when that column is present.
    """
    total_col = TOTAL if TOTAL in origins.columns else "population"
    cols = [c for c in (total_col, HOUSEHOLDS, *groups_present) if c in origins.columns]
    sums = origins.groupby(district_col, dropna=True)[cols].sum()
    gap = None
    if "gap_minutes" in origins.columns:
        w = origins[total_col].astype(float)
        num = (origins["gap_minutes"] * w).groupby(origins[district_col]).sum()
        gap = (num / w.groupby(origins[district_col]).sum()).reindex(sums.index).to_numpy()
    comp, text = care_need_index(sums, weights, groups_present, total_col=total_col,
                                 unit="districts", gap_minutes=gap)
    res = sums.join(comp)
    if "care_need_index" in origins.columns:
        w = origins[total_col].astype(float)
        num = (origins["care_need_index"] * w).groupby(origins[district_col]).sum()
        res["care_need_index_mean"] = num / w.groupby(origins[district_col]).sum()
    res.index.name = "district"
    return res, text
