"""Candidate sites for Care Blocks: OSM anchors, user parcels and an H3 grid.

Three kinds of candidate, each a point in the working CRS snapped to the walk network:

- ``anchor``: public buildings and land from OSM (community centres, libraries, schools,
  townhalls, clinics and health centres, markets, parks, government offices, existing
  daycares). Bogotá's Manzanas del Cuidado sit around exactly such anchors; Freetown's council
  put nurseries in markets. Tags: :data:`ANCHOR_TAGS`, replaced by ``sites.anchor_tags``.
- ``parcel``: a user layer of candidate parcels or buildings (``sites.candidates_layer``, e.g.
  a public-land inventory).
- ``h3``: the centres of the H3 cells (``sites.h3_resolution``) that hold a populated origin,
  for "anywhere" searches.

Candidates inside an exclusion polygon (``sites.exclusions``: flood zones, protected areas),
outside the study area, or farther than ``walk.max_snap_m`` from the network are dropped
(the last with a :class:`DataQualityWarning`). Candidates that snap to the same network node
have identical catchments; one is kept per node, preferring a user parcel, then an OSM
anchor, then an H3 cell; among those a public anchor, then a named one, then the category
order of :data:`CATEGORY_ORDER`, then the smaller ``candidate_id``; a block that stays
(``sites.fixed``, ``sites.fixed_column``) always wins its node. ``n_merged`` says how many
were folded into the one kept.

Costs and blocks that stay: ``sites.cost_column`` adds ``cost`` (blank: ``sites.default_cost``)
and ``sites.fixed`` / ``sites.fixed_column`` add ``fixed``; :func:`costs_and_fixed` turns them
into the inputs of :func:`careblocks.sites.selection.select_sites`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from careblocks.errors import ConfigError, DataQualityWarning
from careblocks.i18n import N_

if TYPE_CHECKING:  # pragma: no cover
    import geopandas as gpd

    from careblocks.config import Config

#: OSM tags of candidate anchors (OSM wiki tagging); ``sites.anchor_tags`` replaces them.
ANCHOR_TAGS: dict[str, list[str]] = {
    "amenity": [
        "community_centre", "social_centre", "library", "townhall", "school", "clinic",
        "marketplace", "kindergarten", "childcare", "public_building",
    ],
    "leisure": ["park"],
    "healthcare": ["centre"],
    "office": ["government"],
}

#: ``key=value`` -> category label written to the ``category`` column
_CATEGORY_LABEL = {
    ("healthcare", "centre"): "health_centre",
    ("office", "government"): "government_office",
    ("amenity", "public_building"): "public_building",
}

#: Preference when several candidates share a node (earlier wins)
CATEGORY_ORDER: tuple[str, ...] = (
    "community_centre", "social_centre", "library", "townhall", "government_office",
    "public_building", "health_centre", "clinic", "school", "kindergarten", "childcare",
    "marketplace", "park",
)

#: Categories counted as public anchors (``is_public_anchor``). Clinics, schools and daycares
#: in OSM are often private, so they are candidates but not public anchors by default.
PUBLIC_CATEGORIES: frozenset[str] = frozenset(
    {"community_centre", "social_centre", "library", "townhall", "government_office",
     "public_building", "health_centre", "marketplace", "park"}
)

COLUMNS = ["candidate_id", "kind", "category", "name", "is_public_anchor", "node", "snap_m",
           "n_merged", "geometry"]
_KIND_ORDER = {"parcel": 0, "anchor": 1, "h3": 2}


def _frame(rows: dict[str, Any], x: np.ndarray, y: np.ndarray, crs: str) -> gpd.GeoDataFrame:
    import geopandas as gpd

    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=gpd.points_from_xy(x, y), crs=crs)


def _to_xy(gdf: gpd.GeoDataFrame, crs: str) -> tuple[np.ndarray, np.ndarray]:
    from careblocks.io.layers import representative_xy

    if gdf.crs is None:
        from careblocks.errors import CRSError

        raise CRSError("candidate layer: no CRS; set its crs in the config")
    return representative_xy(gdf.to_crs(crs).geometry)


def osm_anchors(osm_path, tags: dict[str, Any], *, area_4326, crs: str) -> gpd.GeoDataFrame:
    """Anchor candidates from OSM: one point per matching feature, in ``crs``."""
    from careblocks.io.layers import within_area
    from careblocks.io.osm_features import read_osm_pois

    bbox = tuple(area_4326.bounds) if area_4326 is not None else None
    pois = read_osm_pois(osm_path, tags, bbox=bbox)
    if len(pois):
        pois = pois[within_area(pois, area_4326)].reset_index(drop=True)
    category = np.full(len(pois), None, dtype=object)
    for key, values in tags.items():  # first matching key wins, in the order given
        if key not in pois.columns:
            continue
        col = pois[key].astype("object").to_numpy()
        for i, v in enumerate(col):
            if category[i] is not None or v is None or v is pd.NA:
                continue
            if values is True or str(v) in [str(a) for a in values]:
                category[i] = _CATEGORY_LABEL.get((key, str(v)), str(v))
    x, y = _to_xy(pois, crs) if len(pois) else (np.empty(0), np.empty(0))
    names = pois["name"].astype("object").to_numpy() if len(pois) else np.empty(0, dtype=object)
    names = np.array([None if (v is None or v is pd.NA or v != v) else str(v) for v in names], dtype=object)
    return _frame(
        {
            "candidate_id": [f"anchor:osm:{t}/{i}" for t, i in zip(pois["osm_type"], pois["osm_id"], strict=True)]
            if len(pois) else [],
            "kind": "anchor",
            "category": category,
            "name": names,
            "is_public_anchor": np.array([c in PUBLIC_CATEGORIES for c in category], dtype=bool),
        },
        x, y, crs,
    )


def parcel_candidates(config: Config, *, area_4326, crs: str) -> gpd.GeoDataFrame:
    """Candidates from the user layer ``sites.candidates_layer`` (points or polygons)."""
    from careblocks.io.layers import read_vector, within_area

    ref = config.sites.candidates_layer
    bbox = tuple(area_4326.bounds) if area_4326 is not None else None
    gdf = read_vector(ref, what="candidate layer (sites.candidates_layer)", bbox_4326=bbox,
                      allow_empty=True)
    if len(gdf):
        gdf = gdf[within_area(gdf, area_4326)]
    x, y = _to_xy(gdf, crs) if len(gdf) else (np.empty(0), np.empty(0))
    lower = {c.lower(): c for c in gdf.columns}
    id_col = lower.get("candidate_id") or lower.get("id")
    keys = gdf[id_col].astype(str).to_numpy() if id_col else np.asarray(gdf.index).astype(str)
    name_col = config.sites.candidates_name_column or lower.get("name")
    if name_col and name_col not in gdf.columns:
        from careblocks.errors import MissingColumnError

        raise MissingColumnError(
            f"candidate layer (sites.candidates_layer): {ref.path}: column '{name_col}' "
            f"(sites.candidates_name_column) not found; existing columns: "
            f"{', '.join(map(str, gdf.columns))}"
        )
    names = (
        [None if pd.isna(v) or not str(v).strip() else str(v).strip() for v in gdf[name_col]]
        if name_col else [None] * len(gdf)
    )
    cat_col = lower.get("category")
    if config.sites.candidates_category:
        cats = [config.sites.candidates_category] * len(gdf)
    else:
        cats = [("parcel" if pd.isna(v) else str(v)) for v in gdf[cat_col]] if cat_col \
            else ["parcel"] * len(gdf)
    pub_col = lower.get("is_public") or lower.get("public")
    public = gdf[pub_col].fillna(False).astype(bool).to_numpy() if pub_col else np.ones(len(gdf), bool)
    rows = {"candidate_id": [f"parcel:{k}" for k in keys], "kind": "parcel", "category": cats,
            "name": names, "is_public_anchor": public}
    sc = config.sites
    where = f"candidate layer (sites.candidates_layer): {ref.path}"
    if sc.cost_column:
        rows["cost"] = _cost_values(gdf, sc.cost_column, where)
    if sc.fixed_column:
        rows["fixed"] = _flag_values(gdf, sc.fixed_column, where)
    return _frame(rows, x, y, crs)


def _column(gdf, col: str, key: str, where: str):
    if col not in gdf.columns:
        from careblocks.errors import MissingColumnError

        raise MissingColumnError(f"{where}: column '{col}' ({key}) not found; existing columns: "
                                 f"{', '.join(str(c) for c in gdf.columns if c != gdf.geometry.name)}")
    return gdf[col]


def _cost_values(gdf, col: str, where: str) -> np.ndarray:
    """Costs (float, NaN where blank); text that is not a number or a negative cost stops."""
    from careblocks.errors import InputDataError

    raw = _column(gdf, col, "sites.cost_column", where)
    v = pd.to_numeric(raw, errors="coerce")
    bad = v.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        raise InputDataError(f"{where}: column '{col}' (sites.cost_column): {int(bad.sum())} values are not "
                             f"numbers (e.g. {str(raw[bad].iloc[0])!r}); write plain numbers")
    if (v < 0).any() or np.isinf(v).any():
        raise InputDataError(f"{where}: column '{col}' (sites.cost_column): costs must be >= 0 and finite; "
                             f"fix {int(((v < 0) | np.isinf(v)).sum())} values")
    return v.to_numpy(dtype=np.float64)


_TRUE = {"1", "true", "yes", "y", "t", "si", "sí", "sim", "oui"}
_FALSE = {"0", "false", "no", "n", "f", "", "nan", "none", "não", "non"}


def _flag_values(gdf, col: str, where: str) -> np.ndarray:
    """A yes/no column (booleans, 0/1, true/false, yes/no); anything else stops."""
    from careblocks.errors import InputDataError

    text = _column(gdf, col, "sites.fixed_column", where).astype(str).str.strip().str.lower()
    text = text.str.replace(r"\.0$", "", regex=True)
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        raise InputDataError(f"{where}: column '{col}' (sites.fixed_column): {int(bad.sum())} values are not "
                             f"yes/no (e.g. {text[bad].iloc[0]!r}); use true/false or 1/0")
    return text.isin(_TRUE).to_numpy()


def h3_candidates(origins: gpd.GeoDataFrame, resolution: int, *, crs: str) -> gpd.GeoDataFrame:
    """Centres of the H3 cells holding at least one origin with population > 0."""
    import geopandas as gpd
    import h3

    if not 0 <= resolution <= 15:
        raise ConfigError(f"config key 'sites.h3_resolution': {resolution} is not 0..15; use e.g. 9 (~0.1 km2 cells)")
    from careblocks.io.layers import representative_xy

    pop = pd.to_numeric(origins["population"], errors="coerce").fillna(0).to_numpy()
    pts = origins[pop > 0]
    if len(pts) == 0:
        return _frame({"candidate_id": [], "kind": [], "category": [], "name": [],
                       "is_public_anchor": np.zeros(0, bool)}, np.empty(0), np.empty(0), crs)
    x, y = representative_xy(pts.geometry)
    ll = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=pts.crs).to_crs(4326)
    cells = sorted({h3.latlng_to_cell(lat, lon, resolution) for lon, lat in zip(ll.x, ll.y, strict=True)})
    centres = np.array([h3.cell_to_latlng(c) for c in cells])  # (lat, lon)
    g = gpd.GeoSeries(gpd.points_from_xy(centres[:, 1], centres[:, 0]), crs=4326).to_crs(crs)
    return _frame(
        {"candidate_id": [f"h3:{c}" for c in cells], "kind": "h3", "category": "h3_cell",
         "name": [None] * len(cells), "is_public_anchor": np.zeros(len(cells), bool)},
        g.x.to_numpy(), g.y.to_numpy(), crs,
    )


def _drop_excluded(cands: gpd.GeoDataFrame, config: Config, *, area_4326, crs: str) -> tuple[gpd.GeoDataFrame, int]:
    import shapely

    from careblocks.io.layers import read_vector

    if not config.sites.exclusions or len(cands) == 0:
        return cands, 0
    bbox = tuple(area_4326.bounds) if area_4326 is not None else None
    keep = np.ones(len(cands), dtype=bool)
    for i, ref in enumerate(config.sites.exclusions):
        gdf = read_vector(ref, what=f"exclusion layer (sites.exclusions[{i}])", bbox_4326=bbox,
                          allow_empty=True)
        if len(gdf) == 0:
            continue
        geom = shapely.union_all(gdf.to_crs(crs).geometry.make_valid().to_numpy())
        shapely.prepare(geom)
        keep &= ~shapely.intersects_xy(geom, cands.geometry.x.to_numpy(), cands.geometry.y.to_numpy())
    return cands[keep], int((~keep).sum())


def dedupe_by_node(cands: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Keep one candidate per network node (rule in the module docstring); adds ``n_merged``."""
    if len(cands) == 0:
        out = cands.copy()
        out["n_merged"] = np.zeros(0, dtype=np.int64)
        return out
    cat_rank = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    fixed = cands["fixed"].astype(bool).to_numpy() if "fixed" in cands.columns else np.zeros(len(cands), bool)
    key = pd.DataFrame({
        "node": cands["node"].to_numpy(),
        "stays": (~fixed).astype(int),
        "kind": cands["kind"].map(_KIND_ORDER).to_numpy(),
        "public": (~cands["is_public_anchor"].astype(bool)).astype(int).to_numpy(),
        "unnamed": cands["name"].isna().astype(int).to_numpy(),
        "cat": cands["category"].map(lambda c: cat_rank.get(c, len(cat_rank))).to_numpy(),
        "cid": cands["candidate_id"].astype(str).to_numpy(),
        "pos": np.arange(len(cands)),
    }).sort_values(["node", "stays", "kind", "public", "unnamed", "cat", "cid"], kind="stable")
    first = ~key["node"].duplicated()
    sizes = key.groupby("node")["pos"].transform("size").to_numpy()
    kept = key[first.to_numpy()]
    out = cands.iloc[kept["pos"].to_numpy()].copy()
    out["n_merged"] = (sizes[first.to_numpy()] - 1).astype(np.int64)
    return out


