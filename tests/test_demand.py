"""Census reading, dasymetric allocation, population rasters and the care-need index.

Real data (read in place from CAREBLOCKS_DATA_DIR, see ../shared/data/README.md):
Freetown population polygons + CBD buildings, Porto Alegre / São Paulo H3 grids (IPEA via
r5r), the Helsinki population grid (HSY, CC BY 4.0), Bogotá's localidades (IDECA). Broken
inputs and the small GeoTIFF are built in code in tmp_path.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from careblocks.columns import CENSUS_GROUPS
from careblocks.config import CensusConfig, CensusGroups, Config, LayerRef, config_from_dict
from careblocks.demand.care_index import care_index_plan, care_need_by_district, care_need_index
from careblocks.demand.census import (
    TOTAL,
    allocate_census,
    census_to_origins,
    read_census,
)
from careblocks.errors import (
    CRSError,
    DataQualityWarning,
    EmptyResultError,
    InputDataError,
    MissingColumnError,
)
from careblocks.io.raster import zonal_sums
from careblocks.pipeline.demand_stage import run_demand_stage

UTM_FREETOWN = "EPSG:32628"
WEIGHTS = {"care_demand": 0.4, "caregiver_density": 0.4, "poverty": 0.2}

# Freetown: total_pop_a..e are alternative modelled estimates; total_pop_e is the only one
# equal to total_women + total_men (checked in test_freetown_total_column), so the groups
# (which split women and men) are consistent with it.
FREETOWN_GROUPS = CensusGroups(
    children_under5="children_under5", older_60plus="people_60plus", women_15plus="total_women"
)


@pytest.fixture(scope="module")
def freetown_cfg(data):
    return CensusConfig(
        layer=LayerRef(path=data / "freetown" / "population_sites_western_area.geojson"),
        total_column="total_pop_e",
        groups=FREETOWN_GROUPS,
    )


@pytest.fixture(scope="module")
def freetown_census(freetown_cfg):
    census, info = read_census(freetown_cfg)
    return census, info


@pytest.fixture(scope="module")
def cbd(data):
    gpkg = data / "freetown" / "freetown_cbd_osm_layers.gpkg"
    b = gpd.read_file(gpkg, layer="cbd_buildings")
    b = b[~b.geometry.isna()].to_crs(UTM_FREETOWN).reset_index(drop=True)
    b["origin_id"] = [f"b{i}" for i in range(len(b))]
    area = gpd.read_file(gpkg, layer="cbd_bounds").to_crs(UTM_FREETOWN).union_all()
    return b, area


def _kept_by_area(census: gpd.GeoDataFrame, area, col: str) -> float:
    """Independent computation of the count inside the area: count x area share, per unit."""
    c = census.to_crs(UTM_FREETOWN) if census.crs != UTM_FREETOWN else census
    share = c.geometry.intersection(area).area / c.geometry.area
    return float((c[col] * share).sum())


# ---------------------------------------------------------------------------- reading


def test_freetown_total_column(data, freetown_census):
    raw = gpd.read_file(data / "freetown" / "population_sites_western_area.geojson")
    sexes = raw["total_women"] + raw["total_men"]
    match = [c for c in ("total_pop_a", "total_pop_b", "total_pop_c", "total_pop_d", "total_pop_e")
             if np.abs(sexes - raw[c]).max() <= 1]
    assert match == ["total_pop_e"]
    census, info = freetown_census
    assert info["groups_present"] == ["children_under5", "older_60plus", "women_15plus"]
    assert census[TOTAL].sum() == raw["total_pop_e"].sum()
    # unmapped groups are absent, never zero
    for g in set(CENSUS_GROUPS) - set(info["groups_present"]):
        assert g not in census.columns
    assert census["census_unit_id"].is_unique


def test_missing_column_names_file_column_and_existing(data):
    cfg = CensusConfig(
        layer=LayerRef(path=data / "freetown" / "population_sites_western_area.geojson"),
        total_column="total_pop_e",
        groups=CensusGroups(children_under5="kids_u5"),
    )
    with pytest.raises(MissingColumnError) as e:
        read_census(cfg)
    msg = str(e.value)
    assert "population_sites_western_area.geojson" in msg
    assert "'kids_u5'" in msg and "census.groups.children_under5" in msg
    assert "children_under5" in msg and "total_pop_e" in msg  # existing columns listed
    assert "\n" not in msg


def test_bad_counts_and_crs(tmp_path):
    pts = gpd.GeoDataFrame(
        {"pop": ["10", "x7", "3"], "kids": [1, -2, 0]},
        geometry=gpd.points_from_xy([0.0, 0.01, 0.02], [0.0, 0.0, 0.0]),
        crs="EPSG:4326",
    )
    p = tmp_path / "bad.gpkg"
    pts.to_file(p)
    with pytest.raises(InputDataError, match=r"census.total_column.*bad\.gpkg.*'pop'.*not numeric.*'x7'"):
        read_census(CensusConfig(layer=LayerRef(path=p), total_column="pop"))
    with pytest.raises(InputDataError, match=r"census.groups.children_under5.*bad\.gpkg.*'kids'.*negative"):
        read_census(CensusConfig(layer=LayerRef(path=p),
                                 groups=CensusGroups(children_under5="kids")))
    nocrs = tmp_path / "nocrs.gpkg"
    pts.assign(pop=[1, 2, 3]).set_crs(None, allow_override=True).to_file(nocrs)
    with pytest.raises(CRSError, match="nocrs.gpkg.*no CRS"):
        read_census(CensusConfig(layer=LayerRef(path=nocrs), total_column="pop"))


def test_not_overlapping_area(freetown_cfg):
    far = shapely.box(24.9, 60.15, 24.95, 60.18)  # Helsinki
    with pytest.raises(EmptyResultError, match="study area"):
        read_census(freetown_cfg, area_4326=far)


def test_poverty_rate_is_refused(tmp_path):
    g = gpd.GeoDataFrame({"pop": [100, 200], "pov": [0.2, 0.35]},
                         geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4326)
    p = tmp_path / "rate.gpkg"
    g.to_file(p)
    with pytest.raises(InputDataError, match="looks like a rate"):
        read_census(CensusConfig(layer=LayerRef(path=p), total_column="pop",
                                 groups=CensusGroups(poverty="pov")))


# ---------------------------------------------------------------------------- allocation


def test_freetown_to_cbd_buildings_keeps_totals(freetown_census, cbd):
    census, info = freetown_census
    buildings, area = cbd
    cols = [TOTAL, *info["groups_present"]]
    with pytest.warns(DataQualityWarning, match=r"4 census units extend beyond the study area.*were cut"):
        out, st = allocate_census(buildings, census, cols, method="buildings", area=area)
    assert len(out) == len(buildings) and list(out["origin_id"]) == list(buildings["origin_id"])
    for c in cols:
        expected = _kept_by_area(census, area, c)
        assert out[c].sum() == pytest.approx(expected, rel=1e-9)
        assert st["kept"][c] == pytest.approx(expected, rel=1e-9)
        assert st["kept"][c] + st["cut"][c] + st["outside"][c] == pytest.approx(
            census[c].sum(), rel=1e-9)
    # the CBD holds a small part of the Western Area's 1.66 M people
    assert 5_000 < out[TOTAL].sum() < 100_000
    # buildings inside one unit share its age structure: children / total is the unit's ratio
    cen = census.to_crs(UTM_FREETOWN)
    unit = cen[cen["census_unit_id"] == cen.loc[cen.geometry.intersection(area).area.idxmax(),
                                                 "census_unit_id"]].iloc[0]
    inside = out[out.representative_point().within(unit.geometry)]
    moved = {d["origin"] for d in st.get("units_to_nearest_origin", [])}
    inside = inside[(inside[TOTAL] > 0) & ~inside["origin_id"].isin(moved)]
    assert len(inside) > 100
    ratio = inside["children_under5"] / inside[TOTAL]
    assert np.allclose(ratio, unit["children_under5"] / unit[TOTAL], rtol=1e-9)
    # and a building's share is proportional to its footprint (floor area weights)
    fa = inside.geometry.area
    assert np.corrcoef(fa, inside[TOTAL])[0, 1] > 0.999
    # units inside the area with no building went to the nearest building, and say so
    lone = st["n_units_without_origin"]
    assert ("note_without_origin" in st) == (lone > 0)
    assert (st["to_nearest_origin"][TOTAL] > 0) == (lone > 0)


def test_freetown_to_h3_grid_by_area(freetown_census, cbd):
    census, info = freetown_census
    _, area = cbd
    area4326 = gpd.GeoSeries([area], crs=UTM_FREETOWN).to_crs(4326).iloc[0]
    cells = h3.geo_to_cells(area4326.__geo_interface__, 10)
    hexes = gpd.GeoDataFrame(
        {"origin_id": list(cells)},
        geometry=[shapely.Polygon([(x, y) for y, x in h3.cell_to_boundary(c)]) for c in cells],
        crs=4326,
    ).to_crs(UTM_FREETOWN)
    cols = [TOTAL, "children_under5"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        out, st = allocate_census(hexes, census, cols, method="area", area=area)
    assert st["method"] == "area"
    for c in cols:
        assert out[c].sum() == pytest.approx(_kept_by_area(census, area, c), rel=1e-9)
    assert (out[TOTAL] >= 0).all() and (out[TOTAL] > 0).mean() > 0.8


def test_porto_alegre_h3_table_round_trip(data):
    """The hex grid read as H3 polygons and allocated to the same cells gives the same counts."""
    path = data / "porto_alegre" / "poa_hexgrid.csv"
    cfg = CensusConfig(layer=LayerRef(path=path, h3="id"), total_column="population")
    census, _ = read_census(cfg)
    df = pd.read_csv(path)
    assert len(census) == len(df) == 1227
    origins = gpd.GeoDataFrame(
        {"origin_id": df["id"]},
        geometry=[shapely.Polygon([(x, y) for y, x in h3.cell_to_boundary(c)]) for c in df["id"]],
        crs=4326,
    ).to_crs("EPSG:32722")
    out, st = allocate_census(origins, census, [TOTAL], method="area")
    assert out[TOTAL].sum() == pytest.approx(df["population"].sum(), rel=1e-9)
    assert np.allclose(out[TOTAL].to_numpy(), df["population"].to_numpy(), rtol=1e-6, atol=1e-6)
    assert st["n_units_without_origin"] == 0


def test_sao_paulo_points_to_parent_cells(data):
    """Census points (lon/lat) go to the origin polygon containing them: H3 parents."""
    path = data / "sao_paulo" / "spo_hexgrid.csv"
    census, _ = read_census(CensusConfig(layer=LayerRef(path=path, x="lon", y="lat"),
                                         total_column="population"))
    df = pd.read_csv(path)
    parent = df["id"].map(lambda c: h3.cell_to_parent(c, 8))
    expected = df.groupby(parent)["population"].sum()
    parents = sorted(expected.index)
    origins = gpd.GeoDataFrame(
        {"origin_id": parents},
        geometry=[shapely.Polygon([(x, y) for y, x in h3.cell_to_boundary(c)]) for c in parents],
        crs=4326,
    ).to_crs("EPSG:32723")
    out, st = allocate_census(origins, census, [TOTAL], method="points")
    assert out[TOTAL].sum() == pytest.approx(df["population"].sum())
    # children hexes do not nest exactly in their parent: most people land in their parent
    got = out.set_index("origin_id")[TOTAL]
    agree = np.isclose(got.loc[parents].to_numpy(), expected.loc[parents].to_numpy())
    assert agree.mean() > 0.5


def test_helsinki_grid_to_points_with_cut(data):
    grid = gpd.read_file(data / "helsinki" / "helsinki_population_grid_2020.gpkg").to_crs(3067)
    grid = grid.rename(columns={"population": TOTAL})
    x0, y0, x1, y1 = grid.total_bounds
    xs, ys = np.meshgrid(np.arange(x0 + 25, x1, 50.0), np.arange(y0 + 25, y1, 50.0))
    pts = gpd.GeoDataFrame({"origin_id": np.arange(xs.size).astype(str)},
                           geometry=gpd.points_from_xy(xs.ravel(), ys.ravel()), crs=3067)
    out, st = allocate_census(pts, grid, [TOTAL], method="points")
    assert out[TOTAL].sum() == pytest.approx(grid[TOTAL].sum())
    assert st["n_units_without_origin"] == 0
    # every grid cell's total is spread equally over the lattice points inside it
    j = gpd.sjoin(out, grid[["id", "geometry"]], predicate="within")
    per_cell = j.groupby("id")[TOTAL].sum()
    assert np.allclose(per_cell.sort_index(), grid.set_index("id")[TOTAL].loc[per_cell.index]
                       .sort_index())
    # a circular study area cuts cells: counts kept by area share, with a warning
    centre = grid.union_all().centroid
    area = centre.buffer(600)
    with pytest.warns(DataQualityWarning, match="lie outside by area share and were cut"):
        out2, st2 = allocate_census(pts[pts.within(area)], grid, [TOTAL], method="points",
                                    area=area)
    share = grid.geometry.intersection(area).area / grid.geometry.area
    assert out2[TOTAL].sum() == pytest.approx(float((grid[TOTAL] * share).sum()))
    assert st2["n_units_partly_outside"] > 0


def test_bogota_fontibon_published_total(data):
    """Localidades carry no counts: Fontibón's published population is configured."""
    loca = LayerRef(path=data / "bogota" / "admin" / "localidades_ideca" / "loca.shp")
    cfg = CensusConfig(layer=loca, name_column="LocNombre",
                       published_totals={"FONTIBON": 394648.0}, allocate_by="points")
    raw = gpd.read_file(loca.path)
    assert raw.crs.to_epsg() == 4686
    fonti = raw[raw["LocNombre"] == "FONTIBON"].to_crs(4326).geometry.iloc[0]
    with pytest.warns(DataQualityWarning, match="no census.published_totals entry"):
        census, info = read_census(cfg, area_4326=fonti)
    assert list(census["census_name"]) == ["FONTIBON"]
    crs = "EPSG:32618"
    area = gpd.GeoSeries([fonti], crs=4326).to_crs(crs).iloc[0]
    cells = h3.geo_to_cells(fonti.__geo_interface__, 9)
    origins = gpd.GeoDataFrame(
        {"origin_id": list(cells), "population": 1.0},
        geometry=[shapely.Point(h3.cell_to_latlng(c)[::-1]) for c in cells], crs=4326,
    ).to_crs(crs)
    config = Config(census=cfg)
    out, st = census_to_origins(config, origins, area=area, area_4326=fonti)
    assert out[TOTAL].sum() == pytest.approx(394648.0, rel=1e-6)
    assert np.allclose(out[TOTAL], 394648.0 / len(origins), rtol=1e-3)
    # a published total for a name not in the layer is a config error naming the values
    bad = CensusConfig(layer=loca, name_column="LocNombre", published_totals={"FONTIBÓN X": 1.0})
    with pytest.raises(Exception, match="not found in column 'LocNombre'"):
        read_census(bad)


