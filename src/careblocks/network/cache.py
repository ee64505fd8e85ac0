"""Content-addressed cache of results rebuilt from unchanged inputs (the store).

The walking network is cached by :func:`careblocks.network.load_or_build_network`; this module
does the same for what later stages rebuild on every run although their inputs did not
change: the transit timetable (GTFS read + arrays), walk + transit access per origin, and the
candidates' catchments (walking and walk + transit). A key is the sha256 of a JSON document
of the stage name, :data:`CACHE_VERSION`, the careblocks version and every input that
matters: file digests, config values and digests of the arrays a stage reads (network,
origin and facility nodes). Anything a stage does not read (score weights, ``sites.k``, the
selection method) is not in its key, so changing it reuses the cached results.

Entries are folders of uncompressed ``.npy`` files of plain arrays (no pickles:
``allow_pickle=False``) plus a JSON file, written atomically under ``<cache dir>/<stage>/<key>/``
and memory-mapped (copy-on-write) on a hit (:mod:`careblocks.network._store`). ``network.cache = false`` turns
every cache off (``CAREBLOCKS_STAGE_CACHE=0`` only these stage caches). A corrupt or
unreadable entry counts as a miss.
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
CACHE_VERSION = 2  # 2: entries are folders of memory-mapped .npy files



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
    """Digest of a walking network's arrays (what searches on it depend on, heights and the
    barriers of the travel profiles included)."""
    extra = [np.asarray(a) for a in (getattr(network, k, None) for k in ("barrier", "incline", "z"))
             if a is not None]
    return array_digest(network.indptr, network.indices, network.length_m, network.x, network.y,
                        np.array([str(network.crs)]), *extra)



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
    from careblocks._version import __version__

    doc = {"stage": stage, "cache_version": CACHE_VERSION, "careblocks": __version__, "parts": _jsonable(parts)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()



def enabled(config: Any) -> bool:
    """Stage caches are on unless ``network.cache = false`` or the environment variable
    ``CAREBLOCKS_STAGE_CACHE`` is ``0``/``off`` (the test suite sets it, so that a test that
    patches a stage's code never gets another test's cached result)."""
    if os.environ.get("CAREBLOCKS_STAGE_CACHE", "").strip().lower() in ("0", "off", "false", "no"):
        return False
    return bool(getattr(getattr(config, "network", None), "cache", True))



def _folder(config: Any, stage: str) -> Path:
    from careblocks.network.graph import cache_dir

    return cache_dir(config) / stage.replace(" ", "_")



def load(config: Any, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays (memory-mapped, copy-on-write) and metadata stored under ``key``, or None
    (miss, cache off, unreadable)."""
    if not enabled(config):
        return None
    from careblocks.network._store import load_arrays

    return load_arrays(_folder(config, stage), key)



def save(config: Any, stage: str, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Store ``arrays`` (numeric or string; object arrays are stored as strings) and ``meta``
    under ``key``; a cache folder that cannot be written gives a warning, not an error."""
    if not enabled(config):
        return
    from careblocks.network._store import save_arrays

    folder = _folder(config, stage)
    try:
        save_arrays(folder, key, arrays, _jsonable(meta))
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
                      shape=shape, copy=False)
    m.sort_indices()  # in place: the mapped arrays are copy-on-write
    return m


# --------------------------------------------------------------------------------------
# the cached stages
# --------------------------------------------------------------------------------------



def _transit_params(cfg: Any) -> dict[str, Any]:
    """``config.transit`` with the feeds replaced by their content digests."""
    from careblocks.network.graph import file_digest

    doc = _jsonable(cfg)
    doc["feeds"] = [file_digest(Path(p)) if Path(p).is_file() else str(p) for p in cfg.feeds]
    return doc



def _area_digest(area_4326: Any) -> str | None:
    return hashlib.sha256(area_4326.wkb).hexdigest() if area_4326 is not None else None



def timetable_key(config: Any, network: Any, area_4326: Any) -> str:
    params = _transit_params(config.transit)
    for k in ("percentiles", "report_percentile", "max_transfers", "max_walk_min", "enabled"):
        params.pop(k, None)  # used by the searches, not by the timetable
    return cache_key("timetable", {"transit": params, "walk": _jsonable(config.walk),
                                   "network": network_digest(network), "area": _area_digest(area_4326)})



def points_digest(df: Any) -> str:
    """Digest of the ``node`` and ``snap_m`` columns of origins, facilities or candidates."""
    return array_digest(df["node"].to_numpy(np.int64), df["snap_m"].to_numpy(np.float64))



def transit_coverage_cached(config: Any, tt_key: str | None, candidates: Any, origins: Any, limit_s: float,
                            compute: Any, *, status: dict[str, str], name: str = "transit_coverage") -> Any:
    """Walk + transit coverage of some points (candidates, facilities; ``compute()``) through
    the cache; records the outcome under ``status[name]``."""
    key = cache_key("transit_coverage", {
        "timetable": tt_key, "transit": _transit_params(config.transit),
        "walk": _jsonable(config.walk), "candidates": points_digest(candidates),
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
