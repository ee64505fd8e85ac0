"""GTFS feeds -> normalised tables for one service date (issue #4).

Reading and calendars use gtfs-kit (:func:`gtfs_kit.read_feed`, :func:`gtfs_kit.get_dates`,
:func:`gtfs_kit.get_active_services`). Ids are prefixed by feed name on the few columns that
routing uses (cheaper than :func:`gtfs_kit.prefix_feed_ids` on every table). Our own code fills
what gtfs-kit does not do, or does too slowly for routing:

* a clear :class:`~careblocks.errors.GTFSError` for a broken zip or a missing required file
  (gtfs-kit raises a bare ``zipfile`` or ``KeyError`` exception, or leaves the table ``None``);
* times as integer seconds, parsed vectorised (gtfs-kit keeps ``HH:MM:SS`` strings), with
  times past 24:00:00 kept as they are and trips of the previous service day that run past
  midnight shifted by -24 h;
* interpolation of empty stop times (the EPTC feed of Porto Alegre times only the first and
  last stop of each trip), by straight-line distance between consecutive stops
  (``shape_dist_traveled`` when the feed has it); gtfs-kit has no interpolation;
* ``frequencies.txt`` expanded vectorised and restricted to a time window
  (:func:`gtfs_kit.expand_frequencies` builds string times row by row for the whole day).
  Both ``exact_times=1`` and ``exact_times=0`` are expanded as departures at
  ``start_time + n * headway_secs`` strictly before ``end_time`` (the same convention as
  gtfs-kit); for ``exact_times=0`` that is a schedule-like approximation of headway service
  (R5 instead draws random offsets);
* stops outside the study area dropped with a :class:`~careblocks.errors.DataQualityWarning`.

Extended route types (e.g. 1501 "communal taxi" in Freetown) are kept as plain integers.
Pickup / drop-off types and ``location_type`` of stations are not used in routing.
"""

from __future__ import annotations

import datetime as dt
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careblocks.errors import ConfigError, DataQualityWarning, GTFSError

#: Files without which a feed cannot be routed.
REQUIRED_FILES = ("stops.txt", "routes.txt", "trips.txt", "stop_times.txt")


@dataclass(frozen=True, eq=False)
class GTFSTables:
    """Normalised GTFS tables of one or several feeds for one service date.

    Ids are prefixed by the feed name (``"<feed>:<id>"``) so that they stay unique across feeds.

    Attributes
    ----------
    stops
        ``stop_id`` (str), ``stop_name`` (str), ``lon``, ``lat`` (float64, EPSG:4326),
        ``feed`` (str). Only stops served by at least one kept trip.
    trips
        ``trip_id``, ``route_id``, ``service_id``, ``feed`` (str), ``route_type`` (int).
    stop_times
        ``trip_id``, ``stop_id`` (str), ``stop_sequence`` (int), ``arrival_s``,
        ``departure_s`` (int64 seconds after midnight of the service date, may exceed 86400),
        sorted by trip and stop sequence.
    date
        The service date.
    """

    stops: pd.DataFrame
    trips: pd.DataFrame
    stop_times: pd.DataFrame
    date: dt.date
    feeds: tuple[str, ...] = field(default=())


def parse_date(value: str | dt.date, *, key: str = "transit.date") -> dt.date:
    """A ``YYYY-MM-DD`` (or ``YYYYMMDD``) string as a date; ConfigError otherwise."""
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ConfigError(f"{key}: {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2019-05-13")


def parse_hhmm(value: str, *, key: str) -> int:
    """``HH:MM`` or ``HH:MM:SS`` (hours may exceed 23) as seconds after midnight."""
    parts = str(value).strip().split(":")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (2, 3) or any(n < 0 for n in nums) or any(n > 59 for n in nums[1:]):
        raise ConfigError(f"{key}: {value!r} is not a time; write it as HH:MM, e.g. 07:00")
    return nums[0] * 3600 + nums[1] * 60 + (nums[2] if len(nums) == 3 else 0)


