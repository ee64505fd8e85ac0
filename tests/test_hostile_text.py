"""Hostile text from data files never runs as code and is shown exactly as written.

Jinja (``{{7*7}}``, ``{% ... %}``, an unmatched ``{{``), JavaScript template literals,
HTML/script breakouts, ``<!--``, U+2028/U+2029, right-to-left and emoji payloads are fed
through every text field a data file or the config can put on the map or in the report
(study name, service labels and types, facility names/categories/sources, candidate and site
names, kinds and ids, rationale, district and origin ids). The pages are opened in headless
Chromium: nothing may execute (no dialog, no ``window.pwned``, no injected element, no page
error) and every payload must appear literally in the text the reader sees.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from _synthetic import make_results
from careblocks.outputs import styles, write_map, write_report

TILE_HOST = "tile.openstreetmap.org"

PAYLOADS = [
    "{{7*7}} Clinic",
    "{% for x in range(3) %}loop{% endfor %} Daycare",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "Unmatched {{ brace {%",
    "${alert(1)} `backtick` ${window.pwned=2}",
    "</script><script>window.pwned=1</script>",
    '<img src=x onerror="window.pwned=3">',
    "<!-- <script>window.pwned=4</script>",
    "line\u2028separator\u2029paragraph",
    "مركز صحي \u202eRTL\u202c حي",
    "👶🏽 guardería & lavandería 🧺",
    "&amp; &lt;b&gt; entity \\u003c",
]


def _set(obj, **values):
    """Set fields on a (possibly frozen) config dataclass."""
    for k, v in values.items():
        object.__setattr__(obj, k, v)


def hostile_results():
    r = make_results()
    cycle = itertools.cycle(PAYLOADS)
    _set(r.config.study, name=PAYLOADS[0])
    _set(r.config.services["health"], label=PAYLOADS[1])
    svc = r.services
    for col in ("name", "category", "source"):
        svc[col] = [next(cycle) for _ in range(len(svc))]
    # a service type that only the data names (not in the config)
    svc.loc[svc.index[-1], "service"] = PAYLOADS[6]
    cand = r.candidates
    for col in ("name", "kind"):
        cand[col] = [next(cycle) for _ in range(len(cand))]
    sel = r.selected
    ids = dict(zip(cand["candidate_id"], PAYLOADS, strict=False))
    cand["candidate_id"] = cand["candidate_id"].map(lambda c: ids.get(c, c))
    sel["candidate_id"] = sel["candidate_id"].map(lambda c: ids.get(c, c))
    if r.catchments is not None and "candidate_id" in r.catchments:
        r.catchments["candidate_id"] = r.catchments["candidate_id"].map(lambda c: ids.get(c, c))
    sel["name"] = PAYLOADS[3:3 + len(sel)]
    sel["rationale"] = [p + " rationale" for p in PAYLOADS[-len(sel):]]
    r.origins["origin_id"] = [PAYLOADS[i % len(PAYLOADS)] + f" {i}" for i in range(len(r.origins))]
    d0, d1 = PAYLOADS[5], PAYLOADS[9]
    r.origins["district"] = r.origins["district"].map({"West <b>side</b>": d0, "East": d1})
    r.districts["district"] = [d0, d1]
    r.equity["district"] = r.equity["district"].replace({"West <b>side</b>": d0, "East": d1})
    return r


def _open(browser, path: Path, ready: str):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and TILE_HOST not in (m.location or {}).get("url", "") else None)
    page.route(f"**/{TILE_HOST}/**", lambda route: route.abort())
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_selector(ready, timeout=20_000)
    page.wait_for_timeout(300)
    return page, problems


# all text a reader can reach: boxes, layer list, every tooltip and popup (built on demand)
_JS_TEXTS = """
() => {
  const texts = [document.title];
  document.querySelectorAll('.cb-box, .leaflet-control-layers').forEach(e => texts.push(e.textContent));
  const content = (l, x) => {
    if (!x) return;
    let c = x.getContent();
    if (typeof c === 'function') c = c(l);
    texts.push(typeof c === 'string' ? c : c.textContent);
  };
  const visit = l => {
    if (l.getLayers) { l.getLayers().forEach(visit); return; }
    content(l, l.getPopup && l.getPopup());
    content(l, l.getTooltip && l.getTooltip());
  };
  window.careblocks.overlays.forEach(o => visit(o.layer));
  return texts;
}
"""

_JS_INJECTED = """
() => ({
  pwned: typeof window.pwned,
  scripts: document.scripts.length,
  imgs: document.querySelectorAll('img[src="x"]').length,
  comments: document.createTreeWalker(document, NodeFilter.SHOW_COMMENT).nextNode() !== null,
})
"""


def test_hostile_text_on_the_map_is_inert_and_literal(browser, tmp_path):
    r = hostile_results()
    path = write_map(r, tmp_path / "map.html")
    text = path.read_text(encoding="utf-8")
    assert "49 Clinic" not in text and "window.pwned=1</script>" not in text
    page, problems = _open(browser, path, ".leaflet-control-layers-overlays input")
    try:
        # switch every overlay on so all its markers and tooltips exist
        for box in page.locator(".leaflet-control-layers-overlays input").all():
            if not box.is_checked():
                box.click()
        page.locator(".leaflet-marker-icon").first.click()
        state = page.evaluate(_JS_INJECTED)
        seen = "\n".join(page.evaluate(_JS_TEXTS))
    finally:
        page.close()
    assert problems == []
    assert state == {"pwned": "undefined", "scripts": 4, "imgs": 0, "comments": False}
    missing = [p for p in PAYLOADS if p not in seen]
    assert missing == []
    # the study title, the config label and the data-only service type, exactly
    assert f"Care Blocks: access to care services in {PAYLOADS[0]}" in seen
    assert f"{PAYLOADS[1]} (" in seen  # the health layer, labelled from the config
    assert styles.service_label(r.config, PAYLOADS[6]) in seen
    assert "49 Clinic" not in seen and "loop" not in seen.replace("{% for x in range(3) %}loop", "")


def test_hostile_text_in_the_report_is_inert_and_literal(browser, tmp_path):
    r = hostile_results()
    path = write_report(r, tmp_path / "report.html")
    page, problems = _open(browser, path, "h1")
    try:
        state = page.evaluate(_JS_INJECTED)
        seen = page.evaluate("() => document.title + '\\n' + document.body.textContent")
    finally:
        page.close()
    assert problems == []
    assert state["pwned"] == "undefined" and state["imgs"] == 0 and state["scripts"] == 0
    assert not state["comments"]
    # the study, site names, rationale and districts are shown as written
    want = [PAYLOADS[0], *r.selected["name"], *r.selected["rationale"], PAYLOADS[5], PAYLOADS[9]]
    assert [p for p in want if p not in seen] == []