def test_optional_census_missing_file(tmp_path, cbd):
    buildings, area = cbd
    cfg = Config(census=CensusConfig(layer=LayerRef(path=tmp_path / "absent.gpkg"),
                                     total_column="pop", optional=True))
    out, st = census_to_origins(cfg, buildings, area=area)
    assert "skipped" in st and TOTAL not in out.columns
    with pytest.raises(InputDataError, match="absent.gpkg.*not found"):
        census_to_origins(Config(census=CensusConfig(layer=LayerRef(path=tmp_path / "absent.gpkg"),
                                                     total_column="pop")), buildings, area=area)


def test_config_toml_census_keys(tmp_path, data):
    cfg = config_from_dict({"census": {
        "layer": {"path": str(data / "freetown" / "population_sites_western_area.geojson")},
        "total_column": "total_pop_e",
        "groups": {"children_under5": "children_under5"},
        "allocate_by": "buildings",
        "published_totals": {},
    }})
    assert cfg.census.groups.children_under5 == "children_under5"
    assert cfg.census.groups.older_80plus is None


# ---------------------------------------------------------------------------- raster


def _write_tif(path, arr, *, crs="EPSG:32628", x0=700000.0, y0=940000.0, px=100.0, nodata=-1.0):
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1],
                       count=1, dtype="float32", crs=crs, nodata=nodata,
                       transform=from_origin(x0, y0, px, px)) as dst:
        dst.write(arr.astype("float32"), 1)


