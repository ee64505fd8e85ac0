"""Outputs of ``careblocks prioritise``: a GeoPackage, a map and a table, written together.

* ``prioritise.gpkg``: layers ``census_units`` (every unit: counts, indicators, components,
  ``care_need_index``, ``rank``) and ``districts`` (the same among districts), and the table
  ``run_metadata`` (formula, weights, groups, facilities, distance method);
* ``prioritise.html``: the units and districts coloured by the index, ranks in the tooltips
  (Leaflet embedded; names from data HTML-escaped);
* ``prioritise_units.csv`` and ``prioritise_districts.csv``: the rankings, best first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from careblocks.outputs._common import json_default

__all__ = ["write_prioritisation"]

_NEED_COLORS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")


def _metadata(res, config) -> Any:
    import pandas as pd

    from careblocks._version import __version__

    rows = {
        "careblocks_version": __version__,
        "study": config.study.name,
        "formula_units": res.formula,
        "formula_districts": res.district_formula or "",
        "info": json.dumps(res.info, default=json_default, ensure_ascii=False),
    }
    return pd.DataFrame({"key": list(rows), "value": [str(v) for v in rows.values()]})


def _gpkg(res, config, path: Path) -> Path:
    import pyogrio

    pyogrio.write_dataframe(res.units, path, layer="census_units", driver="GPKG")
    if res.districts is not None:
        pyogrio.write_dataframe(res.districts, path, layer="districts", driver="GPKG", append=True)
    pyogrio.write_dataframe(_metadata(res, config), path, layer="run_metadata", driver="GPKG",
                            append=True)
    return path


def _csv(gdf, path: Path) -> Path:
    gdf.drop(columns="geometry").to_csv(path, index=False)
    return path


_PAGE_JS = """
(function () {
  var data = JSON.parse(document.getElementById('cb-data').textContent);
  var colors = data.colors;
  function color(v) {
    if (v === null || v === undefined) { return '#cccccc'; }
    var i = Math.min(colors.length - 1, Math.floor(v * colors.length));
    return colors[i];
  }
  function text(s) { var d = document.createElement('div'); d.textContent = String(s); return d.innerHTML; }
  var map = L.map('map');
  L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png',
              {maxZoom: 18, attribution: '&copy; OpenStreetMap contributors'}).addTo(map);
  var overlays = {};
  data.layers.forEach(function (ly, k) {
    var layer = L.geoJSON(ly.features, {
      style: function (f) { return {fillColor: color(f.properties.care_need_index), color: '#fff',
                                    weight: 0.4, fillOpacity: 0.75}; },
      onEachFeature: function (f, l) {
        var rows = ly.fields.map(function (fd, i) {
          var v = f.properties[fd]; return '<tr><td>' + text(ly.labels[i]) + '</td><td>' +
            text(v === null ? '-' : v) + '</td></tr>'; });
        l.bindTooltip('<table>' + rows.join('') + '</table>');
      }
    });
    overlays[ly.name] = layer;
    if (k === 0) { layer.addTo(map); map.fitBounds(layer.getBounds()); }
  });
  L.control.layers(null, overlays, {collapsed: false}).addTo(map);
  var box = document.getElementById('top');
  var h = document.createElement('b'); h.textContent = data.title; box.appendChild(h);
  var t = document.createElement('table');
  data.top.forEach(function (r) {
    var tr = document.createElement('tr');
    r.forEach(function (c) { var td = document.createElement('td'); td.textContent = c; tr.appendChild(td); });
    t.appendChild(tr);
  });
  box.appendChild(t);
})();
"""


def _map(res, config, path: Path) -> Path:
    """A self-contained page: Leaflet embedded, the data as one escaped JSON block, the
    script fixed (no text from data ever becomes markup or code)."""
    from careblocks.outputs.webmap import _asset, _feature_collection, json_for_html

    units = res.units
    comps = [c for c in ("care_demand", "caregiver_density", "poverty_score", "supply_gap")
             if c in units.columns]
    name_col = "census_name" if "census_name" in units.columns else "census_unit_id"
    has_d = "district" in units.columns
    props = [name_col, *(["district"] if has_d else []), "rank", "care_need_index", *comps,
             "census_total"]
    labels = ["unit", *(["district"] if has_d else []), "rank", "care-need index",
              *[c.replace("_", " ") for c in comps], "people"]
    dec = {c: 3 for c in ("care_need_index", *comps)} | {"census_total": 0}
    layers = [{"name": f"Census units ({len(units)}), by care need", "fields": props,
               "labels": labels, "features": _feature_collection(units, props, dec)}]
    if res.districts is not None:
        d = res.districts
        dprops = ["district", "rank", "care_need_index", *[c for c in comps if c in d.columns],
                  "census_total"]
        layers.append({"name": f"Districts ({len(d)}), by care need", "fields": dprops,
                       "labels": ["district", "rank", "care-need index",
                                  *[c.replace("_", " ") for c in comps if c in d.columns],
                                  "people"],
                       "features": _feature_collection(d, dprops, dec)})
    top = [["#", "unit", *(["district"] if has_d else []), "index"]]
    for _, r in units.head(int(config.prioritise.top)).iterrows():
        top.append([str(int(r["rank"])), str(r[name_col]),
                    *([str(r["district"])] if has_d else []), f"{float(r['care_need_index']):.2f}"])
    data = {"title": f"{config.study.label}: where care need is highest", "layers": layers,
            "top": top, "colors": list(_NEED_COLORS)}
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>careblocks prioritise</title>"
        f"<style>{_asset('leaflet.css')}</style>"
        "<style>html,body,#map{height:100%;margin:0}#top{position:absolute;bottom:20px;"
        "left:10px;z-index:1000;background:#fff;padding:6px 10px;font:12px sans-serif;"
        "max-height:45%;overflow:auto;border-radius:4px}</style>"
        f"<script>{_asset('leaflet.js')}</script></head><body><div id='map'></div>"
        "<div id='top'></div>"
        f"<script type='application/json' id='cb-data'>{json_for_html(data)}</script>"
        f"<script>{_PAGE_JS}</script></body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path


def write_prioritisation(res, config, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the GeoPackage, map and tables into ``out_dir`` as one set (all or none)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    jobs = [
        (d / "prioritise.gpkg", lambda p: _gpkg(res, config, p)),
        (d / "prioritise.html", lambda p: _map(res, config, p)),
        (d / "prioritise_units.csv", lambda p: _csv(res.units, p)),
    ]
    if res.districts is not None:
        jobs.append((d / "prioritise_districts.csv", lambda p: _csv(res.districts, p)))
    staged: list[tuple[Path, Path]] = []
    try:
        for target, writer in jobs:
            tmp = target.with_name(f".{target.stem}.{os.getpid()}.partial{target.suffix}")
            tmp.unlink(missing_ok=True)
            writer(tmp)
            staged.append((tmp, target))
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [t for _, t in staged]


