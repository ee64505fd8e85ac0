"""Equity of access: who is within reach of each service, and how unequal travel times are.

The long table of :func:`equity_table` has one row per service, care group, district
(``"all"`` for the whole study area) and threshold. Counts are people of the group (care
group columns on the origins, e.g. ``population``, ``children_under5``, ``women_15plus``).
Unreachable origins (null time) count as beyond every threshold.

Inequality measures, per service, group and district, over the people of the group at
reachable origins (the unreachable share is reported separately as ``share_unreachable``):

* ``gini``: Gini coefficient of travel time, each origin weighted by its people
  (1 - twice the area under the Lorenz curve of person-minutes against people).
* ``palma_ratio``: share of all person-minutes borne by the 10% of people with the longest
  times, divided by the share borne by the 40% with the shortest times (people at one origin
  are split at the 10% / 40% boundaries). With equal times for everyone the ratio is
  0.10 / 0.40 = 0.25; higher is more unequal. Null when the 40% with the shortest times have
  zero minutes in total.
* ``share_beyond``: 1 - ``share_within`` (unreachable included).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from careblocks.errors import DataQualityWarning, InputDataError, MissingColumnError

__all__ = [
    "assign_districts",
    "lorenz_share",
    "gini",
    "palma_ratio",
    "equity_table",
    "equity_summary_rows",
]

ALL = "all"


def assign_districts(origins, districts_gdf, name_col: str) -> pd.Series:
    """Name of the district holding each origin's representative point.

    Parameters
    ----------
    origins
        GeoDataFrame of origins (points or polygons) with a CRS.
    districts_gdf
        GeoDataFrame of district polygons; reprojected to ``origins.crs``.
    name_col
        Column of district names.

    Returns
    -------
    pandas.Series
        District name (str) per origin, indexed like ``origins``; null outside every district
        (a DataQualityWarning counts them).
    """
    import shapely

    if name_col not in districts_gdf.columns:
        raise MissingColumnError(
            f"census.districts: column '{name_col}' (census.district_name_column) not found; "
            f"existing columns: {', '.join(str(c) for c in districts_gdf.columns if c != districts_gdf.geometry.name)}"
        )
    if districts_gdf.crs is None:
        from careblocks.errors import CRSError

        raise CRSError("census.districts: layer has no CRS; set census.districts.crs")
    d = districts_gdf.to_crs(origins.crs) if districts_gdf.crs != origins.crs else districts_gdf
    d = d[~(d.geometry.isna() | d.geometry.is_empty)]
    geom = origins.geometry.to_numpy()
    rep = shapely.point_on_surface(geom)
    oi, di = shapely.STRtree(d.geometry.to_numpy()).query(rep, predicate="intersects")
    _, first = np.unique(oi, return_index=True)
    names = np.full(len(origins), None, dtype=object)
    names[oi[first]] = d[name_col].astype(str).to_numpy()[di[first]]
    out = pd.Series(names, index=origins.index, name="district", dtype=object)
    n_out = int(out.isna().sum())
    if n_out:
        warnings.warn(
            f"census.districts: {n_out} of {len(out)} origins fall outside every district; "
            "they count only in the 'all' rows of the equity table",
            DataQualityWarning,
            stacklevel=2,
        )
    return out


def _lorenz(times: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Cumulative people share and person-minute share, sorted by time, starting at (0, 0)."""
    ok = np.isfinite(times) & (weights > 0)
    t, w = times[ok], weights[ok]
    if w.sum() <= 0:
        return None
    order = np.argsort(t, kind="stable")
    t, w = t[order], w[order]
    pm = t * w
    p = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    tot = pm.sum()
    m = np.concatenate([[0.0], np.cumsum(pm) / tot]) if tot > 0 else np.zeros(len(p))
    return p, m


def lorenz_share(times: np.ndarray, weights: np.ndarray, p: float) -> float:
    """Share of total person-minutes borne by the fraction ``p`` of people with the shortest times."""
    lz = _lorenz(np.asarray(times, float), np.asarray(weights, float))
    if lz is None:
        return float("nan")
    return float(np.interp(p, lz[0], lz[1]))


def gini(times: np.ndarray, weights: np.ndarray) -> float:
    """People-weighted Gini coefficient of travel time (null times ignored)."""
    lz = _lorenz(np.asarray(times, float), np.asarray(weights, float))
    if lz is None:
        return float("nan")
    p, m = lz
    if m[-1] == 0:
        return 0.0
    return float(1.0 - np.sum(np.diff(p) * (m[1:] + m[:-1])))


def palma_ratio(times: np.ndarray, weights: np.ndarray) -> float:
    """Person-minute share of the 10% with the longest times / of the 40% with the shortest."""
    lz = _lorenz(np.asarray(times, float), np.asarray(weights, float))
    if lz is None:
        return float("nan")
    p, m = lz
    bottom = float(np.interp(0.4, p, m))
    top = 1.0 - float(np.interp(0.9, p, m))
    if bottom <= 0:
        return float("nan")
    return top / bottom


def people_within(times, people, threshold_min: float) -> float:
    """People (or any weight) whose time is at most ``threshold_min`` (unreachable = NaN/inf
    never counts): the one definition of "within T"."""
    t = np.asarray(times, np.float64)
    w = np.asarray(people, np.float64)
    return float(w[np.isfinite(t) & (t <= float(threshold_min))].sum())


