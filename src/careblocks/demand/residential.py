"""People where they live: census counts spread over residential land inside each unit.

A census unit (Bogotá's census sector) says how many people live in it, not where. OSM maps
only some of the buildings, so spreading over mapped buildings alone puts a whole sector on
a few of them and leaves inhabited blocks empty. :func:`residential_origins` instead:

1. cuts each unit to the study area; the unit keeps the share of its counts given by the
   share of its area inside (``f_u``), and the people cut are reported;
2. tiles the area with H3 cells (``population.grid_resolution``, default 10: about
   15,000 m², 66 m edge) and cuts each cell by the units, so every piece of land belongs to
   one unit;
3. keeps the pieces that are residential land: those holding a mapped residential building,
   or within ``population.street_buffer_m`` of a residential street
   (``highway=residential/living_street``). A unit with people but no such piece keeps all
   its pieces (so no inhabited unit is without origins);
4. gives each piece a weight equal to its area (people are spread evenly over the
   residential land of a unit); a piece with mapped residential buildings passes its weight
   to those buildings in proportion to their floor area, and the buildings become the
   origins; a piece without buildings is an origin itself (``h3:<cell>:<unit>``);
5. spreads the unit's counts (every column) over its origins by weight.

Hence per unit, the origins' counts sum to ``f_u x`` the census counts exactly, and an
origin holds at most the share of its unit that its land piece has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from careblocks.demand.census import area_shares
from careblocks.errors import ConfigError

__all__ = ["residential_origins", "h3_cells"]

RESIDENTIAL_STREETS = ("residential", "living_street")


def h3_cells(area: Any, crs: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """H3 cells (ids, polygons in ``crs``) covering ``area`` (shapely, in ``crs``).

    The area is grown by one cell edge before filling so that cells whose centre lies just
    outside still cover the boundary strip.
    """
    if not 0 <= resolution <= 15:
        raise ConfigError(
            f"config key 'population.grid_resolution': {resolution} is not 0..15; use 10 "
            "(about 15,000 m2 cells) or 9 (about 0.1 km2)"
        )
    edge = h3.average_hexagon_edge_length(resolution, unit="m")
    grown = gpd.GeoSeries([area.buffer(edge)], crs=crs).to_crs("EPSG:4326").iloc[0]
    cells: list[str] = []
    for part in shapely.get_parts(grown):
        cells += h3.geo_to_cells(part.__geo_interface__, resolution)
    cells = sorted(set(cells))
    polys = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    geo = gpd.GeoSeries(polys, crs="EPSG:4326").to_crs(crs).to_numpy()
    return np.array(cells, dtype=object), geo


def residential_origins(
    units: gpd.GeoDataFrame,
    columns: list[str],
    *,
    area: Any,
    buildings: gpd.GeoDataFrame | None = None,
    streets: gpd.GeoDataFrame | None = None,
    resolution: int = 10,
    street_buffer_m: float = 120.0,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Origins over residential land, carrying each unit's counts (see the module docstring).

    Parameters
    ----------
    units
        Census units (polygons, projected CRS) with ``census_unit_id`` and the ``columns``.
    columns
        Count columns to spread (``census_total``, households, care groups).
    area
        Study area (shapely, ``units.crs``).
    buildings
        Residential buildings (polygons, same CRS) with a ``floor_area_m2`` column and an
        ``origin_id``; optional.
    streets
        Street lines (same CRS) with a ``highway`` column; optional.

    Returns
    -------
    (geopandas.GeoDataFrame, dict)
        Origins: ``origin_id``, ``census_unit_id``, ``kind`` ("building" or "land"),
        ``land_m2`` (the residential land the origin stands for), the ``columns`` and
        geometry; stats: units in the area, units cut and the people cut, per-unit origins,
        units that fell back to all their land, max origin share.
    """
    ug = units.geometry.to_numpy()
    inside, frac, keep = area_shares(ug, np.ones(len(ug), dtype=bool), area)
    counts = units[columns].to_numpy(dtype="float64")[keep]
    uid = units["census_unit_id"].astype(str).to_numpy()[keep]
    kept = counts * frac[:, None]
    n_u = len(uid)
    people_col = columns.index("census_total") if "census_total" in columns else 0
    has_people = kept[:, people_col] > 0
    cell_ids, p = _land_pieces(inside, area, str(units.crs), resolution)
    b_sel, b_piece = _buildings_on(p.geom, buildings)
    has_bld = np.zeros(len(p.geom), dtype=bool)
    has_bld[b_piece] = True
    resid = has_bld | _near_residential_streets(p.geom, streets, street_buffer_m)
    # a unit with people but no residential piece keeps all its land
    fallback = has_people & ~(np.bincount(p.unit[resid], minlength=n_u) > 0)
    resid |= fallback[p.unit]
    # units with people and no piece at all (slivers under 1 m2): their representative point
    no_piece = has_people & (np.bincount(p.unit, minlength=n_u) == 0)
    o = _origin_rows(p, resid, has_bld, b_sel, b_piece, buildings, no_piece, inside, uid, cell_ids)
    wsum = np.bincount(o["unit"], weights=o["weight"], minlength=n_u)
    share = np.divide(o["weight"], wsum[o["unit"]], out=np.zeros(o["unit"].size), where=wsum[o["unit"]] > 0)
    out = gpd.GeoDataFrame({"origin_id": o["id"], "census_unit_id": uid[o["unit"]], "kind": o["kind"],
                            "land_m2": o["land_m2"]}, geometry=o["geometry"], crs=units.crs)
    for j, c in enumerate(columns):
        out[c] = kept[o["unit"], j] * share
    stats: dict[str, Any] = {
        "method": "residential land (buildings + H3 cells)",
        "grid_resolution": int(resolution),
        "street_buffer_m": float(street_buffer_m),
        "n_units_in_area": int(n_u),
        "n_units_partly_outside": int(((frac > 0) & (frac < 1)).sum()),
        "n_units_with_people": int(has_people.sum()),
        "n_units_fallback_all_land": int(fallback.sum()),
        "n_units_point_only": int(no_piece.sum()),
        **_origin_stats(out, o["unit"], columns, people_col),
        "kept": {c: float(v) for c, v in zip(columns, kept.sum(axis=0), strict=True)},
        "cut": {c: float(v) for c, v in zip(columns, counts.sum(axis=0) - kept.sum(axis=0), strict=True)},
        "units_cut": [
            {"census_unit": str(uid[u]), "share_inside": round(float(frac[u]), 4),
             "people_cut": round(float(counts[u, people_col] - kept[u, people_col]), 1)}
            for u in np.flatnonzero(frac < 1)
        ],
    }
    return out, stats


