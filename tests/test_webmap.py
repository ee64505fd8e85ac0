"""HTML map: layers, data embedded as JSON only, H3 aggregation, self-contained page, size on a city.

Synthetic results from tests/_synthetic.py, and Porto Alegre's real network, H3 population
cells and health facilities (``porto_alegre_results``) for the size check.
"""

from __future__ import annotations

import json
import re

import h3
import numpy as np
import pandas as pd
import pytest

import careblocks.outputs._atomic as atomic
from _synthetic import EVIL, make_results, porto_alegre_results
from careblocks.outputs import write_map
from careblocks.outputs.webmap import TEXT, json_for_html, map_areas


@pytest.fixture(scope="module")
def synthetic_map(tmp_path_factory):
    r = make_results()
    path = write_map(r, tmp_path_factory.mktemp("map") / "map.html")
    return r, path.read_text(encoding="utf-8")


def page_data(text: str) -> dict:
    """The page's one JSON block, parsed as the browser parses it."""
    blocks = re.findall(r'<script type="application/json" id="careblocks-data">(.*?)</script>', text, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def test_map_has_layers_legend_and_no_cdn(synthetic_map):
    r, text = synthetic_map
    data = page_data(text)
    names = [o["name"] for o in data["overlays"]]
    assert names == [
        "Walking time to daycare", "Walking time to health",
        "Walking time to laundromat", "Walking time to community kitchen",
        "All 4 services within 15 min", "Care-need index", "Daycare (2)", "Health (3)",
        "Laundromat (4)", "Community kitchen (5)", "Candidate sites (12)",
        "Proposed Care Blocks (3) and walking catchments",
        "After the Care Blocks: all 4 services within 15 min"]
    assert data["page"]["howto_summary"] == "How to read this map"
    assert "Synthetic town" in data["page"]["title"]
    # self-contained: Leaflet inline, nothing loaded from a CDN
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=\"http", text)
    assert "Leaflet 1.9.4" in text and "MarkerClusterGroup" in text
    assert "openstreetmap.org/copyright" in text  # tile attribution
    # every travel-time class of the legend
    sections = {s["title"]: s["rows"] for s in data["legend"]["sections"]}
    labels = [row["label"] for row in sections["Travel time"]]
    for label in ("0–5 min", "10–15 min", "more than 30 min", "not reachable"):
        assert label in labels
    # every symbol the map draws has its row: sites, overlapping catchments, candidates,
    # services and their cluster bubbles, the light base's streets and study area
    kinds = {row["kind"] for rows in sections.values() for row in rows}
    assert {"swatch", "ramp", "site", "catchment", "candidate", "service", "cluster", "streets",
            "area"} <= kinds
    assert "overlap" in next(r["label"] for r in sections["Proposed Care Blocks"] if r["kind"] == "catchment")
    # the light base is drawn from the data: streets and the study area's outline
    assert data["base"]["streets"]["geometry"]["type"] == "MultiLineString"
    assert data["base"]["area"]["geometry"]["type"] == "MultiLineString"
    # the candidates are sized by score: the best is the largest circle
    cand = next(o for o in data["overlays"] if o["kind"] == "candidates")["geojson"]["features"]
    best = max(cand, key=lambda f: f["properties"]["score"])
    assert best["properties"]["radius"] == max(f["properties"]["radius"] for f in cand) == 12.0


def test_data_text_only_in_the_json_block(synthetic_map):
    r, text = synthetic_map
    assert EVIL in set(r.services["name"]) and EVIL in set(r.candidates["name"])
    # the raw markup appears nowhere: only inside the JSON block, with < > & escaped
    assert "<script>alert(1)" not in text
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in text
    outside = re.sub(r'<script type="application/json".*?</script>', "", text, flags=re.S)
    assert "alert(1)" not in outside and "Synthetic town" not in outside
    data = page_data(text)
    health = next(o for o in data["overlays"] if o["name"] == "Health (3)")
    assert EVIL in [p["title"] for p in health["points"]]  # carried as text, unchanged
    cand = next(o for o in data["overlays"] if o["kind"] == "candidates")
    assert EVIL in [f["properties"].get("name") for f in cand["geojson"]["features"]]
    # no template engine is imported by the map writer, and map.js never parses HTML
    import ast

    import careblocks.outputs.webmap as wm
    tree = ast.parse(open(wm.__file__, encoding="utf-8").read())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not mods & {"jinja2", "folium", "branca", "mako", "string"}
    js = (wm.ASSETS / "map.js").read_text()
    assert not re.search(r"innerHTML\s*=|insertAdjacentHTML|document\.write|eval\(|new Function", js)


def test_json_for_html_escapes_what_ends_a_script():
    payload = {"a": "</script><!--<script>&\u2028\u2029`${x}`"}
    out = json_for_html(payload)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in out
    assert json.loads(out) == payload
    with pytest.raises(ValueError):
        json_for_html({"x": float("nan")})


def test_one_candidate_or_equal_scores_do_not_crash(tmp_path):
    r = make_results()
    r.candidates["score"] = 0.5  # all equal
    data = page_data(write_map(r, tmp_path / "eq.html").read_text())
    cand = next(o for o in data["overlays"] if o["kind"] == "candidates")["geojson"]["features"]
    assert {f["properties"]["radius"] for f in cand} == {7.5}
    r.candidates = r.candidates.head(1)
    data = page_data(write_map(r, tmp_path / "one.html").read_text())
    assert next(o for o in data["overlays"] if o["kind"] == "candidates")["name"] == "Candidate sites (1)"


def test_page_strings_live_in_one_table():
    # every label of the page comes from TEXT (for translation), none is hard-coded in map.js
    import careblocks.outputs.webmap as wm
    js = (wm.ASSETS / "map.js").read_text()
    for key in ("base_light", "howto_summary", "legend_services", "legend_time", "legend_site",
                "legend_cluster"):
        assert TEXT[key] not in js
    assert not re.search(r"['\"](Legend|Streets|Proposed|Travel)", js)


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
    data = page_data(text)
    assert any(o.get("prop") == "walk_min_health" for o in data["overlays"])
    # the light base: Porto Alegre's ~38k-node walking network, simplified, as one line layer
    streets = data["base"]["streets"]["geometry"]
    assert streets["type"] == "MultiLineString" and len(streets["coordinates"]) > 1000


def test_service_without_facilities_is_marked(tmp_path):
    r = make_results(with_sites=False)
    r.services = r.services[r.services["service"] != "daycare"].reset_index(drop=True)
    r.origins["walk_min_daycare"] = np.nan
    text = write_map(r, tmp_path / "m.html").read_text()
    data = page_data(text)
    names = [o["name"] for o in data["overlays"]]
    assert "Walking time to daycare (none found)" in names
    legend = {s["title"]: s["rows"] for s in data["legend"]["sections"]}
    assert "Daycare (none found)" in [row["label"] for row in legend["Existing services"]]
    assert not any(n.startswith("Daycare (") for n in names)  # no marker layer for it
