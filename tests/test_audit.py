"""The input audit: wrong data gets an error or a warning, never a confident answer.

Every broken input is built in code, on a small synthetic study (a 2 km street grid as a road
layer, 16 census squares, four daycares) whose good version runs clean. Each case asserts
the audit's verdict, the exit code, the one line naming the file/column/key, and that no
output is written when the audit finds an error (so no figure is computed from flagged data).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner
from shapely.geometry import LineString, Point, box

from careblocks.audit import Audit
from careblocks.cli import cli
from careblocks.config import config_from_dict
from careblocks.errors import DataQualityWarning

LON0, LAT0 = 24.90, 60.20
DLON, DLAT = 0.0018, 0.0009  # about 100 m each at this latitude
N = 21  # grid lines per direction: 2 km x 2 km


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_one_line(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("careblocks: error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


# --------------------------------------------------------------------------------------
# The synthetic study
# --------------------------------------------------------------------------------------


def roads(x_share: float = 1.0) -> gpd.GeoDataFrame:
    """Street grid lines (EPSG:4326) covering the west ``x_share`` of the area."""
    nx = max(2, int(round((N - 1) * x_share)) + 1)
    lines = []
    for i in range(nx):  # north-south streets
        lines.append(LineString([(LON0 + i * DLON, LAT0), (LON0 + i * DLON, LAT0 + (N - 1) * DLAT)]))
    for j in range(N):  # east-west streets, cut where the extract ends
        lines.append(LineString([(LON0, LAT0 + j * DLAT), (LON0 + (nx - 1) * DLON, LAT0 + j * DLAT)]))
    return gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines, crs=4326)


def census_squares() -> gpd.GeoDataFrame:
    """16 squares (4 x 4) over the grid, 1,000-4,000 people each, children a tenth."""
    geoms, pop = [], []
    step_x, step_y = (N - 1) * DLON / 4, (N - 1) * DLAT / 4
    for i in range(4):
        for j in range(4):
            geoms.append(box(LON0 + i * step_x, LAT0 + j * step_y,
                             LON0 + (i + 1) * step_x, LAT0 + (j + 1) * step_y))
            pop.append(1000.0 * (1 + (i + j) % 4))
    pop = np.array(pop)
    return gpd.GeoDataFrame(
        {"unit": [f"u{k:02d}" for k in range(16)], "pop": pop, "kids": (pop / 10).round(),
         "poor": (pop / 5).round()},
        geometry=geoms, crs=4326,
    )


def daycares() -> gpd.GeoDataFrame:
    pts = [Point(LON0 + a * (N - 1) * DLON, LAT0 + b * (N - 1) * DLAT)
           for a, b in ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))]
    return gpd.GeoDataFrame({"name": [f"Daycare {k}" for k in range(4)]}, geometry=pts, crs=4326)


def study(tmp: Path, *, census: gpd.GeoDataFrame | None = None, census_path: Path | None = None,
          census_extra: str = "", extra: str = "", road_share: float = 1.0,
          population_from_census: bool = True) -> Path:
    """Write the study's files and config; ``census``/``census_path`` replace the good census."""
    tmp.mkdir(parents=True, exist_ok=True)
    roads(road_share).to_file(tmp / "roads.gpkg", layer="roads")
    daycares().to_file(tmp / "daycares.gpkg")
    if census_path is None:
        census_path = tmp / "census.gpkg"
        (census if census is not None else census_squares()).to_file(census_path)
    bbox = [LON0, LAT0, LON0 + (N - 1) * DLON, LAT0 + (N - 1) * DLAT]
    pop = (f'[population]\nsource = "layer"\nlayer = {{ path = "{census_path}" }}\ncolumn = "pop"\n'
           if population_from_census else "")
    text = f"""
[study]
name = "Audit test"
bbox = {bbox}

[network]
source = "road_layer"
path = "{tmp / 'roads.gpkg'}"
layer = "roads"

{pop}
[census]
layer = {{ path = "{census_path}" }}
total_column = "pop"
{census_extra}

[services.daycare]
use_osm = false
layers = [ {{ path = "{tmp / 'daycares.gpkg'}", name_column = "name", label = "test" }} ]

[sites]
enabled = false

[outputs]
map = false

{extra}
"""
    cfg = tmp / "study.toml"
    cfg.write_text(text)
    return cfg


