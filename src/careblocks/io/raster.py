"""Population rasters (GeoTIFF such as WorldPop) -> counts per origin.

Only the window of the raster that covers the study area is read. A pixel belongs to the
study area when its centre falls inside it (rasterio's default rasterisation rule). Counts are
kept: every valid pixel inside the area ends up on exactly one origin, so the sum over origins
equals the sum of the raster over the area.

* polygon origins: a pixel goes to the polygon containing its centre; pixels inside the area
  but in no polygon (small buildings under a 100 m WorldPop pixel, gaps between polygons) go to
  the nearest polygon (by representative point). Without an area, plain zonal sums.
* point origins: a pixel goes to the nearest origin (a Voronoi partition of the area).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from careblocks.errors import CRSError, InputDataError

__all__ = ["RasterPixels", "read_raster_pixels", "sample_raster", "zonal_sums"]


class RasterPixels:
    """Valid pixels of a population raster inside an area.

    Attributes
    ----------
    x, y
        Pixel centres in the requested CRS (float64).
    values
        Pixel values (float64, nodata and NaN removed).
    rows, cols
        Pixel positions in the read window; ``transform`` and ``shape`` describe that window
        in the raster's own CRS (``crs``).
    """

    def __init__(self, x, y, values, rows, cols, transform, shape, crs, info):
        self.x = x
        self.y = y
        self.values = values
        self.rows = rows
        self.cols = cols
        self.transform = transform
        self.shape = shape
        self.crs = crs
        self.info = info


def _open_checked(path: Path, what: str, hint: str = "give a GeoTIFF of population counts"):
    import rasterio

    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{what} {path}: raster file not found; check the path")
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputDataError(
            f"{what} {path}: not a readable raster ({exc}); {hint}"
        ) from None
    if src.crs is None:
        src.close()
        raise CRSError(
            f"{what} {path}: raster has no CRS; assign one (e.g. gdal_edit.py -a_srs EPSG:4326 {path.name})"
        )
    return src


def read_raster_pixels(
    path: Path | str,
    area: Any,
    area_crs: Any,
    *,
    band: int = 1,
    what: str = "census.raster",
) -> RasterPixels:
    """Read the valid pixels of ``path`` whose centres fall inside ``area``.

    Parameters
    ----------
    path
        A single-band (or ``band``-th band) raster of counts (people per pixel).
    area
        Shapely geometry in ``area_crs``.
    area_crs
        CRS of ``area`` and of the returned pixel centres.
    band
        Band to read (1-based).
    what
        Config key used in error messages.

    Raises
    ------
    CRSError
        The raster has no CRS.
    InputDataError
        The raster does not overlap the area, is nodata everywhere inside it, or has negative
        values.
    """
    import geopandas as gpd
    import rasterio
    from pyproj import Transformer
    from rasterio.features import rasterize
    from rasterio.windows import Window, from_bounds

    path = Path(path)
    with _open_checked(path, what) as src:
        area_r = gpd.GeoSeries([area], crs=area_crs).to_crs(src.crs).iloc[0]
        ax0, ay0, ax1, ay1 = area_r.bounds
        b = src.bounds
        if ax1 <= b.left or ax0 >= b.right or ay1 <= b.bottom or ay0 >= b.top:
            raise InputDataError(
                f"{what} {path}: raster extent {tuple(round(v, 4) for v in b)} does not overlap "
                "the study area; use a raster that covers the area or fix the study bbox/boundary"
            )
        win = from_bounds(ax0, ay0, ax1, ay1, transform=src.transform)
        win = win.round_offsets(op="floor").round_lengths(op="ceil")
        win = win.intersection(Window(0, 0, src.width, src.height))
        # one pixel of margin so that area edges are not clipped by rounding
        win = Window(
            max(win.col_off - 1, 0),
            max(win.row_off - 1, 0),
            min(win.width + 2, src.width - max(win.col_off - 1, 0)),
            min(win.height + 2, src.height - max(win.row_off - 1, 0)),
        )
        arr = src.read(band, window=win, masked=True)
        wt = src.window_transform(win)
        crs = src.crs
        nodata = src.nodata
    shape = arr.shape
    data = np.asarray(arr.data, dtype="float64")
    mask = np.ma.getmaskarray(arr) | ~np.isfinite(data)
    inside = rasterize([(area_r, 1)], out_shape=shape, transform=wt, fill=0, dtype="uint8") == 1
    if not inside.any():  # an area smaller than one pixel: take the pixels it touches
        inside = (
            rasterize([(area_r, 1)], out_shape=shape, transform=wt, fill=0, dtype="uint8",
                      all_touched=True) == 1
        )
    valid = inside & ~mask
    if not valid.any():
        raise InputDataError(
            f"{what} {path}: band {band} is nodata everywhere inside the study area "
            f"(nodata={nodata}); use a raster with population values over the area"
        )
    rows, cols = np.nonzero(valid)
    values = data[rows, cols]
    if (values < 0).any():
        raise InputDataError(
            f"{what} {path}: band {band} has {(values < 0).sum()} negative pixel values "
            f"(min {values.min():g}) that are not nodata; set the raster's nodata value "
            "(gdal_edit.py -a_nodata) or fix the counts"
        )
    px, py = rasterio.transform.xy(wt, rows, cols, offset="center")
    px = np.asarray(px, dtype="float64")
    py = np.asarray(py, dtype="float64")
    tr = Transformer.from_crs(crs, area_crs, always_xy=True)
    x, y = tr.transform(px, py)
    info = {
        "path": str(path),
        "band": band,
        "pixels_inside": int(inside.sum()),
        "pixels_valid": int(valid.sum()),
        "pixels_nodata": int((inside & mask).sum()),
        "total": float(values.sum()),
    }
    return RasterPixels(np.asarray(x), np.asarray(y), values, rows, cols, wt, shape, crs, info)


def _nearest(tree_xy: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    _, idx = cKDTree(tree_xy).query(np.column_stack([x, y]))
    return np.asarray(idx, dtype=np.int64)


def zonal_sums(
    path: Path | str,
    zones: Any,
    *,
    area: Any = None,
    band: int = 1,
    what: str = "census.raster",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Sum a population raster per origin.

    Parameters
    ----------
    path
        Raster of counts.
    zones
        GeoSeries of origin polygons or points, with a CRS.
    area
        Study area (shapely, in ``zones.crs``). With an area every valid pixel inside it is
        assigned to one origin (containing polygon, else nearest origin), so totals are kept.
        Without an area: polygons get plain zonal sums; points get the pixels inside the
        convex hull of the points grown by half the median spacing between points.
    band, what
        Band to read; config key for messages.

    Returns
    -------
    sums
        float64 array, one value per zone, in the order of ``zones``.
    stats
        Raster total inside the area, pixels read, pixels assigned to a nearest origin.
    """
    from rasterio.features import rasterize

    if zones.crs is None:
        raise CRSError(f"{what}: origins have no CRS; this is a bug in the caller")
    n = len(zones)
    if n == 0:
        raise InputDataError(f"{what} {path}: no origins to sum the raster to")
    geom_types = set(zones.geom_type.unique())
    polygons = geom_types <= {"Polygon", "MultiPolygon"}
    rep = zones.representative_point()
    rep_xy = np.column_stack([rep.x.to_numpy(), rep.y.to_numpy()])
    if area is None:
        if polygons:
            area = zones.union_all()
        else:
            from scipy.spatial import cKDTree

            if n > 1:
                d, _ = cKDTree(rep_xy).query(rep_xy, k=2)
                step = float(np.median(d[:, 1])) / 2
            else:
                step = 0.0
            area = zones.union_all().convex_hull.buffer(step)
    pix = read_raster_pixels(path, area, zones.crs, band=band, what=what)
    owner = np.full(pix.values.shape, -1, dtype=np.int64)
    if polygons:
        zr = zones.to_crs(pix.crs)
        shapes = [(g, i) for i, g in enumerate(zr.geometry) if g is not None and not g.is_empty]
        lab = rasterize(shapes, out_shape=pix.shape, transform=pix.transform, fill=-1,
                        dtype="int32")
        owner = lab[pix.rows, pix.cols].astype(np.int64)
    free = owner < 0
    n_nearest = int(free.sum())
    if n_nearest:
        owner[free] = _nearest(rep_xy, pix.x[free], pix.y[free])
    sums = np.bincount(owner, weights=pix.values, minlength=n).astype("float64")
    stats = dict(pix.info)
    stats["pixels_to_nearest_origin"] = n_nearest
    stats["population_to_nearest_origin"] = float(pix.values[free].sum()) if n_nearest else 0.0
    return sums, stats


