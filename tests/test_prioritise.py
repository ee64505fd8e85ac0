"""`careblocks prioritise` on all of Bogotá: 641 census sectors and the localidades.

Data (read in place from CAREBLOCKS_DATA_DIR): DANE CNPV 2018 sectors, the localidad care
indicators and the SDIS care centres (see ../shared/data/README.md). The ranking is checked
against the formula of docs/care_need_index.md computed here, from the source columns, with
pandas and geopandas.
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner

from careblocks.cli import cli

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs/bogota_prioritise.toml"
W = {"care_demand": 0.35, "caregiver_density": 0.35, "poverty": 0.15, "supply_gap": 0.15}


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("prioritise")
    r = CliRunner().invoke(cli, ["prioritise", str(CONFIG), "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out, r.output


def _mm(x: pd.Series, valid: pd.Series) -> pd.Series:
    v = x.where(valid & np.isfinite(x))
    lo, hi = v.min(), v.max()
    return (v - lo) / (hi - lo) if hi > lo else v * 0.0


def _index(t: pd.DataFrame) -> pd.Series:
    """The documented formula on counts: total, households, the groups and gap minutes."""
    valid = t["total"] > 0
    share_u5 = t["u5"] / t["total"]
    share_80 = t["o80"] / t["total"]
    dep_n = t["u5"] + t["c5_14"] + t["o65"]
    dep = dep_n / (t["total"] - dep_n)
    hh = t["hh"].where(t["hh"] > 0)
    care = pd.concat([_mm(share_u5, valid), _mm(share_80, valid), _mm(dep, valid)], axis=1).mean(axis=1)
    giver = pd.concat([_mm(t["wc"] / hh, valid), _mm(t["fhh"] / hh, valid)], axis=1).mean(axis=1)
    pov = _mm(t["pov"] / t["total"], valid)
    gap = _mm(t["gap"], valid)
    comps = pd.concat([care, giver, pov, gap], axis=1).fillna(0.0).where(valid, 0.0)
    w = np.array([W["care_demand"], W["caregiver_density"], W["poverty"], W["supply_gap"]])
    return (comps * w).sum(axis=1)


def test_prioritise_ranks_all_bogota_sectors_and_localidades(data, run):
    out, text = run
    units = pyogrio.read_dataframe(out / "prioritise.gpkg", layer="census_units")
    dist = pyogrio.read_dataframe(out / "prioritise.gpkg", layer="districts")
    assert len(units) == 641 and units["census_name"].is_unique
    # the 20 localidades of Bogotá (the indicator table's 21st row repeats San Cristóbal
    # without a geometry)
    assert len(dist) == 20 and dist["district"].is_unique
    assert sorted(units["rank"]) == list(range(1, 642)) and sorted(dist["rank"]) == list(range(1, 21))
    assert (out / "prioritise.html").stat().st_size > 100_000
    csv = pd.read_csv(out / "prioritise_units.csv", dtype={"census_name": str})
    assert list(csv["rank"]) == list(range(1, 642))
    assert "Districts by care need" in text and "wrote" in text

    # independent computation of the documented formula on the same columns
    src = gpd.read_file(data / "bogota/census/sectores_censales_cnpv2018.gpkg")
    loc = gpd.read_file(data / "bogota/census/indicadores_cuidado_localidades.gpkg")
    loc = loc[~loc.geometry.is_empty].drop_duplicates("LocNombre")
    sdis = gpd.read_file(data / "bogota/facilities/cuidados_sdis_discapacidad.gpkg")
    src = src.merge(units[["census_name", "district", "care_need_index", "rank"]],
                    left_on="SETU_CCNCT", right_on="census_name")
    assert len(src) == 641
    people = src["STP27_PERS"].astype(float)
    rates = loc.set_index("LocNombre")[["porc_pobl_4_menos", "porc_mujeres_tarea_hogar",
                                         "monoparental_femeninos"]]
    r = rates.reindex(src["district"]).set_index(src.index)
    for c in r.columns:  # blank localidad values: the people-weighted mean of the others
        ok = r[c].notna()
        r[c] = r[c].fillna((r[c][ok] * people[ok]).sum() / people[ok].sum())
    band1 = src["STP34_1_ED"].astype(float)
    loc_people = people.groupby(src["district"]).transform("sum")
    loc_band1 = band1.groupby(src["district"]).transform("sum")
    u5 = band1 * (r["porc_pobl_4_menos"] / 100 * loc_people / loc_band1)
    women15 = src["STP32_2_SE"] - 0.5 * band1 - 0.25 * src["STP34_2_ED"]
    utm = src.to_crs(32618)
    pts = gpd.GeoDataFrame(geometry=utm.representative_point(), crs=32618)
    near = gpd.sjoin_nearest(pts, sdis.to_crs(32618)[["geometry"]], distance_col="d")
    d = near["d"].groupby(level=0).min().reindex(src.index)
    gap = np.minimum(d * 1.3 / (4.8 * 1000 / 60), 60.0)
    t = pd.DataFrame({
        "total": people, "hh": src["STVIVIENDA"].astype(float), "u5": u5,
        "c5_14": band1 - u5 + 0.5 * src["STP34_2_ED"],
        "o65": 0.5 * src["STP34_7_ED"] + src["STP34_8_ED"] + src["STP34_9_ED"],
        "o80": src["STP34_9_ED"].astype(float),
        "wc": r["porc_mujeres_tarea_hogar"] / 100 * women15,
        "fhh": r["monoparental_femeninos"] / 100 * src["STVIVIENDA"],
        "pov": src["IPM_PROMEDIO"] * people, "gap": gap,
    })
    expected = _index(t)
    np.testing.assert_allclose(src["care_need_index"], expected, atol=1e-9)
    order = np.lexsort((src["SETU_CCNCT"].to_numpy(), -expected.to_numpy()))
    exp_rank = np.empty(len(src), dtype=int)
    exp_rank[order] = np.arange(1, len(src) + 1)
    assert (src["rank"].to_numpy() == exp_rank).all()

    # localidades: the same formula on summed counts, gap = people-weighted mean
    g = t.assign(gapw=t["gap"] * t["total"]).groupby(src["district"]).sum()
    g["gap"] = g["gapw"] / g["total"]
    exp_d = _index(g)
    got_d = dist.set_index("district")["care_need_index"]
    np.testing.assert_allclose(got_d.reindex(exp_d.index), exp_d, atol=1e-9)
    assert dist.iloc[0]["district"] == exp_d.idxmax()


def test_the_21st_localidad_row_is_reported(data, run):
    """The indicator table's 21st row repeats San Cristóbal without a geometry: the run says
    so by row and name (terminal, run_metadata, audit finding) instead of dropping it quietly."""
    import json

    out, text = run
    flat = " ".join(text.split())
    assert "row 21 (LocNombre = 'San Cristobal') has no geometry and repeats row 13" in flat
    meta = pyogrio.read_dataframe(out / "prioritise.gpkg", layer="run_metadata", read_geometry=False)
    info = json.loads(meta.set_index("key").loc["info", "value"])
    said = [w for w in info["warnings"] if "row 21" in w]
    assert len(said) == 1 and "20 of the 21 rows are used" in said[0]
    found = [f for f in info["audit"]["findings"] if f["check"] == "census.coarse"]
    assert len(found) == 1 and found[0]["severity"] == "warning" and "San Cristobal" in found[0]["message"]
    # the file has 21 rows, one of them without geometry, checked here on the file itself
    loc = gpd.read_file(data / "bogota/census/indicadores_cuidado_localidades.gpkg")
    assert len(loc) == 21 and int(loc.geometry.is_empty.sum()) == 1


def test_prioritise_without_census_layer_is_one_line_error(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('[study]\nname = "x"\n')
    r = CliRunner().invoke(cli, ["prioritise", str(cfg), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "census.layer" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_prioritise_console_script(data, tmp_path):
    import subprocess

    p = subprocess.run([sys.executable, "-m", "careblocks", "prioritise", "--help"],
                       capture_output=True, text=True, check=False)
    assert p.returncode == 0 and "care-need index" in p.stdout


def _small_city(tmp_path: Path, *, network: bool):
    """Three census units, one daycare and an L-shaped pair of streets (1 km each), built
    here in UTM 18N metres: unit A at the west end of the east-west street, B halfway up the
    north-south one, C 2 km off any street; the daycare beside the north end."""
    import shapely

    from careblocks.config import config_from_dict

    crs = "EPSG:32618"
    x0, y0 = 600_000.0, 520_000.0
    pts = {"A": (x0 + 10, y0), "B": (x0 + 1000, y0 + 500 + 7), "C": (x0 - 1500, y0 + 1500)}
    units = gpd.GeoDataFrame(
        {"code": list(pts), "people": [100.0, 200.0, 50.0], "kids": [10.0, 30.0, 5.0]},
        geometry=[shapely.box(x - 5, y - 5, x + 5, y + 5) for x, y in pts.values()], crs=crs)
    units.to_file(tmp_path / "units.gpkg", driver="GPKG")
    fac = (x0 + 1000 + 12, y0 + 1000)
    gpd.GeoDataFrame({"name": ["Jardín"]}, geometry=gpd.points_from_xy([fac[0]], [fac[1]]), crs=crs) \
        .to_file(tmp_path / "daycare.gpkg", driver="GPKG")
    roads = gpd.GeoDataFrame({"highway": ["residential", "residential"]}, geometry=[
        shapely.LineString([(x0, y0), (x0 + 1000, y0)]),
        shapely.LineString([(x0 + 1000, y0), (x0 + 1000, y0 + 1000)])], crs=crs)
    roads.to_file(tmp_path / "roads.gpkg", driver="GPKG")
    raw = {
        "study": {"name": "small", "crs": crs},
        "census": {"layer": {"path": str(tmp_path / "units.gpkg")}, "name_column": "code",
                   "total_column": "people", "groups": {"children_under5": "kids"}},
        "services": {"daycare": {"use_osm": False, "layers": [{"path": str(tmp_path / "daycare.gpkg")}]}},
        "care_index": {"weights": {"care_demand": 0.5, "supply_gap": 0.5}},
        "walk": {"speed_kmh": 4.8},
        "prioritise": {"detour_factor": 1.3},
    }
    if network:
        raw["network"] = {"source": "road_layer", "path": str(tmp_path / "roads.gpkg"), "cache": False}
    return config_from_dict(raw, base=tmp_path), pts, fac


@pytest.mark.parametrize("network", [False, True])
def test_supply_gap_distances_straight_line_or_network(tmp_path, network):
    """Without a network: straight line x detour factor. With one: the walking time on the
    streets (snap legs + network), worked out here by hand; a unit more than walk.max_snap_m
    from any street keeps the straight line."""
    from careblocks.demand.prioritise import prioritise

    cfg, pts, fac = _small_city(tmp_path, network=network)
    res = prioritise(cfg)
    u = res.units.set_index("census_name")
    v = 4.8 * 1000 / 60  # metres a minute
    rep = gpd.GeoSeries(gpd.read_file(tmp_path / "units.gpkg").set_index("code").geometry).representative_point()

    def line(k):
        return float(np.hypot(rep[k].x - fac[0], rep[k].y - fac[1])) * 1.3 / v

    if not network:
        assert "walk_min_daycare" not in u.columns
        for k in "ABC":
            assert u.loc[k, "line_min_daycare"] == pytest.approx(line(k), rel=1e-9)
        assert res.info["distance"] == "straight line x detour factor"
        return
    x0, y0 = 600_000.0, 520_000.0
    snap_f = 12.0  # the daycare to the north end of the north-south street
    # points snap to the nearest point of the nearest street, as in `run`
    a = (abs(rep["A"].y - y0) + (1000 - (rep["A"].x - x0)) + 1000 + snap_f) / v
    b = (abs(rep["B"].x - (x0 + 1000)) + (y0 + 1000 - rep["B"].y) + snap_f) / v
    assert u.loc["A", "walk_min_daycare"] == pytest.approx(a, rel=1e-6)
    assert u.loc["B", "walk_min_daycare"] == pytest.approx(b, rel=1e-6)
    assert u.loc["A", "walk_min_daycare"] > line("A")  # the L is longer than 1.3 x the diagonal
    # C is 1.5 km from any street: the straight line stands in, and the info says so
    assert u.loc["C", "walk_min_daycare"] == pytest.approx(line("C"), rel=1e-9)
    assert res.info["units_far_from_network"] == 1
    assert res.info["distance"].startswith("network walking time")
