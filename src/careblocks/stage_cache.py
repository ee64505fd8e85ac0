"""Content-addressed cache of stage results rebuilt from unchanged inputs.

The walking network is cached by :func:`careblocks.network.load_or_build_network`; this module
does the same for what later stages rebuild on every run although their inputs did not
change: the transit timetable (GTFS read + arrays), walk + transit access per origin, and the
candidates' catchments (walking and walk + transit). A key is the sha256 of a JSON document
of the stage name, :data:`CACHE_VERSION`, the careblocks version and every input that
matters: file digests, config values and digests of the arrays a stage reads (network,
origin and facility nodes). Anything a stage does not read (score weights, ``sites.k``, the
selection method) is not in its key, so changing it reuses the cached results.

Entries are ``.npz`` files of plain arrays (no pickles: ``allow_pickle=False``) plus a JSON
sidecar, written atomically under ``<cache dir>/<stage>/``. ``network.cache = false`` turns
every cache off. A corrupt or unreadable entry counts as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from careblocks.errors import DataQualityWarning

#: Bump when what a cached stage computes changes, so that old entries are not reused.
CACHE_VERSION = 1


def array_digest(*arrays: Any) -> str:
    """sha256 over the dtype, shape and bytes of each array (order matters)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        if a.dtype == object:
            a = a.astype(str)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def network_digest(network: Any) -> str:
    """Digest of a walking network's arrays (what searches on it depend on)."""
    return array_digest(network.indptr, network.indices, network.length_m, network.x, network.y,
                        np.array([str(network.crs)]))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return {f: _jsonable(getattr(obj, f)) for f in obj.__dataclass_fields__}
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def cache_key(stage: str, parts: dict[str, Any]) -> str:
    """The key of one stage's result: sha256 of its name, versions and ``parts``."""
    from careblocks import __version__

    doc = {"stage": stage, "cache_version": CACHE_VERSION, "careblocks": __version__, "parts": _jsonable(parts)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()


def enabled(config: Any) -> bool:
    return bool(getattr(getattr(config, "network", None), "cache", True))


def _folder(config: Any, stage: str) -> Path:
    from careblocks.network import cache_dir

    return cache_dir(config) / stage.replace(" ", "_")


def load(config: Any, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and metadata stored under ``key``, or None (miss, cache off, unreadable)."""
    if not enabled(config):
        return None
    folder = _folder(config, stage)
    npz, meta = folder / f"{key}.npz", folder / f"{key}.json"
    if not (npz.is_file() and meta.is_file()):
        return None
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return arrays, json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None


def save(config: Any, stage: str, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Store ``arrays`` (numeric or string; object arrays are stored as strings) and ``meta``
    under ``key``; a cache folder that cannot be written gives a warning, not an error."""
    if not enabled(config):
        return
    folder = _folder(config, stage)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.partial.npz"
        plain = {k: (np.asarray(v).astype(str) if np.asarray(v).dtype == object else np.asarray(v))
                 for k, v in arrays.items()}
        np.savez(tmp, **plain)
        tmp_meta = folder / f".{key}.{os.getpid()}.partial.json"
        tmp_meta.write_text(json.dumps(_jsonable(meta)), encoding="utf-8")
        os.replace(tmp, folder / f"{key}.npz")
        os.replace(tmp_meta, folder / f"{key}.json")
    except OSError as exc:
        warnings.warn(
            f"{stage} cache: could not write to {folder} ({exc.__class__.__name__}); set "
            "CAREBLOCKS_CACHE_DIR or network.cache_dir to a writable folder",
            DataQualityWarning,
            stacklevel=2,
        )


def sparse_to_arrays(prefix: str, m: Any) -> dict[str, np.ndarray]:
    """A CSR matrix as plain arrays (``<prefix>_indptr``, ``_indices``, ``_data``, ``_shape``)."""
    import scipy.sparse as sp

    m = sp.csr_matrix(m)
    return {f"{prefix}_indptr": m.indptr, f"{prefix}_indices": m.indices, f"{prefix}_data": m.data,
            f"{prefix}_shape": np.asarray(m.shape, dtype=np.int64)}


def arrays_to_sparse(prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    import scipy.sparse as sp

    shape = tuple(int(v) for v in arrays[f"{prefix}_shape"])
    m = sp.csr_matrix((arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
                      shape=shape)
    m.sort_indices()
    return m


# --------------------------------------------------------------------------------------
# the cached stages
# --------------------------------------------------------------------------------------


def _transit_params(cfg: Any) -> dict[str, Any]:
    """``config.transit`` with the feeds replaced by their content digests."""
    from careblocks.network import file_digest

    doc = _jsonable(cfg)
    doc["feeds"] = [file_digest(Path(p)) if Path(p).is_file() else str(p) for p in cfg.feeds]
    return doc


def _area_digest(area_4326: Any) -> str | None:
    return hashlib.sha256(area_4326.wkb).hexdigest() if area_4326 is not None else None


def timetable_key(config: Any, network: Any, area_4326: Any) -> str:
    params = _transit_params(config.transit)
    for k in ("percentiles", "report_percentile", "max_transfers", "max_walk_min", "enabled"):
        params.pop(k, None)  # used by the searches, not by the timetable
    return cache_key("timetable", {"transit": params, "speed_kmh": float(config.walk.speed_kmh),
                                   "network": network_digest(network), "area": _area_digest(area_4326)})


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
                                   speed_kmh=config.walk.speed_kmh)
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


def points_digest(df: Any) -> str:
    """Digest of the ``node`` and ``snap_m`` columns of origins, facilities or candidates."""
    return array_digest(df["node"].to_numpy(np.int64), df["snap_m"].to_numpy(np.float64))


def transit_access_cached(config: Any, network: Any, timetable: Any, tt_key: str, origins: Any,
                          services: dict[str, tuple[np.ndarray, np.ndarray]], *,
                          status: dict[str, str]) -> dict[str, np.ndarray]:
    """:func:`careblocks.transit.transit_access` through the cache (``status["transit_access"]``)."""
    from careblocks.transit import transit_access

    key = cache_key("transit_access", {
        "timetable": tt_key, "transit": _transit_params(config.transit),
        "speed_kmh": float(config.walk.speed_kmh), "origins": points_digest(origins),
        "services": {s: array_digest(np.asarray(n, np.int64), np.asarray(m, np.float64))
                     for s, (n, m) in services.items()},
    })
    got = load(config, "transit_access", key)
    if got is not None and set(got[0]) == set(services):
        status["transit_access"] = "hit"
        return dict(got[0])
    res = transit_access(network, timetable, origins["node"].to_numpy(np.int64),
                         origins["snap_m"].to_numpy(np.float64), services, config.transit,
                         speed_kmh=config.walk.speed_kmh)
    save(config, "transit_access", key, {s: np.asarray(v) for s, v in res.items()}, {})
    status["transit_access"] = "miss" if enabled(config) else "off"
    return res


def catchments_cached(config: Any, candidates: Any, origins: Any, network: Any, *, services: Any,
                      status: dict[str, str]) -> Any:
    """:func:`careblocks.scoring.compute_catchments` through the cache (``status["catchments"]``)."""
    from careblocks.scoring import Catchments, compute_catchments, sites_threshold_min

    key = cache_key("catchments", {
        "network": network_digest(network), "candidates": points_digest(candidates),
        "origins": points_digest(origins),
        "services": points_digest(services) if services is not None and len(services) else None,
        "speed_kmh": float(config.walk.speed_kmh), "threshold_min": sites_threshold_min(config),
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


def transit_coverage_cached(config: Any, tt_key: str | None, candidates: Any, origins: Any, limit_s: float,
                            compute: Any, *, status: dict[str, str], name: str = "transit_coverage") -> Any:
    """Walk + transit coverage of some points (candidates, facilities; ``compute()``) through
    the cache; records the outcome under ``status[name]``."""
    key = cache_key("transit_coverage", {
        "timetable": tt_key, "transit": _transit_params(config.transit),
        "speed_kmh": float(config.walk.speed_kmh), "candidates": points_digest(candidates),
        "origins": points_digest(origins), "limit_s": float(limit_s),
    })
    got = load(config, "transit_coverage", key) if tt_key is not None else None
    if got is not None:
        status[name] = "hit"
        return arrays_to_sparse("m", got[0])
    m = compute()
    if tt_key is not None:
        save(config, "transit_coverage", key, sparse_to_arrays("m", m), {})
    status[name] = "miss" if enabled(config) and tt_key is not None else "off"
    return m


def _param_digest(v: Any) -> Any:
    import scipy.sparse as sp

    if sp.issparse(v):
        m = sp.csr_matrix(v)
        return array_digest(m.indptr, m.indices, m.data, np.asarray(m.shape))
    if isinstance(v, np.ndarray):
        return array_digest(v)
    return v


def curve_cached(config: Any, matrix: Any, weights: Any, params: dict[str, Any], compute: Any, *,
                 status: dict[str, str]) -> list:
    """The coverage curve (``compute()``, a list of :class:`~careblocks.selection.CurvePoint`)
    through the cache (``status["coverage_curve"]``): its key is the selection matrix, the
    weights and the selection parameters, so a change of score weights reuses it."""
    import scipy.sparse as sp

    from careblocks.selection import CurvePoint

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
    """:func:`careblocks.selection.select_sites` (``compute()``) through the cache
    (``status["selection"]``), keyed by its matrix, weights and parameters (K included)."""
    import scipy.sparse as sp

    from careblocks.selection import SelectionResult

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


def frame_cached(config: Any, stage: str, parts: dict[str, Any], compute: Any, *,
                 status: dict[str, str]) -> Any:
    """A GeoDataFrame stage result (``compute()``) through the cache, stored as a GeoPackage
    layer (types, nulls and geometry kept by pyogrio; ``attrs`` in the JSON sidecar)."""
    import pyogrio

    key = cache_key(stage, parts)
    folder = _folder(config, stage)
    path, meta_path = folder / f"{key}.gpkg", folder / f"{key}.json"
    if enabled(config) and path.is_file() and meta_path.is_file():
        try:
            gdf = pyogrio.read_dataframe(path)
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            gdf = gdf[meta["columns"]]
            if gdf.geometry.name != meta["geometry"]:
                gdf = gdf.rename_geometry(meta["geometry"])
            gdf = gdf.set_crs(meta["crs"], allow_override=True)
            gdf.attrs.update(meta.get("attrs", {}))
            for msg in meta.get("warnings", []):
                warnings.warn(msg, DataQualityWarning, stacklevel=2)
            status[stage] = "hit"
            return gdf
        except Exception:  # noqa: BLE001 - an unreadable entry is a miss
            pass
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gdf = compute()
    kept = []
    for w in caught:  # re-emit, and keep the data-quality ones for cache hits
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if issubclass(w.category, DataQualityWarning):
            kept.append(str(w.message))
    if enabled(config):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{key}.{os.getpid()}.partial.gpkg"
            out = gdf.rename_geometry("geometry") if gdf.geometry.name != "geometry" else gdf
            pyogrio.write_dataframe(out, tmp, layer="data", driver="GPKG")
            tmp_meta = folder / f".{key}.{os.getpid()}.partial.json"
            tmp_meta.write_text(json.dumps(_jsonable({
                "columns": [c if c != gdf.geometry.name else "geometry" for c in gdf.columns],
                "geometry": gdf.geometry.name, "crs": str(gdf.crs), "attrs": dict(gdf.attrs),
                "warnings": kept})), encoding="utf-8")
            os.replace(tmp, path)
            os.replace(tmp_meta, meta_path)
        except (OSError, ValueError, pyogrio.errors.DataSourceError) as exc:
            warnings.warn(f"{stage} cache: could not write to {folder} ({exc.__class__.__name__}); set "
                          "CAREBLOCKS_CACHE_DIR or network.cache_dir to a writable folder",
                          DataQualityWarning, stacklevel=2)
    status[stage] = "miss" if enabled(config) else "off"
    return gdf


def frame_digest(gdf: Any, columns: Any = ()) -> str:
    """Digest of a GeoDataFrame's geometry (WKB) and the given columns."""
    import shapely

    h = hashlib.sha256()
    for b in shapely.to_wkb(np.asarray(gdf.geometry.values)):
        h.update(b if b is not None else b"-")
    for c in columns:
        if c in gdf.columns:
            h.update(array_digest(gdf[c].to_numpy()).encode())
    return h.hexdigest()


def input_files_digest(config: Any) -> dict[str, str]:
    """sha256 of every input file the config names."""
    from careblocks.network import file_digest
    from careblocks.pipeline import _input_paths

    return {str(p): file_digest(p) for p in _input_paths(config)}