def run(cfg: Path, *args: str):
    out = cfg.parent / "out"
    return invoke("run", str(cfg), "--out", str(out), *args), out


def assert_refused(cfg: Path, *needles: str) -> str:
    """Exit 2 with one line, on `validate` and on `run`, and no output written."""
    err = assert_one_line(invoke("validate", str(cfg)), *needles)
    r, out = run(cfg)
    assert_one_line(r, *needles)
    assert not out.exists() or not any(out.iterdir())
    return err


def metadata(out: Path) -> dict:
    meta = pyogrio.read_dataframe(out / "careblocks.gpkg", layer="run_metadata", read_geometry=False)
    return {k: json.loads(v) for k, v in zip(meta["key"], meta["value"], strict=True)}


# --------------------------------------------------------------------------------------
# The good study passes; its report and run_metadata carry the audit
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    cfg = study(tmp_path_factory.mktemp("good"))
    r, out = run(cfg)
    assert r.exit_code == 0, r.output
    return cfg, out, r


def test_good_study_passes_with_audit_in_report_and_metadata(good) -> None:
    cfg, out, r = good
    audit = metadata(out)["audit"]
    assert audit["verdict"] in ("ok", "warning") and audit["errors"] == 0
    checks = {f["check"] for f in audit["findings"]}
    assert {"files", "census.geometry", "census.total", "coverage.network",
            "coverage.population"} <= checks
    total = next(f for f in audit["findings"] if f["check"] == "census.total")
    assert total["value"] == pytest.approx(census_squares()["pop"].sum(), rel=1e-3)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Input audit</h2>" in html and "coverage.network" in html


# --------------------------------------------------------------------------------------
# 2. Only regular files
# --------------------------------------------------------------------------------------


def test_census_path_is_a_folder(tmp_path) -> None:
    folder = tmp_path / "census_folder.gpkg"
    folder.mkdir()
    assert_refused(study(tmp_path, census_path=folder, population_from_census=False),
                   "census.layer.path", "is a folder")


def test_census_path_is_a_fifo_does_not_hang(tmp_path) -> None:
    fifo = tmp_path / "census.gpkg"
    os.mkfifo(fifo)
    cfg = study(tmp_path, census_path=fifo, population_from_census=False)
    for cmd in ("validate", "run"):
        p = subprocess.run([sys.executable, "-m", "careblocks", cmd, str(cfg)], capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
        assert p.returncode == 2, p.stderr
        assert "census.layer.path" in p.stderr and "FIFO" in p.stderr
        assert p.stderr.count("\n") == 1


def test_network_path_is_dev_zero(tmp_path) -> None:
    cfg = study(tmp_path)
    text = cfg.read_text().replace(f'path = "{tmp_path / "roads.gpkg"}"', 'path = "/dev/zero"')
    cfg.write_text(text)
    assert_refused(cfg, "network.path", "/dev/zero", "device")


def test_config_file_linked_to_dev_zero(tmp_path) -> None:
    link = tmp_path / "study.toml"
    link.symlink_to("/dev/zero")
    assert_one_line(invoke("validate", str(link)), "config file", "device")


def test_dangling_link_names_the_key(tmp_path) -> None:
    link = tmp_path / "census_link.gpkg"
    link.symlink_to(tmp_path / "gone.gpkg")
    assert_refused(study(tmp_path, census_path=link, population_from_census=False),
                   "census.layer.path", "dangling link")


def test_unzipped_gtfs_folder_is_one_line(tmp_path) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "stops.txt").write_text("stop_id,stop_name,stop_lat,stop_lon\n")
    cfg = study(tmp_path, extra=f'[transit]\nenabled = true\nfeeds = ["{feed}"]\ndate = "2024-05-15"\n')
    assert_refused(cfg, "transit.feeds[0]", "is a folder", "zip")


