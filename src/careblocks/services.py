"""Service facilities (daycare, health, laundromat, community kitchen, ...) for a study.

For each service of ``config.services``:

1. **OSM**: features of the OSM file matching the service's ``osm_tags`` (a feature matches
   when any listed key has one of its values; ``true`` means any value), unless
   ``use_osm = false``. ``category`` is the first matching ``key=value``.
2. **Layers**: each ``[[services.<s>.layers]]`` entry (GeoPackage/Shapefile/GeoJSON, or a
   CSV with lon/lat columns), optionally filtered with ``where_column``/``where_values``.
   With ``count_column`` (e.g. healthcare facilities per H3 cell) a feature is kept when the
   count is > 0 and the count is stored as ``capacity``; with ``capacity_column`` (seats,
   beds, enrolment, machines) that column is the ``capacity`` (blank = unknown, filled later
   by ``services.<s>.capacity_default``, see :func:`careblocks.accessibility.facility_supply`).
3. Everything is clipped to the study area (by the representative point), polygons become
   representative points, and points are projected to the working CRS.
4. **De-duplication across sources** (never within one source): sources are ranked OSM
   first, then layers in config order. Pairs of facilities of *different* sources closer than
   ``dedupe_m`` are matched one-to-one, closest pairs first; of each matched pair the
   facility of the higher-ranked source is kept, and it takes the name (and capacity) of the
   dropped one when it has none. So a facility listed by both OSM and the WHO list appears
   once, while two distinct facilities of one list never merge.
5. **Snapping**: the nearest network node and the straight-line distance ``snap_m``;
   distances above ``walk.max_snap_m`` are warned about (:class:`DataQualityWarning`) and
   counted.

A service with no facility in the area is a warning and a *gap* in the stats, not an error.
``service_id`` is stable across runs: ``<service>:osm:<type>/<id>`` or
``<service>:<label>:<row>`` (``row`` the feature id / data row in the layer file).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from careblocks.errors import DataQualityWarning
from careblocks.io.layers import numeric_column, read_vector, representative_xy, within_area

if TYPE_CHECKING:
    import geopandas as gpd

    from careblocks.config import Config, ServiceConfig, ServiceLayer
    from careblocks.network.graph import WalkNetwork

COLUMNS = [
    "service_id",
    "service",
    "name",
    "source",
    "category",
    "capacity",
    "node",
    "snap_m",
    "geometry",
]


def osm_tag_union(config: Config) -> dict[str, Any]:
    """The union of the ``osm_tags`` of every service that uses OSM (one file read for all)."""
    union: dict[str, Any] = {}
    for svc in config.services.values():
        if not svc.use_osm:
            continue
        for key, values in svc.osm_tags.items():
            if values is True or union.get(key) is True:
                union[key] = True
            elif values:
                vals = [values] if isinstance(values, str) else [str(v) for v in values]
                union[key] = sorted(set(union.get(key, [])) | set(vals))
    return union


def _osm_match(pois: gpd.GeoDataFrame, tags: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Mask of POIs matching a service's tags and the ``key=value`` category of each."""
    n = len(pois)
    mask = np.zeros(n, dtype=bool)
    category = np.full(n, None, dtype=object)
    for key, values in tags.items():
        if key not in pois.columns or values is False or values is None:
            continue
        col = pois[key]
        if values is True:
            m = col.notna().to_numpy(dtype=bool)
        else:
            vals = [values] if isinstance(values, str) else [str(v) for v in values]
            m = col.isin(vals).to_numpy(dtype=bool)
        new = m & ~mask
        category[new] = [f"{key}={v}" for v in col.to_numpy()[new]]
        mask |= m
    return mask, category


def _frame(rows: dict[str, Any], geometry, crs) -> gpd.GeoDataFrame:
    import geopandas as gpd
    import pandas as pd

    df = pd.DataFrame(rows)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geometry, crs=crs), crs=crs)