def _seconds(series: pd.Series) -> np.ndarray:
    """``H:MM:SS`` -> float seconds (NaN for empty or malformed); parses each distinct
    value once (a feed has far fewer distinct times than stop times)."""
    codes, uniq = pd.factorize(series, use_na_sentinel=True)
    vals = np.full(len(uniq) + 1, np.nan)
    for i, text in enumerate(uniq):
        parts = str(text).strip().split(":")
        if len(parts) == 3:
            try:
                vals[i] = int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2])
            except ValueError:
                pass
    return vals[np.where(codes < 0, len(uniq), codes)]


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on a GTFS zip, checked from its directory before anything is inflated.

    The defaults are far above real city feeds (the largest member of the feeds in the test
    data inflates 3.5 MB at 7.5:1; whole-country feeds reach a few GB at under 20:1) and far
    below what a zip bomb declares. Config keys ``transit.max_archive_members``,
    ``transit.max_member_mb``, ``transit.max_archive_mb``, ``transit.max_compression_ratio``.
    """

    max_members: int = 1000
    max_member_bytes: int = 4096 * 2**20
    max_total_bytes: int = 8192 * 2**20
    max_ratio: float = 200.0
    #: members smaller than this are never refused for their ratio (tiny files compress well)
    ratio_floor_bytes: int = 2**20

    @classmethod
    def from_config(cls, cfg: Any) -> ArchiveLimits:
        return cls(
            max_members=int(cfg.max_archive_members),
            max_member_bytes=int(cfg.max_member_mb * 2**20),
            max_total_bytes=int(cfg.max_archive_mb * 2**20),
            max_ratio=float(cfg.max_compression_ratio),
        )


def check_archive(path: Path, zf: zipfile.ZipFile, limits: ArchiveLimits) -> None:
    """Refuse a zip whose directory declares too many members, members or a total that
    inflate too much, or a compression ratio only a zip bomb has. Reads no member data.

    The declared sizes cannot be exceeded later: :mod:`zipfile` stops every member at its
    declared size (and a CRC mismatch then fails the read), so reading stays within them.
    """
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise GTFSError(
            f"{path}: the zip holds {len(infos):,} members, more than transit.max_archive_members "
            f"= {limits.max_members:,}; this is not a GTFS feed (or raise the limit)"
        )
    total = 0
    for info in infos:
        size = info.file_size
        total += size
        if size > limits.max_member_bytes:
            raise GTFSError(
                f"{path}: {info.filename} inflates to {size / 2**20:,.0f} MB, more than "
                f"transit.max_member_mb = {limits.max_member_bytes / 2**20:,.0f}; refusing it "
                "(raise the limit for a feed this large)"
            )
        ratio = size / max(info.compress_size, 1)
        if size >= limits.ratio_floor_bytes and ratio > limits.max_ratio:
            raise GTFSError(
                f"{path}: {info.filename} inflates {ratio:,.0f} times ({info.compress_size:,} -> "
                f"{size:,} bytes), more than transit.max_compression_ratio = {limits.max_ratio:g}; "
                "real feeds compress well under 50 times; this looks like a zip bomb"
            )
    if total > limits.max_total_bytes:
        raise GTFSError(
            f"{path}: the zip inflates to {total / 2**20:,.0f} MB in all, more than "
            f"transit.max_archive_mb = {limits.max_total_bytes / 2**20:,.0f}; refusing it"
        )


def _open_feed(path: Path, limits: ArchiveLimits | None = None) -> Any:
    """Read one feed with gtfs-kit, turning its failures into GTFSError.

    The zip's directory is checked against ``limits`` first; members are then read as
    streams from the zip by gtfs-kit (nothing is extracted to disk, so member paths such as
    ``../../x`` never reach the file system).
    """
    import gtfs_kit as gk

    if not path.exists():
        raise GTFSError(f"{path}: GTFS feed not found; check transit.feeds in the config")
    if not path.is_file():
        raise GTFSError(f"{path}: is not a file; transit.feeds lists GTFS .zip files")
    try:
        with zipfile.ZipFile(path) as zf:
            check_archive(path, zf, limits or ArchiveLimits())
            names = {Path(n).name for n in zf.namelist()}
            bad = zf.testzip()  # streams every member through its CRC, in chunks
    except GTFSError:
        raise
    except zipfile.BadZipFile as exc:
        raise GTFSError(
            f"{path}: not a readable zip file ({' '.join(str(exc).split())[:80]}); download the "
            "GTFS feed again (it must be a .zip of .txt files)"
        ) from None
    except (zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError) as exc:
        raise GTFSError(f"{path}: cannot be read as a zip ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:80]}); download the GTFS feed again") from None
    if bad is not None:
        raise GTFSError(f"{path}: {bad} is corrupt inside the zip; download the GTFS feed again")
    for req in REQUIRED_FILES:
        if req not in names:
            raise GTFSError(
                f"{path}: {req} is missing; a GTFS feed needs {', '.join(REQUIRED_FILES)} "
                "and calendar.txt or calendar_dates.txt"
            )
    if "calendar.txt" not in names and "calendar_dates.txt" not in names:
        raise GTFSError(
            f"{path}: calendar.txt and calendar_dates.txt are both missing; "
            "a GTFS feed needs one of them to say on which days trips run"
        )
    try:
        feed = gk.read_feed(path, dist_units="km")
    except Exception as exc:  # gtfs-kit raises many kinds on malformed CSV
        raise GTFSError(f"{path}: cannot be read as GTFS ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:120]}); fix or replace the feed") from None
    for req in REQUIRED_FILES:  # gtfs-kit leaves a table None when its file is empty
        if getattr(feed, req[:-4], None) is None:
            raise GTFSError(f"{path}: {req} has no rows; a GTFS feed needs rows in "
                            f"{', '.join(REQUIRED_FILES)}")
    return feed


def _interpolate(st: pd.DataFrame, stops: pd.DataFrame, feed_name: str) -> tuple[pd.DataFrame, int]:
    """Fill empty stop times by distance along the trip; drop trips without end times.

    ``st`` is sorted by trip and sequence and holds float ``arr``/``dep`` (NaN when empty).
    """
    arr = st["arr"].to_numpy(dtype=np.float64).copy()
    dep = st["dep"].to_numpy(dtype=np.float64).copy()
    arr = np.where(np.isnan(arr), dep, arr)
    dep = np.where(np.isnan(dep), arr, dep)
    trip = st["trip_id"].to_numpy()
    first = np.ones(len(st), dtype=bool)
    first[1:] = trip[1:] != trip[:-1]
    last = np.ones(len(st), dtype=bool)
    last[:-1] = first[1:]
    timed = ~np.isnan(arr)
    # trips whose first or last stop has no time cannot be placed in time
    bad_trip_rows = (first & ~timed) | (last & ~timed)
    n_bad = 0
    if bad_trip_rows.any():
        bad = pd.unique(trip[bad_trip_rows])
        n_bad = int(len(bad))
        keep = ~np.isin(trip, bad)
        st = st.loc[keep].reset_index(drop=True)
        return _interpolate(st, stops, feed_name)[0], n_bad
    if timed.all():
        return st.assign(arr=arr, dep=dep), 0
    # cumulative distance along each trip
    if "shape_dist_traveled" in st and st["shape_dist_traveled"].notna().all():
        cum = st["shape_dist_traveled"].to_numpy(dtype=np.float64)
    else:
        ll = stops.set_index("stop_id")[["stop_lon", "stop_lat"]].reindex(st["stop_id"])
        lon = np.radians(ll["stop_lon"].to_numpy(dtype=np.float64))
        lat = np.radians(ll["stop_lat"].to_numpy(dtype=np.float64))
        d = np.zeros(len(st))
        dlat = lat[1:] - lat[:-1]
        dlon = lon[1:] - lon[:-1]
        a = np.sin(dlat / 2) ** 2 + np.cos(lat[1:]) * np.cos(lat[:-1]) * np.sin(dlon / 2) ** 2
        d[1:] = 2 * 6371000.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
        d[first] = 0.0
        d = np.nan_to_num(d)
        cum = np.cumsum(d)
    idx = np.arange(len(st))
    prev = np.maximum.accumulate(np.where(timed, idx, -1))
    nxt = np.minimum.accumulate(np.where(timed, idx, len(st))[::-1])[::-1]
    gap = ~timed
    p, n = prev[gap], nxt[gap]
    span = cum[n] - cum[p]
    frac_d = np.where(span > 0, (cum[gap] - cum[p]) / np.where(span > 0, span, 1), np.nan)
    frac_i = (idx[gap] - p) / (n - p)
    frac = np.where(np.isnan(frac_d), frac_i, frac_d)
    t = dep[p] + frac * (arr[n] - dep[p])
    arr[gap] = t
    dep[gap] = t
    return st.assign(arr=arr, dep=dep), n_bad


def _expand_frequencies(
    st: pd.DataFrame, trips: pd.DataFrame, freq: pd.DataFrame, window: tuple[float, float] | None
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Replace template trips of ``frequencies`` by one trip per departure (vectorised).

    Departures are ``start + n * headway`` strictly before ``end``; with a ``window`` only
    trips that overlap it are generated.
    """
    f = freq.copy()
    f["start"] = _seconds(f["start_time"])
    f["end"] = _seconds(f["end_time"])
    f["headway"] = pd.to_numeric(f["headway_secs"], errors="coerce")
    f = f[f["trip_id"].isin(st["trip_id"]) & (f["headway"] > 0) & f["start"].notna() & f["end"].notna()]
    if f.empty:
        return st, trips, 0
    grp = st.groupby("trip_id", sort=False)
    first_dep = grp["dep"].min()
    duration = grp["arr"].max() - first_dep
    f = f.assign(first=first_dep.reindex(f["trip_id"]).to_numpy(), dur=duration.reindex(f["trip_id"]).to_numpy())
    counts = np.ceil((f["end"] - f["start"]) / f["headway"]).clip(lower=0).astype(np.int64).to_numpy()
    rep = np.repeat(np.arange(len(f)), counts)
    n_in = np.arange(rep.size) - np.repeat(np.cumsum(counts) - counts, counts)
    starts = f["start"].to_numpy()[rep] + n_in * f["headway"].to_numpy()[rep]
    tmpl = f["trip_id"].to_numpy()[rep]
    if window is not None:
        dur = f["dur"].to_numpy()[rep]
        ok = (starts <= window[1]) & (starts + dur >= window[0])
        starts, tmpl, n_in, rep = starts[ok], tmpl[ok], n_in[ok], rep[ok]
    new_ids = pd.Series(tmpl).astype(str) + "#f" + pd.Series(rep).astype(str) + "." + pd.Series(n_in).astype(str)
    gen = pd.DataFrame({"tmpl": tmpl, "new": new_ids.to_numpy(), "shift": starts - f["first"].to_numpy()[rep]})
    tst = st[st["trip_id"].isin(f["trip_id"])]
    new_st = gen.merge(tst, left_on="tmpl", right_on="trip_id")
    new_st["arr"] = new_st["arr"] + new_st["shift"]
    new_st["dep"] = new_st["dep"] + new_st["shift"]
    new_st["trip_id"] = new_st["new"]
    new_st = new_st[st.columns]
    new_trips = gen[["tmpl", "new"]].merge(trips, left_on="tmpl", right_on="trip_id")
    new_trips["trip_id"] = new_trips["new"]
    new_trips = new_trips[trips.columns]
    templates = set(f["trip_id"])
    st = pd.concat([st[~st["trip_id"].isin(templates)], new_st], ignore_index=True)
    trips = pd.concat([trips[~trips["trip_id"].isin(templates)], new_trips], ignore_index=True)
    return st, trips, int(len(gen))


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def _date_range(feed: Any) -> str:
    import gtfs_kit as gk

    dates = gk.get_dates(feed)
    if not dates:
        return "no dates at all (empty calendar)"
    return f"{dates[0][:4]}-{dates[0][4:6]}-{dates[0][6:]} .. {dates[-1][:4]}-{dates[-1][4:6]}-{dates[-1][6:]}"


