"""Vector layers with validation: GeoPackage, Shapefile, GeoJSON (pyogrio) and CSV tables.

Every reader here returns a GeoDataFrame in the layer's own CRS (the pipeline reprojects to
the working CRS) whose index, named ``row``, is a stable key of the feature in its file: the
OGR feature id for vector files, the 0-based data row for CSV tables. Callers build string
ids from it, so ids do not change when a bbox or a ``where`` filter drops other rows.

User mistakes raise one-line :mod:`careblocks.errors` messages of the form
``<file>: <what is wrong>; <the fix>``, prefixed with ``what`` (a label such as
``population layer (population.layer)``) so the user knows which config entry to fix.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from careblocks.errors import (
    ConfigError,
    CRSError,
    DataQualityWarning,
    EmptyResultError,
    InputDataError,
    MissingColumnError,
)

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from careblocks.config import Config, LayerRef, ServiceLayer

#: file suffixes read through pyogrio (GDAL/OGR)
VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".gml", ".kml", ".gpx", ".sqlite")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
#: coordinate column pairs recognised in CSV tables when ``x``/``y`` are not given
_XY_GUESSES = (
    ("lon", "lat"),
    ("longitude", "latitude"),
    ("lng", "lat"),
    ("x", "y"),
    ("long", "lat"),
)

_CRS_FIX = 'set the layer\'s CRS in QGIS or give `crs = "EPSG:xxxx"` in the config'


def _fmt_list(values: Sequence[Any], limit: int = 12) -> str:
    values = [str(v) for v in values]
    more = f", ... ({len(values) - limit} more)" if len(values) > limit else ""
    return ", ".join(values[:limit]) + more


def _ref_fields(ref: Any) -> dict[str, Any]:
    """The reading options of a LayerRef, ServiceLayer or plain path."""
    if isinstance(ref, (str, Path)):
        return {"path": Path(ref)}
    out = {}
    for key in ("path", "layer", "x", "y", "h3", "crs", "where_column", "where_values"):
        out[key] = getattr(ref, key, None)
    out["path"] = Path(out["path"])
    return out


def layer_format(path: Path) -> str:
    """``"vector"`` or ``"table"`` from the file suffix; InputDataError when unsupported."""
    suffix = path.suffix.lower()
    if suffix in VECTOR_SUFFIXES or (suffix == ".zip" and ".shp" in path.name.lower()):
        return "vector"
    if suffix in TABLE_SUFFIXES:
        return "table"
    raise InputDataError(
        f"{path}: unsupported format '{suffix or path.name}'; use a GeoPackage (.gpkg), "
        "Shapefile (.shp), GeoJSON (.geojson) or a CSV table with lon/lat or H3 columns"
    )


def read_vector(
    ref: LayerRef | ServiceLayer | Path | str,
    *,
    what: str,
    columns: Sequence[str] | None = None,
    bbox_4326: tuple[float, float, float, float] | None = None,
    allow_empty: bool = False,
) -> gpd.GeoDataFrame:
    """Read and validate one vector layer or coordinate table.

    Parameters
    ----------
    ref
        A :class:`~careblocks.config.LayerRef` / :class:`~careblocks.config.ServiceLayer`
        (path, layer, x/y or h3 columns, crs, where_column/where_values) or a plain path.
    what
        Human label used in messages, e.g. ``"population layer (population.layer)"``.
    columns
        Columns the caller needs; a missing one raises :class:`MissingColumnError` naming
        the file, the column and the columns that exist. ``None`` entries are ignored.
    bbox_4326
        Keep only features intersecting this ``(min_lon, min_lat, max_lon, max_lat)`` box.
    allow_empty
        Return an empty frame instead of raising :class:`EmptyResultError` when nothing is
        left after the bbox or ``where`` filters (services: a gap, not an error).

    Returns
    -------
    geopandas.GeoDataFrame
        In the layer's CRS (or ``crs`` from the config when the file has none), index
        ``row`` (stable feature key), empty and null geometries dropped with a warning.
    """
    opts = _ref_fields(ref)
    path: Path = opts["path"]
    if not path.exists():
        raise InputDataError(f"{what}: {path}: file not found; check the path in the config")
    kind = layer_format(path)
    need = [c for c in (columns or ()) if c]
    if opts.get("where_column"):
        need.append(opts["where_column"])
    if kind == "vector":
        gdf = _read_ogr(path, opts, what=what, need=need, bbox_4326=bbox_4326)
    else:
        gdf = _read_table(path, opts, what=what, need=need, bbox_4326=bbox_4326)
    gdf = _apply_where(gdf, opts, what=what, path=path, allow_empty=allow_empty)
    gdf = _drop_bad_geometries(gdf, what=what, path=path)
    gdf = clean_text_columns(gdf, what=what, path=path)
    if len(gdf) == 0 and not allow_empty:
        where = " inside the study area" if bbox_4326 is not None else ""
        raise EmptyResultError(
            f"{what}: {path}: no features{where}; check that the layer covers the study area "
            "(study.boundary / study.bbox) and its CRS"
        )
    return gdf


def _read_ogr(path: Path, opts: dict, *, what: str, need: list[str], bbox_4326) -> gpd.GeoDataFrame:
    import geopandas as gpd
    import pyogrio

    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio.errors.DataSourceError and friends
        raise InputDataError(
            f"{what}: {path}: cannot be opened as a vector file ({_short(exc)}); "
            "check that the file is complete and in a GIS format"
        ) from None
    layer = opts.get("layer")
    if layer is not None and layer not in layers:
        raise InputDataError(
            f"{what}: {path}: layer '{layer}' does not exist; available layers: {_fmt_list(layers)}"
        )
    if layer is None and len(layers) > 1:
        raise InputDataError(
            f"{what}: {path} has {len(layers)} layers ({_fmt_list(layers)}); "
            'choose one with `layer = "..."` in the config'
        )
    layer = layer or (layers[0] if layers else None)
    info = pyogrio.read_info(path, layer=layer)
    fields = [str(f) for f in info["fields"]]
    _check_columns(need, fields, what=what, path=path, layer=layer)
    file_crs = info.get("crs")
    crs = file_crs or opts.get("crs")
    if not crs:
        raise CRSError(f"{what}: {path}: the layer has no CRS; {_CRS_FIX}")
    bbox = _bbox_in(bbox_4326, crs) if bbox_4326 is not None else None
    try:
        try:
            gdf = gpd.read_file(
                path, layer=layer, engine="pyogrio", bbox=bbox, fid_as_index=True, columns=None
            )
        except UnicodeDecodeError as exc:
            # e.g. a shapefile whose .cpg says UTF-8 but whose .dbf holds Latin-1 bytes
            gdf = gpd.read_file(
                path, layer=layer, engine="pyogrio", bbox=bbox, fid_as_index=True, columns=None,
                encoding="cp1252",
            )
            warnings.warn(
                f"{what}: {path}: text is not the declared UTF-8 ({_short(exc)[:60]}); read as "
                "Latin-1/Windows-1252: fix the .cpg file or save the layer as UTF-8",
                DataQualityWarning,
                stacklevel=3,
            )
    except Exception as exc:
        raise InputDataError(
            f"{what}: {path}: cannot be read ({_short(exc)}); check that the file is complete"
        ) from None
    if gdf.crs is None:
        gdf = gdf.set_crs(crs)
    gdf.index.name = "row"
    return _restore_text_cut_at_nul(gdf, path)


def _restore_text_cut_at_nul(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """GDAL cuts text at a NUL character (C strings), so ``"Kennedy\\u0000 North"`` and
    ``"Kennedy\\u0000 South"`` would both read as ``"Kennedy"`` and merge. For GeoJSON, the
    text properties are taken from the file itself (the NUL is then removed, with a warning,
    by :func:`clean_text_columns`)."""
    import json

    if path.suffix.lower() not in (".geojson", ".json") or not len(gdf):
        return gdf
    raw = path.read_bytes()
    if b"\\u0000" not in raw:
        return gdf
    feats = json.loads(raw).get("features") or []
    ids = [f.get("id") for f in feats]
    if all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids):
        by_fid = dict(zip(ids, feats, strict=True))
    else:
        by_fid = dict(enumerate(feats))
    import pandas as pd

    gdf = gdf.copy()
    for col in gdf.columns:
        kind = gdf[col].dtype
        if col == gdf.geometry.name or not (
            pd.api.types.is_object_dtype(kind) or pd.api.types.is_string_dtype(kind)
        ):
            continue
        vals = [((by_fid.get(int(fid)) or {}).get("properties") or {}).get(col, v)
                for fid, v in zip(gdf.index, gdf[col], strict=True)]
        gdf[col] = pd.Series([v if isinstance(v, str) else o
                              for v, o in zip(vals, gdf[col], strict=True)],
                             index=gdf.index, dtype=object)
    return gdf


def _read_table(
    path: Path, opts: dict, *, what: str, need: list[str], bbox_4326
) -> gpd.GeoDataFrame:
    import io

    import geopandas as gpd
    import pandas as pd

    from careblocks.io.tables import decode_text, parse_numbers

    sep = "\t" if path.suffix.lower() == ".tsv" else None
    text = decode_text(path, what=what)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, engine="python" if sep is None else "c",
                         dtype=str, keep_default_na=False)
    except Exception as exc:
        raise InputDataError(
            f"{what}: {path}: cannot be read as a CSV table ({_short(exc)}); save it as "
            "comma-separated text with a header row"
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    for c in df.columns:
        df[c] = parse_numbers(df[c], what=what, path=path, column=c)
    df.index = pd.RangeIndex(len(df), name="row")
    cols = [str(c) for c in df.columns]
    h3col = opts.get("h3")
    x, y = opts.get("x"), opts.get("y")
    if h3col:
        _check_columns([h3col, *need], cols, what=what, path=path)
        geom = _h3_polygons(df[h3col], what=what, path=path, column=h3col)
        crs = "EPSG:4326"
    else:
        if not (x and y):
            lower = {c.lower(): c for c in cols}
            guess = next((p for p in _XY_GUESSES if p[0] in lower and p[1] in lower), None)
            if guess is None:
                raise ConfigError(
                    f"{what}: {path}: a CSV table needs coordinate columns; give `x` and `y` "
                    f"(longitude/latitude) or `h3` (cell ids); columns are: {_fmt_list(cols)}"
                )
            x, y = lower[guess[0]], lower[guess[1]]
        _check_columns([x, y, *need], cols, what=what, path=path)
        xs = pd.to_numeric(df[x], errors="coerce")
        ys = pd.to_numeric(df[y], errors="coerce")
        bad = xs.isna() | ys.isna()
        if bad.all():
            raise InputDataError(
                f"{what}: {path}: columns '{x}'/'{y}' hold no numeric coordinates; "
                "give the longitude and latitude columns as `x` and `y`"
            )
        if bad.any():
            warnings.warn(
                f"{what}: {path}: {int(bad.sum())} rows without numeric '{x}'/'{y}' dropped",
                DataQualityWarning,
                stacklevel=3,
            )
            df, xs, ys = df[~bad], xs[~bad], ys[~bad]
        crs = opts.get("crs") or "EPSG:4326"
        if str(crs).upper() in ("EPSG:4326", "OGC:CRS84") and (
            (xs.abs() > 180).any() or (ys.abs() > 90).any()
        ):
            raise CRSError(
                f"{what}: {path}: '{x}'/'{y}' are not longitude/latitude degrees; "
                'give `crs = "EPSG:xxxx"` for projected coordinates or swap `x` and `y`'
            )
        geom = gpd.points_from_xy(xs.to_numpy(float), ys.to_numpy(float))
    gdf = gpd.GeoDataFrame(df, geometry=geom, crs=crs)
    if bbox_4326 is not None:
        import shapely

        box = shapely.box(*_bbox_in(bbox_4326, gdf.crs))
        gdf = gdf[gdf.intersects(box)]
    return gdf


def _h3_polygons(cells: pd.Series, *, what: str, path: Path, column: str) -> np.ndarray:
    import h3
    import shapely

    values = cells.astype(str).str.strip().to_numpy()
    valid = np.array([h3.is_valid_cell(v) for v in values], dtype=bool)
    if not valid.all():
        bad = values[~valid]
        raise InputDataError(
            f"{what}: {path}: column '{column}' holds {len(bad)} values that are not H3 cell ids "
            f"(e.g. {bad[0]!r}); give the column of H3 indexes such as '89a901291abffff'"
        )
    rings = [[(lng, lat) for lat, lng in h3.cell_to_boundary(v)] for v in values]
    return shapely.polygons(rings) if rings else np.array([], dtype=object)


def _bbox_in(bbox_4326: tuple[float, float, float, float], crs: Any) -> tuple[float, ...]:
    """The bbox transformed to ``crs`` (bounds of the densified transformed box)."""
    import pyproj

    target = pyproj.CRS.from_user_input(crs)
    if target.equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True):
        return tuple(bbox_4326)
    t = pyproj.Transformer.from_crs("EPSG:4326", target, always_xy=True)
    return tuple(t.transform_bounds(*bbox_4326, densify_pts=21))


def _check_columns(
    need: Sequence[str], have: Sequence[str], *, what: str, path: Path, layer=None
) -> None:
    for col in need:
        if col not in have:
            where = f"{path}" + (f" (layer '{layer}')" if layer else "")
            raise MissingColumnError(
                f"{what}: {where}: column '{col}' does not exist; columns are: {_fmt_list(have, 40)}"
            )


def _apply_where(
    gdf: gpd.GeoDataFrame, opts: dict, *, what: str, path: Path, allow_empty: bool = False
) -> gpd.GeoDataFrame:
    col = opts.get("where_column")
    values = tuple(opts.get("where_values") or ())
    if not col:
        return gdf
    if not values:
        raise ConfigError(
            f"{what}: where_column '{col}' is set but where_values is empty; list the values to keep"
        )
    text = gdf[col].astype("string").str.strip()
    keep = text.isin([str(v) for v in values])
    if len(gdf) and not keep.any() and not allow_empty:
        present = sorted(set(text.dropna().tolist()))
        raise EmptyResultError(
            f"{what}: {path}: no rows where '{col}' is one of {list(values)}; "
            f"values present: {_fmt_list(present)}"
        )
    return gdf[keep.to_numpy()]


def _drop_bad_geometries(gdf: gpd.GeoDataFrame, *, what: str, path: Path) -> gpd.GeoDataFrame:
    bad = gdf.geometry.isna() | gdf.geometry.is_empty
    if bad.any():
        warnings.warn(
            f"{what}: {path}: {int(bad.sum())} features without geometry dropped",
            DataQualityWarning,
            stacklevel=3,
        )
        gdf = gdf[~bad.to_numpy()]
    return gdf


#: NUL and the other C0 control characters (tab, line feed and carriage return kept) and DEL
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def clean_text_columns(df: Any, *, what: str, path: Path | str) -> Any:
    """Remove NUL and control characters from every text column, with a warning naming the
    columns. Removing (not cutting at the first NUL, as C strings do) keeps two different
    names different, so ids and districts never merge because of them."""
    import pandas as pd

    bad_cols: dict[str, int] = {}
    out = df
    for col in df.columns:
        s = df[col]
        if col == getattr(df, "_geometry_column_name", None) or not (
            pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)
        ):
            continue
        text = s.astype("string")
        hit = text.str.contains(_CONTROL, regex=True, na=False)
        if hit.any():
            if out is df:
                out = df.copy()
            out[col] = s.where(~hit.to_numpy(), text.str.replace(_CONTROL, "", regex=True))
            bad_cols[str(col)] = int(hit.sum())
    if bad_cols:
        warnings.warn(
            f"{what}: {path}: NUL or control characters removed from "
            + ", ".join(f"{n} values of '{c}'" for c, n in bad_cols.items()),
            DataQualityWarning,
            stacklevel=3,
        )
    return out


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def numeric_column(
    gdf: gpd.GeoDataFrame | pd.DataFrame,
    column: str,
    *,
    what: str,
    path: Path | str,
    allow_negative: bool = False,
) -> np.ndarray:
    """The values of a count column as float64, validated.

    Missing values become 0 with a :class:`DataQualityWarning`; text that is not a number
    or (unless ``allow_negative``) a negative value raises :class:`InputDataError`.
    """
    import pandas as pd

    if column not in gdf.columns:
        raise MissingColumnError(
            f"{what}: {path}: column '{column}' does not exist; columns are: "
            f"{_fmt_list([c for c in gdf.columns if c != 'geometry'], 40)}"
        )
    raw = gdf[column]
    values = pd.to_numeric(raw, errors="coerce")
    text_bad = values.isna() & raw.notna() & (raw.astype("string").str.strip() != "")
    if text_bad.any():
        example = raw[text_bad].iloc[0]
        raise InputDataError(
            f"{what}: {path}: column '{column}' is not numeric ({int(text_bad.sum())} values "
            f"such as {example!r}); give a column of counts"
        )
    arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(arr)
    if missing.any():
        warnings.warn(
            f"{what}: {path}: {int(missing.sum())} empty values in '{column}' taken as 0",
            DataQualityWarning,
            stacklevel=2,
        )
        arr = np.where(missing, 0.0, arr)
    if not np.isfinite(arr).all():
        raise InputDataError(
            f"{what}: {path}: column '{column}' holds infinite values; fix them in the data"
        )
    if not allow_negative and (arr < 0).any():
        n = int((arr < 0).sum())
        raise InputDataError(
            f"{what}: {path}: column '{column}' has {n} negative values (min {arr.min():g}); "
            "counts must be 0 or more"
        )
    return arr


def representative_xy(geoms: gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray]:
    """x, y of each geometry's representative point.

    Points are themselves; other geometries use their centroid when it lies inside them
    (the centre of a hexagon or grid cell), else :func:`shapely.point_on_surface`.
    """
    import shapely

    arr = geoms.to_numpy()
    if len(arr) == 0:
        return np.empty(0), np.empty(0)
    is_point = shapely.get_type_id(arr) == 0
    cent = shapely.centroid(arr)
    ok = is_point | shapely.contains(arr, cent)
    pts = np.where(is_point, arr, np.where(ok, cent, shapely.point_on_surface(arr)))
    return shapely.get_x(pts).astype(np.float64), shapely.get_y(pts).astype(np.float64)


def within_area(gdf: gpd.GeoDataFrame, area_4326: Any) -> np.ndarray:
    """Boolean mask: the feature's representative point lies in ``area_4326`` (EPSG:4326)."""
    import shapely

    if area_4326 is None:
        return np.ones(len(gdf), dtype=bool)
    g = gdf.geometry if gdf.crs is None or gdf.crs.to_epsg() == 4326 else gdf.geometry.to_crs(4326)
    x, y = representative_xy(g)
    shapely.prepare(area_4326)
    return shapely.contains_xy(area_4326, x, y)


