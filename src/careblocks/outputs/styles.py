"""Colours and classes shared by the writers, and QGIS styles (QML + SLD) for the GeoPackage.

Travel times use the same classes everywhere (map, GeoPackage style, report): breaks at
0, T/3, 2T/3, T, 4T/3, 2T minutes for a threshold T (5, 10, 15, 20, 30 for 15 min), blue
(short) to red (long), a ColorBrewer RdYlBu ramp that stays readable with colour-blindness.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

__all__ = [
    "SERVICE_COLORS",
    "TIME_COLORS",
    "qml_categorized",
    "qml_graduated",
    "service_color",
    "service_label",
    "sld_categorized",
    "sld_graduated",
    "time_breaks",
    "time_labels",
]

#: RdYlBu (reversed): short times blue, long times red; last class is "more than 2T"
TIME_COLORS = ("#4575b4", "#91bfdb", "#e0f3f8", "#fee090", "#fc8d59", "#d73027")
UNREACHABLE_COLOR = "#9e9e9e"
#: proposed Care Blocks and their catchments (map, report figure, QGIS style)
SITE_COLOR = "#6a3d9a"

SERVICE_COLORS = {
    "daycare": "#e7298a",
    "health": "#d95f02",
    "laundromat": "#1b9e77",
    "community_kitchen": "#7570b3",
}
_EXTRA_COLORS = ("#66a61e", "#e6ab02", "#a6761d", "#1f78b4", "#666666", "#b15928")

#: short glyphs drawn inside the map's service icons
SERVICE_GLYPHS = {"daycare": "D", "health": "+", "laundromat": "L", "community_kitchen": "K"}


def service_color(service: str, order: Sequence[str] = ()) -> str:
    """Colour of a service type: fixed for the four care services, then a qualitative palette."""
    if service in SERVICE_COLORS:
        return SERVICE_COLORS[service]
    extras = [s for s in order if s not in SERVICE_COLORS]
    i = extras.index(service) if service in extras else zlib.crc32(service.encode())
    return _EXTRA_COLORS[i % len(_EXTRA_COLORS)]


def service_glyph(service: str, order: Sequence[str] = ()) -> str:
    """One or two letters drawn in the service's map icon, unique among ``order``."""
    taken = set()
    for s in order:
        if s == service:
            break
        taken.add(service_glyph(s, order[: list(order).index(s)]))
    if service in SERVICE_GLYPHS and SERVICE_GLYPHS[service] not in taken:
        return SERVICE_GLYPHS[service]
    letters = "".join(ch for ch in service if ch.isalnum()) or "?"
    for g in (letters[:1].upper(), letters[:1].upper() + letters[1:2], letters[:2].upper()):
        if g not in taken:
            return g
    return letters[:3].capitalize()


def service_label(config, service: str) -> str:
    """Human label of a service from the config (``services.<s>.label``), in the config's
    ``outputs.language`` when it is one of the preset labels."""
    from careblocks.i18n import label_text, language

    try:
        label = config.services[service].label
    except (AttributeError, KeyError):
        label = ""
    label = label or service.replace("_", " ").capitalize()
    return label_text(label, language(getattr(getattr(config, "outputs", None), "language", "en")))


def _nice(v: float, step: float) -> float:
    return round(v / step) * step


def time_breaks(threshold_min: float) -> list[float]:
    """Class breaks in minutes: 0, ~T/3, ~2T/3, T, ~4T/3, 2T (the last class is open).

    The thirds are rounded to whole 5 minutes (whole minutes below T = 10) so that legends
    read ``0–5 min``, never ``0–6.66667 min``; T itself is kept (it is the question asked).
    """
    t = float(threshold_min)
    step = 5.0 if t >= 10 else 1.0 if t >= 3 else 0.5
    out = [0.0]
    for v in (_nice(t / 3, step), _nice(2 * t / 3, step), t, _nice(4 * t / 3, step), _nice(2 * t, step)):
        if v > out[-1] + 1e-9:
            out.append(v)
    if out[-1] < 2 * t - 1e-9 and len(out) < 6:
        out.append(2 * t)
    return out


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if abs(v - round(v)) > 1e-9 else str(int(round(v)))


def time_labels(threshold_min: float, language: str | None = None) -> list[str]:
    """Legend labels of :func:`time_breaks`: ``0–5 min`` ... ``more than 30 min``."""
    from careblocks.i18n import language as get_language

    L = get_language(language)
    b = time_breaks(threshold_min)
    num = lambda v: L.number(v, 0 if abs(v - round(v)) < 1e-9 else 1)  # noqa: E731
    labels = [L._("{low}–{high} min").format(low=num(b[i]), high=num(b[i + 1])) for i in range(len(b) - 1)]
    return labels + [L._("more than {minutes} min").format(minutes=num(b[-1]))]


def _rgba(hex_color: str, alpha: int = 255) -> str:
    h = hex_color.lstrip("#")
    return f"{int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha}"