def test_file_above_the_size_limit(tmp_path) -> None:
    cfg = study(tmp_path, extra="[audit]\nmax_input_mb = 0.001\n")
    assert_refused(cfg, "audit.max_input_mb")


# --------------------------------------------------------------------------------------
# 1. Census: duplicates, geometry types, value ranges, published totals, coverage
# --------------------------------------------------------------------------------------


def test_every_unit_listed_twice(tmp_path) -> None:
    c = census_squares()
    err = assert_refused(study(tmp_path, census=pd.concat([c, c], ignore_index=True)),
                         "census.layer", "16 of 32 units repeat another unit's geometry")
    assert "counted twice" in err


def test_line_among_polygons(tmp_path) -> None:
    c = census_squares()
    c.loc[len(c)] = {"unit": "road", "pop": 80000.0, "kids": 0.0, "poor": 0.0,
                     "geometry": LineString([(LON0, LAT0), (LON0 + 0.01, LAT0 + 0.01)])}
    assert_refused(study(tmp_path, census=c, population_from_census=False),
                   "census.layer", "LineString", "1 units are not polygons")


def test_points_mixed_with_polygons(tmp_path) -> None:
    c = census_squares()
    c.loc[len(c)] = {"unit": "pt", "pop": 10.0, "kids": 1.0, "poor": 0.0,
                     "geometry": Point(LON0 + 0.001, LAT0 + 0.001)}
    assert_refused(study(tmp_path, census=c, population_from_census=False),
                   "census.layer", "not polygons")


def test_group_three_times_the_total(tmp_path) -> None:
    c = census_squares()
    c.loc[3, "kids"] = 3 * c.loc[3, "pop"]
    assert_refused(study(tmp_path, census=c, census_extra='groups = { children_under5 = "kids" }'),
                   "column 'kids' (census.groups.children_under5)", "300%")


def test_rate_above_one_in_a_rate_like_column(tmp_path) -> None:
    c = census_squares()
    c["poor"] = np.linspace(0.1, 0.6, 16)
    c.loc[5, "poor"] = 1.35
    assert_refused(study(tmp_path, census=c, census_extra='groups = { poverty = "poor" }'),
                   "column 'poor' (census.groups.poverty)", "0-1 rate", "1.35")


def test_negative_count(tmp_path) -> None:
    c = census_squares()
    c.loc[2, "kids"] = -40
    assert_refused(study(tmp_path, census=c, census_extra='groups = { children_under5 = "kids" }'),
                   "kids", "negative")


def test_total_disagrees_with_published_figure(tmp_path) -> None:
    real = census_squares()["pop"].sum()
    cfg = study(tmp_path, extra=f"[audit]\npublished_population = {real * 2}\n")
    assert_refused(cfg, "audit.published_population", "-50%")


def test_total_agrees_with_published_figure(tmp_path) -> None:
    real = census_squares()["pop"].sum()
    cfg = study(tmp_path, extra=f"[audit]\npublished_population = {real * 1.03}\n")
    r = invoke("validate", str(cfg))
    assert r.exit_code == 0, r.output


def test_census_covering_part_of_the_area_warns_then_errors(tmp_path) -> None:
    c = census_squares()
    west = c[c.geometry.centroid.x < LON0 + 3 * (N - 1) * DLON / 4]  # 3 of 4 columns: 75 %
    cfg = study(tmp_path / "w", census=west, population_from_census=False)
    r = invoke("validate", str(cfg))
    assert r.exit_code == 0 and "census units cover 75% of the study area" in " ".join(r.output.split())
    assert_one_line(invoke("validate", str(cfg), "--strict"), "census units cover 75%", "--strict")
    cfg2 = study(tmp_path / "e", census=west, population_from_census=False,
                 extra="[audit]\nerror_area_share = 0.8\n")
    assert_refused(cfg2, "census units cover 75% of the study area")


