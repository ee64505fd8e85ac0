"""Census audit: geometry types, duplicates, value ranges, published totals, coverage."""

from __future__ import annotations

from typing import Any

import numpy as np

from careblocks.audit.core import Audit

KEY = "census.layer"


def _area_crs(area_4326: Any) -> str:
    from careblocks.network.graph import local_crs

    return local_crs(area_4326)


def audit_census(cfg: Any, area_4326: Any, audit: Audit) -> Any:
    """Read the census layer as the demand stage will and check it; returns the frame read
    (canonical columns) or None when no census layer is configured or it is optional and
    absent."""
    c = cfg.census
    if c.layer is None:
        return None
    from careblocks._files import file_kind

    if c.optional and file_kind(c.layer.path) == "missing":
        return None
    import warnings

    from careblocks.columns import CENSUS_GROUPS as GROUPS
    from careblocks.demand.census import HOUSEHOLDS, TOTAL, read_census
    from careblocks.errors import DataQualityWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        gdf, info = read_census(c, area_4326=area_4326)
    lost = set(info.get("coarse_without_geometry") or [])
    for w in caught:  # a coarse row without geometry becomes a finding (said once: same text)
        if str(w.message) not in lost:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for msg in info.get("coarse_without_geometry") or []:
        where_c, _, text = msg.partition(": row ")
        audit.warning("census.coarse", where_c, "row " + text)
    where = f"{KEY}: {c.layer.path}"
    n = len(gdf)
    audit.info("census", KEY, f"{n:,} units read")
    _geometry_types(gdf, where, audit)
    _duplicates(gdf, where, audit)
    col_of = {TOTAL: c.total_column, HOUSEHOLDS: c.households_column}
    col_of.update({g: getattr(c.groups, g) for g in GROUPS})
    if TOTAL in gdf.columns:
        total = gdf[TOTAL].to_numpy(dtype=np.float64)
        for g in (*GROUPS, HOUSEHOLDS):
            if g not in gdf.columns:
                continue
            key = "census.households_column" if g == HOUSEHOLDS else f"census.groups.{g}"
            vals = gdf[g].to_numpy(dtype=np.float64)
            _rate_in_count_column(vals, where, key, col_of[g], audit)
            over = vals > total + 0.5
            if over.any() and g == HOUSEHOLDS:
                # a census of dwellings (Bogotá's STVIVIENDA) counts vacant ones too: more
                # dwellings than people is possible, so it is reported, not refused
                audit.warning(
                    "census.ranges", f"{where}: column '{col_of[g]}' ({key})",
                    f"more households/dwellings than people in {int(over.sum())} of {n} units "
                    "(vacant dwellings?); per-household indicators there are low",
                    float(over.sum()),
                )
                continue
            if over.any():
                i = int(np.flatnonzero(over)[np.argmax((vals / np.maximum(total, 1e-9))[over])])
                share = vals[i] / total[i] if total[i] > 0 else np.inf
                audit.error(
                    "census.ranges", f"{where}: column '{col_of[g]}' ({key})",
                    f"larger than the total ('{col_of[TOTAL]}') in {int(over.sum())} of {n} units "
                    f"(up to {share:.0%} of the unit's people, unit {gdf['census_unit_id'].iloc[i]}); "
                    "a group cannot hold more people than its unit: check the column mapping and "
                    "the thousands separators",
                    float(share),
                )
    _coverage_and_total(cfg, gdf, area_4326, where, audit)
    return gdf


def _geometry_types(gdf: Any, where: str, audit: Audit) -> None:
    types = gdf.geom_type.fillna("None").to_numpy()
    kinds = np.array([("polygon" if "Polygon" in t else "point" if "Point" in t
                       else "line" if "Line" in t else "other") for t in types])
    present, counts = np.unique(kinds, return_counts=True)
    audit.info("census.geometry", where,
               ", ".join(f"{k} {v:,}" for k, v in zip(present, counts, strict=True)))
    if len(present) == 1 and present[0] in ("polygon", "point"):
        return
    usable = [(c, k) for k, c in zip(present, counts, strict=True) if k in ("polygon", "point")]
    main = max(usable)[1] if usable else "polygon"
    odd = np.flatnonzero(kinds != main)
    i = int(odd[0])
    audit.error(
        "census.geometry", where,
        f"{len(odd)} units are not {main}s like the rest (unit {gdf['census_unit_id'].iloc[i]} is "
        f"a {types[i]}); census units are polygons or points: fix or remove those rows",
        float(len(odd)),
    )


