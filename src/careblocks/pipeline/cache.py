"""The pipeline's cached stages: timetable, transit access, catchments, selection and the
coverage curve through the content-addressed store of :mod:`careblocks.network.cache` (see
there for keys and files). Each wrapper records "hit", "miss" or "off" in a status dict that
the pipeline keeps as ``stats["cache"]``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from careblocks.errors import DataQualityWarning
from careblocks.network.cache import (  # noqa: F401 - re-exported for the stages
    _jsonable,
    _param_digest,
    _transit_params,
    array_digest,
    arrays_to_sparse,
    cache_key,
    enabled,
    frame_cached,
    frame_digest,
    load,
    network_digest,
    points_digest,
    save,
    sparse_to_arrays,
    timetable_key,
    transit_coverage_cached,
)
from careblocks.network.cost import WalkCost


def load_timetable_cached(config: Any, network: Any, *, area_4326: Any, crs: str | None,
                          status: dict[str, str]) -> tuple[Any, dict[str, Any], str]:
    """:func:`careblocks.transit.load_timetable` through the cache; returns (timetable, stats, key)
    and records "hit"/"miss"/"off" under ``status["timetable"]``."""
    from dataclasses import fields

    from careblocks.transit import load_timetable
    from careblocks.transit.timetable import Timetable

    key = timetable_key(config, network, area_4326)
    got = load(config, "timetable", key)
    if got is not None:
        arrays, meta = got
        kw = {}
        for f in fields(Timetable):
            if f.name == "max_transfer_m":
                kw[f.name] = float(meta["max_transfer_m"])
            elif f.name in ("stop_id", "route_id"):
                kw[f.name] = arrays[f.name].astype(object)
            else:
                kw[f.name] = arrays[f.name]
        status["timetable"] = "hit"
        for msg in meta.get("warnings", []):  # the data-quality warnings of the build, again
            warnings.warn(msg, DataQualityWarning, stacklevel=2)
        stats = dict(meta["stats"])
        stats["cache"] = "hit"
        return Timetable(**kw), stats, key
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tt, stats = load_timetable(config.transit, network, area_4326=area_4326, crs=crs,
                                   cost=WalkCost.from_config(config.walk))
    kept = []
    for w in caught:  # re-emit, and keep the data-quality ones for cache hits
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if issubclass(w.category, DataQualityWarning):
            kept.append(str(w.message))
    arrays = {f.name: getattr(tt, f.name) for f in fields(Timetable) if f.name != "max_transfer_m"}
    save(config, "timetable", key, arrays, {"max_transfer_m": float(tt.max_transfer_m), "stats": stats,
                                            "warnings": kept})
    status["timetable"] = "miss" if enabled(config) else "off"
    return tt, {**stats, "cache": status["timetable"]}, key



def transit_access_cached(config: Any, network: Any, timetable: Any, tt_key: str, origins: Any,
                          services: dict[str, tuple[np.ndarray, np.ndarray]], *,
                          status: dict[str, str], name: str = "transit_access",
                          cap_s: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """:func:`careblocks.transit.transit_access` through the cache (``status[name]``; the
    sites stage's times to the selected blocks use ``name="transit_after"``, capped at
    today's times by ``cap_s``)."""
    from careblocks.transit import transit_access

    key = cache_key(name, {
        "timetable": tt_key, "transit": _transit_params(config.transit),
        "walk": _jsonable(config.walk), "origins": points_digest(origins),
        "services": {s: array_digest(np.asarray(n, np.int64), np.asarray(m, np.float64))
                     for s, (n, m) in services.items()},
        "cap_s": None if cap_s is None else array_digest(np.asarray(cap_s, np.float64)),
    })
    got = load(config, name, key) if tt_key is not None else None
    if got is not None and set(got[0]) == set(services):
        status[name] = "hit"
        return dict(got[0])
    res = transit_access(network, timetable, origins["node"].to_numpy(np.int64),
                         origins["snap_m"].to_numpy(np.float64), services, config.transit,
                         cost=WalkCost.from_config(config.walk), cap_s=cap_s)
    if tt_key is None:  # a timetable of unknown origin: never stored under a guessed key
        status[name] = "off"
        return res
    save(config, name, key, {s: np.asarray(v) for s, v in res.items()}, {})
    status[name] = "miss" if enabled(config) else "off"
    return res



def walk_coverage_cached(config: Any, network: Any, points: Any, origins: Any, limit_s: float, compute: Any, *,
                         status: dict[str, str], name: str) -> Any:
    """Points (facilities) x origins walking seconds within ``limit_s`` (``compute()``, a CSR
    matrix) through the cache, keyed by the network, ``[walk]``, the points' and the origins'
    nodes and snap distances and the limit; records the outcome under ``status[name]``
    ("hit" only when every call of the run hit)."""
    key = cache_key("walk_coverage", {
        "network": network_digest(network), "walk": _jsonable(config.walk), "points": points_digest(points),
        "origins": points_digest(origins), "limit_s": float(limit_s),
    })
    got = load(config, "walk_coverage", key)
    if got is not None:
        try:
            m = arrays_to_sparse("m", got[0])
            if status.get(name) in (None, "hit"):
                status[name] = "hit"
            return m
        except (KeyError, ValueError, TypeError):  # an entry of another layout is a miss
            pass
    m = compute()
    save(config, "walk_coverage", key, sparse_to_arrays("m", m), {})
    status[name] = "miss" if enabled(config) else "off"
    return m


def array_cached(config: Any, stage: str, parts: dict[str, Any], compute: Any, *,
                 status: dict[str, str]) -> np.ndarray:
    """One numeric array (``compute()``) through the cache; records "hit"/"miss"/"off" under
    ``status[stage]``."""
    key = cache_key(stage, parts)
    got = load(config, stage, key)
    if got is not None and "a" in got[0]:
        status[stage] = "hit"
        return np.array(got[0]["a"])
    a = np.asarray(compute())
    save(config, stage, key, {"a": a}, {})
    status[stage] = "miss" if enabled(config) else "off"
    return a


def walk_access_cached(config: Any, network: Any, origins: Any,
                       services: dict[str, tuple[np.ndarray, np.ndarray]], *,
                       status: dict[str, str]) -> Any:
    """:func:`careblocks.access.walk_access` through the cache (``status["walk_access"]``),
    keyed by the network, the origins' and facilities' nodes and snap distances, ``[walk]``
    and the threshold."""
    from careblocks.access import walk_access

    key = cache_key("walk_access", {
        "network": network_digest(network), "origins": points_digest(origins),
        "services": {s: array_digest(np.asarray(n, np.int64), np.asarray(m, np.float64))
                     for s, (n, m) in services.items()},
        "walk": _jsonable(config.walk), "threshold_min": float(config.access.threshold_min),
    })
    compute = lambda: walk_access(  # noqa: E731
        network, origins["node"].to_numpy(np.int64), origins["snap_m"].to_numpy(np.float64), services,
        cost=WalkCost.from_config(config.walk), threshold_min=config.access.threshold_min,
        walk_profiles=WalkCost.profiles_from_config(config.walk))
    return table_cached(config, "walk_access", {"key": key}, compute, status=status)


def catchments_cached(config: Any, candidates: Any, origins: Any, network: Any, *, services: Any,
                      status: dict[str, str]) -> Any:
    """:func:`careblocks.sites.scoring.compute_catchments` through the cache (``status["catchments"]``)."""
    from careblocks.sites.scoring import Catchments, compute_catchments, sites_threshold_min

    key = cache_key("catchments", {
        "network": network_digest(network), "candidates": points_digest(candidates),
        "origins": points_digest(origins),
        "services": points_digest(services) if services is not None and len(services) else None,
        "walk": _jsonable(config.walk), "threshold_min": sites_threshold_min(config),
    })
    got = load(config, "catchments", key)
    if got is not None:
        a, meta = got
        status["catchments"] = "hit"
        return Catchments(reach=arrays_to_sparse("reach", a), coverage=arrays_to_sparse("coverage", a),
                          services=arrays_to_sparse("services", a) if meta["has_services"] else None,
                          limit_s=float(meta["limit_s"]))
    cat = compute_catchments(config, candidates, origins, network, services=services)
    arrays = {**sparse_to_arrays("reach", cat.reach), **sparse_to_arrays("coverage", cat.coverage)}
    if cat.services is not None:
        arrays.update(sparse_to_arrays("services", cat.services))
    save(config, "catchments", key, arrays, {"limit_s": float(cat.limit_s),
                                             "has_services": cat.services is not None})
    status["catchments"] = "miss" if enabled(config) else "off"
    return cat



def curve_cached(config: Any, matrix: Any, weights: Any, params: dict[str, Any], compute: Any, *,
                 status: dict[str, str]) -> list:
    """The coverage curve (``compute()``, a list of :class:`~careblocks.sites.selection.CurvePoint`)
    through the cache (``status["coverage_curve"]``): its key is the selection matrix, the
    weights and the selection parameters, so a change of score weights reuses it."""
    import scipy.sparse as sp

    from careblocks.sites.selection import CurvePoint

    m = sp.csr_matrix(matrix)
    key = cache_key("coverage_curve", {
        "matrix": array_digest(m.indptr, m.indices, m.data, np.asarray(m.shape)),
        "weights": array_digest(weights) if weights is not None else None,
        "params": {k: (_param_digest(v)) for k, v in params.items()},
    })
    got = load(config, "coverage_curve", key)
    if got is not None:
        a, meta = got
        ptr = a["selected_ptr"]
        status["coverage_curve"] = "hit"
        return [CurvePoint(k=int(a["k"][i]), objective=float(a["objective"][i]), share=float(a["share"][i]),
                           exact=bool(a["exact"][i]), gap=None if np.isnan(a["gap"][i]) else float(a["gap"][i]),
                           bound=None if np.isnan(a["bound"][i]) else float(a["bound"][i]),
                           selected=a["selected"][ptr[i]:ptr[i + 1]].astype(np.int64),
                           seconds=float(a["seconds"][i]), status=str(meta["status"][i]))
                for i in range(len(a["k"]))]
    points = compute()
    sel = [np.asarray(p.selected, dtype=np.int64) for p in points]
    arrays = {
        "k": np.array([p.k for p in points], dtype=np.int64),
        "objective": np.array([p.objective for p in points], dtype=float),
        "share": np.array([p.share for p in points], dtype=float),
        "exact": np.array([p.exact for p in points], dtype=bool),
        "gap": np.array([np.nan if p.gap is None else p.gap for p in points], dtype=float),
        "bound": np.array([np.nan if p.bound is None else p.bound for p in points], dtype=float),
        "seconds": np.array([p.seconds for p in points], dtype=float),
        "selected": np.concatenate(sel) if sel else np.zeros(0, np.int64),
        "selected_ptr": np.concatenate([[0], np.cumsum([s.size for s in sel])]).astype(np.int64),
    }
    save(config, "coverage_curve", key, arrays, {"status": [p.status for p in points]})
    status["coverage_curve"] = "miss" if enabled(config) else "off"
    return points



def selection_cached(config: Any, matrix: Any, weights: Any, params: dict[str, Any], compute: Any, *,
                     status: dict[str, str]) -> Any:
    """:func:`careblocks.sites.selection.select_sites` (``compute()``) through the cache
    (``status["selection"]``), keyed by its matrix, weights and parameters (K included)."""
    import scipy.sparse as sp

    from careblocks.sites.selection import SelectionResult

    m = sp.csr_matrix(matrix)
    key = cache_key("selection", {
        "matrix": array_digest(m.indptr, m.indices, m.data, np.asarray(m.shape)),
        "weights": array_digest(weights) if weights is not None else None,
        "params": {k: _param_digest(v) for k, v in params.items()},
    })
    got = load(config, "selection", key)
    if got is not None:
        a, meta = got
        status["selection"] = "hit"
        return SelectionResult(selected=a["selected"].astype(np.int64), marginal_gain=a["marginal_gain"],
                               cumulative=a["cumulative"], served=a["served"], **meta)
    r = compute()
    save(config, "selection", key,
         {"selected": r.selected, "marginal_gain": r.marginal_gain, "cumulative": r.cumulative, "served": r.served},
         {"objective": r.objective, "method": r.method, "total_weight": r.total_weight,
          "existing_weight": r.existing_weight, "status": r.status, "mip_gap": r.mip_gap, "info": r.info,
          "bound": r.bound})
    status["selection"] = "miss" if enabled(config) else "off"
    return r



def input_files_digest(config: Any) -> dict[str, str]:
    """sha256 of every input file the config names."""
    from careblocks.network.graph import file_digest

    return {str(p): file_digest(p) for p in input_paths(config)}


def input_paths(cfg: Any) -> list[Path]:
    """Every input file named in the config (for digests in the run metadata)."""
    found: list[Path] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, Path):
            if obj.is_file():
                found.append(obj)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)
        elif hasattr(obj, "__dataclass_fields__"):
            for name in obj.__dataclass_fields__:
                if name not in ("raw", "source_path"):
                    walk(getattr(obj, name))

    walk(cfg)
    return sorted(set(found))