def test_poverty_with_districts_does_not_crash(tmp_path) -> None:
    districts = gpd.GeoDataFrame(
        {"name": ["West", "East"]},
        geometry=[box(LON0, LAT0, LON0 + 10 * DLON, LAT0 + 20 * DLAT),
                  box(LON0 + 10 * DLON, LAT0, LON0 + 20 * DLON, LAT0 + 20 * DLAT)], crs=4326)
    districts.to_file(tmp_path / "districts.gpkg")
    cfg = study(tmp_path, census_extra=(
        'groups = { children_under5 = "kids", poverty = "poor" }\n'
        f'districts = {{ path = "{tmp_path / "districts.gpkg"}" }}\ndistrict_name_column = "name"'))
    r, out = run(cfg)
    assert r.exit_code == 0, r.output
    o = pyogrio.read_dataframe(out / "careblocks.gpkg", layer="origins")
    # the poverty count is kept (not overwritten by the 0-1 component), beside its score
    assert o["poverty"].sum() == pytest.approx(census_squares()["poor"].sum(), rel=1e-3)
    assert o["poverty_score"].between(0, 1).all()


# --------------------------------------------------------------------------------------
# 1. Number formats and encodings
# --------------------------------------------------------------------------------------


def census_csv(tmp: Path, pops: list[str], *, encoding: str = "utf-8", names: list[str] | None = None,
               sep: str = ",", raw: bytes | None = None) -> Path:
    """The 16 census squares as a point table (lon/lat of their centres) with text counts."""
    c = census_squares()
    cen = c.geometry.centroid
    names = names or list(c["unit"])
    lines = [sep.join(["name", "lon", "lat", "pop"])]
    for n, x, y, p in zip(names, cen.x, cen.y, pops, strict=True):
        lines.append(sep.join([n, f"{x:.6f}", f"{y:.6f}", f'"{p}"' if sep in p else p]))
    path = tmp / "census.csv"
    path.write_bytes(raw if raw is not None else ("\n".join(lines) + "\n").encode(encoding))
    return path


def thousands(v: float, sep: str) -> str:
    return f"{int(v):,}".replace(",", sep)


def test_thousands_dot_read_as_thousands(tmp_path) -> None:
    pops = [thousands(v, ".") for v in census_squares()["pop"]]
    pops[0] = "812"  # a unit below 1,000 written without separator: no doubt left
    cfg = study(tmp_path, census_path=census_csv(tmp_path, pops), population_from_census=False)
    r, out = run(cfg)
    assert r.exit_code == 0, r.output
    assert "'.' as a thousands separator" in " ".join(r.output.split())
    total = census_squares()["pop"].sum() - 1000 + 812
    found = next(f for f in metadata(out)["audit"]["findings"] if f["check"] == "census.total")
    assert found["value"] == pytest.approx(total, rel=1e-9)


def test_ambiguous_thousands_dot_is_refused(tmp_path) -> None:
    pops = [thousands(v, ".") for v in census_squares()["pop"]]  # 1.000, 2.000, ...
    cfg = study(tmp_path, census_path=census_csv(tmp_path, pops), population_from_census=False)
    assert_refused(cfg, "census.csv", "column 'pop'", "'1.000'", "read two ways")


def test_dot_thousands_and_decimal_comma_with_semicolons(tmp_path) -> None:
    pops = [thousands(v, ".") + ",5" for v in census_squares()["pop"]]  # 1.000,5
    cfg = study(tmp_path, census_path=census_csv(tmp_path, pops, sep=";"),
                population_from_census=False)
    r = invoke("validate", str(cfg))
    assert r.exit_code == 0, r.output
    audit = Audit()
    from careblocks.audit.census import audit_census
    from careblocks.io.layers import study_area

    c = config_from_dict(_toml(cfg), base=tmp_path)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        audit_census(c, study_area(c), audit)
    total = next(f for f in audit.findings if f.check == "census.total")
    assert total.value == pytest.approx(census_squares()["pop"].sum() + 16 * 0.5, rel=1e-9)