def _one_feed(
    path: Path, name: str, date: dt.date, window: tuple[float, float] | None,
    limits: ArchiveLimits | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    import gtfs_kit as gk

    feed = _open_feed(path, limits)
    day = date.strftime("%Y%m%d")
    prev_day = (date - dt.timedelta(days=1)).strftime("%Y%m%d")
    try:
        active = set(gk.get_active_services(feed, day))
        active_prev = set(gk.get_active_services(feed, prev_day))
    except Exception as exc:
        raise GTFSError(f"{path}: calendar cannot be read ({exc}); fix calendar.txt / calendar_dates.txt") from None
    trips_all = feed.trips
    if not active or not trips_all["service_id"].isin(active).any():
        raise GTFSError(
            f"{path}: no service on {date.isoformat()}; the feed runs {_date_range(feed)}; "
            "set transit.date to a day inside that range"
        )
    stats: dict[str, Any] = {"feed": name, "path": str(path), "valid_dates": _date_range(feed)}
    routes = feed.routes[["route_id", "route_type"]].copy()
    routes["route_type"] = pd.to_numeric(routes["route_type"], errors="coerce").fillna(3).astype(np.int64)

    cols = ["trip_id", "stop_id", "stop_sequence", "arrival_time", "departure_time"]
    if "shape_dist_traveled" in feed.stop_times:
        cols.append("shape_dist_traveled")
    st0 = feed.stop_times[cols]
    # rows naming trips or stops the feed does not define cannot be routed: drop and say so
    unknown_trip = ~st0["trip_id"].isin(trips_all["trip_id"])
    unknown_stop = ~st0["stop_id"].isin(feed.stops["stop_id"])
    if unknown_trip.any() or unknown_stop.any():
        warnings.warn(
            f"{path}: dropped {int((unknown_trip | unknown_stop).sum()):,} of {len(st0):,} "
            f"stop_times.txt rows naming a trip_id not in trips.txt ({int(unknown_trip.sum()):,}) "
            f"or a stop_id not in stops.txt ({int(unknown_stop.sum()):,})",
            DataQualityWarning, stacklevel=2,
        )
        st0 = st0[~(unknown_trip | unknown_stop)]
    malformed = 0
    malformed_trips: set = set()
    parts = []
    for services, shift in ((active, 0.0), (active_prev, -86400.0)):
        tr = trips_all[trips_all["service_id"].isin(services)][["trip_id", "route_id", "service_id"]]
        if tr.empty:
            continue
        st = st0[st0["trip_id"].isin(tr["trip_id"])].copy()
        st["stop_sequence"] = pd.to_numeric(st["stop_sequence"], errors="coerce")
        st = st.sort_values(["trip_id", "stop_sequence"], kind="stable").reset_index(drop=True)
        st["arr"] = _seconds(st["arrival_time"])
        st["dep"] = _seconds(st["departure_time"])
        bad = ((st["arrival_time"].notna() & (st["arrival_time"].astype("string").str.strip() != "")
                & np.isnan(st["arr"].to_numpy()))
               | (st["departure_time"].notna()
                  & (st["departure_time"].astype("string").str.strip() != "")
                  & np.isnan(st["dep"].to_numpy()))).to_numpy(bool)
        if bad.any():
            malformed += int(bad.sum())
            malformed_trips.update(st.loc[bad, "trip_id"].tolist())
        st = st.drop(columns=["arrival_time", "departure_time"])
        st, n_bad = _interpolate(st, feed.stops, name)
        if shift == 0.0:
            stats["interpolated_stop_times"] = int(st0["arrival_time"].isna().sum())
            stats["trips_without_end_times"] = n_bad
        n_gen = 0
        if feed.frequencies is not None and not feed.frequencies.empty:
            w = None if window is None else (window[0] - shift, window[1] - shift)
            st, tr, n_gen = _expand_frequencies(st, tr, feed.frequencies, w)
        if shift == 0.0:
            stats["frequency_trips"] = n_gen
        if shift:
            # yesterday's trips matter only where they run past midnight
            late = st.groupby("trip_id")["arr"].max()
            keep_ids = late.index[late >= 86400.0]
            st = st[st["trip_id"].isin(keep_ids)].copy()
            tr = tr[tr["trip_id"].isin(keep_ids)].copy()
            st["trip_id"] = st["trip_id"] + "@prev"
            tr["trip_id"] = tr["trip_id"] + "@prev"
            st["arr"] += shift
            st["dep"] += shift
            stats["previous_day_trips"] = int(len(tr))
        parts.append((st, tr))
    if malformed:
        warnings.warn(
            f"{path}: {len(malformed_trips):,} trips have {malformed:,} malformed times in "
            "stop_times.txt (not H:MM:SS); those times are treated as missing and interpolated",
            DataQualityWarning, stacklevel=3)
        stats["malformed_times"] = malformed
    st = pd.concat([p[0] for p in parts], ignore_index=True)
    tr = pd.concat([p[1] for p in parts], ignore_index=True)
    if window is not None:
        span = st.groupby("trip_id").agg(t0=("dep", "min"), t1=("arr", "max"))
        keep_ids = span.index[(span["t0"] <= window[1]) & (span["t1"] >= window[0])]
        if keep_ids.empty:
            warnings.warn(
                f"{path}: no trips between {_hms(window[0])} and {_hms(window[1])} on "
                f"{date.isoformat()} (trips run {_hms(span['t0'].min())}-{_hms(span['t1'].max())}); "
                "move transit.window_start / window_end into that span",
                DataQualityWarning, stacklevel=3)
        st = st[st["trip_id"].isin(keep_ids)]
        tr = tr[tr["trip_id"].isin(keep_ids)]
    tr = tr.merge(routes, on="route_id", how="left")
    tr["route_type"] = tr["route_type"].fillna(3).astype(np.int64)
    stops = feed.stops[["stop_id", "stop_name", "stop_lon", "stop_lat"]].rename(
        columns={"stop_lon": "lon", "stop_lat": "lat"}
    )
    pre = f"{name}:"
    for df, c in ((st, "trip_id"), (st, "stop_id"), (tr, "trip_id"), (tr, "route_id"), (tr, "service_id"), (stops, "stop_id")):
        df[c] = pre + df[c].astype(str)
    stops = stops.assign(feed=name)
    tr = tr.assign(feed=name)
    stats["trips_on_date"] = int(len(tr))
    stats["route_types"] = {int(k): int(v) for k, v in tr["route_type"].value_counts().items()}
    return stops, tr, st, stats


#: GTFS ``route_type`` values of each transit mode (basic types and Google's extended types),
#: grouped as r5py's ``TransportMode`` groups them; ``transit.modes`` picks from these names.
ROUTE_TYPES: dict[str, tuple[tuple[int, int], ...]] = {
    "tram": ((0, 0), (900, 999)),
    "subway": ((1, 1), (400, 404)),
    "rail": ((2, 2), (100, 199), (300, 399)),
    "bus": ((3, 3), (200, 299), (700, 799)),
    "ferry": ((4, 4), (1000, 1099), (1200, 1299)),
    "cable_tram": ((5, 5),),
    "aerial_lift": ((6, 6), (1300, 1399)),
    "funicular": ((7, 7), (1400, 1499)),
    "trolleybus": ((11, 11), (800, 899)),
    "monorail": ((12, 12), (405, 405)),
    "taxi": ((1500, 1599),),
}


def route_type_mask(route_type: Any, modes: Sequence[str]) -> np.ndarray:
    """Which ``route_type`` values belong to one of ``modes`` (names of :data:`ROUTE_TYPES`)."""
    rt = np.asarray(route_type, dtype=np.int64)
    keep = np.zeros(rt.shape, bool)
    for m in modes:
        for lo, hi in ROUTE_TYPES[m]:
            keep |= (rt >= lo) & (rt <= hi)
    return keep


def read_gtfs(
    paths: Sequence[str | Path],
    date: str | dt.date,
    *,
    area_4326: Any = None,
    window_s: tuple[float, float] | None = None,
    modes: Sequence[str] = (),
    limits: ArchiveLimits | None = None,
) -> tuple[GTFSTables, dict[str, Any]]:
    """Read one or several GTFS feeds for one service date into normalised tables.

    Parameters
    ----------
    paths
        GTFS zip files. Ids are prefixed by the file stem (``poa_eptc:4220``).
    date
        The service date (``YYYY-MM-DD``); ``calendar.txt`` and ``calendar_dates.txt`` decide
        which trips run. Trips of the day before that run past midnight are included,
        shifted by -24 h.
    area_4326
        Optional shapely polygon in EPSG:4326; stops outside it are dropped (with a
        DataQualityWarning) and trips left with fewer than two stops are dropped.
    window_s
        Optional ``(start, end)`` in seconds after midnight: keep only trips running at some
        time in it (pass ``(window_start, window_end + max_trip)`` for routing).
    modes
        Keep only trips of these transit modes (names of :data:`ROUTE_TYPES`, e.g.
        ``("bus", "subway")``); empty keeps every mode.
    limits
        Bounds on each zip (:class:`ArchiveLimits`; default: the config defaults).

    Returns
    -------
    tables, stats
        ``stats`` holds per-feed counts (``feeds``), ``date``, ``trips``, ``stop_times``,
        ``stops_kept``, ``stops_dropped_outside_area``.

    Raises
    ------
    GTFSError
        A feed is missing, not a zip, lacks a required file, or has no service on ``date``
        (the message gives the feed's valid date range).
    """
    if not paths:
        raise GTFSError("transit.feeds: no GTFS feed given; list one or more GTFS zip files")
    day = parse_date(date)
    names: list[str] = []
    all_stops, all_trips, all_st, feed_stats = [], [], [], []
    for p in paths:
        path = Path(p)
        name = path.stem
        k = 2
        while name in names:
            name = f"{path.stem}{k}"
            k += 1
        names.append(name)
        s, t, st, fs = _one_feed(path, name, day, window_s, limits)
        all_stops.append(s)
        all_trips.append(t)
        all_st.append(st)
        feed_stats.append(fs)
    stops = pd.concat(all_stops, ignore_index=True)
    trips = pd.concat(all_trips, ignore_index=True)
    st = pd.concat(all_st, ignore_index=True)
    stats: dict[str, Any] = {"feeds": feed_stats, "date": day.isoformat()}
    if modes:
        unknown = [m for m in modes if m not in ROUTE_TYPES]
        if unknown:
            raise GTFSError(
                f"transit.modes: {', '.join(map(repr, unknown))} is not a transit mode; use some of "
                + ", ".join(ROUTE_TYPES)
            )
        ok = route_type_mask(trips["route_type"].to_numpy(), modes)
        stats["trips_dropped_by_mode"] = int((~ok).sum())
        trips = trips[ok]
        st = st[st["trip_id"].isin(trips["trip_id"])]
        if trips.empty:
            raise GTFSError(
                f"transit.modes: no trips of {', '.join(modes)} in {', '.join(str(p) for p in paths)} "
                "on that date; choose modes the feeds run (their route types are in run_metadata)"
            )

    n_dropped = 0
    used = stops["stop_id"].isin(st["stop_id"])
    stops = stops[used]
    if area_4326 is not None:
        import shapely

        inside = shapely.contains_xy(area_4326, stops["lon"].to_numpy(), stops["lat"].to_numpy())
        n_dropped = int((~inside).sum())
        if n_dropped:
            warnings.warn(
                f"GTFS: dropped {n_dropped} of {len(stops)} served stops outside the study area",
                DataQualityWarning,
                stacklevel=2,
            )
            stops = stops[inside]
            st = st[st["stop_id"].isin(stops["stop_id"])]
    # trips need at least two stops
    n_per = st.groupby("trip_id").size()
    keep = n_per.index[n_per >= 2]
    st = st[st["trip_id"].isin(keep)]
    trips = trips[trips["trip_id"].isin(keep)]
    stops = stops[stops["stop_id"].isin(st["stop_id"])].reset_index(drop=True)
    st = (
        st.assign(
            arrival_s=np.round(st["arr"].to_numpy()).astype(np.int64),
            departure_s=np.round(st["dep"].to_numpy()).astype(np.int64),
            stop_sequence=st["stop_sequence"].astype(np.int64),
        )[["trip_id", "stop_id", "stop_sequence", "arrival_s", "departure_s"]]
        .sort_values(["trip_id", "stop_sequence"], kind="stable")
        .reset_index(drop=True)
    )
    if st.empty:
        raise GTFSError(
            f"{', '.join(str(p) for p in paths)}: no trips left on {day.isoformat()} in the study area "
            "and departure window; check transit.date, transit.window_start/end and the study area"
        )
    stats.update(
        trips=int(len(trips)),
        stop_times=int(len(st)),
        stops_kept=int(len(stops)),
        stops_dropped_outside_area=n_dropped,
    )
    tables = GTFSTables(stops=stops, trips=trips.reset_index(drop=True), stop_times=st, date=day, feeds=tuple(names))
    return tables, stats


def gtfs_text_bytes(paths: Sequence[str | Path]) -> int:
    """Uncompressed size of the routing tables (stops, routes, trips, stop_times, calendars,
    frequencies) of the feeds: the yardstick of the timetable memory target."""
    names = {"stops.txt", "routes.txt", "trips.txt", "stop_times.txt", "calendar.txt",
             "calendar_dates.txt", "frequencies.txt"}
    total = 0
    for p in paths:
        with zipfile.ZipFile(p) as zf:
            total += sum(i.file_size for i in zf.infolist() if Path(i.filename).name in names)
    return total
