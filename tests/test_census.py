"""Census readers for real shapes, on Bogotá's real columns.

Data (read in place from CAREBLOCKS_DATA_DIR, see ../shared/data/README.md): DANE CNPV 2018 by
urban census sector (`bogota/census/sectores_censales_cnpv2018.gpkg`) and the localidad care
indicators (`bogota/census/indicadores_cuidado_localidades.gpkg`). Broken copies are written
in code to tmp_path. Expected values are computed here from the source columns with
geopandas, independently of careblocks' code.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest

from careblocks.config import config_from_dict
from careblocks.demand.census import read_census
from careblocks.demand.groups import dependency_ratio
from careblocks.errors import ConfigError, InputDataError

SECTORS = "bogota/census/sectores_censales_cnpv2018.gpkg"
LOCALIDADES = "bogota/census/indicadores_cuidado_localidades.gpkg"

GROUPS = {
    "children_under5": {"bands": {"STP34_1_ED": 1}, "split_share": "porc_pobl_4_menos"},
    "children_5_14": {"bands": {"STP34_1_ED": 1, "children_under5": -1, "STP34_2_ED": 0.5}},
    "older_65plus": {"bands": {"STP34_7_ED": 0.5, "STP34_8_ED": 1, "STP34_9_ED": 1}},
    "older_80plus": "STP34_9_ED",
    "women_15plus": {"bands": {"STP32_2_SE": 1, "STP34_1_ED": -0.5, "STP34_2_ED": -0.25}},
    "women_caregivers": {"column": "porc_mujeres_tarea_hogar", "unit": "percent",
                         "per": "women_15plus"},
    "female_headed_households": {"column": "monoparental_femeninos", "unit": "percent",
                                 "per": "household"},
    "poverty": {"column": "IPM_PROMEDIO", "unit": "fraction"},
}


def _cfg(data, groups=None, sectors=None, coarse=None, **extra):
    census = {
        "layer": {"path": str(sectors or data / SECTORS)},
        "total_column": "STP27_PERS",
        "households_column": "STVIVIENDA",
        "coarse": {"path": str(coarse or data / LOCALIDADES)},
        "coarse_name_column": "LocNombre",
        "groups": GROUPS if groups is None else groups,
    }
    census.update(extra)
    return config_from_dict({"census": census}).census


def _read(cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_census(cfg)


@pytest.fixture(scope="module")
def bogota(data):
    res, info = _read(_cfg(data))
    src = gpd.read_file(data / SECTORS)
    loc = gpd.read_file(data / LOCALIDADES)
    loc = loc[~loc.geometry.is_empty].reset_index(drop=True)
    # independent join: the localidad holding each sector's representative point
    pts = gpd.GeoDataFrame(geometry=src.representative_point(), crs=src.crs)
    j = gpd.sjoin(pts, loc[["LocNombre", "geometry"]], predicate="within", how="left")
    j = j[~j.index.duplicated(keep="first")]
    src["loc"] = j["LocNombre"].reindex(src.index).to_numpy()
    return res, info, src, loc


def test_two_level_census_joins_every_sector_to_its_localidad(bogota):
    res, _, src, _ = bogota
    assert len(res) == 641
    joined = src["loc"].notna().to_numpy()
    assert joined.mean() > 0.95
    assert (res["census_coarse_name"].to_numpy()[joined] == src["loc"].to_numpy()[joined]).all()
    fonti = src["LocNombre"].to_numpy() == "FONTIBON"
    # sector edges do not follow localidad edges; the DANE label and the join agree mostly
    assert (res["census_coarse_name"].to_numpy()[fonti] == "Fontibon").mean() > 0.7


def test_band_split_by_the_localidad_share(bogota):
    res, info, src, loc = bogota
    share = dict(zip(loc["LocNombre"], loc["porc_pobl_4_menos"], strict=True))
    # grouped by the reader's join (checked against geopandas above; sectors whose point
    # falls in no localidad take the one they overlap most)
    by = src.assign(u5=res["children_under5"].to_numpy(),
                    joined=res["census_coarse_name"].to_numpy()).groupby("joined")
    checked = 0
    for name, g in by:
        if np.isnan(share[name]):
            continue
        # the localidad's under-5 total is its share of the people of its sectors ...
        assert g["u5"].sum() == pytest.approx(share[name] / 100 * g["STP27_PERS"].sum(), rel=1e-9)
        # ... split over its sectors in proportion to their 0-9 band
        frac = g["u5"] / g["STP34_1_ED"]
        assert frac.max() - frac.min() < 1e-9 and 0 < frac.iloc[0] <= 1
        checked += 1
    assert checked >= 18
    fon = res["census_coarse_name"].to_numpy() == "Fontibon"
    # Fontibón: 6 % of its people under 5, about half of its 0-9 band
    f = (0.06 * src.loc[fon, "STP27_PERS"].sum()) / src.loc[fon, "STP34_1_ED"].sum()
    assert 0.4 < f < 0.6
    assert res.loc[fon, "children_under5"].sum() == pytest.approx(
        f * src.loc[fon, "STP34_1_ED"].sum())


def test_band_split_by_fraction_and_group_arithmetic(bogota):
    res, _, src, _ = bogota
    np.testing.assert_allclose(
        res["older_65plus"], 0.5 * src["STP34_7_ED"] + src["STP34_8_ED"] + src["STP34_9_ED"])
    np.testing.assert_allclose(
        res["children_5_14"] + res["children_under5"], src["STP34_1_ED"] + 0.5 * src["STP34_2_ED"])
    np.testing.assert_allclose(
        res["women_15plus"], src["STP32_2_SE"] - 0.5 * src["STP34_1_ED"] - 0.25 * src["STP34_2_ED"])
    assert (res["older_80plus"] == src["STP34_9_ED"]).all()


def test_rate_columns_per_person_and_per_household(bogota):
    res, info, src, loc = bogota
    np.testing.assert_allclose(res["poverty"], src["IPM_PROMEDIO"] * src["STP27_PERS"])
    mono = dict(zip(loc["LocNombre"], loc["monoparental_femeninos"], strict=True))
    care = dict(zip(loc["LocNombre"], loc["porc_mujeres_tarea_hogar"], strict=True))
    ok = src["loc"].map(mono).notna().to_numpy()
    np.testing.assert_allclose(
        res["female_headed_households"].to_numpy()[ok],
        (src["loc"].map(mono) / 100 * src["STVIVIENDA"]).to_numpy()[ok])
    np.testing.assert_allclose(
        res["women_caregivers"].to_numpy()[ok],
        (src["loc"].map(care) / 100).to_numpy()[ok] * res["women_15plus"].to_numpy()[ok])
    # Sumapaz has blank indicators: its sectors get the people-weighted mean, not NaN
    assert np.isfinite(res["female_headed_households"]).all()
    assert info["recipes"]["poverty"] == "IPM_PROMEDIO (fraction) x census_total"


def test_dependency_ratio_from_bands_matches_the_localidad_indicator(bogota):
    res, _, src, loc = bogota
    fon = (src["loc"] == "Fontibon").to_numpy()
    young = (res["children_under5"] + res["children_5_14"]).to_numpy()[fon].sum()
    old = res["older_65plus"].to_numpy()[fon].sum()
    total = src["STP27_PERS"].to_numpy()[fon].sum()
    ratio = float(dependency_ratio(np.array([young]), np.array([old]), np.array([total]))[0])
    published = float(loc.loc[loc["LocNombre"] == "Fontibon", "relacion_dependencia"].iloc[0])
    # ten-year bands split in halves, sectors joined by point, against the published
    # localidad figure (33 per 100): within 5 points
    assert abs(100 * ratio - published) < 5


def _broken_localidades(data, tmp_path, column, value, name="Fontibon"):
    loc = gpd.read_file(data / LOCALIDADES)
    loc.loc[loc["LocNombre"] == name, column] = value
    p = tmp_path / "localidades.gpkg"
    loc.to_file(p, driver="GPKG")
    return p


def test_share_above_100_percent_names_the_column(data, tmp_path):
    p = _broken_localidades(data, tmp_path, "monoparental_femeninos", 130.0)
    with pytest.raises(InputDataError, match=r"'monoparental_femeninos'.*percent \(0-100\).*130"):
        _read(_cfg(data, coarse=p))


def test_percent_declared_as_fraction_names_the_column(data):
    groups = dict(GROUPS, female_headed_households={
        "column": "monoparental_femeninos", "unit": "fraction", "per": "household"})
    with pytest.raises(InputDataError, match=r"'monoparental_femeninos'.*unit = 'percent'"):
        _read(_cfg(data, groups=groups))


def test_split_share_larger_than_the_band_names_the_column(data, tmp_path):
    # 40 % of Fontibón under 5 would need more children than its whole 0-9 band
    p = _broken_localidades(data, tmp_path, "porc_pobl_4_menos", 40.0)
    with pytest.raises(InputDataError, match=r"'porc_pobl_4_menos'.*more than the whole band"):
        _read(_cfg(data, coarse=p))


def test_group_larger_than_total_names_the_columns(data, tmp_path):
    src = gpd.read_file(data / SECTORS)
    src.loc[5, "STP34_9_ED"] = src.loc[5, "STP27_PERS"] + 1  # 80+ above everyone
    p = tmp_path / "sectores.gpkg"
    src.to_file(p, driver="GPKG")
    with pytest.raises(InputDataError, match=r"column 'STP34_9_ED' \(census.groups.older_80plus\) is larger than the total"):
        _read(_cfg(data, sectors=p, groups={"older_80plus": "STP34_9_ED"}))
    groups = dict(GROUPS, older_65plus={"bands": {"STP34_9_ED": 1, "STP34_1_ED": -1}})
    with pytest.raises(InputDataError, match=r"\(census.groups.older_65plus\) is negative"):
        _read(_cfg(data, groups=groups))


def test_coarse_counts_and_undeclared_rates_are_refused(data):
    # Fontibón's `mujeres` (21,101 for 413,731 people) is a whole-localidad count with a
    # data-entry error: a count of the coarse layer is never spread onto sectors
    groups = dict(GROUPS, women_15plus="mujeres")
    with pytest.raises(InputDataError, match=r"'mujeres'.*coarse layer"):
        _read(_cfg(data, groups=groups))
    groups = dict(GROUPS, poverty="IPM_PROMEDIO")
    with pytest.raises(InputDataError, match=r"'IPM_PROMEDIO'.*looks like a rate"):
        _read(_cfg(data, groups=groups))


def test_group_specs_are_checked_on_load(data):
    with pytest.raises(ConfigError, match=r"census.groups.poverty.*either column"):
        _cfg(data, groups={"poverty": {"column": "IPM_PROMEDIO", "bands": {"STP27_PERS": 1}}})
    with pytest.raises(ConfigError, match=r"census.groups.poverty.per.*only rates"):
        _cfg(data, groups={"poverty": {"column": "IPM_PROMEDIO", "per": "household"}})
    with pytest.raises(ConfigError, match=r"unit"):
        _cfg(data, groups={"poverty": {"column": "IPM_PROMEDIO", "unit": "per_mille"}})