def study_area(config: Config):
    """The study area as a shapely (Multi)Polygon in EPSG:4326, or ``None`` when not set.

    ``study.boundary`` (optionally filtered by ``boundary_column == boundary_value``) is
    unioned; ``study.bbox`` is a box; when both are given the area is their intersection.
    """
    import shapely

    study = config.study
    area = None
    if study.boundary is not None:
        what = "study boundary (study.boundary)"
        gdf = read_vector(study.boundary, what=what, columns=[study.boundary_column])
        if study.boundary_column:
            if study.boundary_value is None:
                raise ConfigError(
                    "config key 'study.boundary_value': boundary_column is set but "
                    "boundary_value is not; give the value of the feature to keep"
                )
            text = gdf[study.boundary_column].astype("string").str.strip()
            keep = (text == str(study.boundary_value).strip()).to_numpy()
            if not keep.any():
                present = sorted(set(text.dropna().tolist()))
                raise EmptyResultError(
                    f"{what}: {study.boundary.path}: no feature where '{study.boundary_column}' is "
                    f"{study.boundary_value!r}; values present: {_fmt_list(present)}"
                )
            gdf = gdf[keep]
        geom = gdf.to_crs(4326).geometry.make_valid().union_all()
        polys = shapely.get_parts(geom)
        polys = [p for p in polys if p.geom_type in ("Polygon", "MultiPolygon")]
        if not polys:
            raise EmptyResultError(
                f"{what}: {study.boundary.path}: holds no polygons; give a polygon layer as the boundary"
            )
        area = shapely.union_all(polys)
    if study.bbox is not None:
        box = shapely.box(*study.bbox)
        area = box if area is None else area.intersection(box)
        if area.is_empty:
            raise EmptyResultError(
                "config key 'study.bbox': does not overlap study.boundary; fix the bbox or drop one of them"
            )
    return area
