"""Equity tables: hand computations on small frames, and real data.

Real data: Porto Alegre's H3 grid (IPEA via r5r; population and healthcare counts per cell),
Bogotá's localidades (IDECA) and SITP zonal stops (TransMilenio open data).
"""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from careblocks.demand.equity import (
    assign_districts,
    equity_summary_rows,
    equity_table,
    gini,
    lorenz_share,
    palma_ratio,
)
from careblocks.errors import DataQualityWarning, InputDataError, MissingColumnError


@pytest.fixture
def small():
    return pd.DataFrame({
        "walk_min_daycare": [5.0, 12.0, np.nan, 25.0, 8.0],
        "walk_min_health": [31.0, 2.0, 14.0, 9.0, 20.0],
        "population": [100.0, 50.0, 30.0, 20.0, 0.0],
        "children_under5": [10.0, 5.0, 3.0, 2.0, 1.0],
        "district": ["A", "A", "B", "B", None],
    })


def test_hand_computed_shares(small):
    t = equity_table(small, ["daycare", "health"], ["population", "children_under5"],
                     thresholds=(10, 15), district_col="district")
    def row(service, group, district, thr):
        r = t[(t.service == service) & (t.group == group) & (t.district == district)
              & (t.threshold_min == thr)]
        assert len(r) == 1
        return r.iloc[0]

    r = row("daycare", "population", "all", 10)
    assert r.people == 200 and r.people_within == 100 and r.share_within == 0.5
    assert r.share_unreachable == pytest.approx(30 / 200)
    assert r.share_beyond == 0.5
    # unreachable counts as beyond every threshold
    assert row("daycare", "population", "all", 15).share_within == pytest.approx(150 / 200)
    # children: origin 5 (no people, 1 child at 8 min) counts for children only
    assert row("daycare", "children_under5", "all", 10).people_within == 11
    assert row("daycare", "children_under5", "all", 10).share_within == pytest.approx(11 / 21)
    # per district; the origin outside every district only in "all"
    assert row("health", "population", "A", 10).share_within == pytest.approx(50 / 150)
    assert row("health", "population", "B", 15).share_within == 1.0
    assert set(t.district) == {"all", "A", "B"}
    # mean over reachable people
    assert row("daycare", "population", "all", 10).mean_min == pytest.approx(
        (5 * 100 + 12 * 50 + 25 * 20) / 170)


def test_gini_palma_by_hand():
    t = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.ones(4)
    # Gini = sum |xi - xj| / (2 n^2 mean) = 20 / (2 * 16 * 2.5)
    assert gini(t, w) == pytest.approx(0.25)
    # top 10% of people: 0.4 person at 4 min = 1.6 of 10 person-minutes; bottom 40%:
    # 1 person at 1 min + 0.6 person at 2 min = 2.2
    assert palma_ratio(t, w) == pytest.approx(1.6 / 2.2)
    assert lorenz_share(t, w, 0.5) == pytest.approx(0.3)
    # weights: an origin of 3 people at 1 min is three origins of 1 person
    assert gini(np.array([1.0, 4.0]), np.array([3.0, 1.0])) == pytest.approx(
        gini(np.array([1.0, 1, 1, 4]), np.ones(4)))
    # equal times: Gini 0, Palma 0.1 / 0.4
    assert gini(np.full(5, 7.0), np.ones(5)) == pytest.approx(0)
    assert palma_ratio(np.full(5, 7.0), np.ones(5)) == pytest.approx(0.25)
    # nulls are ignored; everyone at 0 minutes: Gini 0, Palma undefined
    assert gini(np.array([np.nan, 2.0, 2.0]), np.ones(3)) == pytest.approx(0)
    assert np.isnan(palma_ratio(np.zeros(3), np.ones(3)))
    assert np.isnan(gini(np.array([np.nan]), np.ones(1)))


def test_summary_rows(small):
    t = equity_table(small, ["daycare", "health"], ["population", "children_under5"],
                     thresholds=(10, 15))
    header, rows = equity_summary_rows(t, 15)
    assert header == ["service", "population", "children_under5"]
    assert rows[0] == ["daycare", "75%", f"{16 / 21:.0%}"]
    with pytest.raises(InputDataError, match="thresholds in the table"):
        equity_summary_rows(t, 45)


def test_missing_columns(small):
    with pytest.raises(MissingColumnError, match="walk_min_laundromat"):
        equity_table(small, ["laundromat"], ["population"])
    with pytest.raises(MissingColumnError, match="older_80plus"):
        equity_table(small, ["daycare"], ["older_80plus"])


