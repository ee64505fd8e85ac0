"""The QGIS project next to the GeoPackage, opened in real QGIS (Debian's python3-qgis).

QGIS's Python bindings belong to the system Python, not the project's venv: the check runs
``/usr/bin/python3 tests/qgis_check.py`` headless (``QT_QPA_PLATFORM=offscreen``) and reads
its JSON. ``make test`` installs python3-qgis and qgis-providers when they are missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from _synthetic import EVIL, make_results
from careblocks.outputs import styles
from careblocks.pipeline import OutputPaths, write_outputs

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


def _qgis_available() -> bool:
    try:
        r = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


@pytest.fixture(scope="module")
def qgis_python():
    if not _qgis_available():
        if os.environ.get("CI"):
            pytest.fail("QGIS's Python bindings are missing: run `make system-deps` (python3-qgis)")
        pytest.skip("QGIS's Python bindings are not installed (make system-deps installs them)")
    return SYSTEM_PYTHON


def open_in_qgis(python: str, project: Path, out: Path) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": ""}
    env.pop("PYTHONHOME", None)
    r = subprocess.run([python, str(HERE / "qgis_check.py"), str(project), str(out)], env=env,
                       capture_output=True, text=True, timeout=600, cwd=str(project.parent))
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def written(tmp_path_factory, qgis_python):
    out = tmp_path_factory.mktemp("qgis")
    r = make_results()
    # hostile study name: reaches the project's title only as escaped XML text
    r.config = dataclasses.replace(r.config, study=dataclasses.replace(r.config.study, name=f'Town {EVIL} & "x"'),
                                   outputs=dataclasses.replace(r.config.outputs, language="es"))
    paths = OutputPaths(out / "careblocks.gpkg", None, None, out / "careblocks.qgs")
    written = write_outputs(r, paths)
    assert out / "careblocks.qgs" in written
    return r, out, open_in_qgis(qgis_python, out / "careblocks.qgs", out / "png")


def test_project_is_relative_and_escaped(written):
    r, out, _ = written
    text = (out / "careblocks.qgs").read_text(encoding="utf-8")
    assert str(out) not in text and "./careblocks.gpkg|layername=" in text
    root = ET.fromstring(text.split("\n", 1)[1])
    assert root.find("title").text == r.config.study.name  # escaped on write, exact on read
    assert "<script>" not in text


def test_every_layer_valid_styled_and_in_order(written):
    r, out, rep = written
    assert rep["read"]
    layers = {x["name"]: x for x in rep["layers"]}
    assert all(x["valid"] for x in rep["layers"]), rep["layers"]
    assert rep["groups"] == ["Propuesta", "Hoy", "Tiempos de viaje", "Base"]
    # proposed sites on top, labelled with order and name
    sites = rep["layers"][0]
    assert sites["name"] == "Manzanas del Cuidado propuestas" and sites["features"] == len(r.selected)
    assert sites["labels"] and '"order"' in sites["label_expression"] and '"name"' in sites["label_expression"]
    # catchments and districts are outlines: nothing hidden under them
    catch = layers["Zona a menos de 15 min a pie"]
    assert int(catch["symbol_props"][0]["color"].split(",")[3]) < 40
    districts = layers["Localidades"]
    assert districts["symbol_props"][0]["style"] == "no" and districts["features"] == len(r.districts)
    area = layers["Área de estudio"]  # the study's outline, with or without districts
    assert area["symbol_props"][0]["style"] == "no" and area["features"] == 1 and area["visible"]
    # graduated travel times with the shared round classes, in Spanish
    times = [x for x in rep["layers"] if x["renderer"] == "graduatedSymbol"]
    assert len(times) == 4 and sum(x["visible"] for x in times) == 1
    assert times[0]["legend_labels"] == styles.time_labels(15, "es")
    services = layers["Servicios existentes"]
    assert services["renderer"] == "categorizedSymbol" and "Jardín infantil" in services["legend_labels"]
    assert not layers["Sitios candidatos"]["visible"]


def test_layout_renders_with_title_legend_scalebar_north_arrow_sources(written):
    r, out, rep = written
    (layout,) = rep["layouts"]
    assert {"QgsLayoutItemMap", "QgsLayoutItemLegend", "QgsLayoutItemScaleBar", "QgsLayoutItemPicture",
            "QgsLayoutItemLabel"} <= set(layout["items"])
    assert layout["png_ok"] and layout["pdf_ok"]
    assert any(r.config.study.name in t for t in layout["labels"])
    assert any("OpenStreetMap" in t for t in layout["labels"])
    # in the project's language (Spanish here); the scale bar's numbers carry no thousands
    # separator ("1,000 m" reads as one metre in Spanish)
    assert layout["legend_titles"] == ["Leyenda"]
    assert layout["scalebar_numbers"] == ["2000"]
    import matplotlib.image as mpimg

    for png in (layout["png"], rep["map_png"]):
        img = mpimg.imread(png)[..., :3]
        drawn = (img < 0.95).any(axis=2).mean()
        assert 0.02 < drawn < 0.9, (png, drawn)  # something drawn, not a blank or black page
        # the proposed sites' purple is on the page
        purple = np.array([0x6a, 0x3d, 0x9a]) / 255
        assert (np.abs(img - purple).max(axis=2) < 0.08).sum() > 30, png
