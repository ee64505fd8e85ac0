"""Helpers shared by the writers: column choice, JSON conversion of config and metadata."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careblocks import columns as C


def time_column(columns, service: str) -> str | None:
    """The best travel-time column for ``service``: best_min_ > walk_min_ > transit_min_."""
    for mode in C.TIME_MODES:
        if C.time_column(mode, service) in columns:
            return C.time_column(mode, service)
    return None


def services_in(results) -> list[str]:
    """Service names of the run (config order), plus any other service seen in the data."""
    names = list(getattr(results, "service_names", ()) or ())
    svc = getattr(results, "services", None)
    if svc is not None and "service" in svc.columns:
        for s in pd.unique(svc["service"].dropna().astype(str)):
            if s not in names:
                names.append(s)
    return names


def all_within_column(results) -> str | None:
    col = C.services_within(results.threshold_min)
    return col if col in results.origins.columns else None


def json_default(obj: Any) -> Any:
    """``json.dumps`` fallback for paths, numpy scalars, dates, dataclasses, sets."""
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.timedelta, pd.Timestamp)):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return config_to_dict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    return str(obj)


def to_json(value: Any) -> str:
    return json.dumps(value, default=json_default, ensure_ascii=False, sort_keys=True)


def config_to_dict(config: Any) -> Any:
    """A config dataclass tree as plain JSON-able data (paths as strings, no ``raw``)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        out = {}
        for f in dataclasses.fields(config):
            if f.name == "raw":
                continue
            out[f.name] = config_to_dict(getattr(config, f.name))
        return out
    if isinstance(config, dict):
        return {str(k): config_to_dict(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [config_to_dict(v) for v in config]
    if isinstance(config, Path):
        return str(config)
    return config


def sanitize_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Columns a GIS file can hold: lists/dicts become JSON text, categoricals text."""
    out = df.copy()
    for c in out.columns:
        if c == getattr(out, "_geometry_column_name", None):
            continue
        s = out[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            out[c] = s.astype(object).where(s.notna(), None).astype("str").where(s.notna(), None)
        elif s.dtype == object:
            if s.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray))).any():
                out[c] = s.map(
                    lambda v: to_json(v) if isinstance(v, (list, tuple, dict, set, np.ndarray)) else v
                )
    return out


#: pipeline metadata keys -> the names used in run_metadata and the documents
_META_ALIASES = {"careblocks_version": "version", "stage_seconds": "stage_timings"}


def normalized_metadata(meta: dict[str, Any] | None) -> dict[str, Any]:
    """The run metadata with the documented key names (``version``, ``stage_timings``)."""
    out = dict(meta or {})
    for old, new in _META_ALIASES.items():
        if old in out:
            value = out.pop(old)
            out.setdefault(new, value)
    return out


def source_date_epoch() -> _dt.datetime | None:
    """``$SOURCE_DATE_EPOCH`` (seconds since 1970, UTC) as a datetime, or None when unset.

    Set it to make reruns byte-identical: every time written into the outputs (the run's
    ``created_utc``, GeoPackage change dates, the map's and report's date) is this one, and
    the stage timings are left out of ``run_metadata``.
    """
    import os

    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    try:
        return _dt.datetime.fromtimestamp(int(value), _dt.UTC)
    except (ValueError, OverflowError, OSError):
        from careblocks.errors import ConfigError

        raise ConfigError(
            f"SOURCE_DATE_EPOCH={value!r}: not a number of seconds since 1970-01-01; unset it or "
            "give e.g. SOURCE_DATE_EPOCH=1700000000"
        ) from None


def output_time(meta: dict[str, Any] | None) -> _dt.datetime:
    """The one timestamp of a run's outputs: ``$SOURCE_DATE_EPOCH`` when set, else the run's
    ``created_utc`` (else now)."""
    fixed = source_date_epoch()
    if fixed is not None:
        return fixed
    v = (meta or {}).get("created_utc")
    if isinstance(v, str):
        try:
            return _dt.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
        except ValueError:
            pass
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


def run_date(meta: dict[str, Any] | None) -> str:
    """The date of the run (from ``created_utc`` / ``run_date``), else today."""
    meta = meta or {}
    fixed = source_date_epoch()
    if fixed is not None:
        return fixed.date().isoformat()
    for key in ("run_date", "created_utc", "written_at"):
        v = meta.get(key)
        if isinstance(v, str) and len(v) >= 10:
            return v[:10]
    return _dt.date.today().isoformat()