def test_decimal_comma_rates_are_read(tmp_path) -> None:
    from careblocks.io.tables import parse_numbers

    with pytest.warns(DataQualityWarning, match="decimal comma"):
        s = parse_numbers(pd.Series(["0,35", "0,5", "1"]), what="t", path=Path("x.csv"), column="r")
    assert s.tolist() == [0.35, 0.5, 1.0]


def test_latin1_csv_is_read_with_a_warning(tmp_path) -> None:
    pops = [str(int(v)) for v in census_squares()["pop"]]
    names = [f"Fontibón {k}" for k in range(16)]
    cfg = study(tmp_path, census_path=census_csv(tmp_path, pops, encoding="latin-1", names=names),
                population_from_census=False, census_extra='name_column = "name"')
    r = invoke("validate", str(cfg))
    assert r.exit_code == 0, r.output
    assert "read as Latin-1" in " ".join(r.output.split())
    from careblocks.io.layers import read_vector

    with pytest.warns(DataQualityWarning):
        g = read_vector(tmp_path / "census.csv", what="census")
    assert g["name"].iloc[0] == "Fontibón 0"


def test_utf16_csv_with_bom_is_read(tmp_path) -> None:
    from careblocks.io.layers import read_vector

    pops = [str(int(v)) for v in census_squares()["pop"]]
    census_csv(tmp_path, pops, encoding="utf-16")
    g = read_vector(tmp_path / "census.csv", what="census")
    assert g["pop"].sum() == census_squares()["pop"].sum()


def test_utf16_without_bom_is_refused(tmp_path) -> None:
    pops = [str(int(v)) for v in census_squares()["pop"]]
    text = "name,lon,lat,pop\n" + "\n".join(f"u{k},{LON0},{LAT0},{p}" for k, p in enumerate(pops))
    path = census_csv(tmp_path, pops, raw=text.encode("utf-16-le"))
    cfg = study(tmp_path, census_path=path, population_from_census=False)
    assert_refused(cfg, "census.csv", "UTF-16", "UTF-8")


def test_shapefile_cpg_says_utf8_but_holds_latin1(tmp_path) -> None:
    from careblocks.io.layers import read_vector

    c = census_squares()
    c["unit"] = [f"Engativá {k}" for k in range(16)]
    shp = tmp_path / "census.shp"
    c.to_file(shp)  # UTF-8; then the .dbf's text is turned into Latin-1 bytes, .cpg unchanged
    dbf = shp.with_suffix(".dbf")
    raw = dbf.read_bytes()
    for k in range(16):
        name = f"Engativá {k}"
        raw = raw.replace(name.encode(), name.encode("latin-1") + b" ")
    dbf.write_bytes(raw)
    assert "UTF-8" in shp.with_suffix(".cpg").read_text()
    with pytest.warns(DataQualityWarning, match="Latin-1"):
        g = read_vector(shp, what="census layer (census.layer)")
    assert g["unit"].iloc[3] == "Engativá 3"


# --------------------------------------------------------------------------------------
# 1. GTFS feed statistics against the raw files
# --------------------------------------------------------------------------------------