def build_candidates(
    config: Config,
    *,
    osm_path,
    area_4326,
    crs: str,
    network,
    origins: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """All candidate sites, snapped to the walk network and de-duplicated per node.

    Parameters
    ----------
    config
        ``sites.candidates_osm_anchors``, ``sites.anchor_tags``, ``sites.candidates_layer``,
        ``sites.h3_resolution``, ``sites.exclusions``, ``walk.max_snap_m``.
    osm_path
        The OSM file (PBF or XML) for anchors; ``None`` skips OSM anchors.
    area_4326
        Study area polygon (EPSG:4326) or ``None``.
    crs
        Working CRS.
    network
        :class:`careblocks.network.WalkNetwork` in ``crs``.
    origins
        Origins with ``population`` (needed for the H3 grid).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``candidate_id`` (str, stable: ``anchor:osm:<type>/<id>``, ``parcel:<id>``,
        ``h3:<cell>``), ``kind``, ``category``, ``name``, ``is_public_anchor``, ``node``,
        ``snap_m``, ``n_merged``, geometry (Point, ``crs``); sorted by ``candidate_id``.
        ``attrs["stats"]`` counts candidates per kind and those dropped at each step.
    """
    import geopandas as gpd

    sc = config.sites
    parts = []
    stats: dict[str, Any] = {}
    if sc.candidates_osm_anchors and osm_path is not None:
        tags = dict(sc.anchor_tags) if sc.anchor_tags else dict(ANCHOR_TAGS)
        parts.append(osm_anchors(osm_path, tags, area_4326=area_4326, crs=crs))
    if sc.candidates_layer is not None:
        parts.append(parcel_candidates(config, area_4326=area_4326, crs=crs))
    if sc.h3_resolution is not None:
        if origins is None:
            raise ConfigError("config key 'sites.h3_resolution': the H3 grid needs origins; load origins first")
        parts.append(h3_candidates(origins, sc.h3_resolution, crs=crs))
    parts = [p for p in parts if len(p)]
    if not parts:
        from careblocks.errors import EmptyResultError

        raise EmptyResultError(
            "sites: no candidate sites in the study area; enable sites.candidates_osm_anchors, "
            "give sites.candidates_layer or set sites.h3_resolution"
        )
    cands = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=crs)
    cands = cands.drop_duplicates("candidate_id").reset_index(drop=True)
    extra = []
    if sc.cost_column or sc.default_cost is not None:
        extra.append("cost")
        cost = cands["cost"] if "cost" in cands.columns else pd.Series(np.nan, index=cands.index)
        cands["cost"] = cost.astype("float64")
    if sc.fixed or sc.fixed_column:
        extra.append("fixed")
        flag = cands["fixed"] if "fixed" in cands.columns else pd.Series(False, index=cands.index)
        named = set(map(str, sc.fixed))
        cands["fixed"] = (flag.fillna(False).astype(bool)
                          | cands["candidate_id"].astype(str).isin(named)
                          | cands["name"].astype(str).str.strip().isin(named)).to_numpy()
        stats["fixed_found"] = int(cands["fixed"].sum())
    stats["found"] = cands["kind"].value_counts().to_dict()
    cands, stats["excluded"] = _drop_excluded(cands, config, area_4326=area_4326, crs=crs)
    node, dist = network.snap(cands.geometry.x.to_numpy(), cands.geometry.y.to_numpy())
    cands = cands.assign(node=node, snap_m=dist)
    far = dist > config.walk.max_snap_m
    stats["far_snaps_dropped"] = int(far.sum())
    if far.any():
        warnings.warn(
            f"sites: {int(far.sum())} candidate sites lie farther than walk.max_snap_m = "
            f"{config.walk.max_snap_m:g} m from the walk network and were dropped",
            DataQualityWarning,
            stacklevel=2,
        )
        cands = cands[~far]
    before = len(cands)
    cands = dedupe_by_node(cands)
    unnamed = cands["name"].isna()
    if unnamed.any():
        streets = _named_streets(config, osm_path, area_4326)
        cands.loc[unnamed, "name"] = place_names(cands[unnamed], streets, crs=crs,
                                                 language=config.outputs.language)
        stats["named_from_streets"] = int(unnamed.sum())
    stats["merged_same_node"] = before - len(cands)
    cands = cands.sort_values("candidate_id", kind="stable").reset_index(drop=True)
    cands["is_public_anchor"] = cands["is_public_anchor"].astype(bool)
    cands["node"] = cands["node"].astype(np.int64)
    stats["kept"] = cands["kind"].value_counts().to_dict()
    out = cands[COLUMNS[:-1] + extra + ["geometry"]]
    out.attrs["stats"] = stats
    return out