def test_raster_zonal_sums(tmp_path):
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 50, size=(10, 10)).astype(float)
    arr[0, 0] = -1.0  # nodata
    arr[5, 7] = np.nan
    tif = tmp_path / "pop.tif"
    _write_tif(tif, arr)
    valid = np.where((arr == -1) | np.isnan(arr), 0, arr)
    x0, y0 = 700000.0, 940000.0
    quads = [shapely.box(x0 + cx * 500, y0 - (cy + 1) * 500, x0 + (cx + 1) * 500, y0 - cy * 500)
             for cy in range(2) for cx in range(2)]
    zones = gpd.GeoSeries(quads, crs=UTM_FREETOWN)
    sums, st = zonal_sums(tif, zones)
    expected = [valid[cy * 5:(cy + 1) * 5, cx * 5:(cx + 1) * 5].sum()
                for cy in range(2) for cx in range(2)]
    assert np.allclose(sums, expected)
    assert st["pixels_nodata"] == 2
    # points: nearest origin over the area keeps the total
    area = shapely.box(x0, y0 - 1000, x0 + 1000, y0)
    pts = gpd.GeoSeries([q.centroid for q in quads], crs=UTM_FREETOWN)
    psums, _ = zonal_sums(tif, pts, area=area)
    assert np.allclose(psums, expected)
    # zones in another CRS than the raster
    sums4326, _ = zonal_sums(tif, zones.to_crs(4326).to_crs("EPSG:32728"))
    assert sums4326.sum() == pytest.approx(valid.sum())