@pytest.fixture(scope="module")
def poa(data):
    df = pd.read_csv(data / "porto_alegre" / "poa_hexgrid.csv")
    g = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs=4326).to_crs(32722)
    x, y = g.geometry.x.to_numpy(), g.geometry.y.to_numpy()
    fac = g["healthcare"].to_numpy() > 0
    from scipy.spatial import cKDTree

    d, _ = cKDTree(np.column_stack([x[fac], y[fac]])).query(np.column_stack([x, y]))
    # straight-line walking minutes at 4.8 km/h, x1.3 detour: a stand-in for network times
    g["walk_min_health"] = d * 1.3 / (4800 / 60)
    g.loc[d > 4000, "walk_min_health"] = np.nan  # "unreachable" beyond 4 km
    return g


def test_porto_alegre_plausible(poa):
    t = equity_table(poa, ["health"], ["population"], thresholds=(10, 15, 20, 30))
    assert (t.people == poa.population.sum()).all()
    s = t.sort_values("threshold_min").share_within.to_numpy()
    assert np.all(np.diff(s) >= 0) and 0 < s[0] < s[-1] <= 1
    # within T computed directly from the frame
    direct = poa.loc[poa.walk_min_health <= 15, "population"].sum() / poa.population.sum()
    assert t.loc[t.threshold_min == 15, "share_within"].iloc[0] == pytest.approx(direct)
    r = t.iloc[0]
    assert 0 < r.gini < 1 and r.palma_ratio > 0.25  # unequal: some walk far, some are next door
    unreach = poa.loc[poa.walk_min_health.isna(), "population"].sum() / poa.population.sum()
    assert r.share_unreachable == pytest.approx(unreach)


def test_bogota_localidades_districts(data, poa):
    loca = gpd.read_file(data / "bogota" / "admin" / "localidades_ideca" / "loca.shp")
    stops = pd.read_csv(data / "bogota" / "transit" / "paraderos_zonales_sitp.csv")
    lon = next(c for c in stops.columns if c.lower() in ("lon", "longitud", "longitude", "x"))
    lat = next(c for c in stops.columns if c.lower() in ("lat", "latitud", "latitude", "y"))
    pts = gpd.GeoDataFrame(stops, geometry=gpd.points_from_xy(stops[lon], stops[lat]),
                           crs=4326).to_crs(32618)
    # add a point far outside Bogotá
    pts = pd.concat([pts, gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)], crs=32618)],
                    ignore_index=True)
    with pytest.warns(DataQualityWarning, match="outside every district"):
        names = assign_districts(pts, loca, "LocNombre")
    assert names.iloc[-1] is None
    counts = names.value_counts()
    assert "FONTIBON" in counts.index and counts["FONTIBON"] > 100
    assert set(counts.index) <= set(loca.LocNombre)
    # independent check: point-in-polygon for Fontibón in the layer's own CRS (EPSG:4686)
    f = loca[loca.LocNombre == "FONTIBON"].geometry.iloc[0]
    inside = pts.to_crs(loca.crs).within(f)
    assert (names[inside.to_numpy()] == "FONTIBON").all()
    assert counts["FONTIBON"] == inside.sum()
    # the stops table names its localidad: the spatial join agrees for nearly every stop
    def norm(v):
        import unicodedata

        return "".join(c for c in unicodedata.normalize("NFKD", str(v).upper())
                       if not unicodedata.combining(c)).strip()

    given = pts["localidad"].iloc[:-1].map(norm)
    got = names.iloc[:-1].map(norm)
    known = given.isin(set(loca.LocNombre.map(norm)))
    assert known.mean() > 0.9
    assert (given[known] == got[known]).mean() > 0.97
    with pytest.raises(MissingColumnError, match="LocName"):
        assign_districts(pts, loca, "LocName")


def test_districts_partition_all(poa):
    # quarter Porto Alegre into H3 res-6 parents as districts
    poa = poa.copy()
    poa["district"] = poa["id"].map(lambda c: h3.cell_to_parent(c, 6))
    t = equity_table(poa, ["health"], ["population"], thresholds=(15,), district_col="district")
    per = t[t.district != "all"]
    assert per.people.sum() == pytest.approx(t[t.district == "all"].people.iloc[0])
    assert per.people_within.sum() == pytest.approx(t[t.district == "all"].people_within.iloc[0])
    assert len(per) == poa["district"].nunique() > 1