def sample_raster(
    path: Path | str, x: np.ndarray, y: np.ndarray, crs: Any, *, band: int = 1,
    what: str = "network.elevation",
) -> np.ndarray:
    """Values of a raster (a DEM) at points, interpolated bilinearly between pixel centres.

    Parameters
    ----------
    path
        Any raster rasterio reads (GeoTIFF, ...) with a CRS; reprojected points are looked up
        in its own CRS, so the raster may be in degrees or in another projection.
    x, y
        Point coordinates in ``crs``.
    crs
        CRS of the points.
    band
        Band to read.
    what
        Config key named in error messages.

    Returns
    -------
    numpy.ndarray
        float64 per point; NaN outside the raster or on nodata pixels.
    """
    import pyproj
    import rasterio.windows

    xs = np.asarray(x, np.float64).ravel()
    ys = np.asarray(y, np.float64).ravel()
    out = np.full(xs.size, np.nan)
    with _open_checked(Path(path), what, "give a DEM GeoTIFF of ground heights in metres") as src:
        if not 1 <= band <= src.count:
            raise InputDataError(f"{what} {path}: no band {band} (the raster has {src.count})")
        tr = pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(crs), src.crs, always_xy=True)
        rx, ry = tr.transform(xs, ys)
        inv = ~src.transform
        col, row = inv @ (np.asarray(rx), np.asarray(ry))
        col = np.asarray(col, np.float64) - 0.5  # pixel-centre coordinates
        row = np.asarray(row, np.float64) - 0.5
        inside = (col >= -0.5) & (row >= -0.5) & (col <= src.width - 0.5) & (row <= src.height - 0.5)
        if not inside.any():
            return out
        c0 = max(int(np.floor(col[inside].min())), 0)
        r0 = max(int(np.floor(row[inside].min())), 0)
        c1 = min(int(np.floor(col[inside].max())) + 2, src.width)
        r1 = min(int(np.floor(row[inside].max())) + 2, src.height)
        win = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
        arr = src.read(band, window=win, masked=True).astype(np.float64).filled(np.nan)
    cc = np.clip(col[inside] - c0, 0, arr.shape[1] - 1)
    rr = np.clip(row[inside] - r0, 0, arr.shape[0] - 1)
    ci = np.minimum(np.floor(cc).astype(np.int64), arr.shape[1] - 1)
    ri = np.minimum(np.floor(rr).astype(np.int64), arr.shape[0] - 1)
    cj = np.minimum(ci + 1, arr.shape[1] - 1)
    rj = np.minimum(ri + 1, arr.shape[0] - 1)
    fc, fr = cc - ci, rr - ri
    top = arr[ri, ci] * (1 - fc) + arr[ri, cj] * fc
    bot = arr[rj, ci] * (1 - fc) + arr[rj, cj] * fc
    out[inside] = top * (1 - fr) + bot * fr
    return out
