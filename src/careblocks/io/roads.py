"""A road-centreline line layer noded into a walking graph (``nodes``, ``edges``).

Many cities publish street centrelines as a plain line layer (Freetown's ``cbd_roads``)
rather than as OSM. :func:`read_road_network` turns such a layer into the same
``(nodes, edges)`` pair as :func:`careblocks.io.osm.read_osm_network`:

1. lines are exploded (MultiLineStrings into LineStrings) and projected to the local UTM
   zone;
2. line ends closer than ``snap_m`` (0.5 m) are merged, so that digitising gaps do not
   break the graph;
3. the lines are noded with ``shapely.unary_union``: split at every shared vertex and at
   every true crossing (the layer says nothing about bridges, so crossings connect);
4. node ids are derived from the node coordinates (EPSG:4326 at 1e-7 degrees), so they are
   stable across runs and across layer orderings.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np

from careblocks.errors import CRSError, EmptyResultError, InputDataError

#: Columns read as the road class, in order of preference.
HIGHWAY_COLUMNS = ("highway", "highways", "fclass", "road_type", "type")


def coordinate_node_ids(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Stable non-negative int64 ids from EPSG:4326 coordinates (1e-7 degree grid)."""
    lon_i = np.round(np.asarray(lon, dtype=np.float64) * 1e7).astype(np.int64) + 1_800_000_000
    lat_i = np.round(np.asarray(lat, dtype=np.float64) * 1e7).astype(np.int64) + 900_000_000
    return (lon_i << np.int64(31)) | lat_i