def gtfs_zip(path: Path, *, headway: str = "600", times: tuple[str, str] = ("08:00:00", "08:10:00"),
             calendar: tuple[str, str] = ("20240101", "20241231")) -> Path:
    files = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\na,A,http://a,UTC\n",
        "stops.txt": f"stop_id,stop_name,stop_lat,stop_lon\ns1,S1,{LAT0},{LON0}\n"
                     f"s2,S2,{LAT0 + 0.01},{LON0 + 0.02}\n",
        "routes.txt": "route_id,agency_id,route_short_name,route_type\nr1,a,1,3\n",
        "trips.txt": "route_id,service_id,trip_id\nr1,wk,t1\nr1,wk,t2\n",
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
                          f"t1,{times[0]},{times[0]},s1,1\nt1,{times[1]},{times[1]},s2,2\n"
                          "t2,09:00:00,09:00:00,s1,1\nt2,09:10:00,09:10:00,s2,2\n",
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
                        f"start_date,end_date\nwk,1,1,1,1,1,0,0,{calendar[0]},{calendar[1]}\n",
        "frequencies.txt": f"trip_id,start_time,end_time,headway_secs\nt2,09:00:00,11:00:00,{headway}\n",
    }
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def gtfs_audit(tmp_path: Path, **kw) -> Audit:
    from careblocks.audit.gtfs import audit_gtfs

    feed = gtfs_zip(tmp_path / "feed.zip", **kw)
    cfg = config_from_dict({"transit": {"enabled": True, "feeds": [str(feed)], "date": "2024-05-15"}})
    audit = Audit()
    audit_gtfs(cfg, audit)
    return audit


def test_gtfs_statistics_from_the_raw_files(tmp_path) -> None:
    audit = gtfs_audit(tmp_path)
    assert audit.verdict() == "ok"
    trips = next(f for f in audit.findings if f.check == "gtfs.trips")
    assert trips.value == 2
    # 09:00 to 11:00 every 10 minutes: 12 departures; stop times 08:00-09:10
    assert "1 frequency templates giving 12 departures a day" in trips.message
    assert "08:00-09:10" in trips.message


def test_gtfs_headway_zero_is_an_error(tmp_path) -> None:
    audit = gtfs_audit(tmp_path, headway="0")
    assert audit.verdict() == "error"
    assert "frequencies.txt column 'headway_secs'" in audit.errors[0].line()
    assert "vanish" in audit.errors[0].message


def test_gtfs_negative_time_is_an_error(tmp_path) -> None:
    audit = gtfs_audit(tmp_path, times=("-01:00:00", "08:10:00"))
    assert audit.verdict() == "error"
    assert "negative times" in audit.errors[0].message and "t1" in audit.errors[0].message


def test_gtfs_reversed_calendar_is_one_coherent_line(tmp_path) -> None:
    audit = gtfs_audit(tmp_path, calendar=("20241231", "20240101"))
    (err,) = audit.errors
    assert "calendar.txt" in err.where and "swap start_date and end_date" in err.message


def test_gtfs_headway_zero_stops_the_run(tmp_path) -> None:
    feed = gtfs_zip(tmp_path / "feed.zip", headway="0")
    cfg = study(tmp_path, extra=f'[transit]\nenabled = true\nfeeds = ["{feed}"]\ndate = "2024-05-15"\n')
    assert_refused(cfg, "transit.feeds[0]: feed.zip: frequencies.txt column 'headway_secs'")


# --------------------------------------------------------------------------------------
# 3. Network sanity
# --------------------------------------------------------------------------------------


def test_a_long_detached_way_does_not_win(tmp_path) -> None:
    from careblocks.network.graph import build_walk_network

    grid = roads()
    nodes, edges = _graph_from_lines(grid)
    # one detached way drawn with 100,000 nodes, 2 km long, far east of the grid
    k = 100_000
    xs = np.linspace(LON0 + 0.1, LON0 + 0.1 + 0.036, k)
    ids = np.arange(10_000_000, 10_000_000 + k)
    nodes = pd.concat([nodes, gpd.GeoDataFrame({"node_id": ids}, geometry=gpd.points_from_xy(
        xs, np.full(k, LAT0)), crs=4326)], ignore_index=True)
    edges = pd.concat([edges, gpd.GeoDataFrame({"u": ids[:-1], "v": ids[1:]},
                                               geometry=[None] * (k - 1), crs=4326)], ignore_index=True)
    with pytest.warns(DataQualityWarning, match="dropped 100000"):
        net, stats = build_walk_network(nodes, edges, crs="EPSG:32635")
    assert net.n_nodes == N * N and stats["dropped_nodes"] == k


