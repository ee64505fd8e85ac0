"""GeoPackage writer: layers, columns, CRS, run metadata, QGIS styles, atomic writes.

Inputs are built in code (tests/_synthetic.py); the file is re-opened with pyogrio, with
sqlite3 and with GDAL's ``ogrinfo`` (Debian package gdal-bin).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from pyproj import CRS

import careblocks.outputs.geopackage as gp
from _synthetic import EVIL, make_results
from careblocks.errors import ConfigError
from careblocks.outputs import write_geopackage

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def results():
    return make_results()


@pytest.fixture(scope="module")
def gpkg(results, tmp_path_factory):
    return write_geopackage(results, tmp_path_factory.mktemp("gpkg") / "careblocks.gpkg")


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_layers_rows_columns_and_crs(results, gpkg):
    layers = dict(pyogrio.list_layers(gpkg))
    for name in ("origins", "services", "candidates", "selected_sites", "catchments", "districts"):
        assert layers[name] is not None, name
    for name in ("equity", "run_metadata", "layer_styles"):
        assert name in layers and layers[name] is None
    counts = {"origins": results.origins, "services": results.services,
              "candidates": results.candidates, "selected_sites": results.selected,
              "catchments": results.catchments, "districts": results.districts}
    for name, frame in counts.items():
        info = pyogrio.read_info(gpkg, layer=name)
        assert info["features"] == len(frame), name
        assert CRS.from_user_input(info["crs"]).to_epsg() == 4326
        assert info["geometry_name"] == "geom"
        missing = set(frame.columns) - {"geometry"} - set(info["fields"])
        assert not missing, (name, missing)
    # the study area: one outline, its size in km2 from the working CRS
    area = pyogrio.read_dataframe(gpkg, layer="study_area")
    assert len(area) == 1 and area["name"].iloc[0] == results.config.study.label
    assert area["area_km2"].iloc[0] == pytest.approx(results.area.area / 1e6)
    assert area.to_crs(results.crs).geometry.iloc[0].symmetric_difference(results.area).area < 1e-6 * results.area.area
    o = pyogrio.read_dataframe(gpkg, layer="origins")
    # values survive: travel times equal, unreachable stays null (never a sentinel)
    np.testing.assert_allclose(o["walk_min_daycare"], results.origins["walk_min_daycare"])
    assert o["walk_min_laundromat"].isna().sum() == results.origins["walk_min_laundromat"].isna().sum() > 0
    assert o["origin_id"].tolist() == results.origins["origin_id"].tolist()
    # coordinates really are in degrees around Porto Alegre
    assert o.geometry.x.between(-52, -51).all() and o.geometry.y.between(-31, -29).all()
    s = pyogrio.read_dataframe(gpkg, layer="services")
    assert EVIL in s["name"].tolist()  # the GeoPackage keeps data as it is (escaping is for HTML)


def test_equity_has_scenarios(results, gpkg):
    eq = pyogrio.read_dataframe(gpkg, layer="equity")
    assert set(eq["scenario"]) == {"current", "with_sites"}
    assert len(eq) == len(results.equity) + len(results.equity_after)
    cur = eq[eq["scenario"] == "current"].reset_index(drop=True)
    np.testing.assert_allclose(cur["share_within"], results.equity["share_within"])


def test_run_metadata_is_json(results, gpkg):
    meta = pyogrio.read_dataframe(gpkg, layer="run_metadata")
    values = {k: json.loads(v) for k, v in zip(meta["key"], meta["value"], strict=False)}
    for key in ("version", "config", "input_digests", "stage_timings", "warning_counts"):
        assert key in values
    assert values["stage_timings"] == results.metadata["stage_timings"]
    assert values["warning_counts"] == {"far_snaps": 2}
    assert set(values["config"]["services"]) == set(results.config.services)
    assert values["config"]["walk"]["speed_kmh"] == results.config.walk.speed_kmh
    assert values["output_crs"] == "EPSG:4326" and values["working_crs"] == results.crs
    assert "layer_styles" not in values["layers"] and "origins" in values["layers"]


def test_layer_styles_are_valid_qgis_styles(results, gpkg):
    con = sqlite3.connect(gpkg)
    try:
        rows = con.execute(
            "SELECT f_table_name, f_geometry_column, styleName, styleQML, styleSLD, useAsDefault "
            "FROM layer_styles"
        ).fetchall()
        cols = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
        registered = con.execute(
            "SELECT data_type FROM gpkg_contents WHERE table_name='layer_styles'"
        ).fetchone()
    finally:
        con.close()
    for c in ("f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column", "styleName",
              "styleQML", "styleSLD", "useAsDefault", "description", "owner", "ui", "update_time"):
        assert c in cols
    assert registered == ("attributes",)
    by_layer: dict[str, list] = {}
    for r in rows:
        by_layer.setdefault(r[0], []).append(r)
        qml = ET.fromstring(r[3].split("\n", 1)[1])  # after the DOCTYPE line
        ET.fromstring(r[4].split("\n", 1)[1])  # SLD after the XML declaration
        assert r[1] == "geom"
        assert qml.find("renderer-v2") is not None
    # exactly one default style per styled layer
    for layer, rs in by_layer.items():
        assert sum(r[5] for r in rs) == 1, layer
    origin_fields = set(pyogrio.read_info(gpkg, layer="origins")["fields"])
    default = next(r for r in by_layer["origins"] if r[5] == 1)
    renderer = ET.fromstring(default[3].split("\n", 1)[1]).find("renderer-v2")
    assert renderer.get("type") == "graduatedSymbol"
    assert renderer.get("attr") == "walk_min_daycare" and renderer.get("attr") in origin_fields
    lowers = [float(r.get("lower")) for r in renderer.iter("range")]
    assert lowers == sorted(lowers) and lowers[3] == results.threshold_min
    # one origins style per service, each on a real column
    assert {r[2] for r in by_layer["origins"]} == {f"walk_min_{s}" for s in results.service_names}
    svc = ET.fromstring(by_layer["services"][0][3].split("\n", 1)[1]).find("renderer-v2")
    assert svc.get("type") == "categorizedSymbol" and svc.get("attr") == "service"
    assert {c.get("value") for c in svc.iter("category")} == set(results.services["service"])


def test_ogrinfo_reads_every_layer(results, gpkg):
    out = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(gpkg)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ERROR" not in out.stderr and "may only be partially supported" not in out.stderr
    for name, n in (("origins", len(results.origins)), ("services", len(results.services)),
                    ("run_metadata", None), ("layer_styles", None), ("equity", None)):
        assert f"Layer name: {name}" in out.stdout
        if n is not None:
            block = out.stdout.split(f"Layer name: {name}\n", 1)[1]
            assert f"Feature Count: {n}\n" in block.split("Layer name:", 1)[0]
    sql = subprocess.run(
        ["ogrinfo", "-ro", str(gpkg), "-sql",
         "SELECT f_table_name FROM layer_styles WHERE useAsDefault = 1 AND f_table_name = 'origins'"],
        capture_output=True, text=True, timeout=60,
    )
    assert sql.returncode == 0 and "Feature Count: 1" in sql.stdout


def test_local_crs_and_missing_parts(tmp_path):
    r = make_results(polygons=True, with_sites=False)
    r.equity = None
    r.districts = None
    p = write_geopackage(r, tmp_path / "local.gpkg", crs="local")
    layers = set(pyogrio.list_layers(p)[:, 0])
    assert layers == {"origins", "services", "study_area", "run_metadata", "layer_styles"}
    info = pyogrio.read_info(p, layer="origins")
    assert CRS.from_user_input(info["crs"]) == CRS.from_user_input(r.crs)
    assert info["geometry_type"] in ("Polygon", "MultiPolygon")
    o = pyogrio.read_dataframe(p, layer="origins")
    np.testing.assert_allclose(o.total_bounds, r.origins.total_bounds)
    with pytest.raises(ConfigError, match="outputs.crs"):
        write_geopackage(r, tmp_path / "bad.gpkg", crs="not a crs")
    assert not (tmp_path / "bad.gpkg").exists()


def test_exception_mid_write_keeps_previous_file(results, tmp_path, monkeypatch):
    target = tmp_path / "careblocks.gpkg"
    write_geopackage(results, target)
    before = _sha(target)
    real = pyogrio.write_dataframe
    calls = {"n": 0}

    def failing(df, path, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (injected)")
        return real(df, path, **kw)

    monkeypatch.setattr(gp.pyogrio, "write_dataframe", failing)
    with pytest.raises(OSError, match="injected"):
        write_geopackage(results, target)
    assert calls["n"] == 3
    assert _sha(target) == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["careblocks.gpkg"]


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = [{tests!r}, {src!r}]
    from _synthetic import make_results
    import careblocks.outputs.geopackage as gp
    real = gp.pyogrio.write_dataframe
    def slow(df, path, **kw):
        real(df, path, **kw)
        print("WRITING", path, flush=True)
        time.sleep(120)   # the parent SIGKILLs us here, half-way through the GeoPackage
    gp.pyogrio.write_dataframe = slow
    gp.write_geopackage(make_results(seed=7), {target!r})
    """
)


