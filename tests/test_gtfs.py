"""GTFS ingest: calendars, frequencies, times past midnight, interpolation, area clipping and
clear errors. Small feeds are written as GTFS text into temporary zips; real feeds are read
from the shared data folder (Porto Alegre EPTC + Trensurb, São Paulo SPTrans, Freetown)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import shapely

from careblocks.errors import DataQualityWarning, GTFSError
from careblocks.io.gtfs import read_gtfs
from reference_transit import write_feed

AGENCY = "agency_id,agency_name,agency_url,agency_timezone\nA,A,http://a.org,UTC"
STOPS = """stop_id,stop_name,stop_lat,stop_lon
a,A,-30.00,-51.20
b,B,-30.01,-51.20
c,C,-30.02,-51.20
d,D,-30.05,-51.20"""
ROUTES = "route_id,route_short_name,route_type\nR,R,3\nX,X,1501"
CAL = """service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date
WK,1,1,1,1,1,0,0,20240101,20240630
SA,0,0,0,0,0,1,0,20240101,20240630"""


def _feed(tmp_path, name="f.zip", **over):
    files = {"agency.txt": AGENCY, "stops.txt": STOPS, "routes.txt": ROUTES, "calendar.txt": CAL}
    files.update(over)
    return write_feed(tmp_path / name, files)


def test_calendar_dates_exceptions(tmp_path):
    trips = "route_id,service_id,trip_id\nR,WK,w1\nR,SA,s1\nR,EXTRA,e1"
    st = """trip_id,arrival_time,departure_time,stop_id,stop_sequence
w1,08:00:00,08:00:00,a,1
w1,08:05:00,08:05:00,b,2
s1,09:00:00,09:00:00,a,1
s1,09:05:00,09:05:00,b,2
e1,10:00:00,10:00:00,b,1
e1,10:06:00,10:06:00,c,2"""
    # Wednesday 2024-03-13: WK removed, SA and EXTRA added by exception
    cd = "service_id,date,exception_type\nWK,20240313,2\nSA,20240313,1\nEXTRA,20240313,1"
    feed = _feed(tmp_path, **{"trips.txt": trips, "stop_times.txt": st, "calendar_dates.txt": cd})
    tables, stats = read_gtfs([feed], "2024-03-13")
    assert sorted(tables.trips["trip_id"]) == ["f:e1", "f:s1"]
    tables2, _ = read_gtfs([feed], "2024-03-14")  # a normal Thursday
    assert sorted(tables2.trips["trip_id"]) == ["f:w1"]


def test_date_outside_feed_gives_range(tmp_path):
    trips = "route_id,service_id,trip_id\nR,WK,w1"
    st = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nw1,08:00:00,08:00:00,a,1\nw1,08:05:00,08:05:00,b,2"
    feed = _feed(tmp_path, **{"trips.txt": trips, "stop_times.txt": st})
    with pytest.raises(GTFSError, match=r"no service on 2025-01-08.*2024-01-01 \.\. 2024-06-30.*transit.date"):
        read_gtfs([feed], "2025-01-08")


def test_broken_zip_and_missing_file(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(GTFSError, match="bad.zip: not a readable zip"):
        read_gtfs([bad], "2024-03-13")
    with zipfile.ZipFile(tmp_path / "nost.zip", "w") as zf:
        zf.writestr("stops.txt", STOPS)
        zf.writestr("routes.txt", ROUTES)
        zf.writestr("trips.txt", "route_id,service_id,trip_id\nR,WK,w1")
        zf.writestr("calendar.txt", CAL)
    with pytest.raises(GTFSError, match="nost.zip: stop_times.txt is missing"):
        read_gtfs([tmp_path / "nost.zip"], "2024-03-13")
    with pytest.raises(GTFSError, match="not found"):
        read_gtfs([tmp_path / "nothere.zip"], "2024-03-13")


def test_frequencies_exact_and_inexact(tmp_path):
    trips = "route_id,service_id,trip_id\nR,WK,f0\nX,WK,f1"
    st = """trip_id,arrival_time,departure_time,stop_id,stop_sequence