def columns_digest(df: Any) -> str:
    """Digest of every column of a (Geo)DataFrame but its geometry: names and values, numbers
    as float64 and the rest as text, so that a frame read back from a cached GeoPackage (int32
    for int64, str for object) has the digest of the frame that was computed."""
    import pandas as pd

    geom = getattr(df, "_geometry_column_name", None)
    parts = []
    for c in df.columns:
        if c == geom:
            continue
        s = df[c]
        if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            v = s.to_numpy(dtype=float, na_value=np.nan)
        else:
            v = np.where(s.isna().to_numpy(), "\x00", s.astype(str).to_numpy()).astype(str)
        parts.append(array_digest(np.array([str(c)]), v))
    return array_digest(np.array(parts))


def _table_arrays(df: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A plain DataFrame as arrays: numbers as float64/int64/bool, text as strings with a null
    mask; dtypes and ``attrs`` in the metadata."""
    import pandas as pd

    arrays: dict[str, np.ndarray] = {}
    cols = []
    for i, c in enumerate(df.columns):
        s = df[c]
        kind = "num" if pd.api.types.is_numeric_dtype(s.dtype) else "text"
        if kind == "num":
            arrays[f"c{i}"] = s.to_numpy(dtype=float, na_value=np.nan) if s.hasnans or \
                pd.api.types.is_extension_array_dtype(s.dtype) else s.to_numpy()
        else:
            null = s.isna().to_numpy()
            arrays[f"c{i}"] = np.where(null, "", s.astype(str).to_numpy()).astype(str)
            arrays[f"n{i}"] = null
        cols.append({"name": str(c), "kind": kind, "dtype": str(s.dtype)})
    return arrays, {"columns": cols, "attrs": _jsonable(dict(df.attrs))}


def _table_from_arrays(a: dict[str, np.ndarray], meta: dict[str, Any]) -> Any:
    import pandas as pd

    data = {}
    for i, col in enumerate(meta["columns"]):
        v = np.array(a[f"c{i}"])
        if col["kind"] == "num":
            data[col["name"]] = pd.Series(v).astype(col["dtype"])
        else:
            s = pd.Series(v.astype(object))
            s[np.asarray(a[f"n{i}"], bool)] = None
            data[col["name"]] = s.astype(col["dtype"]) if col["dtype"] != "object" else s
    df = pd.DataFrame(data)
    df.attrs.update(meta.get("attrs", {}))
    return df


def table_cached(config: Any, stage: str, parts: dict[str, Any], compute: Any, *,
                 status: dict[str, str]) -> Any:
    """A plain DataFrame result (``compute()``: numbers and text, ``attrs`` JSON-able) through
    the array cache; records "hit"/"miss"/"off" under ``status[stage]``."""
    key = cache_key(stage, parts)
    got = load(config, stage, key)
    if got is not None:
        try:
            df = _table_from_arrays(*got)
            status[stage] = "hit"
            return df
        except (KeyError, ValueError, TypeError):  # an entry of another layout is a miss
            pass
    df = compute()
    arrays, meta = _table_arrays(df)
    save(config, stage, key, arrays, meta)
    status[stage] = "miss" if enabled(config) else "off"
    return df


def audit_gtfs_cached(config: Any, audit: Any, *, status: dict[str, str]) -> None:
    """:func:`careblocks.audit.gtfs.audit_gtfs` through the cache (``status["gtfs_audit"]``):
    its findings depend only on the feeds' bytes, so they are stored and added to ``audit``
    again (warnings included) while the files are unchanged."""
    from careblocks.audit.core import Audit
    from careblocks.audit.gtfs import audit_gtfs
    from careblocks.network.graph import file_digest

    t = config.transit
    if not t.enabled:
        return
    feeds = [Path(p) for p in t.feeds]
    key = cache_key("gtfs_audit", {"feeds": [[str(p), file_digest(p) if p.is_file() else None] for p in feeds]})
    got = load(config, "gtfs_audit", key)
    if got is not None:
        for f in got[1]["findings"]:
            audit.add(f["severity"], f["check"], f["where"], f["message"], f["value"])
        status["gtfs_audit"] = "hit"
        return
    sub = Audit()
    with warnings.catch_warnings():  # said once, when added to the run's audit below
        warnings.simplefilter("ignore", DataQualityWarning)
        audit_gtfs(config, sub)
    for f in sub.findings:
        audit.add(f.severity, f.check, f.where, f.message, f.value)
    save(config, "gtfs_audit", key, {"n": np.array([len(sub.findings)])},
         {"findings": [{"severity": f.severity, "check": f.check, "where": f.where, "message": f.message,
                        "value": None if f.value is None else float(f.value)} for f in sub.findings]})
    status["gtfs_audit"] = "miss" if enabled(config) else "off"


# --------------------------------------------------------------------------------------
# the study's inputs: services and origins read and snapped, with the network they split
# --------------------------------------------------------------------------------------

#: the modules whose code makes the services and origins (their source is in the key)
_INPUT_MODULES = ("careblocks.services", "careblocks.origins", "careblocks.network.graph", "careblocks.io.layers",
                  "careblocks.io.tables", "careblocks.io.osm_features", "careblocks.io.osm", "careblocks.io.roads",
                  "careblocks.io.osm_stream", "careblocks.io.raster", "careblocks.demand.census",
                  "careblocks.demand.groups", "careblocks.demand.residential",
                  "careblocks.pipeline")
#: config sections that the services and origins stages do not read (changing them keeps the entry)
_NOT_INPUTS = ("access", "transit", "care_index", "accessibility", "sites", "prioritise", "sensitivity", "outputs",
               "audit", "compute", "raw", "source_path")


def inputs_key(config: Any, network: Any, *, area_4326: Any, crs: Any, osm_path: Any) -> str:
    """The key of the services and origins of a run, read and snapped: the config but the
    sections they do not read, every input file's sha256, the network, the area, the CRS and
    the source of the modules that make them."""
    from careblocks.network.graph import file_digest
    from careblocks.outputs._cached import code_version

    conf = {name: _jsonable(getattr(config, name)) for name in config.__dataclass_fields__ if name not in _NOT_INPUTS}
    osm = Path(str(osm_path)) if osm_path is not None else None
    return cache_key("inputs", {
        "config": conf, "files": input_files_digest(config),
        "osm": [str(osm), file_digest(osm)] if osm is not None and osm.is_file() else str(osm_path),
        "network": network_digest(network), "area": None if area_4326 is None else area_4326.wkb_hex,
        "crs": str(crs), "code": code_version(*_INPUT_MODULES),
    })


def _frame_to_arrays(gdf: Any, prefix: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """A GeoDataFrame of plain columns (numpy numbers and booleans, strings, text with None
    for nulls) as arrays, geometry as WKB; None when a column is of another kind (then it is
    not cached)."""
    import pandas as pd
    import shapely

    if not isinstance(gdf.index, pd.RangeIndex) or gdf.index.start != 0 or gdf.index.step != 1:
        return None
    geom = gdf.geometry.name
    arrays: dict[str, np.ndarray] = {}
    cols = []
    for i, c in enumerate(gdf.columns):
        s = gdf[c]
        if c == geom:
            wkb = shapely.to_wkb(s.to_numpy())
            arrays[f"{prefix}g"] = np.frombuffer(b"".join(wkb), dtype=np.uint8)
            arrays[f"{prefix}gn"] = np.array([len(b) for b in wkb], dtype=np.int64)
            cols.append({"name": c, "kind": "geometry"})
        elif isinstance(s.dtype, np.dtype) and s.dtype.kind in "biuf":
            arrays[f"{prefix}{i}"] = s.to_numpy()
            cols.append({"name": c, "kind": "num"})
        elif isinstance(s.dtype, pd.StringDtype) or s.dtype == object:
            null = s.isna().to_numpy()
            vals = s.to_numpy(dtype=object)
            if not all(isinstance(v, str) for v in vals[~null]):
                return None
            if s.dtype == object and not all(v is None for v in vals[null]):
                return None
            arrays[f"{prefix}{i}"] = np.array([v if isinstance(v, str) else "" for v in vals], dtype=str)
            arrays[f"{prefix}n{i}"] = null
            kind = {"name": c, "kind": "object"}
            if isinstance(s.dtype, pd.StringDtype):
                nav = s.dtype.na_value
                kind = {"name": c, "kind": "string", "storage": s.dtype.storage,
                        "na": "nan" if isinstance(nav, float) and np.isnan(nav) else "NA"}
            cols.append(kind)
        else:
            return None
    return arrays, {"columns": cols, "crs": None if gdf.crs is None else gdf.crs.to_wkt(), "n": len(gdf),
                    "attrs": _jsonable(dict(gdf.attrs))}


def _frame_from_arrays(a: dict[str, np.ndarray], meta: dict[str, Any], prefix: str) -> Any:
    import geopandas as gpd
    import pandas as pd
    import shapely

    data: dict[str, Any] = {}
    geom = None
    for i, col in enumerate(meta["columns"]):
        name, kind = col["name"], col["kind"]
        if kind == "geometry":
            buf = np.asarray(a[f"{prefix}g"]).tobytes()
            ends = np.cumsum(a[f"{prefix}gn"]).tolist()
            data[name] = shapely.from_wkb([buf[s:e] for s, e in zip([0, *ends[:-1]], ends, strict=True)])
            geom = name
        elif kind == "num":
            data[name] = np.array(a[f"{prefix}{i}"])
        else:
            null = np.asarray(a[f"{prefix}n{i}"], bool)
            vals = np.array(a[f"{prefix}{i}"]).astype(object)
            vals[null] = None
            if kind == "string":
                dtype = pd.StringDtype(storage=col["storage"], na_value=np.nan if col["na"] == "nan" else pd.NA)
                data[name] = pd.array(vals, dtype=dtype)
            else:
                data[name] = vals
    gdf = gpd.GeoDataFrame(data, geometry=geom, crs=meta["crs"])
    gdf = gdf[[c["name"] for c in meta["columns"]]]
    gdf.attrs.update(meta.get("attrs", {}))
    return gdf


def _same_frame(a: Any, b: Any) -> bool:
    import pandas as pd
    import shapely

    try:
        pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns=a.geometry.name)),
                                      pd.DataFrame(b.drop(columns=b.geometry.name)), check_exact=True)
    except AssertionError:
        return False
    return (a.crs == b.crs and a.geometry.name == b.geometry.name and a.attrs == b.attrs
            and list(shapely.to_wkb(a.geometry.to_numpy())) == list(shapely.to_wkb(b.geometry.to_numpy())))


def _network_arrays(network: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from dataclasses import fields

    arrays, meta = {}, {"crs": str(network.crs), "none": []}
    for f in fields(network):
        v = getattr(network, f.name)
        if f.name == "crs":
            continue
        if v is None:
            meta["none"].append(f.name)
        else:
            arrays[f"net_{f.name}"] = np.asarray(v)
    return arrays, meta


def _network_from_arrays(a: dict[str, np.ndarray], meta: dict[str, Any]) -> Any:
    from dataclasses import fields

    from careblocks.network.graph import WalkNetwork

    kw = {f.name: (meta["crs"] if f.name == "crs" else None if f.name in meta["none"] else a[f"net_{f.name}"])
          for f in fields(WalkNetwork)}
    return WalkNetwork(**kw)


def save_inputs(config: Any, key: str, *, services: Any, origins: Any, network: Any, stats: dict[str, Any],
                warned: dict[str, list[str]]) -> None:
    """Store the services and origins (read and snapped), the network they split, their
    stats and their data-quality warnings under ``key`` (nothing when a frame has a column
    the arrays cannot hold exactly: it is checked by reading it back)."""
    if not enabled(config):
        return
    s = _frame_to_arrays(services, "s")
    o = _frame_to_arrays(origins, "o")
    if s is None or o is None:
        return
    n_arrays, n_meta = _network_arrays(network)
    arrays = {**s[0], **o[0], **n_arrays}
    meta = {"services": s[1], "origins": o[1], "network": n_meta, "stats": _jsonable(stats), "warnings": warned}
    try:  # only what reads back exactly is stored
        same = (_same_frame(_frame_from_arrays(arrays, s[1], "s"), services)
                and _same_frame(_frame_from_arrays(arrays, o[1], "o"), origins))
    except (ValueError, TypeError, KeyError):
        same = False
    if same:
        save(config, "inputs", key, arrays, meta)


def load_inputs(config: Any, key: str) -> dict[str, Any] | None:
    """What :func:`save_inputs` stored under ``key`` (services, origins, network, stats,
    warnings), or None (miss, cache off, unreadable)."""
    got = load(config, "inputs", key)
    if got is None:
        return None
    a, meta = got
    try:
        return {"services": _frame_from_arrays(a, meta["services"], "s"),
                "origins": _frame_from_arrays(a, meta["origins"], "o"),
                "network": _network_from_arrays(a, meta["network"]), "stats": meta["stats"],
                "warnings": meta["warnings"]}
    except (KeyError, ValueError, TypeError):  # another layout, or damaged: a miss
        return None