# --------------------------------------------------------------------------------------
# QML
# --------------------------------------------------------------------------------------

_QML_HEAD = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"


def _opt(name: str, value: str) -> str:
    return f'<Option type="QString" name="{name}" value={quoteattr(value)}/>'


def _symbol_xml(name: str, kind: str, color: str, *, size: float = 2.6, fill_alpha: int = 220,
                outline: str | None = None, outline_width: float | None = None,
                fill: bool = True) -> str:
    """One QGIS symbol: kind 'fill' (polygons), 'marker' (points) or 'line'.

    Polygons: ``fill=False`` draws the outline only (``outline`` colour, default ``color``).
    """
    if kind == "fill":
        cls = "SimpleFill"
        opts = [
            _opt("color", _rgba(color, fill_alpha if fill else 0)),
            _opt("outline_color", _rgba(outline, 255) if outline else
                 ("255,255,255,120" if fill else _rgba(color))),
            _opt("outline_style", "solid"),
            _opt("outline_width", f"{outline_width if outline_width is not None else (0.1 if fill else 0.6):g}"),
            _opt("outline_width_unit", "MM"),
            _opt("style", "solid" if fill else "no"),
        ]
    elif kind == "line":
        cls = "SimpleLine"
        opts = [_opt("line_color", _rgba(color)), _opt("line_width", f"{outline_width or 0.6:g}"),
                _opt("line_style", "solid")]
    else:
        cls = "SimpleMarker"
        opts = [
            _opt("name", "circle"),
            _opt("color", _rgba(color)),
            _opt("outline_color", _rgba(outline) if outline else "50,50,50,255"),
            _opt("outline_style", "solid"),
            _opt("outline_width", f"{outline_width if outline_width is not None else 0.2:g}"),
            _opt("size", f"{size:g}"),
            _opt("size_unit", "MM"),
        ]
    body = "".join(opts)
    return (
        f'<symbol type="{kind}" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="{cls}" enabled="1" locked="0" pass="0">'
        f'<Option type="Map">{body}</Option></layer></symbol>'
    )


def qml_graduated(
    attr: str, breaks: Sequence[float], colors: Sequence[str], labels: Sequence[str], *, kind: str
) -> str:
    """A QGIS graduated renderer on ``attr``: class i is [breaks[i], breaks[i+1]).

    ``colors`` and ``labels`` have ``len(breaks)`` entries: the last class is open-ended.
    """
    bounds = [*breaks, 1e9]
    ranges, symbols = [], []
    for i in range(len(breaks)):
        ranges.append(
            f'<range lower="{bounds[i]:.6f}" upper="{bounds[i + 1]:.6f}" symbol="{i}" '
            f"label={quoteattr(labels[i])} render=\"true\"/>"
        )
        symbols.append(_symbol_xml(str(i), kind, colors[i]))
    return (
        _QML_HEAD
        + '<qgis version="3.28.0" styleCategories="Symbology">'
        + f"<renderer-v2 type=\"graduatedSymbol\" attr={quoteattr(attr)} "
        'graduatedMethod="GraduatedColor" symbollevels="0" forceraster="0" enableorderby="0">'
        + "<ranges>"
        + "".join(ranges)
        + "</ranges><symbols>"
        + "".join(symbols)
        + "</symbols>"
        + f"<source-symbol>{_symbol_xml('0', kind, colors[0])}</source-symbol>"
        + '<classificationMethod id="Fixed"/>'
        + "</renderer-v2></qgis>\n"
    )


def qml_categorized(
    attr: str, categories: Sequence[tuple[str, str, str]], *, kind: str
) -> str:
    """A QGIS categorised renderer on ``attr``; ``categories`` = (value, label, colour)."""
    cats, symbols = [], []
    for i, (value, label, color) in enumerate(categories):
        cats.append(
            f"<category value={quoteattr(value)} symbol=\"{i}\" label={quoteattr(label)} render=\"true\"/>"
        )
        symbols.append(_symbol_xml(str(i), kind, color, size=3.2))
    return (
        _QML_HEAD
        + '<qgis version="3.28.0" styleCategories="Symbology">'
        + f"<renderer-v2 type=\"categorizedSymbol\" attr={quoteattr(attr)} "
        'symbollevels="0" forceraster="0" enableorderby="0">'
        + "<categories>"
        + "".join(cats)
        + "</categories><symbols>"
        + "".join(symbols)
        + "</symbols></renderer-v2></qgis>\n"
    )


def qml_single(color: str, *, kind: str, **symbol: Any) -> str:
    """A QGIS single-symbol renderer; ``symbol`` options as :func:`_symbol_xml` (size,
    fill, outline, outline_width, fill_alpha)."""
    symbol.setdefault("size", 4.0)
    return (
        _QML_HEAD
        + '<qgis version="3.28.0" styleCategories="Symbology">'
        + '<renderer-v2 type="singleSymbol" symbollevels="0" forceraster="0" enableorderby="0">'
        + f"<symbols>{_symbol_xml('0', kind, color, **symbol)}</symbols>"
        + "</renderer-v2></qgis>\n"
    )


