"""The HTML map in a real headless browser: Debian's chromium driven by playwright.

The page is opened from ``file://`` with the network closed: only OpenStreetMap tile
requests may fail (they are aborted on purpose and their errors are excluded by URL); any
other console error, page error or failed request fails the test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _synthetic import EVIL, make_results, porto_alegre_results
from careblocks.outputs import write_map

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

TILE_HOST = "tile.openstreetmap.org"

# the map and its overlays, as map.js exposes them
_JS_STATE = """
() => {
  const m = window.careblocks.map;
  let n = 0; m.eachLayer(() => n++);
  return {layers: n};
}
"""

# the text of every popup, as the reader sees it (popups are built from DOM nodes)
_JS_POPUPS = """
() => {
  const texts = [];
  const visit = l => {
    if (l.getLayers) { l.getLayers().forEach(visit); return; }
    const p = l.getPopup && l.getPopup();
    if (p) {
      let c = p.getContent();
      if (typeof c === 'function') c = c(l);
      texts.push(typeof c === 'string' ? c : c.textContent);
    }
  };
  window.careblocks.overlays.forEach(o => visit(o.layer));
  return texts;
}
"""


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    problems: list[str] = []
    dialogs: list[str] = []

    def on_console(msg):
        if msg.type == "error":
            url = (msg.location or {}).get("url", "")
            if TILE_HOST not in url:
                problems.append(f"console: {msg.text} ({url})")

    def on_failed(req):
        if TILE_HOST not in req.url:
            problems.append(f"request failed: {req.url} {req.failure}")

    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", on_console)
    page.on("requestfailed", on_failed)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.route(f"**/{TILE_HOST}/**", lambda route: route.abort())
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_selector(".leaflet-control-layers-overlays input", timeout=20_000)
    page.wait_for_timeout(300)
    return page, problems, dialogs


def test_map_loads_toggles_and_screenshots(browser, tmp_path):
    r = make_results()
    path = write_map(r, tmp_path / "map.html")
    page, problems, dialogs = _open(browser, path)
    try:
        labels = page.locator(".leaflet-control-layers-overlays label")
        names = [t.strip() for t in labels.all_inner_texts()]
        assert "Walking time to health" in names and "Proposed Care Blocks (3) and walking catchments" in names
        before = page.evaluate(_JS_STATE)["layers"]
        # switch on the health layer: one more layer on the map
        health = labels.filter(has_text="Walking time to health").locator("input")
        assert not health.is_checked()
        health.click()
        assert health.is_checked()
        assert page.evaluate(_JS_STATE)["layers"] > before
        # switch off the selected sites (catchments + 3 markers + group leave the map)
        sites = labels.filter(has_text="Proposed Care Blocks").locator("input")
        with_sites = page.evaluate(_JS_STATE)["layers"]
        sites.click()
        assert page.evaluate(_JS_STATE)["layers"] <= with_sites - 4
        # the hostile facility name is shown as text in its popup, never run
        texts = page.evaluate(_JS_POPUPS)
        assert any(EVIL in t for t in texts)
        page.locator(".leaflet-marker-icon").first.click()
        page.wait_for_timeout(200)
        png = tmp_path / "shot.png"
        page.screenshot(path=str(png))
        assert png.stat().st_size > 20_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        page.close()
    assert problems == []
    assert dialogs == []


def test_porto_alegre_map_in_browser(browser, data, tmp_path):
    r = porto_alegre_results(data)
    path = write_map(r, tmp_path / "poa.html")
    page, problems, dialogs = _open(browser, path)
    try:
        n = page.evaluate(_JS_STATE)["layers"]
        assert n > 1227  # every H3 cell of the visible travel-time layer is on the map
    finally:
        page.close()
    assert problems == [] and dialogs == []
    # the README screenshot script, as the lead runs it
    png = tmp_path / "img" / "poa.png"
    out = subprocess.run([sys.executable, str(SCRIPTS / "screenshot_map.py"), str(path), str(png),
                          "--width", "900", "--height", "700"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
