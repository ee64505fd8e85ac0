"""Origins: where people live, with a population per origin, snapped to the walk network.

``population.source`` picks how origins are made:

``layer``
    Points, polygons or H3 cells of ``population.layer`` with the count in
    ``population.column``. Points (and lines) belong to the study area when their
    representative point lies inside it; polygons inside it are kept whole, and polygons
    crossing its boundary are cut to it with their population apportioned by area (a
    warning says how many people fell outside). So the sum over origins is the layer's
    population inside the area.
    ``origin_id`` is the ``id_column`` value, else the H3 cell id, else the feature's row.
``buildings``
    OSM residential buildings. A building is residential when ``building`` is one of
    :data:`RESIDENTIAL_BUILDINGS`, or when it is a generic ``building=yes`` with none of the
    use tags of :data:`~careblocks.io.osm_features.BUILDING_USE_TAGS` (amenity, shop,
    office, ...) and no non-residential ``landuse``. Population = footprint area (m2, in the
    working CRS) x levels (``building:levels``, else ``population.default_levels``, clamped
    to 1..60) x ``population.persons_per_m2``. Invalid footprints are repaired (make_valid);
    ones under 4 m2 are dropped with a warning. ``origin_id`` is ``way/<id>`` or
    ``relation/<id>``.
``streets``
    For areas without mapped buildings: residential street length
    (``highway=residential/living_street``). Each street segment gives half its length to
    each end node; origins are those nodes (``origin_id`` = ``node/<id>``). Population =
    metres x 40 m2 per metre (two 20 m deep frontages) x levels x persons_per_m2, i.e. about
    one person per metre at the defaults: a rough estimate, so give ``population.total``.
``auto``
    ``layer`` when ``population.layer`` is set, else ``buildings`` when the OSM file has
    enough residential buildings in the area (at least 50 and one per 100 walk-network
    nodes: a handful of mapped buildings in a roads-only extract would otherwise receive the
    whole population), else ``streets``.

When ``population.total`` is given, populations are scaled so that they sum to it (for every
source). Origins with zero population are kept (the lead/pipeline may filter them); their
number is in the stats. Snapping uses each origin's representative point.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from careblocks.errors import ConfigError, DataQualityWarning, EmptyResultError, InputDataError
from careblocks.io.layers import numeric_column, read_vector, representative_xy, within_area

if TYPE_CHECKING:
    import geopandas as gpd

    from careblocks.config import Config
    from careblocks.network.graph import WalkNetwork

COLUMNS = ["origin_id", "population", "node", "snap_m", "geometry"]

RESIDENTIAL_BUILDINGS = frozenset(
    {
        "residential",
        "house",
        "apartments",
        "detached",
        "terrace",
        "semidetached_house",
        "bungalow",
        "dormitory",
        "farm",
        "cabin",
        "static_caravan",
        "houseboat",
        "hut",
        "ger",
        "stilt_house",
        "trullo",
    }
)
GENERIC_BUILDINGS = frozenset({"yes"})
NON_RESIDENTIAL_LANDUSE = frozenset(
    {
        "commercial",
        "industrial",
        "retail",
        "military",
        "railway",
        "religious",
        "education",
        "institutional",
        "port",
        "garages",
        "construction",
        "farmyard",
    }
)
RESIDENTIAL_HIGHWAYS = ("residential", "living_street")
#: floor area (m2) per metre of residential street in the ``streets`` estimate
FRONTAGE_M2_PER_M = 40.0
MAX_LEVELS = 60.0
#: footprints smaller than this (m2) are broken ways, not homes
MIN_FOOTPRINT_M2 = 4.0

#: ``auto`` uses buildings when at least this many residential buildings are mapped ...
AUTO_MIN_BUILDINGS = 50
#: ... and at least one per this many walk-network nodes (a few mapped buildings in a
#: city-sized extract would otherwise receive its whole population)
AUTO_NODES_PER_BUILDING = 100

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def auto_min_buildings(n_nodes: int) -> int:
    """How many residential buildings ``source = "auto"`` needs to use the buildings source."""
    return max(AUTO_MIN_BUILDINGS, int(np.ceil(n_nodes / AUTO_NODES_PER_BUILDING)))


def parse_levels(values, default: float) -> np.ndarray:
    """``building:levels`` text -> float levels (first number; missing/odd -> ``default``)."""
    out = np.full(len(values), float(default), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        try:
            m = _NUMBER.search(str(v))
        except TypeError:
            continue
        if m:
            lv = float(m.group(0).replace(",", "."))
            if lv >= 1:
                out[i] = lv
    return np.clip(out, 1.0, MAX_LEVELS)


def residential_mask(buildings: gpd.GeoDataFrame) -> np.ndarray:
    """Which OSM buildings count as homes (see the module docstring for the rule)."""
    from careblocks.io.osm_features import BUILDING_USE_TAGS

    b = buildings["building"].astype("string").str.strip().str.lower()
    explicit = b.isin(RESIDENTIAL_BUILDINGS).to_numpy(dtype=bool)
    generic = b.isin(GENERIC_BUILDINGS).to_numpy(dtype=bool)
    other_use = np.zeros(len(buildings), dtype=bool)
    for key in BUILDING_USE_TAGS:
        if key in buildings.columns:
            other_use |= buildings[key].notna().to_numpy(dtype=bool)
    if "landuse" in buildings.columns:
        other_use |= buildings["landuse"].isin(NON_RESIDENTIAL_LANDUSE).to_numpy(dtype=bool)
    return explicit | (generic & ~other_use)


def _scale(pop: np.ndarray, total: float | None, what: str) -> np.ndarray:
    if total is None:
        return pop
    if total < 0:
        raise ConfigError(f"config key 'population.total': must be 0 or more, got {total:g}")
    s = float(pop.sum())
    if s <= 0:
        raise EmptyResultError(
            f"{what}: the estimate sums to 0, so it cannot be scaled to population.total; "
            "check the population source"
        )
    return pop * (float(total) / s)


def _origins_from_layer(config: Config, area_4326, bbox, crs: str) -> tuple[gpd.GeoDataFrame, dict]:
    import geopandas as gpd
    import shapely

    pc = config.population
    ref = pc.layer
    what = "population layer (population.layer)"
    if not pc.column:
        raise ConfigError(
            "config key 'population.column': not set; name the population column of population.layer"
        )
    gdf = read_vector(ref, what=what, columns=[pc.column, pc.id_column], bbox_4326=bbox)
    pop = numeric_column(gdf, pc.column, what=what, path=ref.path)
    if pc.id_column:
        ids = gdf[pc.id_column].astype("string").str.strip()
        if ids.isna().any() or ids.duplicated().any():
            dup = ids[ids.duplicated()].iloc[0] if ids.duplicated().any() else "empty"
            raise InputDataError(
                f"{what}: {ref.path}: column '{pc.id_column}' is not a unique id (e.g. {dup!r}); "
                "give a column with one distinct value per feature, or leave population.id_column out"
            )
        ids = ids.to_numpy(dtype=object)
    elif getattr(ref, "h3", None):
        ids = gdf[ref.h3].astype(str).str.strip().to_numpy(dtype=object)
    else:
        ids = np.array([str(r) for r in gdf.index], dtype=object)
    geoms = gdf.to_crs(crs).geometry.to_numpy()
    stats: dict[str, Any] = {"source": "layer", "features_read": len(gdf), "population_cut": 0.0}
    if area_4326 is not None:
        area = gpd.GeoSeries([area_4326], crs="EPSG:4326").to_crs(crs).iloc[0]
        shapely.prepare(area)
        polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
        keep = np.zeros(len(geoms), dtype=bool)
        share = np.ones(len(geoms))
        # points (and lines): by their representative point
        others = ~polygonal
        if others.any():
            x, y = representative_xy(gpd.GeoSeries(geoms[others]))
            keep[others] = shapely.contains_xy(area, x, y)
        # polygons: whole when inside, cut and apportioned by area when on the boundary
        inside = polygonal & shapely.contains(area, geoms)
        keep |= inside
        edge = polygonal & ~inside & shapely.intersects(area, geoms)
        if edge.any():
            full = shapely.make_valid(geoms[edge])
            cut = shapely.intersection(full, area)
            a_full = shapely.area(full)
            frac = np.where(a_full > 0, shapely.area(cut) / np.where(a_full > 0, a_full, 1.0), 0.0)
            share[edge] = np.clip(frac, 0.0, 1.0)
            geoms[edge] = cut
            keep[edge] = share[edge] > 0
        if not keep.any():
            raise EmptyResultError(
                f"{what}: {ref.path}: no feature lies inside the study area; check the layer "
                "covers study.boundary / study.bbox"
            )
        before = float(pop[keep].sum())
        pop = pop * share
        stats["population_cut"] = before - float(pop[keep].sum())
        stats["features_cut"] = int((keep & (share < 1)).sum())
        if stats["population_cut"] > 1e-9 * max(before, 1.0):
            warnings.warn(
                f"{what}: {stats['features_cut']} features cross the study-area boundary; their "
                f"population was apportioned by area ({stats['population_cut']:,.0f} of "
                f"{before:,.0f} people fall outside and were cut)",
                DataQualityWarning,
                stacklevel=3,
            )
        geoms, pop, ids = geoms[keep], pop[keep], ids[keep]
        stats["features_outside"] = int((~keep).sum())
    return _make(ids, pop, gpd.GeoSeries(geoms, crs=crs)), stats


def _make(ids, pop, geometry) -> gpd.GeoDataFrame:
    import geopandas as gpd

    return gpd.GeoDataFrame(
        {
            "origin_id": np.asarray(ids, dtype=object),
            "population": np.asarray(pop, dtype=np.float64),
        },
        geometry=gpd.GeoSeries(np.asarray(geometry), crs=geometry.crs),
        crs=geometry.crs,
    )


def _read_buildings(osm_path, area_4326, bbox) -> gpd.GeoDataFrame:
    from careblocks.io.osm_features import read_osm_buildings

    b = read_osm_buildings(osm_path, bbox=bbox)
    if len(b) == 0:
        return b
    b = b[residential_mask(b)]
    return b[within_area(b, area_4326)]


def _read_building_layer(config: Config, area_4326, bbox) -> gpd.GeoDataFrame:
    """Footprints from ``population.buildings`` in the shape of OSM buildings."""
    import geopandas as gpd

    pc = config.population
    what = "building layer (population.buildings)"
    cols = [c for c in (pc.building_column, pc.levels_column) if c]
    b = read_vector(pc.buildings, what=what, columns=cols or None, bbox_4326=bbox)
    b = b[b.geom_type.isin(["Polygon", "MultiPolygon"])].to_crs("EPSG:4326")
    out = gpd.GeoDataFrame(
        {
            "osm_type": "layer",
            "osm_id": b.index.astype(str),
            "building": b[pc.building_column].astype("string") if pc.building_column else "yes",
            "building:levels": b[pc.levels_column] if pc.levels_column else None,
        },
        geometry=b.geometry.to_numpy(),
        crs="EPSG:4326",
    )
    out = out[residential_mask(out)]
    return out[within_area(out, area_4326)]


def _polygonal(g):
    import shapely

    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _origins_from_buildings(
    config: Config, buildings: gpd.GeoDataFrame, crs: str
) -> tuple[gpd.GeoDataFrame, dict]:
    import geopandas as gpd
    import shapely

    pc = config.population
    geoms = buildings.to_crs(crs).geometry.to_numpy()
    bad = ~shapely.is_valid(geoms)
    if bad.any():  # e.g. ways cut at the extract border by the PBF reader
        geoms[bad] = [_polygonal(g) for g in shapely.make_valid(geoms[bad])]
    area = shapely.area(geoms).astype(np.float64)
    tiny = area < MIN_FOOTPRINT_M2
    if tiny.any():
        warnings.warn(
            f"population (buildings): {int(tiny.sum())} OSM residential buildings with a broken "
            f"or empty footprint (< {MIN_FOOTPRINT_M2:g} m2) dropped",
            DataQualityWarning,
            stacklevel=3,
        )
        buildings, geoms, area = buildings[~tiny], geoms[~tiny], area[~tiny]
    levels = parse_levels(buildings["building:levels"].to_numpy(dtype=object), pc.default_levels)
    pop = area * levels * float(pc.persons_per_m2)
    ids = [f"{t}/{i}" for t, i in zip(buildings["osm_type"], buildings["osm_id"], strict=True)]
    return _make(ids, pop, gpd.GeoSeries(geoms, crs=crs)), {
        "source": "buildings",
        "buildings": len(buildings),
        "broken_footprints": int(tiny.sum()),
        "floor_area_m2": float((area * levels).sum()),
        "levels_tagged": int(buildings["building:levels"].notna().sum()),
    }


def _read_edges(config: Config, osm_path, bbox, *, residential: bool = False) -> gpd.GeoDataFrame:
    """The street edges of the network source; ``residential``: only residential streets
    (:data:`RESIDENTIAL_HIGHWAYS`, chosen while reading an OSM file)."""
    net = config.network
    if net.source == "road_layer" and net.path is not None:
        from careblocks.io.roads import read_road_network

        _, edges = read_road_network(net.path, layer=net.layer)
        return edges
    if osm_path is None:
        raise InputDataError(
            "population.source: streets needs the OSM file or road layer of the network; "
            "set network.path, or give population.layer"
        )
    from careblocks.io.osm import read_osm_edges

    if residential:
        def test(hw):
            return isinstance(hw, str) and hw.strip().lower() in RESIDENTIAL_HIGHWAYS

        return read_osm_edges(osm_path, bbox=bbox, where=("highway", test))
    return read_osm_edges(osm_path, bbox=bbox)


def _origins_from_streets(
    config: Config, edges: gpd.GeoDataFrame, area_4326, crs: str
) -> tuple[gpd.GeoDataFrame, dict]:
    import geopandas as gpd
    import pandas as pd
    import shapely

    pc = config.population
    if "highway" not in edges.columns:
        raise InputDataError(
            "population.source = streets: the network edges have no 'highway' column, so "
            "residential streets cannot be told apart; give population.layer instead"
        )
    hw = edges["highway"].astype("string").str.strip().str.lower()
    res = edges[hw.isin(RESIDENTIAL_HIGHWAYS).to_numpy(dtype=bool)]
    if len(res) == 0:
        raise EmptyResultError(
            "population.source = streets: the network has no residential streets "
            f"(highway={'/'.join(RESIDENTIAL_HIGHWAYS)}); give population.layer or population.source = buildings"
        )
    proj = res.to_crs(crs) if res.crs is not None else res.set_crs(4326).to_crs(crs)
    length = proj.geometry.length.to_numpy(dtype=np.float64)
    geoms = proj.geometry.to_numpy()
    first = shapely.get_point(geoms, 0)
    last = shapely.get_point(geoms, -1)
    ends = pd.DataFrame(
        {
            "node": np.concatenate([res["u"].to_numpy(np.int64), res["v"].to_numpy(np.int64)]),
            "x": np.concatenate([shapely.get_x(first), shapely.get_x(last)]),
            "y": np.concatenate([shapely.get_y(first), shapely.get_y(last)]),
            "m": np.concatenate([length, length]) / 2.0,
        }
    )
    agg = ends.groupby("node", sort=True).agg(x=("x", "first"), y=("y", "first"), m=("m", "sum"))
    pts = gpd.GeoSeries(gpd.points_from_xy(agg["x"], agg["y"]), crs=crs)
    inside = within_area(gpd.GeoDataFrame(geometry=pts), area_4326)
    agg, pts = agg[inside], pts[inside]
    pop = (
        agg["m"].to_numpy()
        * FRONTAGE_M2_PER_M
        * float(pc.default_levels)
        * float(pc.persons_per_m2)
    )
    ids = [f"node/{n}" for n in agg.index]
    warnings.warn(
        "population from residential street length is a rough estimate (about one person per "
        "metre at the defaults); give population.total or a population layer",
        DataQualityWarning,
        stacklevel=3,
    )
    return _make(ids, pop, pts), {"source": "streets", "residential_street_m": float(length.sum())}


def load_origins(
    config: Config,
    *,
    osm_path: Path | str | None,
    area_4326: Any,
    crs: str,
    network: WalkNetwork,
    edges_4326: gpd.GeoDataFrame | None = None,
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Origins with population, in the working CRS, snapped to the walk network.

    Parameters
    ----------
    config
        The study config; ``config.population`` and ``config.walk.max_snap_m`` are used.
    osm_path
        OSM file for the ``buildings`` (and ``streets``) sources; may be ``None`` with a
        population layer.
    area_4326
        Study area (shapely, EPSG:4326) or ``None``.
    crs
        Working projected CRS.
    network
        Walk network in ``crs`` (its ``snap`` is used).
    edges_4326
        Network edges (``u``, ``v``, ``highway``, geometry) already read by the caller, for
        the ``streets`` source; read again from the network source when not given.

    Returns
    -------
    origins, stats
        Columns ``origin_id`` (str), ``population`` (float), ``node`` (int64), ``snap_m``
        (float), geometry (Point or Polygon in ``crs``); stats: ``source`` used, ``count``,
        ``population``, ``zero_population``, ``far_snaps`` and source details.
    """
    pc = config.population
    bbox = tuple(area_4326.bounds) if area_4326 is not None else None
    source = pc.source
    if source == "layer" and pc.layer is None:
        raise ConfigError(
            "config key 'population.layer': population.source is 'layer' but no layer is given; "
            "add [population.layer] with a path, or use source = 'buildings'"
        )
    if source == "census":
        return _origins_from_census(config, osm_path=osm_path, area_4326=area_4326, crs=crs,
                                    network=network, edges_4326=edges_4326, bbox=bbox)
    if source == "auto":
        source = "layer" if pc.layer is not None else None
    buildings = None
    if source == "buildings" and pc.buildings is not None:
        buildings = _read_building_layer(config, area_4326, bbox)
    elif source in (None, "buildings"):
        if osm_path is None:
            if source == "buildings":
                raise InputDataError(
                    "population.source = buildings needs an OSM file; set network.path to one, "
                    "or give population.layer"
                )
        else:
            buildings = _read_buildings(osm_path, area_4326, bbox)
        if source == "buildings" and (buildings is None or len(buildings) == 0):
            raise EmptyResultError(
                f"{osm_path}: no residential buildings in the study area; use "
                "population.source = 'streets' or give population.layer"
            )
        if source is None:
            need = auto_min_buildings(network.n_nodes)
            have = 0 if buildings is None else len(buildings)
            source = "buildings" if have >= need else "streets"
            if 0 < have < need:
                warnings.warn(
                    f"population: only {have} residential buildings are mapped (auto needs "
                    f"{need} for this network), so residential street length is used; set "
                    "population.source = 'buildings' to use them anyway",
                    DataQualityWarning,
                    stacklevel=2,
                )

    if source == "layer":
        origins, st = _origins_from_layer(config, area_4326, bbox, crs)
    elif source == "buildings":
        origins, st = _origins_from_buildings(config, buildings, crs)
    else:
        edges = edges_4326 if edges_4326 is not None else _read_edges(config, osm_path, bbox,
                                                                        residential=True)
        origins, st = _origins_from_streets(config, edges, area_4326, crs)
    if len(origins) == 0:
        raise EmptyResultError(
            f"population ({source}): no origins inside the study area; check study.boundary / "
            "study.bbox and the population inputs"
        )
    if pc.total is not None:
        st["population_before_scaling"] = float(origins["population"].sum())
    origins["population"] = _scale(
        origins["population"].to_numpy(np.float64), pc.total, f"population ({source})"
    )

    return _snap(config, origins, network, source, st)