def test_nodes_at_latitude_91_are_reported(tmp_path) -> None:
    from careblocks.network.graph import build_walk_network

    nodes, edges = _graph_from_lines(roads())
    nodes.loc[0, "geometry"] = Point(LON0, 91.0)
    bad_id = int(nodes.loc[0, "node_id"])
    with pytest.warns(DataQualityWarning, match=f"1 nodes have invalid coordinates.*node {bad_id}.*lat 91"):
        net, _ = build_walk_network(nodes, edges, crs="EPSG:32635")
    assert net.n_nodes == N * N - 1


def test_extract_covering_the_west_30_percent_is_an_error(tmp_path) -> None:
    err = assert_refused(study(tmp_path, road_share=0.3), "network (", "walking network's extent")
    share = int(err.split("extent: ")[1].split("%")[0])
    assert 30 <= share <= 50  # the west 30 % plus the 300 m margin


def test_extract_covering_most_of_the_area_is_a_warning_with_the_figure(tmp_path) -> None:
    cfg = study(tmp_path, road_share=0.6, extra="[audit]\ncoverage_radius_m = 150\n")
    r = invoke("validate", str(cfg))
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "walking network's extent: 6" in text and "below audit.min_area_share 90%" in text
    assert_one_line(invoke("validate", str(cfg), "--strict"), "--strict")


def test_kept_component_far_from_people_is_flagged() -> None:
    cfg = config_from_dict({})
    origins = pd.DataFrame({"population": [100.0, 300.0, 600.0], "snap_m": [10.0, 50.0, 2000.0]})
    from careblocks.audit.coverage import audit_origin_coverage

    audit = Audit()
    share = audit_origin_coverage(cfg, origins, audit)  # 40 %: below error_area_share
    assert share == pytest.approx(0.4)
    assert audit.errors[0].message.startswith("people living within 300 m of the kept network: 40%")
    origins.loc[2, "snap_m"] = 20.0
    origins.loc[0, "snap_m"] = 900.0  # (300 + 600) / 1080 = 83 % within reach: a warning
    origins.loc[0, "population"] = 180.0
    audit = Audit()
    with pytest.warns(DataQualityWarning, match="kept network: 83%"):
        audit_origin_coverage(cfg, origins, audit)
    assert audit.verdict() == "warning"


def _graph_from_lines(lines: gpd.GeoDataFrame):
    """Nodes at every grid crossing, edges between neighbours (reader output format)."""
    ids, pts, us, vs = [], [], [], []
    for i in range(N):
        for j in range(N):
            ids.append(i * N + j)
            pts.append(Point(LON0 + i * DLON, LAT0 + j * DLAT))
            if i:
                us.append((i - 1) * N + j)
                vs.append(i * N + j)
            if j:
                us.append(i * N + j - 1)
                vs.append(i * N + j)
    nodes = gpd.GeoDataFrame({"node_id": np.array(ids, dtype=np.int64)}, geometry=pts, crs=4326)
    edges = gpd.GeoDataFrame({"u": us, "v": vs}, geometry=[None] * len(us), crs=4326)
    return nodes, edges


# --------------------------------------------------------------------------------------
# 4. Text is text
# --------------------------------------------------------------------------------------


def test_nul_bytes_in_names_are_removed_and_never_merge(tmp_path) -> None:
    from careblocks.io.layers import read_vector

    path = tmp_path / "districts.csv"
    path.write_bytes(b"name,lon,lat\nKennedy\x00 North,24.9,60.2\nKennedy\x00 South,24.91,60.2\n"
                     b"Usme\x07,24.92,60.2\n")
    with pytest.warns(DataQualityWarning, match="NUL or control characters removed from 3 values"):
        g = read_vector(path, what="districts")
    assert g["name"].tolist() == ["Kennedy North", "Kennedy South", "Usme"]


