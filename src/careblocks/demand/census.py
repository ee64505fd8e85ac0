"""Census -> origins (dasymetric allocation), care groups and the care-need index.

Three steps, each usable on its own:

* :func:`read_census` reads a census layer (polygons, or a point/H3 table) and renames the
  mapped columns to canonical names: ``census_total``, ``households`` and the care groups of
  :class:`~careblocks.config.CensusGroups`. A group that is not mapped is absent (no column).
* :func:`allocate_census` spreads each census unit's counts over the origins inside it
  (by building floor area, by origin weights, equally per point, or by overlap area), keeping
  totals. :func:`census_to_origins` is the config adapter the pipeline calls (it also handles
  population rasters through :mod:`careblocks.io.raster`).
* :func:`care_need_index` builds Bogotá-style components (care demand, caregiver density,
  poverty) normalised within the study area; see ``docs/care_need_index.md``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from careblocks.columns import CENSUS_GROUPS
from careblocks.config import CensusConfig
from careblocks.demand.groups import coarse_index, resolve_groups
from careblocks.errors import (
    ConfigError,
    CRSError,
    DataQualityWarning,
    EmptyResultError,
    InputDataError,
    MissingColumnError,
)
from careblocks.io.layers import numeric_column, read_vector
from careblocks.io.raster import zonal_sums

__all__ = [
    "TOTAL",
    "HOUSEHOLDS",
    "read_census",
    "allocate_census",
    "census_to_origins",
]

TOTAL = "census_total"
HOUSEHOLDS = "households"
#: a warning is raised when the people cut from units partly outside the area exceed this share
#: of the people kept plus cut
CUT_WARN_SHARE = 0.001


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def _mapping(cfg: CensusConfig) -> dict[str, str]:
    """Canonical name -> source column, for the mapped columns only."""
    out: dict[str, str] = {}
    if cfg.total_column:
        out[TOTAL] = cfg.total_column
    if cfg.households_column:
        out[HOUSEHOLDS] = cfg.households_column
    for g in CENSUS_GROUPS:
        col = getattr(cfg.groups, g)
        if isinstance(col, str):
            out[g] = col
    return out


def _key_of(canonical: str) -> str:
    if canonical == TOTAL:
        return "census.total_column"
    if canonical == HOUSEHOLDS:
        return "census.households_column"
    return f"census.groups.{canonical}"


def read_census(cfg: CensusConfig, *, area_4326: Any = None):
    """Read the census layer of ``cfg`` with canonical column names.

    Parameters
    ----------
    cfg
        The ``[census]`` config section (``layer`` must be set).
    area_4326
        Study area (shapely, EPSG:4326); the layer must overlap it.

    Returns
    -------
    (geopandas.GeoDataFrame, dict)
        Columns ``census_unit_id`` (str), ``census_name`` (when ``name_column`` is set), the
        mapped ones among ``census_total``, ``households`` and the care groups (float64), and
        geometry in the layer's CRS; and info (file, rows, columns mapped, groups present).

    Raises
    ------
    MissingColumnError
        A mapped column is not in the layer (the message lists the existing columns).
    InputDataError
        Non-numeric or negative counts, no CRS, no overlap with the area.
    """
    if cfg.layer is None:
        raise ConfigError("census.layer: no census layer configured; set census.layer or census.raster")
    ref = cfg.layer
    fname = f"{Path(ref.path)}" + (f" (layer {ref.layer})" if ref.layer else "")
    where = f"census layer (census.layer): {fname}"
    mapping = _mapping(cfg)
    bbox = tuple(area_4326.bounds) if area_4326 is not None else None
    coarse, coarse_lost = _read_coarse(cfg, bbox) if cfg.coarse is not None else (None, [])
    if coarse is not None and bbox is not None:
        # whole coarse units: shares of a coarse unit are split over all its fine units
        b = coarse.to_crs("EPSG:4326").total_bounds
        bbox = (min(bbox[0], b[0]), min(bbox[1], b[1]), max(bbox[2], b[2]), max(bbox[3], b[3]))
    # read_vector refuses a layer without CRS or without features in the box
    gdf = read_vector(ref, what="census layer (census.layer)", bbox_4326=bbox)
    out = _unit_counts(cfg, gdf, mapping, where=where, fname=fname)
    if cfg.published_totals:
        out = _published_totals(cfg, out, mapping, where=where)
        gdf = gdf.loc[out.index]
    _check_poverty_is_a_count(cfg, gdf, where=where)
    recipes = _add_groups(cfg, out, gdf, coarse, where=where)
    res = gpd.GeoDataFrame(out, geometry=gdf.geometry.to_numpy(), crs=gdf.crs)
    res = res[~(res.geometry.isna() | res.geometry.is_empty)].reset_index(drop=True)
    if area_4326 is not None:
        in4326 = res.geometry.to_crs("EPSG:4326")
        if not shapely.intersects(in4326.to_numpy(), area_4326).any():
            b = tuple(round(v, 4) for v in in4326.total_bounds)
            raise EmptyResultError(
                f"{where}: no census unit overlaps the study area (layer extent {b}); use a "
                "census layer of this area or fix the study boundary/bbox"
            )
    info = {
        "file": str(ref.path),
        "rows": int(len(res)),
        "columns": {k: v for k, v in mapping.items()},
        "recipes": recipes["recipes"],
        "coarse": str(cfg.coarse.path) if cfg.coarse is not None else None,
        "groups_present": [g for g in CENSUS_GROUPS if g in res.columns],
        "published_totals": bool(cfg.published_totals),
        "coarse_without_geometry": coarse_lost if cfg.coarse is not None else [],
    }
    return res, info


def _coarse_where(cfg: CensusConfig) -> str:
    return f"coarse census layer (census.coarse): {Path(cfg.coarse.path)}" if cfg.coarse is not None \
        else "coarse census layer (census.coarse)"


def _missing_column(where: str, column: str, key: str, existing: Any) -> MissingColumnError:
    return MissingColumnError(f"{where}: column '{column}' ({key}) not found; existing columns: "
                              f"{', '.join(map(str, existing))}")


def _read_coarse(cfg: CensusConfig, bbox: tuple[float, ...] | None) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The coarse census layer (``census.coarse``), checked, and one message per row of it
    without a geometry (named by ``census.coarse_name_column``; each also warned)."""
    where = _coarse_where(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        coarse = read_vector(cfg.coarse, what="coarse census layer (census.coarse)", bbox_4326=bbox)
    lost = [w for w in caught if issubclass(w.category, DataQualityWarning)
            and "without geometry dropped" in str(w.message)]
    coarse_lost = _coarse_without_geometry(cfg, where) if lost and cfg.coarse_name_column else []
    for w in caught:
        if w in lost and coarse_lost:
            continue  # said below, naming the rows
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for msg in coarse_lost:
        warnings.warn(msg, DataQualityWarning, stacklevel=3)
    if cfg.coarse_name_column and cfg.coarse_name_column not in coarse.columns:
        raise _missing_column(where, cfg.coarse_name_column, "census.coarse_name_column", coarse.columns)
    return coarse, coarse_lost


def _coarse_without_geometry(cfg: CensusConfig, where: str) -> list[str]:
    """One message per row of ``census.coarse`` without a geometry, naming it by
    ``census.coarse_name_column`` and the row that has a geometry under the same name (Bogotá's
    indicator table repeats San Cristóbal in a 21st row without one)."""
    ref = cfg.coarse
    col = cfg.coarse_name_column
    df = pyogrio.read_dataframe(ref.path, layer=ref.layer, columns=[col])
    empty = (df.geometry.isna() | df.geometry.is_empty).to_numpy()
    names = df[col].astype(str).to_numpy()
    out = []
    for i in np.flatnonzero(empty):
        twins = np.flatnonzero((names == names[i]) & ~empty)
        rep = (f" and repeats row {int(twins[0]) + 1}, which has the geometry" if len(twins)
               else "; no other row has this name")
        out.append(
            f"{where}: row {int(i) + 1} ({col} = {names[i]!r}) has no geometry{rep}; it is left "
            f"out, so {len(df) - int(empty.sum())} of the {len(df)} rows are used: remove the row "
            "or give it a geometry"
        )
    return out


def _unit_counts(cfg: CensusConfig, gdf, mapping: dict[str, str], *, where: str, fname: str) -> pd.DataFrame:
    """One row per unit: ``census_unit_id``, ``census_name`` and the mapped total and
    households as checked counts."""
    existing = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    for canon, col in mapping.items():
        if canon in (TOTAL, HOUSEHOLDS) and col not in gdf.columns:
            raise MissingColumnError(
                f"{where}: column '{col}' ({_key_of(canon)}) not found; existing columns: "
                f"{', '.join(existing)}; fix {_key_of(canon)}"
            )
    out = pd.DataFrame(index=gdf.index)
    out["census_unit_id"] = [str(i) for i in (gdf.index if gdf.index.name == "row" else range(len(gdf)))]
    if cfg.name_column:
        if cfg.name_column not in gdf.columns:
            raise _missing_column(where, cfg.name_column, "census.name_column", existing)
        out["census_name"] = gdf[cfg.name_column].astype(str).to_numpy()
    for canon, col in mapping.items():
        if canon in (TOTAL, HOUSEHOLDS):
            out[canon] = numeric_column(gdf[[col]], col, what=f"census layer ({_key_of(canon)})", path=fname)
    return out


def _published_totals(cfg: CensusConfig, out: pd.DataFrame, mapping: dict[str, str], *,
                      where: str) -> pd.DataFrame:
    """``census_total`` from ``census.published_totals`` by unit name; units without an
    entry dropped with a warning."""
    if not cfg.name_column:
        raise ConfigError(
            "census.published_totals: needs census.name_column (the column whose values "
            "are the keys of published_totals)"
        )
    if TOTAL in mapping:
        raise ConfigError(
            "census.published_totals: census.total_column is also set; use one of the two"
        )
    names = out["census_name"]
    unknown = sorted(set(cfg.published_totals) - set(names))
    if unknown:
        raise ConfigError(
            f"census.published_totals: {', '.join(map(repr, unknown))} not found in column "
            f"'{cfg.name_column}' of {where}; values there include "
            f"{', '.join(map(repr, sorted(set(names))[:8]))}"
        )
    out[TOTAL] = names.map(cfg.published_totals).astype("float64")
    missing = out[TOTAL].isna()
    if missing.any():
        warnings.warn(
            f"{where}: {int(missing.sum())} units have no census.published_totals entry "
            "and are dropped",
            DataQualityWarning,
            stacklevel=3,
        )
        out = out[~missing]
    return out


def _check_poverty_is_a_count(cfg: CensusConfig, gdf, *, where: str) -> None:
    if isinstance(cfg.groups.poverty, str) and cfg.groups.poverty in gdf.columns:
        pov = pd.to_numeric(gdf[cfg.groups.poverty], errors="coerce")
        if len(pov) and pov.max() <= 1.0 and (pov % 1 != 0).any():
            raise InputDataError(
                f"{where}: column '{cfg.groups.poverty}' (census.groups.poverty) looks like a "
                "rate (all values <= 1); declare it: poverty = { column = "
                f"\"{cfg.groups.poverty}\", unit = \"fraction\" }}"
            )


def _add_groups(cfg: CensusConfig, out: pd.DataFrame, gdf, coarse, *, where: str) -> dict[str, Any]:
    """Add the care-group counts (declared counts, rates, shares, two-level census:
    :func:`careblocks.demand.groups.resolve_groups`) to ``out``; return the recipes."""
    coarse_of = None
    coarse_tab = None
    if coarse is not None:
        cg = coarse.to_crs(gdf.crs).geometry.to_numpy()
        coarse_of = coarse_index(gdf.geometry.to_numpy(), cg)
        coarse_tab = pd.DataFrame(coarse.drop(columns=coarse.geometry.name)).reset_index(drop=True)
        if cfg.coarse_name_column:
            out["census_coarse_name"] = coarse_tab[cfg.coarse_name_column].astype(str) \
                .to_numpy()[coarse_of]
    fine_tab = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    counts, recipes = resolve_groups(
        cfg, fine_tab, coarse=coarse_tab, coarse_of=coarse_of,
        total=out[TOTAL].to_numpy("float64") if TOTAL in out.columns else None,
        households=out[HOUSEHOLDS].to_numpy("float64") if HOUSEHOLDS in out.columns else None,
        where=where, coarse_where=_coarse_where(cfg), ids=out["census_unit_id"].to_numpy(),
    )
    for g in CENSUS_GROUPS:
        if g in counts:
            out[g] = counts[g]
    return recipes


# --------------------------------------------------------------------------------------
# Allocation
# --------------------------------------------------------------------------------------


def _spread(kept: np.ndarray, pair_u: np.ndarray, pair_o: np.ndarray, pair_w: np.ndarray,
            n_origins: int, fallback: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spread unit counts ``kept`` (U x C) over origins along (unit, origin, weight) pairs.

    Units whose pairs all weigh 0 are shared equally; units without pairs go whole to
    ``fallback[u]``. Returns the (n_origins x C) counts and a mask of units sent to fallback.
    """
    n_units, n_cols = kept.shape
    w = np.asarray(pair_w, dtype="float64").copy()
    npairs = np.bincount(pair_u, minlength=n_units)
    wsum = np.bincount(pair_u, weights=w, minlength=n_units)
    zero = (wsum <= 0) & (npairs > 0)
    w[zero[pair_u]] = 1.0
    wsum = np.bincount(pair_u, weights=w, minlength=n_units)
    frac = w / np.where(wsum[pair_u] > 0, wsum[pair_u], 1.0)
    out = np.zeros((n_origins, n_cols))
    lone = npairs == 0
    for c in range(n_cols):
        out[:, c] = np.bincount(pair_o, weights=frac * kept[pair_u, c], minlength=n_origins)
        if lone.any():
            out[:, c] += np.bincount(fallback[lone], weights=kept[lone, c], minlength=n_origins)
    return out, lone


def _resolve_weights(origins, method: str, weights: Any, polygons: bool) -> np.ndarray:
    n = len(origins)
    if weights is not None:
        if isinstance(weights, str):
            if weights not in origins.columns:
                raise MissingColumnError(
                    f"origins: weight column '{weights}' not found; existing columns: "
                    f"{', '.join(map(str, origins.columns))}"
                )
            w = pd.to_numeric(origins[weights], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        else:
            w = np.asarray(weights, dtype="float64")
        if w.shape != (n,):
            raise ValueError(f"weights: expected {n} values, got {w.shape}")
        return np.where(np.isfinite(w) & (w > 0), w, 0.0)
    if method == "buildings":
        if "floor_area_m2" in origins.columns:
            return _resolve_weights(origins, method, "floor_area_m2", polygons)
        # building origins (origins.py): population = footprint x levels x persons per m2,
        # i.e. proportional to floor area
        if "population" in origins.columns and (origins["population"] > 0).any():
            return _resolve_weights(origins, method, "population", polygons)
        if polygons:
            return origins.geometry.area.to_numpy(dtype="float64")
        raise InputDataError(
            "census.allocate_by: 'buildings' needs building origins (polygons, or a "
            "floor_area_m2/population column); use allocate_by = 'points' or 'area'"
        )
    return np.ones(n)


def allocate_census(
    origins,
    census,
    columns: list[str],
    *,
    method: Literal["buildings", "area", "points"] = "points",
    area: Any = None,
    weights: Any = None,
):
    """Spread census counts over origins, keeping totals (dasymetric allocation).

    Parameters
    ----------
    origins
        GeoDataFrame of origins (points or polygons) in a projected CRS.
    census
        GeoDataFrame of census units (polygons, or points such as H3 centroids); reprojected
        to ``origins.crs`` when it differs.
    columns
        Census columns to allocate (counts); they are added to the returned origins.
    method
        ``"buildings"``: by building floor area (``weights``, else a ``floor_area_m2``
        column, else the ``population`` column of building origins, which is floor area x
        persons per m², else footprint area); ``"points"``: equally per
        origin, or by ``weights`` (e.g. ``"population"``); ``"area"``: by the overlap area of
        origin polygons with each unit (points fall back to ``"points"``).
        A census point goes to the origin polygon containing it, else to the nearest origin.
    area
        Study area (shapely, ``origins.crs``). Units partly outside keep the share of their
        counts given by the share of their area inside (a DataQualityWarning says how much was
        cut); units wholly outside are dropped.
    weights
        Column name or array (one per origin) overriding the method's default weights.

    Returns
    -------
    (geopandas.GeoDataFrame, dict)
        A copy of ``origins`` with ``columns`` added (float64), and stats: totals kept and cut
        per column, units partly outside, units without an origin (sent whole to the nearest
        origin), origins outside every unit.
    """
    census = _checked_units(origins, census, columns)
    o = _OriginShapes.of(origins)
    u_geom = census.geometry.to_numpy()
    u_poly = np.isin(shapely.get_type_id(u_geom), (3, 6))
    counts = census[columns].to_numpy(dtype="float64")
    inside_geom, frac, keep = area_shares(u_geom, u_poly, area)
    u_poly = u_poly[keep]
    kept = counts[keep] * frac[:, None]
    eff_method = "points" if method == "area" and not o.polygons else method
    w_o = _resolve_weights(origins, eff_method, weights, o.polygons)
    pair_u, pair_o, pair_w = _unit_origin_pairs(o, inside_geom, u_poly, eff_method, w_o,
                                                weighted=weights is not None)
    fallback = _nearest(o.rep_xy, shapely.get_coordinates(shapely.point_on_surface(inside_geom)))
    alloc, lone = _spread(kept, pair_u, pair_o, pair_w, len(origins), fallback)

    out = origins.copy()
    for j, c in enumerate(columns):
        out[c] = alloc[:, j]
    covered = np.zeros(len(origins), dtype=bool)
    covered[pair_o] = True
    cut = counts[keep].sum(axis=0) - kept.sum(axis=0)  # from units partly outside
    partial = int(((frac > 0) & (frac < 1)).sum())
    stats: dict[str, Any] = {
        "method": eff_method,
        "n_units": int(len(census)),
        "n_units_in_area": int(len(inside_geom)),
        "n_units_partly_outside": partial,
        "n_units_without_origin": int(lone.sum()),
        "n_origins_outside_units": int((~covered).sum()),
        "kept": dict(zip(columns, map(float, kept.sum(axis=0)), strict=True)),
        "cut": dict(zip(columns, map(float, cut), strict=True)),
        "outside": dict(zip(columns, map(float, counts[~keep].sum(axis=0)), strict=True)),
        "to_nearest_origin": dict(zip(columns, map(float, kept[lone].sum(axis=0)), strict=True)),
    }
    if method != eff_method:
        stats["note"] = "origins are points: allocate_by='area' used equal shares per point"
    if partial:
        _warn_cut(columns, counts[keep], frac, kept, cut, partial)
    if lone.any():
        stats.update(_lone_units(origins, census, keep, lone, fallback))
    return out, stats


def _checked_units(origins, census, columns: list[str]):
    """The census units in the origins' CRS, without empty geometries, after checking that
    both have a CRS, that ``columns`` exist and that there are origins."""
    if origins.crs is None or census.crs is None:
        raise CRSError("census.layer: layer has no CRS; set census.layer.crs")
    for c in columns:
        if c not in census.columns:
            raise MissingColumnError(
                f"census: column '{c}' not found; existing columns: {', '.join(map(str, census.columns))}"
            )
    if len(origins) == 0:
        raise EmptyResultError("origins: no origins to allocate the census to; check the study area")
    if census.crs != origins.crs:
        census = census.to_crs(origins.crs)
    return census[~(census.geometry.isna() | census.geometry.is_empty)]


@dataclass(frozen=True)
class _OriginShapes:
    """The origins' geometries, whether all are polygons, and the point each one is placed
    at (a point on the surface of a polygon, the centroid of anything else)."""

    geom: np.ndarray
    polygons: bool
    rep: np.ndarray
    rep_xy: np.ndarray

    @classmethod
    def of(cls, origins) -> _OriginShapes:
        geom = origins.geometry.to_numpy()
        if (shapely.is_missing(geom) | shapely.is_empty(geom)).any():
            raise InputDataError(
                "origins: some origins have no geometry; drop them before allocating the census"
            )
        polygons = bool(np.all(np.isin(shapely.get_type_id(geom), (3, 6))))
        rep = shapely.point_on_surface(geom) if polygons else shapely.centroid(geom)
        return cls(geom, polygons, rep, shapely.get_coordinates(rep))


def area_shares(u_geom: np.ndarray, u_poly: np.ndarray, area: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The census units that reach into ``area``: the part of each inside it and the share
    of the unit that part is (by area for polygons, 0 or 1 by centroid for points), for the
    units kept, and the mask ``keep`` of those units (share > 0). Without an area every unit
    is kept whole. Raises :class:`EmptyResultError` when no unit reaches into the area."""
    if area is None:
        return u_geom, np.ones(len(u_geom)), np.ones(len(u_geom), dtype=bool)
    shapely.prepare(area)
    inside_geom = np.where(u_poly, shapely.intersection(u_geom, area), u_geom)
    a_all = shapely.area(u_geom)
    frac = np.where(
        u_poly,
        np.divide(shapely.area(inside_geom), a_all, out=np.zeros(len(u_geom)), where=a_all > 0),
        shapely.contains_xy(area, *shapely.get_coordinates(shapely.centroid(u_geom)).T).astype(float),
    )
    frac = np.clip(frac, 0.0, 1.0)
    frac[frac > 1 - 1e-9] = 1.0
    keep = frac > 0
    if not keep.any():
        raise EmptyResultError(
            "census.layer: no census unit overlaps the study area; use a census layer of this "
            "area or fix the study boundary/bbox"
        )
    return inside_geom[keep], frac[keep], keep


def _unit_origin_pairs(o: _OriginShapes, inside_geom: np.ndarray, u_poly: np.ndarray, method: str,
                       w_o: np.ndarray, *, weighted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit, origin, weight) pairs: origins in each polygon unit (by overlap area with
    ``method="area"``, else by their point), and the origin each census point falls to."""
    pu, po, pw = [], [], []
    poly_idx = np.flatnonzero(u_poly)
    if poly_idx.size:
        ui, oi, wts = _polygon_pairs(o, inside_geom[poly_idx], method, w_o, weighted=weighted)
        pu.append(poly_idx[ui])
        po.append(oi)
        pw.append(wts)
    pt_idx = np.flatnonzero(~u_poly)
    if pt_idx.size:
        pu.append(pt_idx)
        po.append(_point_owners(o, shapely.centroid(inside_geom[pt_idx])))
        pw.append(np.ones(pt_idx.size))
    return (np.concatenate(pu).astype(np.int64), np.concatenate(po).astype(np.int64),
            np.concatenate(pw).astype("float64"))


def _polygon_pairs(o: _OriginShapes, units: np.ndarray, method: str, w_o: np.ndarray, *,
                   weighted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tree = shapely.STRtree(units)
    if method == "area":
        oi, ui = tree.query(o.geom, predicate="intersects")
        ov = shapely.area(shapely.intersection(o.geom[oi], units[ui]))
        ok = ov > 0
        oi, ui, ov = oi[ok], ui[ok], ov[ok]
        return ui, oi, ov * (w_o[oi] if weighted else 1.0)
    oi, ui = tree.query(o.rep, predicate="intersects")
    # a point on a shared edge: keep its first unit only
    _, first = np.unique(oi, return_index=True)
    oi, ui = oi[first], ui[first]
    return ui, oi, w_o[oi]


def _point_owners(o: _OriginShapes, pts: np.ndarray) -> np.ndarray:
    """The origin of each census point: the origin polygon containing it, else the nearest."""
    owner = np.full(len(pts), -1, dtype=np.int64)
    if o.polygons:
        pi, oi = shapely.STRtree(o.geom).query(pts, predicate="within")
        _, first = np.unique(pi, return_index=True)
        owner[pi[first]] = oi[first]
    free = owner < 0
    if free.any():
        owner[free] = _nearest(o.rep_xy, shapely.get_coordinates(pts[free]))
    return owner


def _warn_cut(columns: list[str], counts: np.ndarray, frac: np.ndarray, kept: np.ndarray,
              cut: np.ndarray, partial: int) -> None:
    """Warn when units partly outside the area lose more than ``CUT_WARN_SHARE`` of the
    census total (or of the first column)."""
    ref_col = TOTAL if TOTAL in columns else columns[0] if columns else None
    if ref_col is None:
        return
    j = columns.index(ref_col)
    straddling = float(counts[(frac < 1), j].sum())
    share = cut[j] / straddling if straddling > 0 else 0.0
    if cut[j] > CUT_WARN_SHARE * (kept[:, j].sum() + cut[j]):
        warnings.warn(
            f"census.layer: {partial} census units extend beyond the study area; "
            f"{cut[j]:,.0f} of their {straddling:,.0f} in '{ref_col}' ({share:.1%}) lie "
            f"outside by area share and were cut ({kept[:, j].sum():,.0f} kept in the area)",
            DataQualityWarning,
            stacklevel=3,
        )


def _lone_units(origins, census, keep: np.ndarray, lone: np.ndarray, fallback: np.ndarray) -> dict[str, Any]:
    """The stats of units that contain no origin (sent whole to the nearest origin)."""
    uid = census["census_unit_id"].to_numpy()[keep] if "census_unit_id" in census.columns \
        else census.index.to_numpy()[keep]
    oid = origins["origin_id"].to_numpy() if "origin_id" in origins.columns \
        else origins.index.to_numpy()
    return {
        "units_to_nearest_origin": [
            {"census_unit": str(uid[u]), "origin": str(oid[fallback[u]])} for u in np.flatnonzero(lone)
        ],
        "note_without_origin": (
            f"{int(lone.sum())} census units inside the area contain no origin; their counts "
            "went whole to the nearest origin"
        ),
    }


def _nearest(tree_xy: np.ndarray, xy: np.ndarray) -> np.ndarray:
    if len(xy) == 0:
        return np.zeros(0, dtype=np.int64)
    from scipy.spatial import cKDTree

    _, idx = cKDTree(tree_xy).query(xy)
    return np.asarray(idx, dtype=np.int64)


def census_to_origins(config, origins, *, area: Any = None, area_4326: Any = None):
    """Add census counts and care groups to the pipeline's origins (config adapter).

    Parameters
    ----------
    config
        The study :class:`~careblocks.config.Config`; uses ``config.census``.
    origins
        GeoDataFrame with ``origin_id``, ``population``, geometry (working CRS).
    area, area_4326
        Study area in the working CRS and in EPSG:4326.

    Returns
    -------
    (geopandas.GeoDataFrame, dict)
        Origins with ``census_total`` (when mapped, or from a raster), ``households``
        (mapped, or ``census_total / household_size``) and one column per mapped care group;
        stats with ``groups_present``, reading info and allocation stats.
    """
    cfg: CensusConfig = config.census
    stats: dict[str, Any] = {"groups_present": [], "source": None}
    src = cfg.raster if cfg.raster is not None else cfg.layer.path if cfg.layer is not None else None
    if src is not None and cfg.optional and not Path(src).exists():
        stats["skipped"] = f"census file {src} not found and census.optional = true"
        return origins, stats
    if config.population.source == "census" and TOTAL in origins.columns:
        # the origins were made from the census units (careblocks.residential): counts are
        # already on them, per-unit totals kept; see the origins stats for the allocation
        stats.update(source="census origins",
                     groups_present=[g for g in CENSUS_GROUPS if g in origins.columns])
        return origins, stats
    if cfg.raster is not None:
        sums, rstats = zonal_sums(cfg.raster, origins.geometry, area=area)
        origins = origins.copy()
        origins[TOTAL] = sums
        stats.update(source="raster", raster=rstats)
    elif cfg.layer is not None:
        census, info = read_census(cfg, area_4326=area_4326)
        cols = [c for c in (TOTAL, HOUSEHOLDS, *CENSUS_GROUPS) if c in census.columns]
        origins, astats = allocate_census(origins, census, cols, method=cfg.allocate_by, area=area)
        stats.update(source="layer", read=info, allocation=astats)
        stats["groups_present"] = info["groups_present"]
    else:
        return origins, stats
    if HOUSEHOLDS not in origins.columns and cfg.household_size and TOTAL in origins.columns:
        origins[HOUSEHOLDS] = origins[TOTAL] / cfg.household_size
        stats["households_from_size"] = cfg.household_size
    return origins, stats




def population_from_census(origins: gpd.GeoDataFrame) -> dict[str, float]:
    """Make the allocated census total the ``population`` of the origins it covers (in place).

    Origins inside no census unit (census total 0) keep their estimate (buildings or streets)
    rescaled by the ratio census / estimate over the covered origins, so that densities stay
    calibrated to the census.
    """
    est = origins["population"].to_numpy(np.float64)
    census = origins[TOTAL].to_numpy(np.float64)
    covered = np.isfinite(census) & (census > 0)
    if not covered.any():
        return {"origins_covered": 0, "origins_extrapolated": 0, "census_to_estimate_ratio": 1.0}
    ratio = float(census[covered].sum() / max(est[covered].sum(), 1e-12))
    origins["population"] = np.where(covered, census, est * ratio)
    return {
        "origins_covered": int(covered.sum()),
        "origins_extrapolated": int((~covered).sum()),
        "census_to_estimate_ratio": ratio,
        "population": float(origins["population"].sum()),
    }


def read_districts(config, *, area_4326: Any = None):
    """The district layer of ``census.districts`` (None when not configured), checked."""
    cfg = config.census
    if cfg.districts is None:
        return None
    name_col = cfg.district_name_column
    if not name_col:
        raise ConfigError(
            "census.district_name_column: census.districts is set but not the column of "
            "district names; set census.district_name_column"
        )
    bbox = tuple(area_4326.bounds) if area_4326 is not None else None
    return read_vector(cfg.districts, what="district layer (census.districts)", columns=[name_col],
                       bbox_4326=bbox)