def test_census_raster_through_config(tmp_path):
    arr = np.arange(100, dtype=float).reshape(10, 10)
    tif = tmp_path / "worldpop.tif"
    _write_tif(tif, arr)
    x0, y0 = 700000.0, 940000.0
    area = shapely.box(x0, y0 - 1000, x0 + 1000, y0 - 500)  # the lower half of the raster
    # small building-like origins: most pixels hold no building centre -> nearest building
    rng = np.random.default_rng(5)
    xs, ys = rng.uniform(x0, x0 + 990, 40), rng.uniform(y0 - 990, y0 - 510, 40)
    origins = gpd.GeoDataFrame({"origin_id": [str(i) for i in range(40)], "population": 1.0},
                               geometry=shapely.box(xs, ys, xs + 8, ys + 8), crs=UTM_FREETOWN)
    cfg = Config(census=CensusConfig(raster=tif, household_size=4.0))
    out, st = census_to_origins(cfg, origins, area=area)
    assert out[TOTAL].sum() == pytest.approx(arr[5:, :].sum())
    assert out["households"].sum() == pytest.approx(arr[5:, :].sum() / 4)
    assert st["source"] == "raster" and st["raster"]["pixels_to_nearest_origin"] > 0
    assert st["groups_present"] == []


def test_raster_bad_inputs(tmp_path):
    x0, y0 = 700000.0, 940000.0
    zones = gpd.GeoSeries([shapely.box(x0, y0 - 500, x0 + 500, y0)], crs=UTM_FREETOWN)
    empty = tmp_path / "empty.tif"
    _write_tif(empty, np.full((5, 5), -1.0))
    with pytest.raises(InputDataError, match=r"empty\.tif.*nodata everywhere"):
        zonal_sums(empty, zones)
    neg = tmp_path / "neg.tif"
    _write_tif(neg, np.full((5, 5), -3.0))
    with pytest.raises(InputDataError, match="negative"):
        zonal_sums(neg, zones)
    far = gpd.GeoSeries([shapely.box(0, 0, 500, 500)], crs=UTM_FREETOWN)
    with pytest.raises(InputDataError, match="does not overlap"):
        zonal_sums(empty, far)
    import rasterio

    nocrs = tmp_path / "nocrs.tif"
    with rasterio.open(nocrs, "w", driver="GTiff", height=2, width=2, count=1,
                       dtype="float32") as dst:
        dst.write(np.ones((1, 2, 2), dtype="float32"))
    with pytest.raises(CRSError, match="no CRS"):
        zonal_sums(nocrs, zones)


