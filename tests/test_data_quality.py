"""Data problems that do not stop a run are warnings naming the file and counting what was
dropped; the report lists every warning in full. Broken inputs are built in code."""

from __future__ import annotations

import warnings

import geopandas as gpd
import pytest
from shapely.geometry import Point, box

from _synthetic import make_results
from careblocks.config import config_from_dict
from careblocks.errors import DataQualityWarning
from careblocks.io.gtfs import read_gtfs
from careblocks.outputs.report import build_report
from careblocks.services import _layer_service
from reference_transit import write_feed

AREA = box(24.93, 60.16, 24.96, 60.18)


def _layer(tmp_path, points, names):
    p = tmp_path / "clinics.gpkg"
    gpd.GeoDataFrame({"name": names}, geometry=points, crs="EPSG:4326").to_file(p)
    cfg = config_from_dict({"services": {"health": {"use_osm": False, "layers": [
        {"path": str(p), "name_column": "name"}]}}})
    return p, cfg.services["health"].layers[0]


def _read(layer):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        out, _ = _layer_service("health", 0, layer, AREA, tuple(AREA.bounds))
    return out, [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]


def test_empty_facility_layer_is_named(tmp_path):
    p, layer = _layer(tmp_path, [Point(24.94, 60.17)], ["A"])
    gpd.GeoDataFrame({"name": []}, geometry=gpd.GeoSeries([], crs="EPSG:4326")).to_file(p)
    out, msgs = _read(layer)
    assert len(out) == 0
    assert any(str(p) in m and "no rows" in m for m in msgs), msgs


def test_every_point_outside_the_area_is_counted(tmp_path):
    # five points in Helsinki's bounding box but outside the (smaller) area, like a wrong CRS
    pts = [Point(24.95 + 0.1 * i, 60.17) for i in range(1, 6)]
    p, layer = _layer(tmp_path, pts, list("ABCDE"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataQualityWarning)
        out, _ = _layer_service("health", 0, layer, AREA, None)
    msgs = [str(w.message) for w in caught]
    assert len(out) == 0
    assert any(str(p) in m and "dropped all 5 of 5" in m for m in msgs), msgs


def test_exact_duplicates_are_dropped_and_counted(tmp_path):
    pts = [Point(24.94, 60.17), Point(24.94, 60.17), Point(24.94, 60.17), Point(24.945, 60.171)]
    p, layer = _layer(tmp_path, pts, ["A", "A", "B", "A"])  # only the second row is an exact copy
    out, msgs = _read(layer)
    assert len(out) == 3
    assert any(str(p) in m and "dropped 1 exact duplicate" in m for m in msgs), msgs


AGENCY = "agency_id,agency_name,agency_url,agency_timezone\nA,A,http://a.org,UTC"
STOPS = "stop_id,stop_name,stop_lat,stop_lon\na,A,-30.00,-51.20\nb,B,-30.01,-51.20\nc,C,-30.02,-51.20"
ROUTES = "route_id,route_short_name,route_type\nR,R,3"
CAL = ("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
       "WK,1,1,1,1,1,0,0,20240101,20240630")
TRIPS = "route_id,service_id,trip_id\nR,WK,t1\nR,WK,t2"


def _gtfs(tmp_path, st):
    return write_feed(tmp_path / "feed.zip", {"agency.txt": AGENCY, "stops.txt": STOPS,
                                              "routes.txt": ROUTES, "calendar.txt": CAL,
                                              "trips.txt": TRIPS, "stop_times.txt": st})


def test_malformed_times_and_unknown_ids_are_counted(tmp_path):
    st = """trip_id,arrival_time,departure_time,stop_id,stop_sequence
t1,08:00:00,08:00:00,a,1
t1,8h05,8h05,b,2
t1,08:10:00,08:10:00,c,3
t2,09:00:00,09:00:00,a,1
t2,09:05:00,09:05:00,b,2
ghost,09:00:00,09:00:00,a,1
t2,09:09:00,09:09:00,nowhere,3"""
    feed = _gtfs(tmp_path, st)
    with pytest.warns(DataQualityWarning) as rec:
        tables, _ = read_gtfs([feed], "2024-03-13")
    msgs = [str(w.message) for w in rec]
    assert any("feed.zip" in m and "dropped 2 of 7 stop_times.txt rows" in m
               and "trip_id not in trips.txt (1)" in m and "stop_id not in stops.txt (1)" in m
               for m in msgs), msgs
    assert any("feed.zip" in m and "1 trips have 2 malformed times" in m for m in msgs), msgs
    # the malformed stop is interpolated between its neighbours, not dropped
    t1 = tables.stop_times[tables.stop_times["trip_id"] == "feed:t1"]
    assert t1["arrival_s"].tolist() == [8 * 3600, 8 * 3600 + 300, 8 * 3600 + 600]


def test_report_lists_every_warning_in_full():
    r = make_results()
    msgs = [f"services: services.health.layers[0] (clinics{i}.gpkg): dropped {i} of 9 <b>rows</b>"
            for i in range(1, 4)]
    r.metadata["warnings"] = msgs
    html = build_report(r)
    assert "All data-quality warnings" in html
    section = html.split("All data-quality warnings", 1)[1].split("</ul>", 1)[0]
    assert section.count("<li>") == 3
    for m in msgs:
        assert m.replace("<", "&lt;").replace(">", "&gt;") in section