def _highway_value(value: Any) -> str:
    """First road class of a value such as ``"residential"`` or ``"['service', 'path']"``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "unclassified"
    if isinstance(value, (list, tuple, np.ndarray)):
        return _highway_value(value[0]) if len(value) else "unclassified"
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed = [t.strip(" '\"") for t in text.strip("[]").split(",")]
        return _highway_value(list(parsed))
    return text or "unclassified"


def _split_rings(pieces: np.ndarray) -> np.ndarray:
    """Split closed pieces (start == end) in two halves, so that they are not self-loops."""
    import shapely
    from shapely.ops import substring

    closed = shapely.is_closed(pieces)
    if not closed.any():
        return pieces
    halves = []
    for ring in pieces[closed]:
        halves.append(substring(ring, 0.0, 0.5, normalized=True))
        halves.append(substring(ring, 0.5, 1.0, normalized=True))
    return np.concatenate([pieces[~closed], np.asarray(halves, dtype=object)])


def read_road_network(
    path: Path | str, layer: str | None = None, *, snap_m: float = 0.5
) -> tuple[Any, Any]:
    """Read a road-centreline line layer as a walking graph ``(nodes, edges)`` in EPSG:4326.

    Parameters
    ----------
    path
        A vector file readable by pyogrio (GeoPackage, Shapefile, GeoJSON, ...).
    layer
        The layer name for multi-layer files (``"cbd_roads"``).
    snap_m
        Line ends closer than this (metres) are joined.

    Returns
    -------
    nodes, edges
        ``nodes``: ``node_id`` (int64), Point geometry; ``edges``: ``u``, ``v`` (int64),
        ``highway`` (str, from a ``highway``/``highways`` column, else ``"unclassified"``),
        LineString geometry. Both in EPSG:4326.

    Raises
    ------
    InputDataError
        Missing file or layer, no line geometries.
    CRSError
        The layer has no CRS.
    EmptyResultError
        The layer holds no usable lines.
    """
    import geopandas as gpd
    import pyogrio

    p = Path(path).expanduser()
    if not p.exists():
        raise InputDataError(f"{p}: road layer not found; check network.path in the config")
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(p)]
    except Exception as exc:  # pyogrio.errors.DataSourceError and friends
        raise InputDataError(
            f"{p}: not a readable vector file ({exc.__class__.__name__}); give a GeoPackage, "
            "Shapefile or GeoJSON of road lines in network.path"
        ) from None
    if layer is not None and layer not in layers:
        raise InputDataError(
            f"{p}: layer {layer!r} not found; set network.layer to one of: {', '.join(layers)}"
        )
    where = f"{p}" + (f" layer {layer!r}" if layer else "")
    gdf = gpd.read_file(p, layer=layer)
    if gdf.crs is None:
        raise CRSError(
            f"{where}: the layer has no coordinate reference system; assign one (e.g. "
            "ogr2ogr -a_srs EPSG:4326) and run again"
        )
    return road_nodes_edges(gdf, where=where, snap_m=snap_m)


def road_nodes_edges(gdf: Any, *, where: str, snap_m: float = 0.5) -> tuple[Any, Any]:
    """A GeoDataFrame of road lines as a walking graph ``(nodes, edges)`` in EPSG:4326: line
    ends closer than ``snap_m`` joined, lines noded at shared vertices and crossings.

    ``where`` names the layer in error messages. See :func:`read_road_network`.
    """
    import geopandas as gpd
    import shapely
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    if gdf.crs is None:
        raise CRSError(f"{where}: the layer has no coordinate reference system; set one and run again")
    gdf = gdf[~gdf.geometry.isna() & ~gdf.geometry.is_empty]
    gdf = gdf[gdf.geom_type.isin(["LineString", "MultiLineString"])]
    if len(gdf) == 0:
        raise EmptyResultError(
            f'{where}: no line geometries; network.source = "road_layer" needs a layer of road centrelines'
        )
    hcol = next((c for c in HIGHWAY_COLUMNS if c in gdf.columns), None)
    gdf = gdf.explode(index_parts=False, ignore_index=True)
    highway = (
        np.array([_highway_value(v) for v in gdf[hcol]], dtype=object)
        if hcol
        else np.full(len(gdf), "unclassified", dtype=object)
    )
    g4326 = gdf.geometry.to_crs("EPSG:4326")
    utm = g4326.estimate_utm_crs()
    lines = np.asarray(g4326.to_crs(utm).to_numpy(), dtype=object)
    # drop repeated points and degenerate lines
    lines = shapely.remove_repeated_points(lines, tolerance=0.0)
    ok = shapely.get_num_coordinates(lines) >= 2
    lines, highway = lines[ok], highway[ok]
    ok = shapely.length(lines) > 0
    lines, highway = lines[ok], highway[ok]
    if lines.size == 0:
        raise EmptyResultError(f"{where}: every line is degenerate (length 0); check the layer")

    # 1. merge line ends closer than snap_m (clusters of ends move to their mean)
    coords, line_idx = shapely.get_coordinates(lines, return_index=True)
    counts = np.bincount(line_idx, minlength=lines.size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ends = starts + counts - 1
    end_pos = np.concatenate([starts, ends])
    pts = coords[end_pos]
    pairs = cKDTree(pts).query_pairs(snap_m, output_type="ndarray")
    if pairs.size:
        m = pts.shape[0]
        adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
        _, lab = connected_components(adj, directed=False)
        cx = np.bincount(lab, weights=pts[:, 0]) / np.bincount(lab)
        cy = np.bincount(lab, weights=pts[:, 1]) / np.bincount(lab)
        coords = coords.copy()
        coords[end_pos, 0] = cx[lab]
        coords[end_pos, 1] = cy[lab]
        lines = shapely.linestrings(coords, indices=line_idx)
        lines = shapely.remove_repeated_points(lines, tolerance=0.0)
        keep = (shapely.get_num_coordinates(lines) >= 2) & (shapely.length(lines) > 0)
        lines, highway = lines[keep], highway[keep]

    # 2. node at shared vertices and crossings
    noded = shapely.unary_union(lines)
    pieces = np.asarray(shapely.get_parts(noded), dtype=object)
    pieces = pieces[shapely.get_type_id(pieces) == 1]  # LineStrings
    pieces = pieces[shapely.length(pieces) > 0]
    pieces = _split_rings(pieces)
    if pieces.size == 0:
        raise EmptyResultError(f"{where}: no usable road lines after noding; check the layer")

    # 3. highway of each piece: the source line it lies on (midpoint within 1 cm)
    mids = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
    tree = shapely.STRtree(lines)
    src, tgt = tree.query_nearest(mids, return_distance=False, all_matches=False)
    piece_hw = np.full(pieces.size, "unclassified", dtype=object)
    piece_hw[src] = highway[tgt]

    # 4. nodes from piece ends, ids from rounded lon/lat
    first = shapely.get_point(pieces, 0)
    last = shapely.get_point(pieces, -1)
    ends_utm = gpd.GeoSeries(np.concatenate([first, last]), crs=utm).to_crs("EPSG:4326")
    lon = ends_utm.x.to_numpy()
    lat = ends_utm.y.to_numpy()
    ids = coordinate_node_ids(lon, lat)
    k = pieces.size
    u, v = ids[:k], ids[k:]
    node_ids, first_pos = np.unique(ids, return_index=True)
    nodes = gpd.GeoDataFrame(
        {"node_id": node_ids},
        geometry=gpd.points_from_xy(lon[first_pos], lat[first_pos]),
        crs="EPSG:4326",
    )
    edges = gpd.GeoDataFrame(
        {"u": u, "v": v, "highway": piece_hw},
        geometry=gpd.GeoSeries(pieces, crs=utm).to_crs("EPSG:4326").to_numpy(),
        crs="EPSG:4326",
    )
    edges = edges[edges["u"] != edges["v"]].reset_index(drop=True)
    # stable order: by (u, v) rather than by GEOS output order
    order = np.lexsort((edges["v"].to_numpy(), edges["u"].to_numpy()))
    edges = edges.iloc[order].reset_index(drop=True)
    return nodes, edges
