"""Census readers for real shapes: counts, rates and shares, age bands, two census levels.

A census layer rarely holds the care groups as ready counts. Bogotá's census sectors (DANE
CNPV 2018) have people, dwellings, women and ten-year age bands as counts and poverty as a
rate; the localidad indicator table has shares (percent) of people aged 4 or under, of women
doing only unpaid household work, of female single-parent households. This module turns such
columns into counts per unit of the fine layer, as declared in ``[census.groups]``:

* a column name: a count of the fine layer;
* ``{ column = C, unit = "percent" | "fraction", per = B }``: a rate times its base ``B``
  (``person`` = the total, ``household``, another care group, or a count column), read
  from the fine layer, else from the coarse layer joined spatially (``census.coarse``);
* ``{ bands = { C1 = f1, C2 = f2, ... } }``: a weighted sum of count columns and earlier
  groups (an age band split by a fraction; negative weights subtract);
* ``{ bands = ..., split_share = S }``: the bands split by the share ``S`` of all people that
  the group makes in the coarser unit: each fine unit keeps
  ``S x people(coarse) / bands(coarse)`` of its bands, where people and bands are summed over
  the fine units of that coarse unit (so the coarse unit's group total equals its share).

Impossible values stop with one line naming the column: a percent outside 0-100 or a
fraction outside 0-1, a split that needs more than the whole band, a group larger than the
total (or than the households for a per-household rate), a negative weighted sum.
:func:`check_rates` and :func:`check_group_bounds` are public so that other readers (the
input audit) can call them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from careblocks.config import CensusConfig, CensusGroup
from careblocks.errors import ConfigError, DataQualityWarning, InputDataError, MissingColumnError

__all__ = [
    "check_rates",
    "check_group_bounds",
    "coarse_index",
    "resolve_groups",
    "dependency_ratio",
    "group_columns",
]

TOTAL = "census_total"
HOUSEHOLDS = "households"
#: slack for rounding when comparing a group with the total
_TOL = 1e-6


def check_rates(values: Any, *, column: str, unit: str, where: str) -> np.ndarray:
    """A rate column as fractions 0-1; InputDataError naming ``column`` when impossible.

    ``unit`` is ``"percent"`` (0-100) or ``"fraction"`` (0-1). Blanks stay NaN.
    """
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    raw = pd.Series(values)
    bad_text = raw.notna().to_numpy() & np.isnan(v)
    if bad_text.any():
        ex = raw[bad_text].iloc[0]
        raise InputDataError(
            f"{where}: column '{column}' has non-numeric values (e.g. {str(ex)[:30]!r}); fix "
            "the column or map another one"
        )
    hi = 100.0 if unit == "percent" else 1.0
    ok = np.isnan(v) | ((v >= 0) & (v <= hi))
    if not ok.all():
        bad = v[~ok][0]
        hint = (
            "; it looks like a percent: declare unit = 'percent'"
            if unit == "fraction" and 0 <= np.nanmax(v) <= 100 else ""
        )
        raise InputDataError(
            f"{where}: column '{column}' is declared as a {unit} (0-{hi:g}) but holds "
            f"{bad:g} ({int((~ok).sum())} rows outside 0-{hi:g}){hint}; fix the value or the "
            "declared unit"
        )
    return v / 100.0 if unit == "percent" else v


def check_group_bounds(group: np.ndarray, bound: np.ndarray, *, name: str, bound_name: str,
                       column: str, where: str, ids: Any = None) -> None:
    """InputDataError when a group count exceeds its bound (the total, the households) or is < 0."""
    g = np.asarray(group, dtype="float64")
    b = np.asarray(bound, dtype="float64")
    over = np.isfinite(g) & np.isfinite(b) & (g > b * (1 + _TOL) + _TOL)
    neg = np.isfinite(g) & (g < -_TOL)
    if over.any():
        ratio = np.divide(g, b, out=np.full(g.shape, np.inf), where=b > 0)
        i = int(np.flatnonzero(over)[np.argmax(ratio[over])])
        unit = f", unit {ids[i]}" if ids is not None else ""
        raise InputDataError(
            f"{where}: column '{column}' (census.groups.{name}) is larger than the "
            f"{bound_name} in {int(over.sum())} units (up to {ratio[i]:.0%}{unit}: "
            f"{g[i]:,.1f} > {b[i]:,.1f}); fix the column or its declared unit/base"
        )
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        unit = f", unit {ids[i]}" if ids is not None else ""
        raise InputDataError(
            f"{where}: column '{column}' (census.groups.{name}) is negative in "
            f"{int(neg.sum())} units ({g[i]:,.1f}{unit}); fix the columns or weights in "
            f"census.groups.{name}"
        )


def coarse_index(fine_geoms: Any, coarse_geoms: Any) -> np.ndarray:
    """For each fine unit, the position of the coarse unit holding its representative point.

    Fine units whose point falls in no coarse unit (edges that do not match) take the coarse
    unit they overlap most, else the nearest one. Both inputs are shapely arrays in one CRS.
    """
    import shapely

    fine = np.asarray(fine_geoms)
    coarse = np.asarray(coarse_geoms)
    pts = shapely.point_on_surface(fine)
    tree = shapely.STRtree(coarse)
    fi, ci = tree.query(pts, predicate="within")
    order = np.lexsort((ci, fi))  # repeated coarse polygons: always the first row
    fi, ci = fi[order], ci[order]
    out = np.full(len(fine), -1, dtype=np.int64)
    _, first = np.unique(fi, return_index=True)  # first coarse unit when polygons repeat
    out[fi[first]] = ci[first]
    lone = np.flatnonzero(out < 0)
    if lone.size:
        fi2, ci2 = tree.query(fine[lone], predicate="intersects")
        if fi2.size:
            ov = shapely.area(shapely.intersection(fine[lone][fi2], coarse[ci2]))
            df = pd.DataFrame({"f": fi2, "c": ci2, "a": ov}).sort_values("a", ascending=False)
            best = df.drop_duplicates("f")
            out[lone[best["f"].to_numpy()]] = best["c"].to_numpy()
        still = np.flatnonzero(out < 0)
        if still.size:
            out[still] = tree.query_nearest(pts[still])[1] if hasattr(tree, "query_nearest") \
                else 0
    return out


def group_columns(cfg: CensusConfig) -> list[str]:
    """Every source column a census config names (fine or coarse), for reading and checks."""
    cols: list[str] = []
    for name in _group_names():
        spec = getattr(cfg.groups, name)
        if isinstance(spec, str):
            cols.append(spec)
        elif isinstance(spec, CensusGroup):
            if spec.column:
                cols.append(spec.column)
            cols += [c for c in spec.bands if c not in _group_names()]
            if spec.split_share:
                cols.append(spec.split_share)
            if spec.per not in ("person", "household", *_group_names()):
                cols.append(spec.per)
    return cols


def _group_names() -> tuple[str, ...]:
    import dataclasses

    from careblocks.config import CensusGroups

    return tuple(f.name for f in dataclasses.fields(CensusGroups))


def _deps(spec: Any) -> set[str]:
    names = set(_group_names())
    if isinstance(spec, CensusGroup):
        d = {c for c in spec.bands if c in names}
        if spec.per in names:
            d.add(spec.per)
        return d
    return set()


def resolve_groups(
    cfg: CensusConfig,
    fine: pd.DataFrame,
    *,
    coarse: pd.DataFrame | None = None,
    coarse_of: np.ndarray | None = None,
    total: np.ndarray | None = None,
    households: np.ndarray | None = None,
    where: str = "census layer",
    coarse_where: str = "coarse census layer (census.coarse)",
    ids: Any = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Counts per fine unit for every care group declared in ``cfg.groups``.

    Parameters
    ----------
    cfg
        The ``[census]`` section.
    fine
        The fine layer's attribute table (one row per unit, source column names).
    coarse, coarse_of
        The coarse layer's table and, per fine unit, the row position of its coarse unit.
    total, households
        The fine units' total people and households (counts), when mapped.
    where, coarse_where
        Labels naming the two files in messages.
    ids
        Fine unit ids for messages.

    Returns
    -------
    (dict, dict)
        Group -> float64 counts per fine unit; info with, per group, its recipe as text and,
        for split groups, the fraction of the band kept per coarse unit.
    """
    from careblocks.io.layers import numeric_column

    names = _group_names()
    specs = {g: getattr(cfg.groups, g) for g in names if getattr(cfg.groups, g)}
    out: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"recipes": {}, "coarse_missing": {}}
    n = len(fine)

    def fine_count(col: str, key: str) -> np.ndarray:
        if col in fine.columns:
            return numeric_column(fine[[col]], col, what=f"census layer ({key})", path=where)
        if coarse is not None and col in coarse.columns:
            raise InputDataError(
                f"{coarse_where}: column '{col}' ({key}) is a column of the coarse layer, whose "
                "counts are for whole coarse units; use a count of census.layer, or declare it "
                "as a rate (unit = 'percent' or 'fraction')"
            )
        raise MissingColumnError(
            f"{where}: column '{col}' ({key}) not found; existing columns: "
            f"{', '.join(map(str, fine.columns))}; fix {key}"
        )

    def rate(col: str, unit: str, key: str) -> np.ndarray:
        if col in fine.columns:
            return check_rates(fine[col].to_numpy(), column=col, unit=unit, where=where)
        if coarse is not None and col in coarse.columns:
            r = check_rates(coarse[col].to_numpy(), column=col, unit=unit, where=coarse_where)
            v = r[coarse_of]
            miss = np.isnan(v)
            if miss.any():
                # a blank in the coarse table: use its mean over the coarse units that have it,
                # weighted by the people of their fine units
                w = total if total is not None else np.ones(n)
                ok = ~miss
                fill = float(np.average(v[ok], weights=w[ok])) if ok.any() and w[ok].sum() > 0 \
                    else float("nan")
                v = np.where(miss, fill, v)
                info["coarse_missing"][col] = int(miss.sum())
                warnings.warn(
                    f"{coarse_where}: column '{col}' is blank for the coarse unit of "
                    f"{int(miss.sum())} census units; they get the people-weighted mean of the "
                    f"others ({fill:.4f})",
                    DataQualityWarning,
                    stacklevel=3,
                )
            return v
        cols = list(map(str, fine.columns)) + ([] if coarse is None else list(map(str, coarse.columns)))
        raise MissingColumnError(
            f"{where}: column '{col}' ({key}) not found in census.layer"
            + (" nor census.coarse" if coarse is not None else " (and no census.coarse is set)")
            + f"; existing columns include {', '.join(cols[:40])}; fix {key}"
        )

    pending = dict(specs)
    while pending:
        ready = [g for g, s in pending.items() if _deps(s) <= set(out)]
        if not ready:
            missing = {g: sorted(_deps(s) - set(out)) for g, s in pending.items()}
            g0 = next(iter(missing))
            raise ConfigError(
                f"config key 'census.groups.{g0}': uses group(s) {', '.join(missing[g0])} that "
                "are not mapped or depend on it in a cycle; map them first"
            )
        for g in ready:
            spec = pending.pop(g)
            key = f"census.groups.{g}"
            if isinstance(spec, str):
                out[g] = fine_count(spec, key)
                info["recipes"][g] = spec
                label = spec
            elif spec.column is not None:
                if spec.unit == "count":
                    out[g] = fine_count(spec.column, key)
                    info["recipes"][g] = spec.column
                else:
                    r = rate(spec.column, spec.unit, key)
                    if spec.per == "person":
                        base, bname = total, f"{TOTAL}"
                    elif spec.per == "household":
                        base, bname = households, HOUSEHOLDS
                    elif spec.per in out:
                        base, bname = out[spec.per], spec.per
                    else:
                        base, bname = fine_count(spec.per, f"{key}.per"), spec.per
                    if base is None:
                        raise ConfigError(
                            f"config key '{key}.per': {spec.per!r} needs census."
                            + ("total_column" if spec.per == "person" else "households_column")
                        )
                    out[g] = r * base
                    info["recipes"][g] = f"{spec.column} ({spec.unit}) x {bname}"
                label = spec.column
            else:
                parts = []
                acc = np.zeros(n)
                for col, w in spec.bands.items():
                    v = out[col] if col in out else fine_count(col, f"{key}.bands")
                    acc = acc + float(w) * v
                    parts.append(f"{w:g} x {col}")
                label = " + ".join(parts)
                if spec.split_share is not None:
                    if coarse is None or coarse_of is None:
                        raise ConfigError(
                            f"config key '{key}.split_share': needs census.coarse (the layer "
                            f"holding '{spec.split_share}')"
                        )
                    if total is None:
                        raise ConfigError(f"config key '{key}.split_share': needs census.total_column")
                    share = rate(spec.split_share, spec.split_unit, f"{key}.split_share")
                    people_c = np.bincount(coarse_of, weights=total, minlength=len(coarse))
                    band_c = np.bincount(coarse_of, weights=acc, minlength=len(coarse))
                    frac = np.divide(share * people_c[coarse_of], band_c[coarse_of],
                                     out=np.zeros(n), where=band_c[coarse_of] > 0)
                    over = frac > 1 + _TOL
                    if over.any():
                        i = int(np.flatnonzero(over)[0])
                        raise InputDataError(
                            f"{coarse_where}: column '{spec.split_share}' gives {g} "
                            f"{share[i]:.1%} of the people of a coarse unit, more than the "
                            f"whole band {label} holds there ({frac[i]:.2f} of it); fix the "
                            "value, its split_unit or the bands"
                        )
                    acc = acc * frac
                    cu = np.unique(coarse_of)
                    info.setdefault("split_fraction", {})[g] = {
                        int(c): float(frac[coarse_of == c][0]) for c in cu
                    }
                    label = f"({label}) x {spec.split_share} split"
                out[g] = acc
                info["recipes"][g] = label
            per_household = isinstance(spec, CensusGroup) and spec.per == "household"
            if total is not None and not per_household:
                check_group_bounds(out[g], total, name=g, bound_name=f"total ({TOTAL})",
                                   column=label, where=where, ids=ids)
            if per_household and households is not None:
                check_group_bounds(out[g], households, name=g, bound_name=HOUSEHOLDS,
                                   column=label, where=where, ids=ids)
    return out, info


def dependency_ratio(young: Any, old: Any, total: Any) -> np.ndarray:
    """Dependants per person of working age: ``(young + old) / (total - young - old)``.

    With young = under 15 and old = 65+ this is the UN/DANE dependency ratio (as a fraction;
    x 100 for "per 100 people of working age"). NaN where nobody is of working age.
    """
    y = np.asarray(young, dtype="float64")
    o = np.asarray(old, dtype="float64")
    t = np.asarray(total, dtype="float64")
    work = t - y - o
    return np.divide(y + o, work, out=np.full(t.shape, np.nan), where=work > 0)
