"""A QGIS project next to the GeoPackage: ``careblocks.qgs``, a finished map for a GIS team.

Written as plain XML (QGIS 3 project format) without QGIS: layers from the GeoPackage by a
relative path (the folder can be moved or zipped), in groups and in reading order (proposed
sites on top, then catchments, existing services, travel times, districts), styles fit for
reading (outlined districts and catchments, graduated travel times, labelled sites with their
order and name) and a print layout on A4 landscape (title, map, legend, scale bar, north
arrow, sources) that a planner exports to PDF from QGIS's layout window.

The XML is built with :mod:`xml.etree.ElementTree`, so every text from the data (the study
name in the title) is escaped; no data text is ever parsed as XML. Tested by opening the
project in real QGIS (``tests/test_qgis_project.py``).
"""

from __future__ import annotations

import os
import uuid
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from careblocks.i18n import Language, language
from careblocks.outputs import styles
from careblocks.outputs._atomic import write_text_atomic
from careblocks.outputs._common import services_in, time_column

__all__ = ["build_qgis_project", "write_qgis_project"]

_WKB = {"Point": ("Point", "Point"), "MultiPoint": ("Point", "MultiPoint"),
        "Polygon": ("Polygon", "Polygon"), "MultiPolygon": ("Polygon", "MultiPolygon"),
        "LineString": ("Line", "LineString"), "MultiLineString": ("Line", "MultiLineString")}


def _uid(name: str) -> str:
    return f"{name}_{uuid.uuid5(uuid.NAMESPACE_URL, 'careblocks/' + name).hex[:12]}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: Any) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _srs(parent: ET.Element, crs: str) -> None:
    """A QGIS ``spatialrefsys``: QGIS reads the WKT (an authority id alone is not enough)."""
    from pyproj import CRS
    from pyproj.enums import WktVersion

    c = CRS.from_user_input(crs)
    auth = c.to_authority()
    srs = _sub(parent, "spatialrefsys", nativeFormat="Wkt")
    _sub(srs, "wkt", c.to_wkt(WktVersion.WKT2_2019))
    with warnings.catch_warnings():  # the WKT is what QGIS uses; proj4 is informative
        warnings.simplefilter("ignore", UserWarning)
        _sub(srs, "proj4", c.to_proj4())
    _sub(srs, "authid", f"{auth[0]}:{auth[1]}" if auth else "")
    _sub(srs, "description", c.name)
    _sub(srs, "geographicflag", "true" if c.is_geographic else "false")


def _renderer(qml: str) -> ET.Element:
    """The ``renderer-v2`` element of a QML style from :mod:`styles`."""
    root = ET.fromstring(qml.split("\n", 1)[1] if qml.startswith("<!DOCTYPE") else qml)
    rend = root.find("renderer-v2")
    assert rend is not None
    return rend


def _opt_map(parent: ET.Element, values: dict[str, str]) -> None:
    m = _sub(parent, "Option", type="Map")
    for k, v in values.items():
        _sub(m, "Option", type="QString", name=k, value=v)


def _labeling(expression: str, *, size: float = 9.0, bold: bool = True, color: str = "30,30,30,255",
              offset_mm: float = 2.5) -> ET.Element:
    lab = ET.Element("labeling", type="simple")
    st = _sub(lab, "settings", calloutType="simple")
    ts = _sub(st, "text-style", fieldName=expression, isExpression="1", fontFamily="DejaVu Sans",
              fontSize=f"{size:g}", fontSizeUnit="Point", fontWeight="75" if bold else "50",
              textColor=color, textOpacity="1", namedStyle="Bold" if bold else "Regular")
    _sub(ts, "text-buffer", bufferDraw="1", bufferSize="1", bufferSizeUnits="MM",
         bufferColor="255,255,255,255", bufferOpacity="0.9")
    _sub(st, "text-format", wrapChar="", multilineAlign="0", autoWrapLength="28")
    # around the point, preferring the upper right; never dropped for overlapping others
    _sub(st, "placement", placement="6", dist=f"{offset_mm:g}", distUnits="MM",
         predefinedPositionOrder="TR,TL,BR,BL,R,L,TSR,BSR", priority="10", overlapHandling="AllowOverlapIfRequired")
    _sub(st, "rendering", obstacle="1", displayAll="1", upsidedownLabels="0", scaleVisibility="0",
         fontLimitPixelSize="0", drawLabels="1", labelPerPart="0", mergeLines="0", limitNumLabels="0")
    return lab


