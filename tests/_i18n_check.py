"""Find English left in a translated page: visible text checked against the English catalogue."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from babel.messages.pofile import read_po

from careblocks.i18n import catalogue_path

#: English words that no sentence of a Spanish, Portuguese or French page contains
ENGLISH_WORDS = ("the", "within", "people", "with", "and", "of", "minutes", "nearest", "share",
                 "today", "proposed", "walking", "services", "score", "hours", "week", "serves",
                 "brings", "returns", "site", "sites", "who", "before", "after", "group", "older", "near")


class _Visible(HTMLParser):
    """Text a reader sees: element text and alt/title attributes, not scripts or styles, nor
    elements marked as English (``lang="en"``: the analyst's technical warnings)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0
        self._stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            return
        if tag in ("script", "style") or (a.get("lang") == "en"):
            self._skip += 1
            if tag not in ("script", "style"):
                self._stack.append(tag)
        if self._skip:  # inside a script, a style or an element marked English
            return
        for k, v in attrs:
            if k in ("alt", "title", "aria-label") and v:
                self.parts.append(v)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif self._stack and tag == self._stack[-1]:
            self._stack.pop()
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(html_text: str) -> str:
    p = _Visible()
    p.feed(html_text)
    return " ".join(" ".join(p.parts).split())


def english_fragments(lang: str) -> list[str]:
    """Fixed parts (between placeholders) of every English message that the catalogue of
    ``lang`` translates differently, at least two words long."""
    with catalogue_path(lang).open("rb") as f:
        cat = read_po(f, locale=lang)
    out = []
    for m in cat:
        if not m.id or isinstance(m.id, tuple) or m.string == m.id:
            continue
        for frag in re.split(r"\{[^}]*\}", m.id):
            frag = frag.strip(" .,:;()")
            if len(frag.split()) >= 2 and frag not in m.string:
                out.append(frag)
    return out


def untranslated(text: str, lang: str, *, data_names: tuple[str, ...] = ()) -> list[str]:
    """English found in ``text`` (visible text of a page in ``lang``): catalogue fragments and
    English words. ``data_names`` (facility and site names from the data) are removed first."""
    for name in sorted(data_names, key=len, reverse=True):
        if name:
            text = text.replace(name, " ")
    found = [f for f in english_fragments(lang) if f in text]
    words = re.findall(r"[A-Za-z]+", text.lower())
    found += sorted({w for w in words if w in ENGLISH_WORDS})
    return found


def map_text(html_text: str) -> tuple[str, tuple[str, ...]]:
    """What a reader of the HTML map can see (from its one JSON block: title, how-to, legend,
    layer names, tooltip and popup labels and values), and the names that come from the data
    (facility and site names), to pass to :func:`untranslated` as ``data_names``."""
    import json

    block = re.findall(r'<script type="application/json" id="careblocks-data">(.*?)</script>',
                       html_text, re.S)
    assert len(block) == 1
    d = json.loads(block[0])
    parts: list[str] = [str(v) for v in d["text"].values()]
    parts += [d["page"]["title"], d["page"]["subtitle"], d["page"]["howto_summary"], *d["page"]["howto"]]
    parts.append(d["legend"]["title"])
    for s in d["legend"]["sections"]:
        parts.append(s["title"])
        parts += [str(r.get(k)) for r in s["rows"] for k in ("label", "low", "high") if r.get(k)]
    names: list[str] = []
    for o in d["overlays"]:
        parts.append(o["name"])
        parts += [f[1] for f in o.get("fields", []) + o.get("catchment_fields", [])]
        for p in o.get("points", []) + o.get("sites", []):
            names.append(p["title"] if "order" not in p else "")
            parts += [c for row in p["rows"] for c in row]
            if p.get("rationale"):
                parts.append(p["rationale"])
            if "order" in p:
                parts.append(p["title"])
        if o["kind"] == "candidates":
            names += [str(f["properties"].get("name")) for f in o["geojson"]["features"]]
            parts += [str(f["properties"].get("type") or "") for f in o["geojson"]["features"]]
    return " ".join(" ".join(parts).split()), tuple(n for n in names if n)
