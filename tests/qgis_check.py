"""Open a careblocks QGIS project in real QGIS (Debian's python3-qgis), headless.

Run with the system Python that has the QGIS bindings, not the project's venv:
    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_check.py PROJECT.qgs OUT_DIR
Prints one JSON object: every layer (name, valid, provider, renderer type, labels, feature
count), the layout's items, and the PNGs rendered from the map canvas and the print layout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(project_path: str, out_dir: str) -> int:
    from qgis.core import (
        QgsApplication,
        QgsLayoutExporter,
        QgsMapRendererParallelJob,
        QgsMapSettings,
        QgsNumericFormatContext,
        QgsProject,
        QgsRenderContext,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    app = QgsApplication([], False)
    app.initQgis()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    project = QgsProject.instance()
    ok = project.read(project_path)
    report: dict = {"read": bool(ok), "layers": [], "groups": [], "layouts": []}
    root = project.layerTreeRoot()
    report["groups"] = [g.name() for g in root.children()]
    report["order"] = [n.name() for n in root.findLayers()]
    visible = []
    ctx = QgsRenderContext()
    for node in root.findLayers():
        layer = node.layer()
        entry = {"name": node.name(), "valid": bool(layer and layer.isValid()),
                 "visible": node.isVisible()}
        if layer is not None and layer.isValid():
            r = layer.renderer()
            entry.update({
                "source": layer.source(),
                "provider": layer.providerType(),
                "renderer": r.type() if r else None,
                "symbols": len(r.symbols(ctx)) if r else 0,
                "legend_labels": [i.label() for i in r.legendSymbolItems()] if r else [],
                "labels": bool(layer.labelsEnabled()),
                "label_expression": layer.labeling().settings().fieldName if layer.labelsEnabled() else "",
                "features": layer.featureCount(),
                "opacity": layer.opacity(),
                "symbol_props": [dict(s.symbolLayer(0).properties()) for s in r.symbols(ctx)] if r else [],
            })
            if node.isVisible():
                visible.append(layer)
        report["layers"].append(entry)
    # the map as a GIS user first sees it: visible layers, the project's default extent
    settings = QgsMapSettings()
    settings.setLayers(visible)
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setOutputSize(QSize(1000, 800))
    settings.setDestinationCrs(project.crs())
    settings.setTransformContext(project.transformContext())
    vs = project.viewSettings().defaultViewExtent()
    settings.setExtent(vs if not vs.isEmpty() else visible[0].extent())
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    img = job.renderedImage()
    map_png = out / "qgis_map.png"
    img.save(str(map_png), "png")
    report["map_png"] = str(map_png)
    for layout in project.layoutManager().printLayouts():
        items = sorted({type(i).__name__ for i in layout.items()})
        exporter = QgsLayoutExporter(layout)
        png = out / "qgis_layout.png"
        settings = QgsLayoutExporter.ImageExportSettings()
        settings.dpi = 110
        res = exporter.exportToImage(str(png), settings)
        pdf = out / "qgis_layout.pdf"
        res_pdf = exporter.exportToPdf(str(pdf), QgsLayoutExporter.PdfExportSettings())
        report["layouts"].append({"name": layout.name(), "items": items, "png": str(png),
                                  "png_ok": res == QgsLayoutExporter.Success,
                                  "pdf_ok": res_pdf == QgsLayoutExporter.Success,
                                  "labels": [i.text() for i in layout.items() if type(i).__name__ == "QgsLayoutItemLabel"],
                                  "legend_titles": [i.title() for i in layout.items()
                                                    if type(i).__name__ == "QgsLayoutItemLegend"],
                                  "scalebar_numbers": [i.numericFormat().formatDouble(2000.0, QgsNumericFormatContext())
                                                       for i in layout.items()
                                                       if type(i).__name__ == "QgsLayoutItemScaleBar"]})
    print(json.dumps(report, ensure_ascii=False))
    app.exitQgis()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
