"""Screenshot a careblocks HTML map with Debian's chromium (for the README's docs/img/map.png).

Usage: python scripts/screenshot_map.py MAP_HTML PNG [--width 1400 --height 900]

Runs offline: the map opens on its light base drawn from the data (streets and outlines);
requests for OpenStreetMap tiles, an optional base, are refused at once. Needs the ``playwright`` Python package and
``/usr/bin/chromium`` (``apt-get install chromium``); ``playwright install`` is not needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def screenshot(map_html: Path, png: Path, *, width: int = 1400, height: int = 900) -> Path:
    from playwright.sync_api import sync_playwright

    png.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            # tiles from the internet: fail fast instead of waiting for a timeout offline
            page.route("**/tile.openstreetmap.org/**", lambda route: route.abort())
            page.goto(Path(map_html).resolve().as_uri(), wait_until="load")
            page.wait_for_selector(".leaflet-control-layers", timeout=20_000)
            page.wait_for_timeout(800)
            page.screenshot(path=str(png))
        finally:
            browser.close()
    return png


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("map_html", type=Path)
    ap.add_argument("png", type=Path)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=900)
    a = ap.parse_args(argv)
    if not a.map_html.exists():
        print(f"{a.map_html}: file not found; give the map.html written by careblocks run", file=sys.stderr)
        return 2
    print(screenshot(a.map_html, a.png, width=a.width, height=a.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
