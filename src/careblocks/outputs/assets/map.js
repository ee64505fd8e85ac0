/* careblocks map: draws the data document of the page (script#careblocks-data) with Leaflet.
 *
 * Holds no data and no words itself: every text comes from the document (already in the
 * map's language) and reaches the page through textContent or text nodes, never innerHTML:
 * a name holding markup or script is shown as written.
 * Each overlay has a "kind"; DRAW[kind] turns it into a Leaflet layer. To add a kind, add a
 * function to DRAW (and emit the overlay from webmap.py). Each legend row has a "kind" too;
 * SYMBOL[kind] draws its symbol.
 */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('careblocks-data').textContent);
  var TXT = D.text;
  var SITE = D.scales.site;  // proposed sites and catchments: the report's and QGIS's colour

  // ---- DOM helpers (text only) --------------------------------------------------------
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function fmt(v, decimals) {
    if (v === null || v === undefined) { return TXT.no_value; }
    if (typeof v === 'number') {
      return v.toLocaleString(D.locale, {maximumFractionDigits: decimals === undefined ? 2 : decimals});
    }
    return String(v);
  }
  function table(rows) {
    var t = el('table', 'cb-table');
    rows.forEach(function (r) {
      var tr = el('tr');
      tr.appendChild(el('th', null, r[0]));
      tr.appendChild(el('td', null, r[1]));
      t.appendChild(tr);
    });
    return t;
  }
  function fieldRows(props, fields) {
    return fields.map(function (f) {
      return [f[1], fmt(props[f[0]], f[2] === null ? undefined : f[2])];
    });
  }
  function textBox(text) {
    return function () { return el('span', null, text); };
  }

  // ---- colour scales --------------------------------------------------------------------
  function hexToRgb(h) {
    var n = parseInt(h.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  function rgbToHex(c) {
    return '#' + c.map(function (x) { return ('0' + Math.round(x).toString(16)).slice(-2); }).join('');
  }
  function stepColor(sc, v) {
    var i = 0;
    while (i + 1 < sc.breaks.length && v >= sc.breaks[i + 1]) { i++; }
    return sc.colors[Math.min(i, sc.colors.length - 1)];
  }
  function linearColor(sc, v) {
    var n = sc.colors.length - 1;
    var f = sc.max > sc.min ? (v - sc.min) / (sc.max - sc.min) : 0.5;
    f = Math.max(0, Math.min(1, f)) * n;
    var i = Math.min(Math.floor(f), n - 1), r = f - i;
    var a = hexToRgb(sc.colors[i]), b = hexToRgb(sc.colors[i + 1]);
    return rgbToHex([0, 1, 2].map(function (k) { return a[k] + (b[k] - a[k]) * r; }));
  }
  function colorOf(scale, v) {
    if (v === null || v === undefined) { return D.scales.unreachable; }
    var sc = D.scales[scale];
    return sc.breaks ? stepColor(sc, v) : linearColor(sc, v);
  }

  // ---- the map and its panes (drawing order, bottom to top) -------------------------------
  // streets 350 < areas (overlay pane) 400 < catchments 450 < outlines 460 < services 600
  // < proposed sites 640 < tooltips 650 < popups 700: a proposed site is never covered
  var map = L.map('cb-map', {preferCanvas: true, zoomSnap: 0.25, zoomDelta: 0.5, maxZoom: 19});
  [['cbStreets', 350], ['cbCatchments', 450], ['cbOutline', 460], ['cbSites', 640]].forEach(function (p) {
    map.createPane(p[0]).style.zIndex = String(p[1]);
  });
  map.getPane('cbStreets').style.pointerEvents = 'none';
  map.getPane('cbOutline').style.pointerEvents = 'none';

  // ---- layers by kind ------------------------------------------------------------------
  function serviceIcon(color, glyph) {
    var d = el('div', 'cb-icon', glyph);
    d.style.background = color;
    return L.divIcon({html: d, iconSize: [22, 22], iconAnchor: [11, 11], className: 'cb-div-icon'});
  }
  function clusterIcon(color, n) {
    // a bubble in the service's colour with the number of services it holds (legend: cluster)
    var d = el('div', 'cb-cluster', n.toLocaleString(D.locale));
    d.style.background = color;
    return L.divIcon({html: d, iconSize: [30, 30], iconAnchor: [15, 15], className: 'cb-div-icon'});
  }

  var DRAW = {
    areas: function (o) {
      return L.geoJSON(D.areas, {
        style: function (f) {
          var v = f.properties[o.prop];
          var none = v === null || v === undefined;
          return {fillColor: colorOf(o.scale, v), color: '#ffffff', weight: 0.3,
            fillOpacity: none ? 0.35 : 0.7};
        },
        onEachFeature: function (f, layer) {
          layer.bindTooltip(function () { return table(fieldRows(f.properties, o.fields)); },
            {sticky: true});
        }
      });
    },
    services: function (o) {
      var group = L.featureGroup();
      var cluster = L.markerClusterGroup(L.extend({}, o.cluster, {
        showCoverageOnHover: false,
        iconCreateFunction: function (c) { return clusterIcon(o.color, c.getChildCount()); }
      }));
      o.points.forEach(function (p) {
        var m = L.marker([p.lat, p.lng], {icon: serviceIcon(o.color, o.glyph)});
        m.bindTooltip(textBox(p.title));
        m.bindPopup(function () {
          var box = el('div');
          box.appendChild(el('b', null, p.title));
          box.appendChild(table(p.rows));
          return box;
        }, {maxWidth: 300});
        cluster.addLayer(m);
      });
      group.addLayer(cluster);
      return group;
    },
    candidates: function (o) {
      return L.geoJSON(o.geojson, {
        pointToLayer: function (f, ll) {
          return L.circleMarker(ll, {radius: f.properties.radius || 4, color: '#555', weight: 1,
            fillColor: '#bdbdbd', fillOpacity: 0.8});
        },
        onEachFeature: function (f, layer) {
          layer.bindTooltip(function () { return table(fieldRows(f.properties, o.fields)); });
        }
      });
    },
    sites: function (o) {
      // never in a marker cluster; markers in their own pane above every other marker
      var group = L.featureGroup();
      if (o.catchments) {
        // outlined and lightly filled: where catchments overlap the fill adds up (legend says so)
        group.addLayer(L.geoJSON(o.catchments, {
          pane: 'cbCatchments',
          style: function () {
            return {color: SITE, weight: 1.5, opacity: 0.9, fillColor: SITE, fillOpacity: 0.08};
          },
          onEachFeature: function (f, layer) {
            if (o.catchment_fields.length) {
              layer.bindTooltip(function () { return table(fieldRows(f.properties, o.catchment_fields)); },
                {sticky: true});
            }
          }
        }));
      }
      o.sites.forEach(function (s) {
        // a block that stays: the same colour, drawn hollow (white with a coloured frame)
        var box = el('div', s.fixed ? 'cb-site cb-site-fixed' : 'cb-site', s.order);
        if (s.fixed) { box.style.color = SITE; box.style.borderColor = SITE; } else { box.style.background = SITE; }
        var icon = L.divIcon({html: box, iconSize: [30, 30],
          iconAnchor: [15, 15], className: 'cb-div-icon'});
        // site 1 above site 2 where they meet (zoomed out): offsets wider than the screen
        var m = L.marker([s.lat, s.lng], {icon: icon, pane: 'cbSites', zIndexOffset: 100000 * (o.sites.length + 1 - s.order),
          keyboard: true});
        m.bindTooltip(textBox(s.title));
        m.bindPopup(function () {
          var box = el('div');
          box.appendChild(el('b', null, s.title));
          if (s.rationale) { box.appendChild(el('p', 'cb-rationale', s.rationale)); }
          box.appendChild(table(s.rows));
          return box;
        }, {maxWidth: 360});
        group.addLayer(m);
      });
      return group;
    }
  };

  // the layer list writes names with innerHTML: this one writes them as text
  var SafeLayers = L.Control.Layers.extend({
    _addItem: function (obj) {
      var label = L.Control.Layers.prototype._addItem.call(this, L.extend({}, obj, {name: ''}));
      var holder = label.firstChild;
      holder.lastChild.textContent = ' ' + obj.name;
      return label;
    }
  });

  // ---- the light base: drawn from the data, needs no network ------------------------------
  function lightBase(base) {
    var g = L.layerGroup();
    if (base.streets) {
      g.addLayer(L.geoJSON(base.streets, {pane: 'cbStreets', interactive: false,
        style: function () { return {color: '#8c8c8c', weight: 0.8, opacity: 0.9}; }}));
    }
    if (base.districts) {
      g.addLayer(L.geoJSON(base.districts, {pane: 'cbOutline', interactive: false,
        style: function () { return {color: '#555555', weight: 1.2, opacity: 0.9, dashArray: '2 3'}; }}));
    }
    if (base.area) {
      g.addLayer(L.geoJSON(base.area, {pane: 'cbOutline', interactive: false,
        style: function () { return {color: '#333333', weight: 2, opacity: 0.9, dashArray: '8 4'}; }}));
    }
    return g;
  }

  // ---- boxes: title, how to read, legend -------------------------------------------------
  function titleBox(page) {
    var box = el('div', 'cb-box cb-title');
    box.appendChild(el('h1', null, page.title));
    box.appendChild(el('div', null, page.subtitle));
    return box;
  }
  function howtoBox(page) {
    var box = el('div', 'cb-box cb-howto');
    var det = el('details');
    det.appendChild(el('summary', null, page.howto_summary));
    page.howto.forEach(function (p) { det.appendChild(el('p', null, p)); });
    box.appendChild(det);
    return box;
  }
  var SYMBOL = {
    swatch: function (r) { var i = el('i', 'cb-swatch'); i.style.background = r.color; return i; },
    service: function (r) { var i = el('span', 'cb-icon cb-icon-s', r.glyph); i.style.background = r.color; return i; },
    cluster: function () { return el('span', 'cb-mark cb-mark-cluster', (3).toLocaleString(D.locale)); },
    site: function () {
      var m = el('span', 'cb-mark cb-mark-site', (1).toLocaleString(D.locale));
      m.style.background = SITE;
      return m;
    },
    site_fixed: function () {
      var m = el('span', 'cb-mark cb-mark-site cb-mark-fixed', (1).toLocaleString(D.locale));
      m.style.color = SITE;
      m.style.borderColor = SITE;
      return m;
    },
    catchment: function () {
      // two catchments overlapping: the shared part darker, as on the map
      var m = el('span', 'cb-mark cb-mark-catchment');
      ['cb-c1', 'cb-c2'].forEach(function (c) {
        var part = el('span', c);
        part.style.borderColor = SITE;
        part.style.background = 'rgba(' + hexToRgb(SITE).join(',') + ',0.2)';
        m.appendChild(part);
      });
      return m;
    },
    candidate: function () {
      var m = el('span', 'cb-mark cb-mark-candidate');
      m.appendChild(el('span', 'cb-d1'));
      m.appendChild(el('span', 'cb-d2'));
      return m;
    },
    streets: function () { return el('span', 'cb-mark cb-mark-streets'); },
    area: function () { return el('span', 'cb-mark cb-mark-area'); },
    districts: function () { return el('span', 'cb-mark cb-mark-districts'); }
  };
  function legendRow(r) {
    if (r.kind === 'ramp') {
      var wrap = el('div', 'cb-ramp-row');
      var ramp = el('div', 'cb-ramp');
      ramp.style.background = 'linear-gradient(to right,' + r.colors.join(',') + ')';
      wrap.appendChild(ramp);
      var ends = el('div', 'cb-ramp-l');
      ends.appendChild(el('span', null, r.low));
      ends.appendChild(el('span', null, r.high));
      wrap.appendChild(ends);
      return wrap;
    }
    var row = el('div', 'cb-row cb-row-' + r.kind);
    row.appendChild(SYMBOL[r.kind](r));
    row.appendChild(el('span', 'cb-label', r.label));
    return row;
  }
  function legendBox(lg, open) {
    var box = el('div', 'cb-box cb-legend');
    var det = el('details');
    det.open = open;
    det.appendChild(el('summary', null, lg.title));
    lg.sections.forEach(function (s) {
      det.appendChild(el('b', null, s.title));
      s.rows.forEach(function (r) { det.appendChild(legendRow(r)); });
    });
    box.appendChild(det);
    return box;
  }

  // ---- assemble -------------------------------------------------------------------------
  document.documentElement.lang = D.locale;
  document.title = D.page.title;
  // a small window gets the panels folded so the map stays visible
  var small = window.innerWidth < 900 || window.innerHeight < 560;
  L.control.scale({imperial: false}).addTo(map);
  var attribution = L.DomUtil.create('span');
  var link = el('a', null, TXT.osm_attribution);
  link.href = 'https://www.openstreetmap.org/copyright';
  attribution.appendChild(document.createTextNode('\u00a9 '));
  attribution.appendChild(link);
  // streets and tiles both come from OpenStreetMap (or the city's own road layer)
  map.attributionControl.addAttribution(attribution.outerHTML);
  var light = lightBase(D.base || {});
  var tiles = L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png', {maxZoom: 19});
  light.addTo(map);
  var baseLayers = {};
  baseLayers[TXT.base_light] = light;
  baseLayers[TXT.base_osm] = tiles;
  var control = new SafeLayers(baseLayers, {}, {collapsed: small, position: 'topright'});
  var overlays = [];
  D.overlays.forEach(function (o) {
    var layer = DRAW[o.kind](o);
    if (o.show) { layer.addTo(map); }
    control.addOverlay(layer, o.name);
    overlays.push({name: o.name, kind: o.kind, layer: layer});
  });
  control.addTo(map);
  var tbox = titleBox(D.page), hbox = howtoBox(D.page), lbox = legendBox(D.legend, !small);
  document.body.appendChild(tbox);
  document.body.appendChild(lbox);
  document.body.appendChild(hbox);

  // the legend sits on the left under the title, above the how-to box
  function placeLegend() {
    var t = tbox.getBoundingClientRect(), h = hbox.getBoundingClientRect();
    lbox.style.top = Math.round(t.bottom + 8) + 'px';
    lbox.style.maxHeight = Math.max(60, Math.round(h.top - t.bottom - 16)) + 'px';
  }
  // the view: where people live and the proposed sites, in the part of the window that no
  // panel covers (the legend and how-to on the left, the title above, the layer list right)
  function freeArea() {
    var W = map.getSize().x, H = map.getSize().y;
    var t = tbox.getBoundingClientRect(), lg = lbox.getBoundingClientRect();
    var h = hbox.getBoundingClientRect(), c = control.getContainer().getBoundingClientRect();
    var z = map.zoomControl.getContainer().getBoundingClientRect();
    var left = Math.max(lg.right, h.right, z.right) + 12;
    var right = Math.min(W, c.left) - 12;
    var top = Math.max(t.bottom, z.bottom) + 12;
    if (c.bottom + 12 > top && right - left < 0.35 * W) { top = c.bottom + 12; right = W - 12; }
    return {left: left, right: right, top: top, bottom: H - 30};
  }
  function fitView() {
    placeLegend();
    var b = D.view.bounds, f = freeArea(), W = map.getSize().x, H = map.getSize().y;
    var box = b[0][0] === b[1][0] && b[0][1] === b[1][1] ? L.latLng(b[0]).toBounds(1000) : L.latLngBounds(b);
    map.fitBounds(box, {paddingTopLeft: [f.left, f.top], paddingBottomRight: [W - f.right, H - f.bottom],
      animate: false});
  }
  fitView();
  window.addEventListener('resize', placeLegend);
  // for scripts and tests: the map, its overlays, bases and panels
  window.careblocks = {map: map, overlays: overlays, data: D, base: {light: light, tiles: tiles},
    boxes: {title: tbox, legend: lbox, howto: hbox, layers: control.getContainer()},
    freeArea: freeArea, fitView: fitView};
}());