#: how an unnamed candidate's category reads at the start of its name (in ``outputs.language``)
_CATEGORY_NAME = {
    "park": N_("Park"), "h3_cell": N_("Area"), "parcel": N_("Site"), "school": N_("School"),
    "community_centre": N_("Community centre"), "marketplace": N_("Market"), "library": N_("Library"),
    "townhall": N_("Town hall"), "clinic": N_("Clinic"), "health_centre": N_("Health centre"),
    "kindergarten": N_("Kindergarten"), "childcare": N_("Childcare"), "social_centre": N_("Social centre"),
    "government_office": N_("Government office"), "public_building": N_("Public building"),
}
#: named streets farther than this (m) do not name a place
NAME_RADIUS_M = 400.0


def _named_streets(config: Config, osm_path, area_4326):
    """Named street lines of the study (from the network source); None when unavailable."""
    try:
        if config.network.source == "road_layer" and config.network.path is not None:
            from careblocks.io.roads import read_road_network

            _, edges = read_road_network(config.network.path, layer=config.network.layer)
        elif osm_path is not None:
            from careblocks.io.osm import read_osm_edges

            bbox = tuple(area_4326.bounds) if area_4326 is not None else None
            # only the named streets become GeoDataFrame rows (a PBF is filtered as read)
            edges = read_osm_edges(osm_path, bbox=bbox, where=("name", lambda v: isinstance(v, str)))
        else:
            return None
    except Exception:  # noqa: BLE001 - naming is cosmetic; the network stage reported errors
        return None
    if "name" not in edges.columns:
        return None
    return edges[edges["name"].notna()]