def test_sigkill_mid_write_keeps_previous_file(results, tmp_path):
    target = tmp_path / "careblocks.gpkg"
    write_geopackage(results, target)
    before = _sha(target)
    code = _KILLED_WRITER.format(tests=str(HERE), src=str(HERE.parent / "src"), target=str(target))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("WRITING"), line
        tmp = Path(line.split(" ", 1)[1].strip())
        assert tmp.parent == tmp_path and tmp.name.startswith(".careblocks.gpkg.") and tmp.exists()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert _sha(target) == before
    assert len(pyogrio.read_dataframe(target, layer="origins")) == len(results.origins)
    # the next run cleans the dead process's temp file and replaces the output
    write_geopackage(make_results(seed=3), target)
    assert not tmp.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["careblocks.gpkg"]
    assert _sha(target) != before


def test_equity_with_scenario_column_is_kept(tmp_path):
    r = make_results()
    r.equity = pd.concat([r.equity.assign(scenario="current"),
                          r.equity_after.assign(scenario="with_sites")], ignore_index=True)
    r.equity_after = None
    eq = pyogrio.read_dataframe(write_geopackage(r, tmp_path / "e.gpkg"), layer="equity")
    assert eq["scenario"].value_counts().to_dict() == {"current": len(r.equity) // 2,
                                                        "with_sites": len(r.equity) // 2}