def _snap(config: Config, origins, network, source: str, st: dict,
          extra: tuple[str, ...] = ()) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    x, y = representative_xy(origins.geometry)
    node, dist = network.snap(x, y)
    origins["node"] = node.astype(np.int64)
    origins["snap_m"] = dist.astype(np.float64)
    max_snap = float(config.walk.max_snap_m)
    far = int((dist > max_snap).sum())
    if far:
        warnings.warn(
            f"population ({source}): {far} of {len(origins)} origins are more than {max_snap:g} m "
            f"from the walk network (farthest {dist.max():.0f} m); check the network covers the "
            "area or raise walk.max_snap_m",
            DataQualityWarning,
            stacklevel=2,
        )
    origins["origin_id"] = origins["origin_id"].astype(str)
    origins = origins[[*COLUMNS[:-1], *extra, "geometry"]].reset_index(drop=True)
    st.update(
        count=len(origins),
        population=float(origins["population"].sum()),
        zero_population=int((origins["population"] <= 0).sum()),
        far_snaps=far,
    )
    return origins, st


def _origins_from_census(config: Config, *, osm_path, area_4326, crs: str, network,
                         edges_4326, bbox) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Source ``census``: census counts over residential land (see careblocks.demand.residential)."""
    import geopandas as gpd

    from careblocks.columns import CENSUS_GROUPS as GROUPS
    from careblocks.demand.census import HOUSEHOLDS, TOTAL, read_census
    from careblocks.demand.residential import residential_origins

    pc = config.population
    if config.census.layer is None:
        raise ConfigError(
            "config key 'population.source': 'census' needs census.layer (the census units "
            "and their counts); set [census] layer and total_column"
        )
    census, info = read_census(config.census, area_4326=area_4326)
    if TOTAL not in census.columns:
        raise ConfigError(
            "config key 'census.total_column': population.source = 'census' needs the people "
            "per unit; set census.total_column"
        )
    if census.crs != crs:
        census = census.to_crs(crs)
    if "census_name" in census.columns and census["census_name"].is_unique:
        census["census_unit_id"] = census["census_name"]  # e.g. DANE's sector code
    area = gpd.GeoSeries([area_4326], crs="EPSG:4326").to_crs(crs).iloc[0] \
        if area_4326 is not None else census.geometry.union_all()
    buildings = None
    if osm_path is not None or pc.buildings is not None:
        b = _read_building_layer(config, area_4326, bbox) if pc.buildings is not None \
            else _read_buildings(osm_path, area_4326, bbox)
        if len(b):
            borig, _ = _origins_from_buildings(config, b, crs)
            buildings = borig.rename(columns={"population": "floor_area_m2"})
    edges = edges_4326
    if edges is None and (osm_path is not None or config.network.source == "road_layer"):
        edges = _read_edges(config, osm_path, bbox)
    streets = edges.to_crs(crs) if edges is not None and "highway" in edges.columns else None
    cols = [c for c in (TOTAL, HOUSEHOLDS, *GROUPS) if c in census.columns]
    origins, astats = residential_origins(
        census, cols, area=area, buildings=buildings, streets=streets,
        resolution=pc.grid_resolution, street_buffer_m=pc.street_buffer_m)
    origins["population"] = origins[TOTAL]
    if pc.total is not None:
        raise ConfigError(
            "config key 'population.total': not used with population.source = 'census' (the "
            "census gives the people); remove it"
        )
    if astats["cut"].get(TOTAL, 0) > 0:
        warnings.warn(
            f"census.layer: {astats['n_units_partly_outside']} census units extend beyond the "
            f"study area; {astats['cut'][TOTAL]:,.0f} of their people lie outside by area "
            f"share and were cut ({astats['kept'][TOTAL]:,.0f} kept in the area)",
            DataQualityWarning,
            stacklevel=3,
        )
    st: dict[str, Any] = {"source": "census", "census": {"read": info, "allocation": astats}}
    extra = ("census_unit_id", "kind", "land_m2", *cols)
    return _snap(config, origins, network, "census", st, extra)