def test_districts_whose_names_differ_after_a_nul_do_not_merge(tmp_path) -> None:
    districts = gpd.GeoDataFrame(
        {"name": ["Kennedy\x00 West", "Kennedy\x00 East"]},
        geometry=[box(LON0, LAT0, LON0 + 10 * DLON, LAT0 + 20 * DLAT),
                  box(LON0 + 10 * DLON, LAT0, LON0 + 20 * DLON, LAT0 + 20 * DLAT)], crs=4326)
    path = tmp_path / "districts.geojson"
    path.write_text(districts.to_json())  # JSON keeps the NUL as \u0000; GDAL would cut there
    cfg = study(tmp_path, census_extra=(
        'groups = { children_under5 = "kids" }\n'
        f'districts = {{ path = "{path}" }}\ndistrict_name_column = "name"'))
    r, out = run(cfg)
    assert r.exit_code == 0, r.output
    assert "NUL or control characters removed" in " ".join(r.output.split())
    d = pyogrio.read_dataframe(out / "careblocks.gpkg", layer="districts")
    people = dict(zip(d["district"], d["population"], strict=True))
    assert set(people) == {"Kennedy West", "Kennedy East"}
    total = census_squares()["pop"].sum()
    assert sum(people.values()) == pytest.approx(total, rel=1e-3)
    assert max(people.values()) < 0.7 * total  # neither holds the whole population


def test_districts_sharing_a_name_are_a_warning(tmp_path) -> None:
    districts = gpd.GeoDataFrame(
        {"name": ["Kennedy", "Kennedy"]},
        geometry=[box(LON0, LAT0, LON0 + 10 * DLON, LAT0 + 20 * DLAT),
                  box(LON0 + 10 * DLON, LAT0, LON0 + 20 * DLON, LAT0 + 20 * DLAT)], crs=4326)
    districts.to_file(tmp_path / "districts.gpkg")
    cfg = study(tmp_path, census_extra=(
        f'districts = {{ path = "{tmp_path / "districts.gpkg"}" }}\ndistrict_name_column = "name"'))
    r = invoke("validate", str(cfg))
    assert r.exit_code == 0, r.output
    assert "2 of 2 districts share a name with another" in " ".join(r.output.split())
    assert_one_line(invoke("validate", str(cfg), "--strict"), "census.districts", "'Kennedy'")


def test_service_label_with_dollar_signs_does_not_break_the_report(tmp_path) -> None:
    cfg = study(tmp_path)
    cfg.write_text(cfg.read_text().replace('[services.daycare]\n',
                                           '[services.daycare]\nlabel = "Care $5 a day $ \\\\frac{"\n'))
    r, out = run(cfg)
    assert r.exit_code == 0, r.output
    assert "Care $5 a day $ \\frac{" in (out / "report.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------
# 5. Severity policy
# --------------------------------------------------------------------------------------


def test_strict_turns_a_warning_into_exit_2_before_any_output(good, tmp_path) -> None:
    cfg, _, r = good
    assert "warning" in r.output  # the good study has a few warnings (e.g. none is empty)
    r2, out = invoke("run", str(cfg), "--out", str(tmp_path / "o"), "--strict"), tmp_path / "o"
    assert_one_line(r2, "--strict")
    assert not out.exists() or not any(out.iterdir())


def test_warnings_reach_metadata_and_report_in_full(tmp_path) -> None:
    c = census_squares()
    west = c[c.geometry.centroid.x < LON0 + 3 * (N - 1) * DLON / 4]
    cfg = study(tmp_path, census=west, population_from_census=False)
    r, out = run(cfg)
    assert r.exit_code == 0, r.output
    meta = metadata(out)
    line = next(w for w in meta["warnings"] if "census units cover 75%" in w)
    assert meta["audit"]["verdict"] == "warning"
    html = (out / "report.html").read_text(encoding="utf-8")
    # in full, with the local folders cut (the report is shared): the file name stays
    shown = line.split(": ", 1)[1].replace(str(tmp_path) + "/", "")
    assert "census.gpkg: census units cover 75%" in shown
    assert shown in html.replace("&#x27;", "'")


def _toml(cfg: Path) -> dict:
    import tomllib

    return tomllib.loads(cfg.read_text())