@dataclass(frozen=True)
class _Pieces:
    """Land pieces: H3 cells cut by the units (over 1 m2), each with its unit and cell."""

    unit: np.ndarray
    cell: np.ndarray
    geom: np.ndarray
    area: np.ndarray


def _land_pieces(inside: np.ndarray, area: Any, crs: str, resolution: int) -> tuple[np.ndarray, _Pieces]:
    """The H3 cell ids covering the area and the pieces of the units' land in them."""
    cell_ids, cell_geo = h3_cells(area, crs, resolution)
    ui, ci = shapely.STRtree(cell_geo).query(inside, predicate="intersects")
    pieces = shapely.intersection(inside[ui], cell_geo[ci])
    parea = shapely.area(pieces)
    ok = parea > 1.0
    return cell_ids, _Pieces(ui[ok], ci[ok], pieces[ok], parea[ok])


def _buildings_on(pieces: np.ndarray, buildings: gpd.GeoDataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """The buildings standing on a piece (by a point on their surface) and their piece."""
    if buildings is None or not len(buildings):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    bpts = shapely.point_on_surface(buildings.geometry.to_numpy())
    bi, pi = shapely.STRtree(pieces).query(bpts, predicate="within")
    _, first = np.unique(bi, return_index=True)
    return bi[first], pi[first]


def _near_residential_streets(pieces: np.ndarray, streets: gpd.GeoDataFrame | None, buffer_m: float
                              ) -> np.ndarray:
    """Pieces within ``buffer_m`` of a residential street."""
    near = np.zeros(len(pieces), dtype=bool)
    if streets is not None and len(streets):
        hw = streets["highway"].astype("string").str.strip().str.lower()
        res = streets.geometry.to_numpy()[hw.isin(RESIDENTIAL_STREETS).to_numpy(dtype=bool)]
        if len(res):
            pi, _ = shapely.STRtree(res).query(pieces, predicate="dwithin", distance=buffer_m)
            near[np.unique(pi)] = True
    return near


def _origin_rows(p: _Pieces, resid: np.ndarray, has_bld: np.ndarray, b_sel: np.ndarray, b_piece: np.ndarray,
                 buildings: gpd.GeoDataFrame | None, no_piece: np.ndarray, inside: np.ndarray, uid: np.ndarray,
                 cell_ids: np.ndarray) -> dict[str, np.ndarray]:
    """The origins, as arrays of unit, weight, land, geometry, id and kind: the buildings of
    residential pieces (sharing the piece's area by floor area), the residential pieces
    without buildings, and units with people but no piece (the unit's land itself)."""
    w_piece = np.where(resid, p.area, 0.0)
    parts: list[tuple[np.ndarray, ...]] = []
    if b_sel.size:
        use = resid[b_piece]
        bsel, bp = b_sel[use], b_piece[use]
        fa = buildings["floor_area_m2"].to_numpy("float64")[bsel]
        fa = np.where(np.isfinite(fa) & (fa > 0), fa, 1.0)
        share = fa / np.bincount(bp, weights=fa, minlength=len(p.geom))[bp]
        parts.append((p.unit[bp], w_piece[bp] * share, p.area[bp] * share, buildings.geometry.to_numpy()[bsel],
                      buildings["origin_id"].astype(str).to_numpy()[bsel],
                      np.full(bsel.size, "building", dtype=object)))
    lone = np.flatnonzero(resid & ~has_bld)
    parts.append((p.unit[lone], w_piece[lone], p.area[lone], p.geom[lone],
                  np.array([f"h3:{cell_ids[c]}:{uid[u]}" for c, u in zip(p.cell[lone], p.unit[lone], strict=True)],
                           dtype=object),
                  np.full(lone.size, "land", dtype=object)))
    if no_piece.any():
        k = np.flatnonzero(no_piece)
        parts.append((k, np.ones(k.size), shapely.area(inside[k]), inside[k],
                      np.array([f"unit:{uid[u]}" for u in k], dtype=object), np.full(k.size, "land", dtype=object)))
    names = ("unit", "weight", "land_m2", "geometry", "id", "kind")
    out = {n: np.concatenate([part[i] for part in parts]) for i, n in enumerate(names)}
    out["unit"] = out["unit"].astype(np.int64)
    return out


def _origin_stats(out: gpd.GeoDataFrame, o_unit: np.ndarray, columns: list[str], people_col: int
                  ) -> dict[str, Any]:
    total = out[columns[people_col]].to_numpy() if columns else np.zeros(len(out))
    people = float(total.sum())
    per_unit = pd.Series(o_unit).value_counts()
    return {
        "origins": int(len(out)),
        "origins_buildings": int((out["kind"] == "building").sum()),
        "origins_land": int((out["kind"] == "land").sum()),
        "origins_per_unit_min": int(per_unit.min()) if len(per_unit) else 0,
        "max_origin_share_of_people": float(total.max() / people) if people > 0 else 0.0,
    }
