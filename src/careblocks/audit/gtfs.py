"""GTFS feed statistics from the raw files, so that a collapse (a headway of 0 turning
thousands of trips into a few) or phantom trips (negative times) is an error, not a silent
change made while the timetable is built."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from careblocks.audit.core import Audit


def _hms(seconds: np.ndarray) -> np.ndarray:
    """``H:MM:SS`` text -> seconds (NaN when malformed; negative hours kept negative)."""
    import pandas as pd

    s = pd.Series(seconds, dtype="string").str.strip()
    parts = s.str.extract(r"^(-?\d+):(\d{1,2}):(\d{1,2})$").astype("float64")
    sign = np.where(s.str.startswith("-").fillna(False).to_numpy(), -1.0, 1.0)
    h = parts[0].to_numpy()
    return sign * (np.abs(h) * 3600 + parts[1].to_numpy() * 60 + parts[2].to_numpy())


def _read(zf: zipfile.ZipFile, names: dict[str, str], member: str, cols: list[str]) -> Any:
    import pandas as pd

    if member not in names:
        return None
    with zf.open(names[member]) as fh:
        head = pd.read_csv(fh, nrows=0, dtype=str, encoding="utf-8-sig")
    use = [c for c in cols if c in head.columns.str.strip()]
    with zf.open(names[member]) as fh:
        df = pd.read_csv(fh, dtype=str, usecols=lambda c: c.strip() in use,
                         encoding="utf-8-sig", keep_default_na=False)
    df.columns = df.columns.str.strip()
    return df


def _fmt(t: float) -> str:
    sign = "-" if t < 0 else ""
    t = abs(t)
    return f"{sign}{int(t // 3600):02d}:{int(t % 3600 // 60):02d}"


def audit_gtfs(cfg: Any, audit: Audit) -> None:
    """Check each feed of ``transit.feeds`` (when transit is enabled)."""
    t = cfg.transit
    if not t.enabled:
        return
    for i, path in enumerate(t.feeds):
        key = f"transit.feeds[{i}]"
        p = Path(path)
        if not p.is_file() or not zipfile.is_zipfile(p):
            continue  # the files check or the GTFS reader says why, in one line
        with zipfile.ZipFile(p) as zf:
            names = {Path(n).name: n for n in zf.namelist() if not n.endswith("/")}
            _audit_feed(zf, names, f"{key}: {p.name}", audit)


def _audit_feed(zf: zipfile.ZipFile, names: dict[str, str], where: str, audit: Audit) -> None:
    import pandas as pd

    trips = _read(zf, names, "trips.txt", ["trip_id"])
    n_trips = 0 if trips is None else len(trips)
    # stop times: negative or malformed times create phantom trips or vanish
    st = _read(zf, names, "stop_times.txt", ["trip_id", "arrival_time", "departure_time"])
    t_lo = t_hi = np.nan
    if st is not None and len(st):
        for col in ("arrival_time", "departure_time"):
            if col not in st.columns:
                continue
            raw = st[col].to_numpy()
            secs = _hms(raw)
            neg = secs < 0
            if neg.any():
                j = int(np.flatnonzero(neg)[0])
                audit.error(
                    "gtfs.times", f"{where}: stop_times.txt column '{col}'",
                    f"{int(neg.sum())} negative times (trip {st['trip_id'].iloc[j]}: {raw[j]!r}); "
                    "GTFS times count from noon minus 12 h and are never negative: fix the feed",
                    float(neg.sum()),
                )
            if np.isfinite(secs).any():
                t_lo = np.nanmin([t_lo, np.nanmin(secs)])
                t_hi = np.nanmax([t_hi, np.nanmax(secs)])
    # frequencies: a headway of 0 (or none) silently removes every trip of its template
    fr = _read(zf, names, "frequencies.txt", ["trip_id", "start_time", "end_time", "headway_secs"])
    expanded = 0
    n_templates = 0
    if fr is not None and len(fr):
        n_templates = int(fr["trip_id"].nunique()) if "trip_id" in fr else 0
        hw = pd.to_numeric(fr.get("headway_secs"), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~(hw > 0)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            audit.error(
                "gtfs.headways", f"{where}: frequencies.txt column 'headway_secs'",
                f"{int(bad.sum())} of {len(fr)} rows have no positive headway (trip "
                f"{fr['trip_id'].iloc[j]}: {fr['headway_secs'].iloc[j]!r}); those trips would "
                "silently vanish: give the seconds between departures or remove the rows",
                float(bad.sum()),
            )
        s0 = _hms(fr["start_time"].to_numpy()) if "start_time" in fr else np.full(len(fr), np.nan)
        s1 = _hms(fr["end_time"].to_numpy()) if "end_time" in fr else np.full(len(fr), np.nan)
        rev = s1 <= s0
        if rev.any():
            j = int(np.flatnonzero(rev)[0])
            audit.error(
                "gtfs.headways", f"{where}: frequencies.txt",
                f"{int(rev.sum())} rows end before they start (trip {fr['trip_id'].iloc[j]}: "
                f"{fr['start_time'].iloc[j]} to {fr['end_time'].iloc[j]}); swap start_time and "
                "end_time",
                float(rev.sum()),
            )
        neg = (s0 < 0) | (s1 < 0)
        if neg.any():
            audit.error("gtfs.times", f"{where}: frequencies.txt",
                        f"{int(neg.sum())} rows have negative times; fix the feed", float(neg.sum()))
        ok = ~bad & ~rev & np.isfinite(s0) & np.isfinite(s1)
        expanded = int(np.ceil((s1[ok] - s0[ok]) / hw[ok]).sum())
        if ok.any():
            audit.info("gtfs.headways", where,
                       f"headways {np.nanmin(hw[ok]) / 60:.1f}-{np.nanmax(hw[ok]) / 60:.1f} min "
                       f"(median {np.nanmedian(hw[ok]) / 60:.1f})")
    cal = _read(zf, names, "calendar.txt", ["service_id", "start_date", "end_date"])
    if cal is not None and len(cal) and {"start_date", "end_date"} <= set(cal.columns):
        d0 = pd.to_datetime(cal["start_date"], format="%Y%m%d", errors="coerce")
        d1 = pd.to_datetime(cal["end_date"], format="%Y%m%d", errors="coerce")
        rev = (d1 < d0).to_numpy()
        if rev.any():
            j = int(np.flatnonzero(rev)[0])
            audit.error(
                "gtfs.calendar", f"{where}: calendar.txt",
                f"{int(rev.sum())} services end before they start (service "
                f"{cal['service_id'].iloc[j]}: start_date {cal['start_date'].iloc[j]}, end_date "
                f"{cal['end_date'].iloc[j]}); swap start_date and end_date",
                float(rev.sum()),
            )
    span = f", stop times {_fmt(t_lo)}-{_fmt(t_hi)}" if np.isfinite(t_lo) else ""
    freq = (f", {n_templates:,} frequency templates giving {expanded:,} departures a day"
            if n_templates else "")
    audit.info("gtfs.trips", where, f"{n_trips:,} trips in trips.txt{freq}{span}", float(n_trips))
