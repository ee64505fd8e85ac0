"""The care-need index as the report shows it: its components in words with their source
columns and weights, and its figures per census unit, per district and per proposed site.

Pure tables (pandas) from the run's results; :mod:`careblocks.outputs.report` renders them
in ``outputs.language``. Every figure is computed from the columns the GeoPackage holds
(``origins``, ``districts``, ``selected_sites``), so a reader can recompute it in QGIS:

* per census unit (origins grouped by ``census_unit_id``) and per district (``district``):
  people and care groups summed; components, ``gap_minutes`` and ``care_need_index`` as the
  people-weighted mean of the origins' values;
* per proposed site: the people of its catchment (``population_covered`` and the
  ``<group>_covered`` columns) and the mean index of those people,
  ``need_covered / population_covered``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from careblocks.columns import CENSUS_GROUPS
from careblocks.demand.care_index import COMPONENTS, care_index_plan

__all__ = ["CareNeedTables", "care_need_tables", "COMPONENT_COLUMNS", "weighted_by_unit"]

#: component -> the origins column holding it (``poverty`` is the group's count)
COMPONENT_COLUMNS = {"care_demand": "care_demand", "caregiver_density": "caregiver_density",
                     "poverty": "poverty_score", "supply_gap": "supply_gap"}
#: the counts shown per unit and per site
COUNT_GROUPS = ("children_under5", "older_80plus", "women_caregivers")
#: units shown in the report at most (the rest are in the GeoPackage)
MAX_UNITS = 50


@dataclass
class CareNeedTables:
    """``components``: one row per indicator (component, indicator, groups, source, weight);
    ``units`` / ``districts`` / ``sites``: figures (None when the run has none)."""

    components: pd.DataFrame
    units: pd.DataFrame | None
    n_units: int
    districts: pd.DataFrame | None
    sites: pd.DataFrame | None
    formula: str | None


def _source(spec: Any, name: Any = str) -> str:
    """A care group's source in the config's words: a column, a rate of a column, bands.
    ``name`` turns a care group or a rate's base (``person``, ``household``) into words."""
    if spec is None:
        return ""
    if isinstance(spec, str):
        return spec
    if getattr(spec, "bands", None):
        terms = " + ".join((name(c) if c in CENSUS_GROUPS else c) if float(w) == 1
                           else f"{w:g} × {name(c) if c in CENSUS_GROUPS else c}" for c, w in spec.bands.items())
        text = terms.replace("+ -", "− ")
        if getattr(spec, "split_share", None):
            text = f"({text}) × {spec.split_share}"
        return text
    col = getattr(spec, "column", None) or ""
    unit = getattr(spec, "unit", "count")
    if unit == "count":
        return col
    per = getattr(spec, "per", "person")
    return f"{col} ({'%' if unit == 'percent' else '0-1'}) × {name(per)}"


def component_table(config: Any, groups: list[str], weights: dict[str, float], *,
                    has_households: bool, has_gap: bool, name: Any = str) -> pd.DataFrame:
    """One row per indicator of the index: component, indicator, groups it is built from,
    their source columns (care groups and rate bases in words by ``name``) and the
    component's weight as used (renormalised)."""
    plan = care_index_plan(groups, dict(config.care_index.weights), has_households=has_households,
                           has_gap=has_gap)
    used = weights or plan["weights"]
    rows = []
    for comp in COMPONENTS:
        for ind, num, _den in plan["indicators"].get(comp, []):
            if comp not in used:
                continue
            if ind == "gap_minutes":
                src = ", ".join(config.service_names)
            else:
                src = "; ".join(f"{name(g)}: {_source(getattr(config.census.groups, g, None), name)}" for g in num)
            rows.append({"component": comp, "indicator": ind, "groups": tuple(num), "source": src,
                         "weight": float(used[comp])})
    return pd.DataFrame(rows, columns=["component", "indicator", "groups", "source", "weight"])


def weighted_by_unit(origins: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per value of ``key``: ``people`` and the care groups summed; the components,
    ``gap_minutes`` and ``care_need_index`` as the people-weighted mean of the origins'."""
    total = "census_total" if "census_total" in origins.columns else "population"
    o = origins[origins[key].notna()]
    w = pd.to_numeric(o[total], errors="coerce").fillna(0.0).to_numpy(float)
    g = o[key].astype(str).to_numpy()
    out = pd.DataFrame({"people": pd.Series(w).groupby(g).sum()})
    for c in COUNT_GROUPS:
        if c in o.columns:
            out[c] = pd.Series(pd.to_numeric(o[c], errors="coerce").fillna(0.0).to_numpy(float)).groupby(g).sum()
    for c in (*COMPONENT_COLUMNS.values(), "gap_minutes", "care_need_index"):
        if c in o.columns:
            v = pd.to_numeric(o[c], errors="coerce").to_numpy(float)
            ok = np.isfinite(v)
            num = pd.Series(np.where(ok, v * w, 0.0)).groupby(g).sum()
            den = pd.Series(np.where(ok, w, 0.0)).groupby(g).sum()
            out[c] = (num / den.where(den > 0)).to_numpy()
    out.index.name = key
    return out.sort_values(["care_need_index", "people"], ascending=[False, False]) \
        if "care_need_index" in out.columns else out


def site_table(selected: pd.DataFrame) -> pd.DataFrame | None:
    """Per proposed site (in order): the people of its catchment, its care groups and the
    mean care-need index of those people."""
    if selected is None or not len(selected) or "population_covered" not in selected.columns:
        return None
    s = selected.sort_values("order") if "order" in selected.columns else selected
    out = pd.DataFrame({"order": s["order"].to_numpy() if "order" in s.columns else np.arange(1, len(s) + 1),
                        "people": s["population_covered"].to_numpy(float)})
    for c in COUNT_GROUPS:
        if f"{c}_covered" in s.columns:
            out[c] = s[f"{c}_covered"].to_numpy(float)
    if "need_covered" in s.columns:
        pop = out["people"].to_numpy(float)
        out["care_need_index"] = np.where(pop > 0, s["need_covered"].to_numpy(float) / np.where(pop > 0, pop, 1),
                                          np.nan)
    return out


def care_need_tables(results, name: Any = str) -> CareNeedTables | None:
    """The report's care-need tables, or None when the run has no ``care_need_index``;
    ``name`` puts care groups into words in the source column (default: their ids)."""
    o = results.origins
    if o is None or "care_need_index" not in o.columns:
        return None
    cfg = results.config
    groups = [g for g in CENSUS_GROUPS if g in o.columns]
    meta = results.metadata or {}
    ci = ((meta.get("stats") or {}).get("demand") or {}).get("care_index") or {}
    comps = component_table(cfg, groups, dict(ci.get("weights") or {}),
                            has_households="households" in o.columns, has_gap="gap_minutes" in o.columns,
                            name=name)
    units, n_units = None, 0
    if "census_unit_id" in o.columns and o["census_unit_id"].notna().any():
        units = weighted_by_unit(o, "census_unit_id")
        units = units[units["people"] >= 0.5]  # slivers of units cut by the study area
        n_units = len(units)
        units = units.head(MAX_UNITS)
    districts = None
    if "district" in o.columns and o["district"].nunique() > 1:
        districts = weighted_by_unit(o, "district")
    return CareNeedTables(comps, units, n_units, districts, site_table(results.selected),
                          ci.get("formula"))