f0,06:00:00,06:00:00,a,1
f0,06:04:00,06:05:00,b,2
f0,06:10:00,06:10:00,c,3
f1,00:00:00,00:00:00,c,1
f1,00:07:00,00:07:00,d,2"""
    freq = """trip_id,start_time,end_time,headway_secs,exact_times
f0,07:00:00,08:00:00,600,1
f0,08:00:00,09:00:00,1200,1
f1,23:30:00,25:00:00,1800,0"""
    feed = _feed(tmp_path, **{"trips.txt": trips, "stop_times.txt": st, "frequencies.txt": freq})
    tables, stats = read_gtfs([feed], "2024-03-13")
    s = tables.stop_times
    first = s[s["stop_sequence"] == 1]
    f0 = np.sort(first.loc[first["trip_id"].str.startswith("f:f0"), "departure_s"].to_numpy())
    expect = np.r_[np.arange(7 * 3600, 8 * 3600, 600), np.arange(8 * 3600, 9 * 3600, 1200)]
    np.testing.assert_array_equal(f0, expect)
    f1 = np.sort(first.loc[first["trip_id"].str.startswith("f:f1"), "departure_s"].to_numpy())
    # today's 23:30, 24:00, 24:30 (past midnight kept as > 86400) and yesterday's
    # 24:00 and 24:30 shifted by -24 h (00:00, 00:30)
    np.testing.assert_array_equal(f1, [0, 1800, 84600, 86400, 88200])
    # run and dwell times of the template are kept
    one = s[s["trip_id"] == first.loc[first["departure_s"] == 7 * 3600 + 600, "trip_id"].iloc[0]]
    np.testing.assert_array_equal(one["arrival_s"] - 7 * 3600 - 600, [0, 240, 600])
    np.testing.assert_array_equal(one["departure_s"] - one["arrival_s"], [0, 60, 0])
    # a window keeps only trips running in it
    t_w, _ = read_gtfs([feed], "2024-03-13", window_s=(7 * 3600, 7 * 3600 + 1200))
    dep0 = np.sort(t_w.stop_times.query("stop_sequence == 1")["departure_s"].to_numpy())
    np.testing.assert_array_equal(dep0, [7 * 3600, 7 * 3600 + 600, 7 * 3600 + 1200])


def test_interpolation_and_after_midnight(tmp_path):
    trips = "route_id,service_id,trip_id\nR,WK,n1"
    # b and c untimed: interpolated by distance (a-b-c 1.11 km apart each, c-d 3.3 km)
    st = """trip_id,arrival_time,departure_time,stop_id,stop_sequence
n1,24:50:00,24:50:00,a,1
n1,,,b,2
n1,,,c,3
n1,25:40:00,25:40:00,d,4"""
    feed = _feed(tmp_path, **{"trips.txt": trips, "stop_times.txt": st})
    t, stats = read_gtfs([feed], "2024-03-13")  # Wednesday: today's trip + Tuesday's after midnight
    today = t.stop_times[t.stop_times["trip_id"] == "f:n1"]["arrival_s"].to_numpy()
    assert today[0] == 24 * 3600 + 50 * 60 and today[-1] == 25 * 3600 + 40 * 60
    # b is a fifth of the way (1 of 5 equal-distance segments), c two fifths
    np.testing.assert_allclose(today[1:3], [89400 + 600, 89400 + 1200], atol=2)
    prev = t.stop_times[t.stop_times["trip_id"] == "f:n1@prev"]["arrival_s"].to_numpy()
    np.testing.assert_array_equal(prev, today - 86400)
    assert stats["feeds"][0]["interpolated_stop_times"] == 2
    # Monday: Sunday has no service, so no @prev trip
    t2, _ = read_gtfs([feed], "2024-03-11")
    assert not t2.trips["trip_id"].str.endswith("@prev").any()


def test_area_drops_stops_with_warning(tmp_path):
    trips = "route_id,service_id,trip_id\nR,WK,w1"
    st = """trip_id,arrival_time,departure_time,stop_id,stop_sequence