def _duplicates(gdf: Any, where: str, audit: Audit) -> None:
    import pandas as pd
    import shapely

    geoms = shapely.normalize(gdf.geometry.to_numpy())
    wkb = pd.Series(shapely.to_wkb(geoms, output_dimension=2))
    dup = wkb.duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((wkb == wkb.iloc[i]).to_numpy())[0])
        ids = gdf["census_unit_id"]
        audit.error(
            "census.duplicates", where,
            f"{int(dup.sum())} of {len(gdf)} units repeat another unit's geometry (unit "
            f"{ids.iloc[i]} = unit {ids.iloc[first]}); their people would be counted twice: "
            "remove the duplicate rows",
            float(dup.sum()),
        )
    if "census_name" in gdf.columns:
        names = gdf["census_name"]
        dn = (names.duplicated(keep=False) & ~pd.Series(dup).groupby(wkb).transform("any")
              .to_numpy()).to_numpy()
        if dn.any():
            audit.warning(
                "census.duplicates", f"{where}: census.name_column",
                f"{int(dn.sum())} units share a name with another unit "
                f"(e.g. {names[dn].iloc[0]!r}); results by name merge them: give unique names",
                float(dn.sum()),
            )


def _rate_in_count_column(vals: np.ndarray, where: str, key: str, col: str, audit: Audit) -> None:
    """A 0-1 rate mapped as a count: most values within [0, 1] with fractions, a few above."""
    if vals.size < 3:
        return
    frac = (vals % 1) != 0
    if np.median(vals) <= 1 and frac.mean() > 0.5 and (vals > 1).any():
        audit.error(
            "census.ranges", f"{where}: column '{col}' ({key})",
            f"looks like a 0-1 rate (median {np.median(vals):.2g}) yet {int((vals > 1).sum())} "
            f"values exceed 1 (max {vals.max():g}); map a count of people, and fix the rates "
            "outside 0-1",
            float(vals.max()),
        )


def _coverage_and_total(cfg: Any, gdf: Any, area_4326: Any, where: str, audit: Audit) -> None:
    import shapely

    from careblocks.demand.census import TOTAL

    a = cfg.audit
    if area_4326 is None:
        return
    crs = _area_crs(area_4326)
    import geopandas as gpd

    area = gpd.GeoSeries([area_4326], crs="EPSG:4326").to_crs(crs).iloc[0]
    g = gdf.to_crs(crs).geometry.to_numpy()
    poly = np.array(["Polygon" in t for t in gdf.geom_type.fillna("")])
    if poly.any():
        union = shapely.union_all(shapely.make_valid(g[poly]))
        share = float(shapely.intersection(union, area).area / area.area) if area.area > 0 else 0.0
        msg = f"census units cover {share:.0%} of the study area"
        if share < a.error_area_share:
            audit.error("coverage.census", where, msg + "; the census does not describe the "
                        "study area: use a layer that covers it or narrow the study area", share)
        elif share < a.min_area_share:
            audit.warning("coverage.census", where, msg + f" (below audit.min_area_share "
                          f"{a.min_area_share:.0%}); people in the rest are not counted", share)
        else:
            audit.info("coverage.census", where, msg, share)
    if TOTAL not in gdf.columns:
        return
    total = gdf[TOTAL].to_numpy(dtype=np.float64)
    inside = np.where(poly, 0.0, shapely.contains(area, g).astype(float))
    if poly.any():
        inter = shapely.intersection(g[poly], area)
        full = shapely.area(g[poly])
        inside[poly] = np.divide(shapely.area(inter), full, out=np.zeros(int(poly.sum())),
                                 where=full > 0)
    people = float((total * inside).sum())
    audit.info("census.total", where, f"{people:,.0f} people in the study area (area-weighted)",
               people)
    pub = a.published_population
    if pub:
        diff = people / pub - 1
        if abs(diff) > a.published_tolerance:
            audit.error(
                "census.total", f"{where}: audit.published_population",
                f"the census gives {people:,.0f} people in the study area, {diff:+.0%} off the "
                f"published {pub:,.0f} (tolerance {a.published_tolerance:.0%}); check duplicates, "
                "number formats and the column mapping",
                diff,
            )


def audit_districts(cfg: Any, area_4326: Any, audit: Audit) -> None:
    """District names must be unique: figures by district add same-named districts together
    (text cut at a NUL byte by a GIS writer looks exactly like this)."""
    c = cfg.census
    if c.districts is None or not c.district_name_column:
        return
    from careblocks._files import file_kind
    from careblocks.io.layers import read_vector

    if file_kind(c.districts.path) != "file":
        return
    bbox = tuple(area_4326.bounds) if area_4326 is not None else None
    d = read_vector(c.districts, what="district layer (census.districts)",
                    columns=[c.district_name_column], bbox_4326=bbox)
    names = d[c.district_name_column].astype(str)
    dup = names.duplicated(keep=False).to_numpy()
    where = f"census.districts: {c.districts.path}: column '{c.district_name_column}'"
    if dup.any():
        audit.warning(
            "districts.names", where,
            f"{int(dup.sum())} of {len(d)} districts share a name with another (e.g. "
            f"{names[dup].iloc[0]!r}); figures by district add them together: give each "
            "district a unique name",
            float(dup.sum()),
        )
    else:
        audit.info("districts.names", where, f"{len(d)} districts, names unique", float(len(d)))