# ---------------------------------------------------------------------------- care index


@pytest.fixture(scope="module")
def freetown_units(data):
    raw = gpd.read_file(data / "freetown" / "population_sites_western_area.geojson")
    df = pd.DataFrame({
        TOTAL: raw["total_pop_e"].astype(float),
        "children_under5": raw["children_under5"].astype(float),
        "older_60plus": raw["people_60plus"].astype(float),
        "women_15plus": raw["total_women"].astype(float),
    })
    return df, raw.to_crs(UTM_FREETOWN).area.to_numpy() / 1e6


def test_index_components_and_formula(freetown_units):
    df, km2 = freetown_units
    groups = ["children_under5", "older_60plus", "women_15plus"]
    out, text = care_need_index(df, WEIGHTS, groups, area_km2=km2)
    plan = out.attrs["plan"]
    assert "poverty" in plan["dropped"] and "poverty" not in out.columns
    assert plan["weights"] == pytest.approx({"care_demand": 0.5, "caregiver_density": 0.5})
    assert out["care_need_index"].between(0, 1).all()
    assert out["care_demand"].between(0, 1).all()
    # a component of one indicator spans [0, 1] (min-max within the study area)
    assert out["caregiver_density"].min() == 0 and out["caregiver_density"].max() == 1
    assert "0.500 * care_demand" in text and "poverty: dropped" in text
    assert np.allclose(out["share_under5"], df["children_under5"] / df[TOTAL])
    # the densest unit of women is the caregiver-density maximum
    assert out["caregiver_density"].idxmax() == (df["women_15plus"] / km2).idxmax()


