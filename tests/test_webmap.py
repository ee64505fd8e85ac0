"""HTML map: layers, escaping of data text, H3 aggregation, self-contained page, size on a city.

Synthetic results from tests/_synthetic.py, and Porto Alegre's real network, H3 population
cells and health facilities (``porto_alegre_results``) for the size check.
"""

from __future__ import annotations

import re

import h3
import numpy as np
import pandas as pd
import pytest

import careblocks.outputs._atomic as atomic
from _synthetic import EVIL, make_results, porto_alegre_results
from careblocks.outputs import write_map
from careblocks.outputs.webmap import esc, map_areas


@pytest.fixture(scope="module")
def synthetic_map(tmp_path_factory):
    r = make_results()
    path = write_map(r, tmp_path_factory.mktemp("map") / "map.html")
    return r, path.read_text(encoding="utf-8")


def test_map_has_layers_legend_and_no_cdn(synthetic_map):
    r, text = synthetic_map
    for name in ("Walking time to daycare", "Walking time to health", "Walking time to laundromat",
                 "Walking time to community kitchen", "All 4 services within 15 min",
                 "Care-need index", "Candidate sites (12)", "Proposed Care Blocks (3)",
                 "After the Care Blocks: all 4 services within 15 min", "Streets (walking network)",
                 "Daycare (2)", "Health (3)", "Laundromat (4)", "Community kitchen (5)"):
        assert f'"{name}"' in text or f'"{name} ' in text, name
    assert "L.control.layers" in text
    assert "How to read this map" in text and "Synthetic town" in text
    assert "openstreetmap.org/copyright" in text  # tile attribution
    # self-contained: Leaflet inline, nothing loaded from a CDN
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=\"http", text)
    assert "Leaflet 1.9.4" in text and "MarkerClusterGroup" in text
    # every travel-time class of the legend
    for label in ("0–5 min", "10–15 min", "more than 30 min", "not reachable"):
        assert label in text


def test_data_text_is_escaped(synthetic_map):
    r, text = synthetic_map
    assert EVIL in set(r.services["name"]) and EVIL in set(r.candidates["name"])
    assert "<script>alert(1)" not in text
    assert text.count(esc(EVIL)) >= 2  # the health facility's tooltip and popup
    # candidate names travel as GeoJSON properties (folium writes & as \u0026)
    assert '"name": "\\u0026lt;script\\u0026gt;alert(1)\\u0026lt;/script\\u0026gt;"' in text


def test_template_literal_breakout_is_escaped(tmp_path):
    r = make_results(with_sites=False)
    r.services.loc[0, "name"] = "`+alert(2)+` ${alert(3)}"
    text = write_map(r, tmp_path / "m.html").read_text()
    assert "`+alert(2)+`" not in text and "${alert(3)}" not in text
    assert "&#96;+alert(2)+&#96; &#36;{alert(3)}" in text


def test_h3_aggregation_keeps_people_and_weights_times():
    r = make_results()
    areas = map_areas(r, h3_resolution=9)
    o = r.origins.to_crs("EPSG:4326")
    assert areas["population"].sum() == pytest.approx(o["population"].sum())
    assert all(h3.is_valid_cell(c) and h3.get_resolution(c) == 9 for c in areas["area_id"])
    cells = [h3.latlng_to_cell(y, x, 9) for x, y in zip(o.geometry.x, o.geometry.y, strict=False)]
    o = o.assign(cell=cells)
    for cell, grp in list(o.groupby("cell"))[:10]:
        got = areas.set_index("area_id").loc[cell, "walk_min_daycare"]
        want = np.average(grp["walk_min_daycare"], weights=grp["population"])
        assert got == pytest.approx(want)
    # a cell whose origins are all unreachable stays null, not 0 or 9999
    lm = o.groupby("cell")["walk_min_laundromat"].apply(lambda s: s.isna().all())
    assert areas.set_index("area_id").loc[lm[lm].index, "walk_min_laundromat"].isna().all()
    assert len(lm[lm]) >= 1
    # coordinates rounded to 6 decimals
    xy = np.concatenate([np.asarray(g.exterior.coords) for g in areas.geometry])
    assert np.allclose(xy, np.round(xy, 6), atol=0, rtol=0)


def test_polygon_origins_are_drawn_as_given():
    r = make_results(polygons=True, with_sites=False)
    areas = map_areas(r)
    assert len(areas) == len(r.origins)
    assert areas["area_id"].tolist() == r.origins["origin_id"].tolist()
    np.testing.assert_allclose(areas["walk_min_health"], r.origins["walk_min_health"])
    assert "all_within_share_after" not in areas  # no sites, no after layer


def test_interrupted_map_write_keeps_previous_file(tmp_path, monkeypatch):
    r = make_results(with_sites=False)
    target = write_map(r, tmp_path / "map.html")
    before = target.read_bytes()

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_map(make_results(), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["map.html"]


def test_porto_alegre_map_size_and_cells(data, tmp_path):
    r = porto_alegre_results(data)
    hexes = pd.read_csv(data / "porto_alegre" / "poa_hexgrid.csv")
    areas = map_areas(r)
    # cell centres map back onto the 1,227 resolution-9 cells of the population grid
    assert len(areas) == len(hexes) == 1227
    assert set(areas["area_id"]) == set(hexes["id"])
    assert areas["population"].sum() == pytest.approx(hexes["population"].sum())
    t = areas.set_index("area_id")["walk_min_health"]
    o = r.origins.set_index("origin_id")["walk_min_health"]
    np.testing.assert_allclose(t.loc[o.index], o, rtol=1e-9)
    path = write_map(r, tmp_path / "poa.html")
    size_mb = path.stat().st_size / 1e6
    assert size_mb < 15, size_mb
    text = path.read_text()
    assert text.count('"walk_min_health"') >= 1 and "Streets (walking network)" in text


def test_service_without_facilities_is_marked(tmp_path):
    r = make_results(with_sites=False)
    r.services = r.services[r.services["service"] != "daycare"].reset_index(drop=True)
    r.origins["walk_min_daycare"] = np.nan
    text = write_map(r, tmp_path / "m.html").read_text()
    assert '"Walking time to daycare (none found)"' in text
    assert "Daycare (none found)</div>" in text  # legend
    assert '"Daycare (' not in text  # no marker layer for it
