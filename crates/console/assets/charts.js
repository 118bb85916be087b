// sparkyard console: chart read-outs and auto-submitting selectors (Container Insights).
// Charts are complete server-rendered SVG; this only adds, on hover, a vertical rule at
// the nearest datapoint's time and each series' value there, from the data the SVG
// carries (data-points, data-plot, data-domain, data-unit). Listeners are on the
// document, so charts swapped in by live updates need no re-binding.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var parsed = new WeakMap();

  function model(svg) {
    if (parsed.has(svg)) return parsed.get(svg);
    var m = null;
    try {
      var plot = svg.getAttribute("data-plot").split(" ").map(Number);
      var domain = svg.getAttribute("data-domain").split(" ").map(Number);
      var series = JSON.parse(svg.getAttribute("data-points") || "[]");
      var times = {};
      series.forEach(function (s) { s.p.forEach(function (p) { times[p[0]] = true; }); });
      m = {
        left: plot[0], top: plot[1], width: plot[2], height: plot[3],
        t0: domain[0], t1: domain[1], y0: domain[2], y1: domain[3],
        unit: svg.getAttribute("data-unit"),
        series: series,
        times: Object.keys(times).map(Number).sort(function (a, b) { return a - b; })
      };
    } catch (e) { m = null; }
    parsed.set(svg, m);
    return m;
  }

  function fmt(v, unit) {
    var a = Math.abs(v);
    if (unit === "Percent") return v.toFixed(a < 10 ? 2 : 1) + " %";
    if (unit === "Count") return String(Math.round(v * 10) / 10);
    if (unit === "Bytes") {
      var names = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
      while (a >= 1024 && i < names.length - 1) { a /= 1024; v /= 1024; i++; }
      return (Math.round(v * 10) / 10) + " " + names[i];
    }
    return String(Math.round(v * 1000) / 1000);
  }

  function utc(t) {
    return new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(e);
    return e;
  }

  function clear(svg) {
    var old = svg.querySelector(".chart-readout");
    if (old) old.remove();
  }

  function show(svg, event) {
    var m = model(svg);
    if (!m || !m.times.length || !svg.getScreenCTM()) return;
    var pt = svg.createSVGPoint();
    pt.x = event.clientX; pt.y = event.clientY;
    var at = pt.matrixTransform(svg.getScreenCTM().inverse());
    if (at.x < m.left || at.x > m.left + m.width || at.y < m.top - 10 || at.y > m.top + m.height + 10) {
      clear(svg);
      return;
    }
    var x = function (t) { return m.left + (t - m.t0) / Math.max(1, m.t1 - m.t0) * m.width; };
    var y = function (v) { return m.top + m.height - (v - m.y0) / (m.y1 - m.y0) * m.height; };
    var want = m.t0 + (at.x - m.left) / m.width * (m.t1 - m.t0);
    var t = m.times.reduce(function (best, c) { return Math.abs(c - want) < Math.abs(best - want) ? c : best; }, m.times[0]);
    clear(svg);
    var g = el("g", { "class": "chart-readout", "pointer-events": "none" }, svg);
    el("line", { x1: x(t), x2: x(t), y1: m.top, y2: m.top + m.height, stroke: "#5f6b7a", "stroke-width": 1 }, g);
    var lines = [utc(t)];
    m.series.forEach(function (s) {
      var hit = s.p.filter(function (p) { return p[0] === t; })[0];
      if (!hit) return;
      el("circle", { cx: x(t), cy: y(hit[1]), r: 3.5, fill: s.c, stroke: "#fff", "stroke-width": 1.5 }, g);
      lines.push({ text: s.l + ": " + fmt(hit[1], m.unit), colour: s.c, value: hit[1] });
    });
    // Highest values first; a long list (all nodes) is cut to keep the box on the chart.
    var head = lines.shift();
    lines.sort(function (a, b) { return b.value - a.value; });
    var more = lines.length - 8;
    lines = [head].concat(lines.slice(0, 8));
    if (more > 0) lines.push("+" + more + " more");
    var box = el("rect", { rx: 4, fill: "#ffffff", stroke: "#d5dbdb", "fill-opacity": 0.95 }, g);
    var text = el("text", { "class": "chart-readout-text" }, g);
    lines.forEach(function (line, i) {
      var span = el("tspan", { x: 0, dy: i === 0 ? 0 : 15 }, text);
      if (typeof line === "string") {
        if (i === 0) span.setAttribute("font-weight", "700");
        span.textContent = line;
      } else {
        el("tspan", { fill: line.colour }, span).textContent = "\u25CF ";
        span.appendChild(document.createTextNode(line.text));
      }
    });
    var bb = text.getBBox();
    var width = bb.width + 16, height = bb.height + 10;
    var left = x(t) + 10;
    if (left + width > m.left + m.width) left = x(t) - 10 - width;
    var top = m.top + 4;
    text.setAttribute("transform", "translate(" + (left + 8) + "," + (top + 5 - bb.y) + ")");
    box.setAttribute("x", left); box.setAttribute("y", top);
    box.setAttribute("width", width); box.setAttribute("height", height);
  }

  var pointer = null;
  function track(event) {
    var target = event.target;
    var svg = target && target.closest ? target.closest("svg.chart") : null;
    document.querySelectorAll("svg.chart .chart-readout").forEach(function (r) {
      if (r.ownerSVGElement !== svg) r.remove();
    });
    if (svg) show(svg, event);
  }
  document.addEventListener("mousemove", function (event) {
    pointer = { clientX: event.clientX, clientY: event.clientY };
    track(event);
  });
  // A live update replaces the charts: put the read-out back where the pointer still is.
  document.addEventListener("console:refreshed", function () {
    if (!pointer) return;
    var under = document.elementFromPoint(pointer.clientX, pointer.clientY);
    if (under) track({ target: under, clientX: pointer.clientX, clientY: pointer.clientY });
  });

  // Selectors that apply at once (the Apply button stays for use without JavaScript).
  document.addEventListener("change", function (event) {
    var t = event.target;
    if (t && t.matches && t.matches("select[data-autosubmit]") && t.form) t.form.submit();
  });
})();