def place_names(points: gpd.GeoDataFrame, streets: gpd.GeoDataFrame | None, *, crs: str,
                language: str | None = None) -> list[str]:
    """Human names for unnamed places from the two nearest named streets.

    ``"Park, Calle 17 & Carrera 100"``: the category's label, the nearest named street and
    the nearest street with another name that meets it (else the nearest other name), within
    :data:`NAME_RADIUS_M`; ``"Park, Calle 17"``
    when only one is near; ``"Park near Calle 17"`` when the nearest is farther; the
    category and the rounded coordinates when no street is named. The category and the
    words are in ``language`` (an ``outputs.language`` code; English by default): "Parque,
    Calle 17 & Carrera 100".
    """
    from careblocks.i18n import language as get_language

    L = get_language(language)
    import geopandas as gpd
    import shapely

    labels = [L._(_CATEGORY_NAME[str(c)]) if str(c) in _CATEGORY_NAME else str(c).replace("_", " ").capitalize()
              for c in points["category"]]
    pts = points.geometry.to_numpy()
    if streets is None or len(streets) == 0:
        ll = gpd.GeoSeries(pts, crs=crs).to_crs("EPSG:4326")
        return [L._("{place} at {lat}, {lon}").format(place=lab, lat=f"{p.y:.4f}", lon=f"{p.x:.4f}")
                for lab, p in zip(labels, ll, strict=True)]
    st = streets.to_crs(crs)
    geoms = st.geometry.to_numpy()
    names = st["name"].astype(str).to_numpy()
    tree = shapely.STRtree(geoms)
    out = []
    for lab, p in zip(labels, pts, strict=True):
        idx = tree.query(p, predicate="dwithin", distance=NAME_RADIUS_M)
        if idx.size == 0:
            j = int(tree.query_nearest(p)[0])
            out.append(L._("{place} near {street}").format(place=lab, street=names[j]))
            continue
        d = shapely.distance(geoms[idx], p)
        order = idx[np.argsort(d, kind="stable")]
        first = names[order[0]]
        near_first = shapely.union_all(geoms[order[names[order] == first]])
        others = [k for k in order if names[k] != first]
        # prefer a street that meets the first (an intersection), else the nearest other
        other = next((names[k] for k in others if shapely.dwithin(geoms[k], near_first, 1.0)),
                     names[others[0]] if others else None)
        out.append(f"{lab}, {first} & {other}" if other else f"{lab}, {first}")
    return out