w1,08:00:00,08:00:00,a,1
w1,08:05:00,08:05:00,b,2
w1,08:10:00,08:10:00,d,3"""
    feed = _feed(tmp_path, **{"trips.txt": trips, "stop_times.txt": st})
    area = shapely.box(-51.3, -30.03, -51.1, -29.9)  # excludes d
    with pytest.warns(DataQualityWarning, match="dropped 1 of 3 served stops outside"):
        t, stats = read_gtfs([feed], "2024-03-13", area_4326=area)
    assert stats["stops_dropped_outside_area"] == 1
    assert list(t.stop_times["stop_id"]) == ["f:a", "f:b"]


def test_porto_alegre_two_feeds(data):
    feeds = [data / "porto_alegre" / "poa_eptc.zip", data / "porto_alegre" / "poa_trensurb.zip"]
    t, stats = read_gtfs(feeds, "2019-05-13")
    assert set(t.trips["feed"]) == {"poa_eptc", "poa_trensurb"}
    assert t.stops["stop_id"].is_unique and t.trips["trip_id"].is_unique
    assert t.stop_times["stop_id"].isin(t.stops["stop_id"]).all()
    eptc = stats["feeds"][0]
    # EPTC times only the ends of each trip: the rest is interpolated, monotone along trips
    assert eptc["interpolated_stop_times"] > 0.5 * len(t.stop_times[t.stop_times["trip_id"].str.startswith("poa_eptc")])
    st = t.stop_times
    same = st["trip_id"].to_numpy()[1:] == st["trip_id"].to_numpy()[:-1]
    assert (np.diff(st["arrival_s"].to_numpy())[same] >= 0).all()
    assert stats["feeds"][1]["route_types"] == {2: stats["feeds"][1]["trips_on_date"]}
    with pytest.raises(GTFSError, match="poa_eptc.zip: no service on 2021-05-13; the feed runs 2019-04-15"):
        read_gtfs(feeds, "2021-05-13")


def test_sao_paulo_frequencies_match_gtfs_kit(data):
    import gtfs_kit as gk

    path = data / "sao_paulo" / "spo.zip"
    t, stats = read_gtfs([path], "2019-05-15")
    prev = t.trips["trip_id"].str.endswith("@prev")
    assert stats["feeds"][0]["previous_day_trips"] == prev.sum() > 0  # night trips of Tuesday
    feed = gk.read_feed(path, dist_units="km")
    ex = gk.expand_frequencies(feed)
    active = set(gk.get_active_services(feed, "20190515"))
    ex_trips = ex.trips[ex.trips["service_id"].isin(active)]
    assert stats["trips"] - prev.sum() == len(ex_trips) and stats["feeds"][0]["frequency_trips"] > 0
    today = t.stop_times[~t.stop_times["trip_id"].str.endswith("@prev")]
    ours = np.sort(today["departure_s"].to_numpy())
    st = ex.stop_times[ex.stop_times["trip_id"].isin(ex_trips["trip_id"])]
    theirs = np.sort(st["departure_time"].map(gk.timestr_to_seconds).to_numpy(np.int64))
    np.testing.assert_array_equal(ours, theirs)


def test_freetown_extended_route_types(data):
    t, stats = read_gtfs([data / "freetown" / "gtfs_freetown_wimt_2018.zip"], "2019-03-13",
                         window_s=(7 * 3600, 9 * 3600))
    types = stats["feeds"][0]["route_types"]
    assert 1501 in types and types[1501] > 0.5 * stats["trips"]
    assert stats["feeds"][0]["frequency_trips"] > 0
    first = t.stop_times.groupby("trip_id")["departure_s"].min()
    last = t.stop_times.groupby("trip_id")["arrival_s"].max()
    assert (first <= 9 * 3600).all() and (last >= 7 * 3600).all()


def test_window_without_trips_warns_with_span(data):
    feeds = [data / "porto_alegre" / "poa_eptc.zip", data / "porto_alegre" / "poa_trensurb.zip"]
    # the EPTC sample feed has no morning buses: the warning names the span it does run
    with pytest.warns(DataQualityWarning, match=r"poa_eptc.zip: no trips between 07:00 and 09:00 .*trips run 1\d:\d\d-1\d:\d\d"):
        t, stats = read_gtfs(feeds, "2019-05-13", window_s=(7 * 3600, 9 * 3600))
    assert set(t.trips["feed"]) == {"poa_trensurb"}
