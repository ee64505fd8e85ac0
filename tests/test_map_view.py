"""The map as a council sees it when it opens, in headless Chromium (Debian's, via playwright).

On the embedded Fontibón study in Spanish (the shipped sample, run here): the initial view
holds the whole study area clear of every panel, proposed site 1 is visible, never in a
marker cluster and drawn above everything else, the legend's labels are round and explain
every symbol (cluster bubbles, overlapping catchments, candidates), the default base is drawn
from the data with no network (OpenStreetMap tiles are an option), and no English is left.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pytest

from _i18n_check import map_text, untranslated
from _synthetic import make_results
from careblocks.outputs import write_map

TILE_HOST = "tile.openstreetmap.org"

# where the study area and the panels are on the screen (CSS pixels)
_JS_VIEW = """
(area) => {
  const cb = window.careblocks, m = cb.map, r = m.getContainer().getBoundingClientRect();
  const p1 = m.latLngToContainerPoint(L.latLng(area[0])), p2 = m.latLngToContainerPoint(L.latLng(area[1]));
  const rect = q => ({left: q.left, right: q.right, top: q.top, bottom: q.bottom});
  const boxes = {};
  for (const [k, e] of Object.entries(cb.boxes)) { boxes[k] = rect(e.getBoundingClientRect()); }
  boxes.zoom = rect(m.zoomControl.getContainer().getBoundingClientRect());
  return {area: {left: Math.min(p1.x, p2.x) + r.left, right: Math.max(p1.x, p2.x) + r.left,
                 top: Math.min(p1.y, p2.y) + r.top, bottom: Math.max(p1.y, p2.y) + r.top},
          inView: m.getBounds().contains(L.latLngBounds(area)),
          boxes: boxes, width: r.width, height: r.height, zoom: m.getZoom(),
          light: m.hasLayer(cb.base.light), tiles: m.hasLayer(cb.base.tiles),
          lang: document.documentElement.lang};
}
"""

# proposed site 1: where it is, what is drawn at its centre, which pane and cluster hold it
_JS_SITE1 = """
() => {
  const el = Array.from(document.querySelectorAll('.cb-site')).find(e => e.textContent === '1');
  if (!el) { return null; }
  const q = el.getBoundingClientRect();
  const cx = (q.left + q.right) / 2, cy = (q.top + q.bottom) / 2;
  const hit = document.elementFromPoint(cx, cy);
  const marker = el.closest('.leaflet-marker-icon');
  return {w: q.width, h: q.height, x: cx, y: cy, onTop: !!hit && marker.contains(hit),
          inCluster: !!el.closest('.marker-cluster') || !!el.closest('.cb-cluster'),
          pane: marker.parentElement.className,
          W: window.innerWidth, H: window.innerHeight,
          clusters: document.querySelectorAll('.cb-cluster').length};
}
"""


def _overlap(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


@pytest.fixture(scope="module")
def fontibon(tmp_path_factory):
    """The embedded default study (Fontibón sample) in Spanish, and its map."""
    import careblocks
    from careblocks.config import default_config_path, load_config

    cfg = load_config(default_config_path(), overrides={"outputs.language": "es", "sensitivity.draws": 5})
    r = careblocks.analyse(cfg)
    path = write_map(r, tmp_path_factory.mktemp("fontibon") / "map.html")
    x0, y0, x1, y1 = gpd.GeoSeries([r.area], crs=r.crs).to_crs("EPSG:4326").total_bounds
    return r, path, [[float(y0), float(x0)], [float(y1), float(x1)]]


def _open(browser, path: Path, width: int = 1280, height: int = 860):
    page = browser.new_page(viewport={"width": width, "height": height})
    seen: dict[str, list[str]] = {"errors": [], "tiles": []}
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on("request", lambda req: seen["tiles"].append(req.url) if TILE_HOST in req.url else None)
    page.route(f"**/{TILE_HOST}/**", lambda route: route.abort())
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_selector(".cb-legend", timeout=20_000)
    page.wait_for_timeout(300)
    return page, seen


@pytest.fixture(scope="module")
def fontibon_page(browser, fontibon):
    page, seen = _open(browser, fontibon[1])
    yield page, seen
    page.close()


def test_initial_view_holds_the_study_area_clear_of_the_panels(fontibon, fontibon_page):
    _, _, area = fontibon
    page, seen = fontibon_page
    v = page.evaluate(_JS_VIEW, area)
    a = v["area"]
    assert v["inView"], v
    assert a["left"] >= 0 and a["top"] >= 0 and a["right"] <= v["width"] and a["bottom"] <= v["height"], v
    for name, box in v["boxes"].items():
        assert not _overlap(a, box), f"the {name} panel covers the study area: {box} {a}"
    # fitted, not a speck: the area fills most of the free width or height
    free = page.evaluate("() => window.careblocks.freeArea()")
    assert (a["right"] - a["left"] > 0.7 * (free["right"] - free["left"])
            or a["bottom"] - a["top"] > 0.7 * (free["bottom"] - free["top"])), (a, free)
    assert seen["errors"] == []


def test_site_1_is_visible_on_top_and_never_clustered(fontibon_page):
    page, seen = fontibon_page
    m = "window.careblocks.map"
    zoom = page.evaluate(f"() => {m}.getZoom()")
    # as opened, zoomed out to the whole city (services cluster there) and zoomed in
    site1 = "window.careblocks.data.overlays.find(o => o.kind === 'sites').sites[0]"
    for dz in (0, -3, 3):
        if dz > 0:  # zoomed in on site 1
            page.evaluate(f"() => {{ const s = {site1}; {m}.setView([s.lat, s.lng], {zoom + dz}, {{animate: false}}); }}")
        else:
            page.evaluate(f"() => {{ {m}.setZoom({zoom + dz}, {{animate: false}}); }}")
        page.wait_for_timeout(400)
        s = page.evaluate(_JS_SITE1)
        assert s is not None, f"site 1 is not on the page at zoom {zoom + dz} (clustered or missing)"
        assert s["w"] > 0 and s["h"] > 0 and 0 <= s["x"] <= s["W"] and 0 <= s["y"] <= s["H"], s
        assert not s["inCluster"] and "leaflet-cbSites-pane" in s["pane"], s
        assert s["onTop"], f"something is drawn over site 1 at zoom {zoom + dz}: {s}"
        if dz == -3:
            assert s["clusters"] > 0  # the services do cluster: the legend explains the bubbles
    page.evaluate("() => { window.careblocks.fitView(); }")
    assert seen["errors"] == []


def test_legend_is_round_and_explains_every_symbol(fontibon_page):
    page, _ = fontibon_page
    text = page.inner_text(".cb-legend")
    times = page.locator(".cb-legend .cb-row-swatch").all_inner_texts()
    assert len(times) == 7, text  # 0–5 ... más de 30 min, sin acceso
    for line in text.splitlines():
        assert not re.search(r"\d[.,]\d", line), line  # no 6,66667 nor 0.5
    assert [t.strip() for t in times][:3] == ["0–5 min", "5–10 min", "10–15 min"]
    kinds = set(page.eval_on_selector_all(".cb-legend .cb-row", "els => els.map(e => e.className)"))
    kinds = {k.split("cb-row-")[1] for k in kinds}
    assert {"swatch", "service", "cluster", "site", "catchment", "candidate", "streets", "area"} <= kinds
    assert "se superponen" in text and "haga clic para acercar" in text
    assert page.locator(".cb-legend .cb-ramp").count() == 2  # share with all services, care need


def test_light_base_by_default_and_tiles_only_on_request(fontibon_page):
    page, seen = fontibon_page
    v = page.evaluate(_JS_VIEW, [[0, 0], [0, 0]])
    assert v["light"] and not v["tiles"] and seen["tiles"] == []
    assert page.locator(".leaflet-cbStreets-pane canvas").count() == 1  # streets drawn from the data
    page.locator(".leaflet-control-layers-base input").nth(1).check()
    page.wait_for_timeout(300)
    v = page.evaluate(_JS_VIEW, [[0, 0], [0, 0]])
    assert v["tiles"] and not v["light"] and seen["tiles"]  # requested (and aborted: offline)
    page.locator(".leaflet-control-layers-base input").nth(0).check()
    page.wait_for_timeout(200)


def test_fontibon_map_in_spanish_has_no_english(fontibon, fontibon_page):
    r, path, _ = fontibon
    page, seen = fontibon_page
    html = path.read_text(encoding="utf-8")
    assert '<html lang="es">' in html
    assert page.evaluate("() => document.documentElement.lang") == "es"
    text, names = map_text(html)
    names += tuple(str(n) for n in r.services["name"].dropna()) + tuple(str(n) for n in r.selected["name"])
    names += ("Bogotá, Fontibón", "SDIS", "osm", "OSM")
    assert untranslated(text, "es", data_names=names) == []
    # and what the browser shows, the how-to opened
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    shown = " ".join(page.inner_text("body").split())
    assert untranslated(shown, "es", data_names=names + ("Leaflet", "careblocks")) == []
    assert "Cómo leer este mapa" in shown and "Manzanas del Cuidado propuestas" in shown
    assert "en Bogotá, Fontibón" in shown  # study.title, accents and all
    assert seen["errors"] == []


def test_small_window_folds_the_panels_and_still_shows_the_area(browser, tmp_path):
    r = make_results()
    path = write_map(r, tmp_path / "map.html")
    x0, y0, x1, y1 = r.origins.to_crs("EPSG:4326").total_bounds
    area = [[float(y0), float(x0)], [float(y1), float(x1)]]
    page, seen = _open(browser, path, 800, 520)
    try:
        v = page.evaluate(_JS_VIEW, area)
        assert v["inView"] and v["lang"] == "en"
        assert not page.evaluate("() => window.careblocks.boxes.legend.querySelector('details').open")
        assert "leaflet-control-layers-expanded" not in page.evaluate(
            "() => window.careblocks.boxes.layers.className")
        for name, box in v["boxes"].items():
            assert not _overlap(v["area"], box), f"the {name} panel covers the study area"
    finally:
        page.close()
    assert seen["errors"] == []