#: layer -> (colour, symbol options): styles fit for reading, shared by the GeoPackage's stored
#: styles and the QGIS project. Districts and catchments are outlines, so nothing is hidden
#: under them; candidates are small dots; the proposed sites stand out.
LAYER_SYMBOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "districts": ("#4d4d4d", {"fill": False, "outline_width": 0.5}),
    "study_area": ("#1a1a1a", {"fill": False, "outline_width": 0.9}),
    "catchments": ("#6a3d9a", {"fill": True, "fill_alpha": 18, "outline": "#6a3d9a", "outline_width": 0.4}),
    "candidates": ("#9e9e9e", {"size": 1.6, "outline": "#ffffff", "outline_width": 0.1}),
    "selected_sites": ("#6a3d9a", {"size": 5.0, "outline": "#ffffff", "outline_width": 0.6}),
}


# --------------------------------------------------------------------------------------
# SLD (OGC Symbology Encoding 1.1), stored beside the QML for other GIS software
# --------------------------------------------------------------------------------------

_SLD_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld" '
    'xmlns:se="http://www.opengis.net/se" xmlns:ogc="http://www.opengis.net/ogc" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="http://www.opengis.net/sld '
    'http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd">'
)


def _sld_symbolizer(kind: str, color: str) -> str:
    if kind == "fill":
        return (
            "<se:PolygonSymbolizer><se:Fill>"
            f'<se:SvgParameter name="fill">{color}</se:SvgParameter>'
            "</se:Fill></se:PolygonSymbolizer>"
        )
    if kind == "line":
        return (
            "<se:LineSymbolizer><se:Stroke>"
            f'<se:SvgParameter name="stroke">{color}</se:SvgParameter>'
            "</se:Stroke></se:LineSymbolizer>"
        )
    return (
        "<se:PointSymbolizer><se:Graphic><se:Mark><se:WellKnownName>circle</se:WellKnownName>"
        f'<se:Fill><se:SvgParameter name="fill">{color}</se:SvgParameter></se:Fill>'
        "</se:Mark><se:Size>8</se:Size></se:Graphic></se:PointSymbolizer>"
    )


def _sld_wrap(layer: str, rules: list[str]) -> str:
    return (
        _SLD_HEAD
        + f"<NamedLayer><se:Name>{xml_escape(layer)}</se:Name><UserStyle>"
        + f"<se:Name>{xml_escape(layer)}</se:Name><se:FeatureTypeStyle>"
        + "".join(rules)
        + "</se:FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>\n"
    )


def sld_graduated(
    layer: str, attr: str, breaks: Sequence[float], colors: Sequence[str], labels: Sequence[str],
    *, kind: str,
) -> str:
    rules = []
    prop = f"<ogc:PropertyName>{xml_escape(attr)}</ogc:PropertyName>"
    for i, lo in enumerate(breaks):
        conds = [f"<ogc:PropertyIsGreaterThanOrEqualTo>{prop}<ogc:Literal>{lo:g}</ogc:Literal>"
                 "</ogc:PropertyIsGreaterThanOrEqualTo>"]
        if i + 1 < len(breaks):
            conds.append(f"<ogc:PropertyIsLessThan>{prop}<ogc:Literal>{breaks[i + 1]:g}</ogc:Literal>"
                         "</ogc:PropertyIsLessThan>")
        filt = conds[0] if len(conds) == 1 else "<ogc:And>" + "".join(conds) + "</ogc:And>"
        rules.append(
            f"<se:Rule><se:Name>{xml_escape(labels[i])}</se:Name>"
            f"<ogc:Filter>{filt}</ogc:Filter>{_sld_symbolizer(kind, colors[i])}</se:Rule>"
        )
    return _sld_wrap(layer, rules)


def sld_categorized(
    layer: str, attr: str, categories: Sequence[tuple[str, str, str]], *, kind: str
) -> str:
    rules = []
    for value, label, color in categories:
        rules.append(
            f"<se:Rule><se:Name>{xml_escape(label)}</se:Name><ogc:Filter><ogc:PropertyIsEqualTo>"
            f"<ogc:PropertyName>{xml_escape(attr)}</ogc:PropertyName>"
            f"<ogc:Literal>{xml_escape(value)}</ogc:Literal></ogc:PropertyIsEqualTo></ogc:Filter>"
            f"{_sld_symbolizer(kind, color)}</se:Rule>"
        )
    return _sld_wrap(layer, rules)


def sld_single(layer: str, color: str, *, kind: str) -> str:
    return _sld_wrap(layer, [f"<se:Rule>{_sld_symbolizer(kind, color)}</se:Rule>"])
