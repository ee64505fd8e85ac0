"""People where they live: census counts over residential land, on Fontibón (Bogotá).

Data (read in place from CAREBLOCKS_DATA_DIR): the Fontibón OSM extract (ODbL), DANE CNPV
2018 census sectors, the localidad care indicators and the IDECA localidad boundary. The
expected per-sector totals are computed here with shapely from the source layers.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from careblocks.config import load_config
from careblocks.demand.residential import residential_origins
from careblocks.io.layers import study_area
from careblocks.network.graph import load_or_build_network
from careblocks.origins import load_origins

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fontibon(data):
    cfg = load_config(ROOT / "configs/bogota_fontibon.toml")
    area = study_area(cfg)
    net, st = load_or_build_network(cfg, area_4326=area)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        origins, stats = load_origins(cfg, osm_path=st["path"], area_4326=area, crs=net.crs,
                                      network=net)
    return cfg, area, net, origins, stats, [str(w.message) for w in caught]


def test_fontibon_origins_across_every_inhabited_sector(data, fontibon):
    cfg, area_4326, net, origins, stats, msgs = fontibon
    crs = net.crs
    sectors = gpd.read_file(data / "bogota/census/sectores_censales_cnpv2018.gpkg").to_crs(crs)
    area = gpd.GeoSeries([area_4326], crs="EPSG:4326").to_crs(crs).iloc[0]
    share = shapely.area(shapely.intersection(sectors.geometry.to_numpy(), area)) / sectors.area
    inside = share.to_numpy() > 0
    expected = (sectors["STP27_PERS"] * share)[inside]
    expected.index = sectors.loc[inside, "SETU_CCNCT"].astype(str)  # census.name_column
    got = origins.groupby("census_unit_id")["population"].sum()
    # every sector overlapping the area has origins, and its people are the census's
    # times its share of area inside (1 for the sectors wholly inside)
    assert set(got.index) == set(expected.index)
    np.testing.assert_allclose(got.reindex(expected.index), expected, rtol=1e-9)
    whole = (share[inside] > 1 - 1e-9).to_numpy()
    assert whole.sum() >= 10
    pop = origins["population"].to_numpy()
    assert pop.sum() == pytest.approx(expected.sum())
    assert len(origins) >= 2000  # thousands, not the 921 mapped buildings
    assert pop.max() < 0.02 * pop.sum()
    assert (origins["kind"] == "land").sum() > 1000 and (origins["kind"] == "building").sum() > 500
    # the cut is reported
    assert stats["census"]["allocation"]["n_units_partly_outside"] == int(((share > 0) & (share < 1 - 1e-9)).sum())
    assert any("extend beyond the study area" in m for m in msgs)


def test_no_residential_street_is_far_from_an_origin(data, fontibon):
    from careblocks.io.osm import read_osm_network

    cfg, area_4326, net, origins, _, _ = fontibon
    _, edges = read_osm_network(cfg.network.path, bbox=tuple(area_4326.bounds))
    res = edges[edges["highway"].isin(["residential", "living_street"])].to_crs(net.crs)
    area = gpd.GeoSeries([area_4326], crs="EPSG:4326").to_crs(net.crs).iloc[0]
    mid = shapely.line_interpolate_point(res.geometry.to_numpy(), 0.5, normalized=True)
    mid = mid[shapely.contains_xy(area, shapely.get_x(mid), shapely.get_y(mid))]
    assert len(mid) > 500
    tree = shapely.STRtree(origins.geometry.to_numpy())
    _, dist = tree.query_nearest(mid, return_distance=True)
    # every residential street in the localidad has people living within 120 m of it
    assert np.max(dist) <= 120.0 + 1e-6


def test_counts_kept_per_unit_for_every_column_and_fallback():
    # two square units built in code: one with a residential street, one with none
    crs = "EPSG:32618"
    a = shapely.box(500000, 500000, 501000, 501000)
    b = shapely.box(501000, 500000, 502000, 501000)
    units = gpd.GeoDataFrame({"census_unit_id": ["a", "b"], "census_total": [1000.0, 300.0],
                              "children_under5": [80.0, 30.0]}, geometry=[a, b], crs=crs)
    street = gpd.GeoDataFrame({"highway": ["residential"]},
                              geometry=[shapely.LineString([(500100, 500500), (500300, 500500)])], crs=crs)
    area = shapely.box(500000, 500000, 501500, 501000)  # half of b outside
    o, st = residential_origins(units, ["census_total", "children_under5"], area=area,
                                streets=street)
    tot = o.groupby("census_unit_id")[["census_total", "children_under5"]].sum()
    np.testing.assert_allclose(tot.loc["a"], [1000.0, 80.0])
    np.testing.assert_allclose(tot.loc["b"], [150.0, 15.0], rtol=1e-6)
    # a's people sit near its street only; b (no street) falls back to all its land
    a_o = o[o["census_unit_id"] == "a"]
    assert a_o.geometry.distance(street.geometry.iloc[0]).max() <= 120 + 150
    assert st["n_units_fallback_all_land"] == 1 and st["n_units_partly_outside"] == 1
    assert st["cut"]["census_total"] == pytest.approx(150.0, rel=1e-6)