def share_within(times, people, threshold_min: float) -> float:
    """Share of ``people`` within ``threshold_min`` (:func:`people_within` / total); NaN
    when there are no people."""
    total = float(np.asarray(people, np.float64).sum())
    return people_within(times, people, threshold_min) / total if total > 0 else float("nan")


def _rows_for(times: np.ndarray, people: np.ndarray, thresholds: Sequence[float],
              base: dict[str, Any]) -> list[dict[str, Any]]:
    total = float(people.sum())
    reach = np.isfinite(times)
    unreachable = float(people[~reach].sum())
    reach_people = total - unreachable
    mean_min = float((times[reach] * people[reach]).sum() / reach_people) if reach_people > 0 else np.nan
    g = gini(times, people)
    pr = palma_ratio(times, people)
    rows = []
    for t in thresholds:
        within = people_within(times, people, t)
        share = within / total if total > 0 else np.nan
        rows.append({
            **base,
            "threshold_min": float(t),
            "people": total,
            "people_within": within,
            "share_within": share,
            "share_beyond": 1.0 - share if total > 0 else np.nan,
            "share_unreachable": unreachable / total if total > 0 else np.nan,
            "mean_min": mean_min,
            "gini": g,
            "palma_ratio": pr,
        })
    return rows


def equity_table(
    origins: pd.DataFrame,
    services: Sequence[str],
    groups: Sequence[str],
    *,
    time_prefix: str = "walk_min_",
    thresholds: Sequence[float] = (10, 15, 20, 30),
    district_col: str | None = None,
    time_suffix: str = "",
) -> pd.DataFrame:
    """Share of each care group within reach of each service, overall and per district.

    Parameters
    ----------
    origins
        One row per origin with ``<time_prefix><service>`` (minutes; null = unreachable) and
        one count column per group.
    services
        Service names (``daycare``, ``health``, ...).
    groups
        Count columns (``population``, ``children_under5``, ...).
    time_prefix
        ``walk_min_``, ``transit_min_`` or ``best_min_``.
    thresholds
        Minutes.
    district_col
        Column of district names (see :func:`assign_districts`); adds per-district rows.
    time_suffix
        Appended to the time column name, e.g. ``"_stroller"`` for a walking profile
        (``walk_min_<service>_stroller``).

    Returns
    -------
    pandas.DataFrame
        Long format, columns ``service, group, district, threshold_min, people,
        people_within, share_within, share_beyond, share_unreachable, mean_min, gini,
        palma_ratio`` (the last three repeat over thresholds). See the module docstring for
        the definitions.
    """
    need = [f"{time_prefix}{s}{time_suffix}" for s in services] + list(groups)
    if district_col:
        need.append(district_col)
    missing = [c for c in need if c not in origins.columns]
    if missing:
        raise MissingColumnError(
            f"equity: columns {', '.join(missing)} not on the origins; run the access and "
            "census stages first or drop those services/groups"
        )
    if not thresholds:
        raise InputDataError("access.equity_thresholds_min: empty; give at least one threshold")
    thresholds = sorted(float(t) for t in thresholds)
    rows: list[dict[str, Any]] = []
    if district_col:
        codes, uniques = pd.factorize(origins[district_col].astype("string"), sort=True)
        dnames = [str(u) for u in uniques]
    else:
        codes, dnames = None, []
    for s in services:
        t = pd.to_numeric(origins[f"{time_prefix}{s}{time_suffix}"], errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan)
        for g in groups:
            w = pd.to_numeric(origins[g], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
            rows += _rows_for(t, w, thresholds, {"service": s, "group": g, "district": ALL})
            for k, dn in enumerate(dnames):
                m = codes == k
                rows += _rows_for(t[m], w[m], thresholds, {"service": s, "group": g, "district": dn})
    cols = ["service", "group", "district", "threshold_min", "people", "people_within",
            "share_within", "share_beyond", "share_unreachable", "mean_min", "gini", "palma_ratio"]
    return pd.DataFrame(rows, columns=cols)


def equity_summary_rows(
    table: pd.DataFrame, threshold: float, *, district: str = ALL
) -> tuple[list[str], list[list[str]]]:
    """A compact service x group table of the share within ``threshold`` minutes, for the CLI.

    Returns
    -------
    (header, rows)
        ``header = ["service", <group>, ...]``; each row is the service followed by
        percentages such as ``"83%"`` (``"-"`` when the group has no people).
    """
    sel = table[(table["district"] == district) & np.isclose(table["threshold_min"], float(threshold))]
    if sel.empty:
        avail = sorted(table["threshold_min"].unique().tolist())
        raise InputDataError(
            f"equity: no rows for threshold {threshold:g} min (district {district!r}); "
            f"thresholds in the table: {avail}"
        )
    groups = list(dict.fromkeys(sel["group"]))
    services = list(dict.fromkeys(sel["service"]))
    piv = sel.pivot_table(index="service", columns="group", values="share_within",
                          aggfunc="first", dropna=False)
    rows = []
    for s in services:
        r = [s]
        for g in groups:
            v = piv.loc[s, g] if (s in piv.index and g in piv.columns) else np.nan
            r.append("-" if pd.isna(v) else f"{v:.0%}")
        rows.append(r)
    return ["service", *groups], rows