def costs_and_fixed(config: Config, cands: gpd.GeoDataFrame) -> tuple[np.ndarray | None, np.ndarray]:
    """The cost of each candidate (None when no cost is configured) and the positions of the
    blocks that stay (``sites.fixed``, ``sites.fixed_column``), checked.

    Raises
    ------
    ConfigError
        An entry of ``sites.fixed`` names no candidate (with the closest ids or names), or a
        candidate has no cost and ``sites.default_cost`` is unset.
    """
    import difflib

    sc = config.sites
    cost = None
    if "cost" in cands.columns:
        c = cands["cost"].astype("float64")
        if sc.default_cost is not None:
            c = c.fillna(float(sc.default_cost))
        missing = c.isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise ConfigError(
                f"config key 'sites.cost_column': {int(missing.sum())} of {len(c)} candidate sites have no "
                f"cost (e.g. {cands['name'].iloc[i]!r}, {cands['candidate_id'].iloc[i]}: OSM anchors and "
                "grid cells have none); set sites.default_cost or sites.candidates_osm_anchors = false"
            )
        cost = c.to_numpy(dtype=np.float64)
    ids = cands["candidate_id"].astype(str)
    names = cands["name"].astype(str).str.strip()
    known = set(ids) | set(names)
    for f in sc.fixed:
        if str(f) not in known:
            close = difflib.get_close_matches(str(f), sorted(known), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(repr(x) for x in close)}?" if close else \
                f"ids look like {ids.iloc[0]!r}"
            raise ConfigError(
                f"config key 'sites.fixed': {f!r} is not among the {len(cands)} candidate sites of the "
                f"study (outside the area, excluded, or too far from a street?); {hint}"
            )
    fixed = np.flatnonzero(cands["fixed"].to_numpy(bool)) if "fixed" in cands.columns else np.zeros(0, np.int64)
    return cost, fixed.astype(np.int64)