def _quote(text: str) -> str:
    """A QGIS expression string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _name_expression(L: Language) -> str:
    """The site's name, else its building type in the project's language."""
    from careblocks.i18n import CATEGORY_LABELS

    cap = lambda t: t[:1].upper() + t[1:]  # noqa: E731
    cases = " ".join(f"WHEN \"category\" = {_quote(k)} THEN {_quote(cap(L._(v)))}"
                     for k, v in CATEGORY_LABELS.items())
    return f"coalesce(nullif(trim(\"name\"), ''), CASE {cases} ELSE '' END)"


class _Layer:
    def __init__(self, key: str, title: str, geom: str, qml: str, *, visible: bool = True,
                 labeling: ET.Element | None = None, opacity: float = 1.0) -> None:
        self.key, self.title, self.geom, self.qml = key, title, geom, qml
        self.visible, self.labeling, self.opacity = visible, labeling, opacity
        self.id = _uid(key)


def _layers(results, layers: dict[str, str], L: Language) -> list[tuple[str, list[_Layer]]]:
    """Groups of layers, top of the legend first (drawn last)."""
    cfg = results.config
    groups: list[tuple[str, list[_Layer]]] = []

    def single(key: str) -> str:
        color, symbol = styles.LAYER_SYMBOLS[key]
        kind = {"Point": "marker", "Polygon": "fill", "Line": "line"}[_WKB[layers[key]][0]]
        return styles.qml_single(color, kind=kind, **symbol)

    proposal = []
    if "selected_sites" in layers:
        name_expr = _name_expression(L)
        proposal.append(_Layer("selected_sites", L._("Proposed Care Blocks"), layers["selected_sites"],
                               single("selected_sites"),
                               labeling=_labeling(f'"order" || \'. \' || {name_expr}')))
    if "catchments" in layers:
        proposal.append(_Layer("catchments", L._("Area within {minutes} on foot").format(
            minutes=L.minutes(results.threshold_min)), layers["catchments"], single("catchments")))
    if "candidates" in layers:
        proposal.append(_Layer("candidates", L._("Candidate sites"), layers["candidates"],
                               single("candidates"), visible=False))
    if proposal:
        groups.append((L._("Proposal"), proposal))
    existing = []
    if "services" in layers:
        order = services_in(results)
        cats = [(s, styles.service_label(cfg, s), styles.service_color(s, order)) for s in order]
        kind = {"Point": "marker", "Polygon": "fill"}.get(_WKB[layers["services"]][0], "marker")
        existing.append(_Layer("services", L._("Existing services"), layers["services"],
                               styles.qml_categorized("service", cats, kind=kind)))
    if existing:
        groups.append((L._("Today"), existing))
    access = []
    if "origins" in layers and results.origins is not None:
        kind = {"Point": "marker", "Polygon": "fill"}.get(_WKB[layers["origins"]][0], "marker")
        breaks = styles.time_breaks(results.threshold_min)
        labels = styles.time_labels(results.threshold_min, L.code)
        first = True
        for s in services_in(results):
            col = time_column(results.origins.columns, s)
            if col is None:
                continue
            title = L._("{service}: minutes on foot").format(service=styles.service_label(cfg, s))
            access.append(_Layer(f"origins_{s}", title, layers["origins"],
                                 styles.qml_graduated(col, breaks, styles.TIME_COLORS, labels, kind=kind),
                                 visible=first, opacity=0.75))
            first = False
    if access:
        groups.append((L._("Travel times"), access))
    base = []
    if "districts" in layers:
        base.append(_Layer("districts", L._("Districts"), layers["districts"], single("districts")))
    if "study_area" in layers:
        base.append(_Layer("study_area", L._("Study area"), layers["study_area"], single("study_area")))
    if base:
        groups.append((L._("Base"), base))
    return groups


def _layer_name(key: str) -> str:
    return "origins" if key.startswith("origins_") else key


def _maplayer(parent: ET.Element, lay: _Layer, gpkg: str, crs: str) -> None:
    geom, wkb = _WKB[lay.geom]
    ml = _sub(parent, "maplayer", type="vector", geometry=geom, wkbType=wkb, hasScaleBasedVisibilityFlag="0",
              styleCategories="AllStyleCategories", autoRefreshEnabled="0", readOnly="0")
    _sub(ml, "id", lay.id)
    _sub(ml, "datasource", f"./{gpkg}|layername={_layer_name(lay.key)}")
    _sub(ml, "layername", lay.title)
    srs = _sub(ml, "srs")
    _srs(srs, crs)
    _sub(ml, "provider", "ogr", encoding="UTF-8")
    ml.append(_renderer(lay.qml))
    if lay.labeling is not None:
        ml.append(lay.labeling)
    _sub(ml, "blendMode", "0")
    _sub(ml, "featureBlendMode", "0")
    _sub(ml, "layerOpacity", f"{lay.opacity:g}")


def _item(layout: ET.Element, type_: int, *, x: float, y: float, w: float, h: float, z: int,
          uid: str, **attrs: Any) -> ET.Element:
    it = _sub(layout, "LayoutItem", type=type_, uuid=uid, templateUuid=uid, position=f"{x:g},{y:g},mm",
              positionOnPage=f"{x:g},{y:g},mm", size=f"{w:g},{h:g},mm", zValue=z, visibility="1",
              frame=attrs.pop("frame", "false"), background=attrs.pop("background", "false"),
              referencePoint="0", itemRotation="0", opacity="1", id=attrs.pop("name", ""), **attrs)
    _sub(it, "FrameColor", red="120", green="120", blue="120", alpha="255")
    _sub(it, "BackgroundColor", red="255", green="255", blue="255", alpha="235")
    _sub(it, "LayoutObject")
    return it


def _font(size: float, bold: bool) -> str:
    """A Qt font description (QFont::toString)."""
    return f"DejaVu Sans,{size:g},-1,5,{75 if bold else 50},0,0,0,0,0"


def _text_style(parent: ET.Element, size: float, *, bold: bool = False, tag: str = "text-style",
                font_tag: str | None = None) -> ET.Element:
    """The text format: QGIS 3.22 reads ``font_tag`` (a Qt font description), later versions
    the ``text-style`` element; both are written."""
    if font_tag:
        _sub(parent, font_tag, description=_font(size, bold), style="Bold" if bold else "")
    return _sub(parent, tag, fontFamily="DejaVu Sans", fontSize=f"{size:g}", fontSizeUnit="Point",
                fontWeight="75" if bold else "50", namedStyle="Bold" if bold else "Regular",
                textColor="30,30,30,255", textOpacity="1")


def _layout(root: ET.Element, results, groups, extent: tuple[float, float, float, float], crs: str,
            L: Language) -> None:
    """An A4 landscape print layout: title, map, legend on the right, scale bar, north arrow,
    sources."""
    layouts = _sub(root, "Layouts")
    lay = _sub(layouts, "Layout", name=L._("Care Blocks map"), units="mm", printResolution="300",
               worldFileMap="")
    pages = _sub(lay, "PageCollection")
    _item(pages, 65638, x=0, y=0, w=297, h=210, z=0, uid="{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "page")) + "}",
          background="true")
    map_uid = "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "careblocks/map")) + "}"
    mx, my, mw, mh = 8, 22, 205, 170
    m = _item(lay, 65639, x=mx, y=my, w=mw, h=mh, z=1, uid=map_uid, frame="true", name="map",
              keepLayerSet="false", drawCanvasItems="true", followPreset="false", labelMargin="0,mm",
              mapRotation="0", isTemporal="0")
    # the extent padded to the map frame's shape (so the whole study area shows)
    xmin, ymin, xmax, ymax = extent
    w, h = xmax - xmin, ymax - ymin
    pad = 0.04
    xmin, xmax, ymin, ymax = xmin - pad * w, xmax + pad * w, ymin - pad * h, ymax + pad * h
    w, h = xmax - xmin, ymax - ymin
    want = mw / mh
    if w / max(h, 1e-12) < want:
        extra = (h * want - w) / 2
        xmin, xmax = xmin - extra, xmax + extra
    else:
        extra = (w / want - h) / 2
        ymin, ymax = ymin - extra, ymax + extra
    _sub(m, "Extent", xmin=f"{xmin:.8f}", ymin=f"{ymin:.8f}", xmax=f"{xmax:.8f}", ymax=f"{ymax:.8f}")
    crs_el = _sub(m, "crs")
    _srs(crs_el, crs)
    _sub(m, "LayerSet")
    # title
    title = _item(lay, 65641, x=8, y=6, w=280, h=12, z=5, uid="{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "title")) + "}",
                  name="title", labelText=L._("Care Blocks: access to care in {study}").format(
                      study=results.config.study.label),
                  htmlState="0", marginX="0", marginY="0", halign="1", valign="32")
    _text_style(title, 18, bold=True, font_tag="LabelFont")
    _sub(title, "FontColor", red="30", green="30", blue="30", alpha="255")
    # legend
    leg = _item(lay, 65642, x=218, y=22, w=72, h=150, z=4, uid="{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "legend")) + "}",
                name="legend", map_uuid=map_uid, title=L._("Legend"), resizeToContents="1",
                symbolWidth="5", symbolHeight="3.5", wmsLegendWidth="50", wmsLegendHeight="25",
                wrapChar="", titleAlignment="1", columnCount="1", splitLayer="0",
                equalColumnWidth="0", legendFilterByMap="0", frame="false", background="true")
    styles_el = _sub(leg, "styles")
    for name, size, bold in (("title", 12, True), ("group", 10, True), ("subgroup", 9, True),
                             ("symbolLabel", 8, False)):
        st = _sub(styles_el, "style", name=name, marginBottom="1.5" if name != "symbolLabel" else "0.8")
        _text_style(st, size, bold=bold, tag="text-style", font_tag="styleFont")
    tree = _sub(leg, "layer-tree-group")
    for gname, members in groups:
        g = _sub(tree, "layer-tree-group", name=gname, expanded="1", checked="Qt::Checked")
        for layer in members:
            if not layer.visible:
                continue
            _sub(g, "layer-tree-layer", id=layer.id, name=layer.title, source="", providerKey="ogr",
                 expanded="1", checked="Qt::Checked")
    # scale bar
    sb = _item(lay, 65646, x=10, y=178, w=60, h=12, z=6, uid="{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "scalebar")) + "}",
               name="scalebar", mapUuid=map_uid, style="Single Box", unitType="meters", unitLabel="m",
               numSegments="2", numSegmentsLeft="0", segmentSizeMode="1", minBarWidth="25",
               maxBarWidth="55", numUnitsPerSegment="500", numMapUnitsPerScaleBarUnit="1",
               height="2", labelBarSpace="1.5", boxContentSpace="1", background="true")
    _text_style(sb, 8, font_tag="scaleBarFont")
    # "1000 m", never "1,000 m" (which reads as one metre in Spanish, Portuguese and French)
    fmt = _sub(_sub(sb, "numericFormat", id="basic"), "Option", type="Map")
    _sub(fmt, "Option", name="show_thousand_separator", type="bool", value="false")
    _sub(fmt, "Option", name="decimals", type="int", value="0")
    # north arrow (QGIS's own SVG)
    _item(lay, 65640, x=198, y=25, w=12, h=14, z=6, uid="{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "north")) + "}",
          name="north arrow", file=":/images/north_arrows/layout_default_north_arrow.svg",
          mapUuid=map_uid, northMode="0", northOffset="0", resizeMode="0", pictureRotation="0",
          svgFillColor="30,30,30,255", svgBorderColor="30,30,30,255", svgBorderWidth="0.2", mode="0",
          anchorPoint="0")
    # sources
    src = _item(lay, 65641, x=8, y=194, w=282, h=12, z=5, uid="{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "sources")) + "}",
                name="sources", labelText=L._("Map data © OpenStreetMap contributors (ODbL). Made with "
                                              "careblocks; see the report for every source and licence."),
                htmlState="0", marginX="0", marginY="0", halign="1", valign="32")
    _text_style(src, 7, font_tag="LabelFont")
    _sub(src, "FontColor", red="80", green="80", blue="80", alpha="255")


def build_qgis_project(results, *, gpkg_name: str, layers: dict[str, str], crs: str,
                       project_crs: str, extent: tuple[float, float, float, float]) -> str:
    """The project XML. ``layers`` maps each GeoPackage layer written to its geometry type
    (``Point``, ``Polygon``, ...); ``crs`` is the GeoPackage's CRS (``EPSG:4326``);
    ``project_crs`` the projected CRS the map is drawn in (the study's working CRS, so the
    scale bar reads metres) and ``extent`` the study area's bounds in it."""
    L = language(getattr(getattr(results.config, "outputs", None), "language", "en"))
    groups = _layers(results, layers, L)
    root = ET.Element("qgis", projectname=str(results.config.study.name), version="3.22.0")
    _sub(root, "homePath", path="")
    _sub(root, "title", str(results.config.study.label))
    pcrs = _sub(root, "projectCrs")
    _srs(pcrs, project_crs)
    tree = _sub(root, "layer-tree-group")
    order = []
    for gname, members in groups:
        g = _sub(tree, "layer-tree-group", name=gname, expanded="1", checked="Qt::Checked")
        for layer in members:
            _sub(g, "layer-tree-layer", id=layer.id, name=layer.title, source=f"./{gpkg_name}|layername="
                 f"{_layer_name(layer.key)}", providerKey="ogr", expanded="1" if layer.visible else "0",
                 checked="Qt::Checked" if layer.visible else "Qt::Unchecked")
            order.append(layer)
    pl = _sub(root, "projectlayers")
    for layer in order:
        _maplayer(pl, layer, gpkg_name, crs)
    lo = _sub(root, "layerorder")
    for layer in order:
        _sub(lo, "layer", id=layer.id)
    props = _sub(root, "properties")
    paths = _sub(props, "Paths")
    _sub(paths, "Absolute", "false", type="bool")
    srs_props = _sub(props, "SpatialRefSys")
    _sub(srs_props, "ProjectionsEnabled", "1", type="int")  # QGIS 3.22 reads projectCrs only then
    measure = _sub(props, "Measure")
    _sub(measure, "Ellipsoid", "EPSG:7030", type="QString")  # WGS 84: scale bar in metres
    # the canvas opens on the study area
    view = _sub(root, "ProjectViewSettings", UseProjectScales="0", rotation="0")
    dext = _sub(view, "DefaultViewExtent", xmin=f"{extent[0]:.8f}", ymin=f"{extent[1]:.8f}",
                xmax=f"{extent[2]:.8f}", ymax=f"{extent[3]:.8f}")
    _srs(dext, project_crs)
    _layout(root, results, groups, extent, project_crs, L)
    ET.indent(root)
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            + ET.tostring(root, encoding="unicode") + "\n")


def write_qgis_project(results, path: str | os.PathLike[str], *, gpkg_name: str,
                       layers: dict[str, str], crs: str) -> Path:
    """Write ``careblocks.qgs`` (atomically) beside the GeoPackage ``gpkg_name`` whose layers
    (name -> geometry type) are in ``crs``; the map is drawn in the study's working CRS."""
    project_crs = str(results.crs)
    area = results.area
    if area is not None and not area.is_empty:
        extent = tuple(float(v) for v in area.bounds)
    else:
        extent = tuple(float(v) for v in results.origins.to_crs(project_crs).total_bounds)
    return write_text_atomic(path, build_qgis_project(results, gpkg_name=gpkg_name, layers=layers, crs=crs,
                                                      project_crs=project_crs, extent=extent))