def _osm_service(
    name: str, svc: ServiceConfig, pois: gpd.GeoDataFrame, area_4326
) -> gpd.GeoDataFrame:
    import pandas as pd

    mask, category = _osm_match(pois, svc.osm_tags)
    mask &= within_area(pois, area_4326)
    sel = pois[mask]
    ids = [f"{name}:osm:{t}/{i}" for t, i in zip(sel["osm_type"], sel["osm_id"], strict=True)]
    return _frame(
        {
            "service_id": ids,
            "service": name,
            "name": sel["name"].astype("object").where(sel["name"].notna(), None).to_numpy(),
            "source": "osm",
            "category": category[mask],
            "capacity": np.full(len(sel), np.nan),
        },
        sel.geometry.to_numpy(),
        "EPSG:4326",
    ).set_index(pd.RangeIndex(len(sel)))


def layer_label(layer: ServiceLayer) -> str:
    """The ``source`` label of a service layer: ``label`` or the file name without suffix."""
    if layer.label:
        return layer.label
    name = Path(layer.path).name
    for suffix in (".geojson", ".gpkg", ".shp", ".csv", ".json", ".fgb", ".tsv", ".txt"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(layer.path).stem


def _layer_service(
    name: str, i: int, layer: ServiceLayer, area_4326, bbox
) -> tuple[gpd.GeoDataFrame, str]:
    import pandas as pd

    what = f"services.{name}.layers[{i}]"
    label = layer_label(layer)
    gdf = read_vector(
        layer,
        what=what,
        columns=[layer.name_column, layer.count_column, layer.capacity_column],
        bbox_4326=bbox,
        allow_empty=True,
    )
    where = f"{what} ({layer.path})"
    if len(gdf) == 0:
        warnings.warn(f"{where}: the layer has no rows (after where_values and the study "
                      f"area's bounding box); no {name} facilities come from it",
                      DataQualityWarning, stacklevel=3)
    elif len(gdf) > 1:
        key = gdf.geometry.to_wkb(hex=True) if layer.name_column is None else (
            gdf.geometry.to_wkb(hex=True) + "\x00" + gdf[layer.name_column].astype(str))
        dup = key.duplicated().to_numpy()
        if dup.any():
            warnings.warn(f"{where}: dropped {int(dup.sum())} exact duplicate rows (same "
                          f"{'name and ' if layer.name_column else ''}location) of {len(gdf)}",
                          DataQualityWarning, stacklevel=3)
            gdf = gdf[~dup]
    capacity = np.full(len(gdf), np.nan)
    if layer.count_column:
        counts = numeric_column(gdf, layer.count_column, what=what, path=layer.path)
        keep = counts > 0
        gdf, capacity = gdf[keep], counts[keep]
    if layer.capacity_column:
        seats = numeric_column(gdf, layer.capacity_column, what=what, path=layer.path)
        # blank or non-positive: unknown here (the service's capacity_default applies)
        capacity = np.where(np.isfinite(seats) & (seats > 0), seats, np.nan)
    if len(gdf):
        if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs(4326)
        inside = within_area(gdf, area_4326)
        n_out = int((~np.asarray(inside)).sum())
        if n_out:
            every = "all " if n_out == len(gdf) else ""
            warnings.warn(f"{where}: dropped {every}{n_out} of {len(gdf)} facilities that lie "
                          "outside the study area (check the layer's CRS and the study area)",
                          DataQualityWarning, stacklevel=3)
        gdf, capacity = gdf[inside], capacity[inside]
    if layer.name_column:
        names = gdf[layer.name_column].astype("string").str.strip()
        names = names.where(names.notna() & (names != ""), None).astype("object").to_numpy()
    else:
        names = np.full(len(gdf), None, dtype=object)
    ids = [f"{name}:{label}:{r}" for r in gdf.index]
    out = _frame(
        {
            "service_id": ids,
            "service": name,
            "name": names,
            "source": label,
            "category": label,
            "capacity": capacity,
        },
        gdf.geometry.to_numpy(),
        "EPSG:4326",
    ).set_index(pd.RangeIndex(len(gdf)))
    return out, label


def dedupe_pairs(
    xy: np.ndarray, rank: np.ndarray, distance_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of points of different ranks closer than ``distance_m``.

    Parameters
    ----------
    xy
        (n, 2) projected coordinates in metres.
    rank
        Source rank of each point (lower is preferred); points of equal rank never match.
    distance_m
        Match distance.

    Returns
    -------
    keep, drop
        Index arrays of matched pairs: ``keep[k]`` (lower rank) absorbs ``drop[k]``. Pairs
        are taken closest first, each point in at most one pair (ties by index).
    """
    from scipy.spatial import cKDTree

    if len(xy) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    tree = cKDTree(xy)
    pairs = tree.query_pairs(distance_m, output_type="ndarray")
    if len(pairs) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    a, b = pairs[:, 0], pairs[:, 1]
    cross = rank[a] != rank[b]
    a, b = a[cross], b[cross]
    d = np.hypot(*(xy[a] - xy[b]).T)
    order = np.lexsort((b, a, d))
    used = np.zeros(len(xy), dtype=bool)
    keep, drop = [], []
    for k in order:
        i, j = a[k], b[k]
        if used[i] or used[j]:
            continue
        used[i] = used[j] = True
        if (rank[i], i) > (rank[j], j):
            i, j = j, i
        keep.append(i)
        drop.append(j)
    return np.asarray(keep, np.int64), np.asarray(drop, np.int64)


def _dedupe(
    gdf: gpd.GeoDataFrame, rank: np.ndarray, distance_m: float
) -> tuple[gpd.GeoDataFrame, int]:
    x, y = gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()
    keep, drop = dedupe_pairs(np.column_stack([x, y]), rank, distance_m)
    if len(drop) == 0:
        return gdf, 0
    gdf = gdf.copy()
    names = gdf["name"].to_numpy(dtype=object)
    caps = gdf["capacity"].to_numpy(dtype=float)
    for i, j in zip(keep, drop, strict=True):
        if names[i] is None and names[j] is not None:
            names[i] = names[j]
        if np.isnan(caps[i]) and not np.isnan(caps[j]):
            caps[i] = caps[j]
    gdf["name"] = names
    gdf["capacity"] = caps
    mask = np.ones(len(gdf), dtype=bool)
    mask[drop] = False
    return gdf[mask], int(len(drop))


def load_services(
    config: Config,
    *,
    osm_path: Path | str | None,
    area_4326: Any,
    crs: str,
    network: WalkNetwork,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Facilities of every configured service, de-duplicated and snapped to the network.

    Parameters
    ----------
    config
        The study config; ``config.services`` and ``config.walk.max_snap_m`` are used.
    osm_path
        OSM file for the ``osm_tags`` presets (``None``: OSM services are skipped with a
        warning, e.g. when the network comes from a road layer).
    area_4326
        Study area (shapely, EPSG:4326) or ``None`` for everything in the inputs.
    crs
        Working projected CRS.
    network
        Walk network in ``crs``; its :meth:`~careblocks.network.WalkNetwork.snap` is used.

    Returns
    -------
    services, stats
        One row per facility with the columns of :data:`COLUMNS` (geometry: points in
        ``crs``); stats per service (``count``, ``by_source``, ``duplicates_removed``,
        ``far_snaps``) plus ``gaps`` (services without facilities) and totals.
    """
    import geopandas as gpd
    import pandas as pd

    bbox = tuple(area_4326.bounds) if area_4326 is not None else None
    tags = osm_tag_union(config)
    pois = None
    wants_osm = bool(tags)
    if wants_osm and osm_path is not None:
        from careblocks.io.osm_features import read_osm_pois

        pois = read_osm_pois(osm_path, tags, bbox=bbox)
    elif wants_osm:
        names = [n for n, s in config.services.items() if s.use_osm and s.osm_tags]
        warnings.warn(
            f"no OSM file for the OSM tags of {', '.join(names)}: only their layers are used; "
            "set network.path to an OSM file or give services.<s>.layers",
            DataQualityWarning,
            stacklevel=2,
        )

    max_snap = float(config.walk.max_snap_m)
    frames: list[gpd.GeoDataFrame] = []
    stats: dict[str, Any] = {"services": {}, "gaps": [], "far_snaps": 0, "duplicates_removed": 0}
    for name, svc in config.services.items():
        parts: list[gpd.GeoDataFrame] = []
        by_source: dict[str, int] = {}
        if svc.use_osm and pois is not None and svc.osm_tags:
            part = _osm_service(name, svc, pois, area_4326)
            parts.append(part)
            by_source["osm"] = len(part)
        for i, layer in enumerate(svc.layers):
            part, label = _layer_service(name, i, layer, area_4326, bbox)
            if label in by_source:  # two layers of one file: keep labels and ids distinct
                label = f"{label}#{i}"
                part["source"] = label
                part["category"] = label
                part["service_id"] = [
                    f"{name}:{label}:{s.rsplit(':', 1)[1]}" for s in part["service_id"]
                ]
            parts.append(part)
            by_source[label] = len(part)
        parts = [p for p in parts if len(p)]
        st: dict[str, Any] = {"by_source": by_source, "duplicates_removed": 0, "far_snaps": 0}
        if not parts:
            st["count"] = 0
            stats["services"][name] = st
            stats["gaps"].append(name)
            looked = ", ".join(f"{k} 0" for k in by_source) or "no source"
            warnings.warn(
                f"services.{name}: no {svc.label or name} facilities in the study area "
                f"({looked}); it is reported as a gap (check osm_tags, the layers' "
                f"where_values, or add services.{name}.layers)",
                DataQualityWarning,
                stacklevel=2,
            )
            continue
        rank = np.concatenate([np.full(len(p), k) for k, p in enumerate(parts)])
        gdf = pd.concat(parts, ignore_index=True)
        gdf = gpd.GeoDataFrame(gdf, geometry="geometry", crs="EPSG:4326")
        x, y = representative_xy(gdf.geometry)
        gdf = gdf.set_geometry(gpd.points_from_xy(x, y, crs="EPSG:4326")).to_crs(crs)
        if len(parts) > 1:
            gdf, removed = _dedupe(gdf, rank, float(svc.dedupe_m))
            st["duplicates_removed"] = removed
        node, dist = network.snap(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy())
        gdf["node"] = node.astype(np.int64)
        gdf["snap_m"] = dist.astype(np.float64)
        far = int((dist > max_snap).sum())
        if far:
            warnings.warn(
                f"services.{name}: {far} of {len(gdf)} facilities are more than {max_snap:g} m "
                f"from the walk network (farthest {dist.max():.0f} m); check the network covers "
                "them or raise walk.max_snap_m",
                DataQualityWarning,
                stacklevel=2,
            )
        st["far_snaps"] = far
        st["count"] = len(gdf)
        stats["services"][name] = st
        stats["far_snaps"] += far
        stats["duplicates_removed"] += st["duplicates_removed"]
        frames.append(gdf)
    if frames:
        out = pd.concat(frames, ignore_index=True)
        out = gpd.GeoDataFrame(out, geometry="geometry", crs=crs)
    else:
        out = gpd.GeoDataFrame(
            {c: [] for c in COLUMNS[:-1]}, geometry=gpd.GeoSeries([], crs=crs), crs=crs
        )
    out["capacity"] = out["capacity"].astype("float64")
    out["node"] = out["node"].astype("int64")
    out["snap_m"] = out["snap_m"].astype("float64")
    out = out[COLUMNS]
    if out["service_id"].duplicated().any():  # same feature listed twice in one source
        out = out.drop_duplicates("service_id").reset_index(drop=True)
    stats["total"] = len(out)
    return out, stats
