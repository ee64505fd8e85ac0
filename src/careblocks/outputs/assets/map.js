/* careblocks map: draws the data document of the page (script#careblocks-data) with Leaflet.
 *
 * Holds no data itself. Every text from the document reaches the page through textContent or
 * text nodes, never innerHTML: a name holding markup or script is shown as written.
 * Each overlay has a "kind"; DRAW[kind] turns it into a Leaflet layer. To add a kind, add a
 * function to DRAW (and emit the overlay from webmap.py).
 */
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('careblocks-data').textContent);
  var TXT = D.text;

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
    return fields.map(function (f) { return [f[1], fmt(props[f[0]], f[2])]; });
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

  // ---- layers by kind ------------------------------------------------------------------
  function serviceIcon(color, glyph) {
    var d = el('div', 'cb-icon', glyph);
    d.style.background = color;
    return L.divIcon({html: d, iconSize: [22, 22], iconAnchor: [11, 11], className: 'cb-div-icon'});
  }

  var DRAW = {
    streets: function (o) {
      return L.geoJSON(o.geojson, {interactive: false,
        style: function () { return {color: '#9a9a9a', weight: 0.8, opacity: 0.8}; }});
    },
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
      var cluster = L.markerClusterGroup(o.cluster);
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
      var group = L.featureGroup();
      if (o.catchments) {
        group.addLayer(L.geoJSON(o.catchments, {
          style: function () {
            return {color: '#e6550d', weight: 2, fillColor: '#fdae6b', fillOpacity: 0.04,
              dashArray: '4 3'};
          },
          onEachFeature: function (f, layer) {
            if (o.catchment_fields.length) {
              layer.bindTooltip(function () { return table(fieldRows(f.properties, o.catchment_fields)); });
            }
          }
        }));
      }
      o.sites.forEach(function (s) {
        var icon = L.divIcon({html: el('div', 'cb-site', s.order), iconSize: [30, 30],
          iconAnchor: [15, 15], className: 'cb-div-icon'});
        var m = L.marker([s.lat, s.lng], {icon: icon});
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
    det.open = true;
    det.appendChild(el('summary', null, page.howto_summary));
    page.howto.forEach(function (p) { det.appendChild(el('p', null, p)); });
    box.appendChild(det);
    return box;
  }
  function swatch(color) {
    var i = el('i');
    i.style.background = color;
    return i;
  }
  function legendBox(lg) {
    var box = el('div', 'cb-box cb-legend');
    box.appendChild(el('b', null, lg.time_title));
    lg.time.concat([lg.unreachable]).forEach(function (c) {
      var row = el('div');
      row.appendChild(swatch(c[0]));
      row.appendChild(document.createTextNode(c[1]));
      box.appendChild(row);
    });
    lg.ramps.forEach(function (r) {
      box.appendChild(el('b', null, r.title));
      var ramp = el('div', 'cb-ramp');
      ramp.style.background = 'linear-gradient(to right,' + r.colors.join(',') + ')';
      box.appendChild(ramp);
      var ends = el('div', 'cb-ramp-l');
      ends.appendChild(el('span', null, r.low));
      ends.appendChild(el('span', null, r.high));
      box.appendChild(ends);
    });
    box.appendChild(el('b', null, lg.services_title));
    lg.services.forEach(function (s) {
      var row = el('div');
      var icon = el('span', 'cb-icon cb-icon-s', s.glyph);
      icon.style.background = s.color;
      row.appendChild(icon);
      row.appendChild(document.createTextNode(s.label));
      box.appendChild(row);
    });
    return box;
  }

  // ---- the map --------------------------------------------------------------------------
  document.documentElement.lang = D.locale;
  document.title = D.page.title;
  var map = L.map('cb-map', {preferCanvas: true});
  L.control.scale().addTo(map);
  var attribution = L.DomUtil.create('span');
  var link = el('a', null, TXT.osm_attribution);
  link.href = 'https://www.openstreetmap.org/copyright';
  attribution.appendChild(document.createTextNode('\u00a9 '));
  attribution.appendChild(link);
  attribution.appendChild(document.createTextNode(TXT.osm_attribution_suffix));
  var base = L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png',
    {maxZoom: 19, attribution: attribution.outerHTML});
  base.addTo(map);
  var b = D.view.bounds;
  map.fitBounds(b[0][0] === b[1][0] && b[0][1] === b[1][1] ? L.latLng(b[0]).toBounds(1000) : b);

  var baseLayers = {};
  baseLayers[TXT.base_layer] = base;
  var control = new SafeLayers(baseLayers, {}, {collapsed: false, position: 'topright'});
  var overlays = [];
  D.overlays.forEach(function (o) {
    var layer = DRAW[o.kind](o);
    if (o.show) { layer.addTo(map); }
    control.addOverlay(layer, o.name);
    overlays.push({name: o.name, kind: o.kind, layer: layer});
  });
  control.addTo(map);
  document.body.appendChild(titleBox(D.page));
  document.body.appendChild(howtoBox(D.page));
  document.body.appendChild(legendBox(D.legend));
  // for scripts and tests: the map and its overlays
  window.careblocks = {map: map, overlays: overlays, data: D};
}());