@pytest.mark.parametrize("group", ["children_under5", "older_60plus", "women_15plus", "poverty"])
def test_index_monotone_in_each_component(freetown_units, group):
    df, km2 = freetown_units
    df = df.copy()
    df["poverty"] = (df[TOTAL] * np.linspace(0.1, 0.5, len(df))).round()
    groups = ["children_under5", "older_60plus", "women_15plus", "poverty"]
    base, _ = care_need_index(df, WEIGHTS, groups, area_km2=km2)
    # units in the middle of the range of this group's share (not already at the maximum)
    share = df[group] / (km2 if group == "women_15plus" else df[TOTAL])
    order = share.sort_values().index
    for i in order[[len(order) // 4, len(order) // 2, 3 * len(order) // 4]]:
        up = df.copy()
        up.loc[i, group] *= 1.3
        new, _ = care_need_index(up, WEIGHTS, groups, area_km2=km2)
        assert new.loc[i, "care_need_index"] > base.loc[i, "care_need_index"]
        # nobody else moves ahead of the unit that gained
        assert (new["care_need_index"].rank().loc[i]) >= base["care_need_index"].rank().loc[i]


def test_index_without_usable_groups_and_bad_weights():
    df = pd.DataFrame({TOTAL: [10.0, 20.0], "older_80plus": [1.0, 3.0]})
    out, text = care_need_index(df, WEIGHTS, ["older_80plus"])
    assert list(out["care_need_index"]) == [0.0, 1.0]
    assert "share_80plus" in text
    with pytest.raises(InputDataError, match="no component"):
        care_need_index(df[[TOTAL]], WEIGHTS, [])
    with pytest.raises(Exception, match="unknown component"):
        care_index_plan(["older_80plus"], {"care_demand": 1, "transport": 1})


def test_dependency_ratio_and_households():
    df = pd.DataFrame({TOTAL: [100.0, 100.0], "households": [25.0, 50.0],
                       "children_under5": [10.0, 5.0], "children_5_14": [20.0, 10.0],
                       "older_60plus": [10.0, 5.0], "women_caregivers": [20.0, 20.0],
                       "women_15plus": [40.0, 40.0]})
    groups = ["children_under5", "children_5_14", "older_60plus", "women_caregivers",
              "women_15plus"]
    out, text = care_need_index(df, WEIGHTS, groups)
    assert out["dependency_ratio"].tolist() == pytest.approx([40 / 60, 20 / 80])
    assert out["women_caregivers_per_household"].tolist() == pytest.approx([0.8, 0.4])
    assert out["care_need_index"].iloc[0] == pytest.approx(1.0)
    assert "per_household" in text


def test_by_district(freetown_units, data):
    df, _ = freetown_units
    raw = gpd.read_file(data / "freetown" / "population_sites_western_area.geojson")
    df = df.assign(district=raw["admin2"].to_numpy())
    groups = ["children_under5", "older_60plus", "women_15plus"]
    comp, _ = care_need_index(df, WEIGHTS, groups)
    df["care_need_index"] = comp["care_need_index"]
    by, text = care_need_by_district(df, "district", WEIGHTS, groups)
    assert set(by.index) == {"Western Area Rural", "Western Area Urban"}
    assert by[TOTAL].sum() == pytest.approx(df[TOTAL].sum())
    assert by["care_need_index"].between(0, 1).all() and "districts" in text
    assert by["care_need_index_mean"].between(0, 1).all()


# ---------------------------------------------------------------------------- stage


def test_run_demand_stage_freetown(data, cbd):
    buildings, area = cbd
    rng = np.random.default_rng(3)
    origins = buildings.copy()
    origins["population"] = origins.geometry.area * 0.05
    origins["walk_min_health"] = rng.uniform(1, 40, len(origins))
    origins.loc[origins.index[:20], "walk_min_health"] = np.nan
    cfg = config_from_dict({
        "services": {"health": {}},
        "census": {
            "layer": {"path": str(data / "freetown" / "population_sites_western_area.geojson")},
            "total_column": "total_pop_e",
            "groups": {"children_under5": "children_under5", "older_60plus": "people_60plus",
                       "women_15plus": "total_women"},
            "allocate_by": "buildings",
            "districts": {"path": str(data / "freetown" / "population_sites_western_area.geojson")},
            "district_name_column": "name",
        },
    })
    area4326 = gpd.GeoSeries([area], crs=UTM_FREETOWN).to_crs(4326).iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        ctx = run_demand_stage(cfg, origins, area=area, area_4326=area4326)
    o = ctx.origins
    for c in ("census_total", "children_under5", "care_need_index", "care_demand", "district"):
        assert c in o.columns
    st = ctx.stats
    assert "care_need_index =" in st["care_index"]["formula"]
    eq = ctx.equity
    assert set(eq["mode"]) == {"walk"} and set(eq["service"]) == {"health"}
    # the census total became the population, so it is listed once, as "population"
    assert {"population", "children_under5"} <= set(eq["group"]) and TOTAL not in set(eq["group"])
    covered = o[TOTAL] > 0
    assert covered.mean() > 0.9
    np.testing.assert_allclose(o["population"].to_numpy()[covered.to_numpy()], o[TOTAL].to_numpy()[covered.to_numpy()])
    assert "Southern Central" in set(eq["district"])
    assert ctx.districts is not None and "care_need_index" in ctx.districts.columns
    allrows = eq[(eq["district"] == "all") & (eq["group"] == "population")]
    assert allrows["people"].iloc[0] == pytest.approx(o["population"].sum())
