/* A sensor page's chart (uPlot): readings on the left axis, detection levels (%) on the right with the warning and
 * critical lines, anomalies shaded. The page renders the range's data (json_script "sensor-chart-data"); when the
 * range ends now, the live sockets (docs/api.md, "Live streams") add new readings and detections as they are stored.
 *
 * Raw ranges get each reading as a point. Bucketed ranges fold a reading into its bucket's average (buckets are
 * aligned to the Unix epoch, as the server's) and a detection into its bucket's highest level; readings up to
 * `until` (the latest one when the page was made) are already in the server's buckets and are skipped, so the
 * sockets' history never counts a reading twice.
 *
 * What it maintains for tests and scripts, on the chart's element: data-points (points with a reading),
 * data-last-value and data-last-time (the newest reading shown), data-live-state (connecting, open, closed, off),
 * and the uPlot instance as its `uplot` property.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-sensor-chart]");
  var source = document.getElementById("sensor-chart-data");
  if (!root || !source) return;
  if (typeof uPlot === "undefined") {
    root.textContent = "The chart library did not load.";
    return;
  }
  var cfg = JSON.parse(source.textContent);
  var bucket = cfg.bucket_seconds || 0;
  var xs = cfg.x.slice();
  var values = cfg.values.slice();
  var levels = cfg.levels.slice();
  var until = cfg.until;
  var counts = {}; // bucket start → readings in it, for the running average of live readings
  if (bucket && xs.length && cfg.last_count !== null) counts[xs[xs.length - 1]] = cfg.last_count;
  var view = { start: cfg.start, end: cfg.end };
  var bands = cfg.anomalies.map(function (a) {
    return { start: a.start, end: a.end, critical: a.peak_status === "critical" };
  });
  var liveBand = null; // the band of the live flagged detections, while they last

  var COLOURS = {
    value: "#0b6bcb",
    level: "#7b3fa0",
    warning: "#c77700",
    critical: "#b42318",
    bandWarning: "rgba(199, 119, 0, 0.16)",
    bandCritical: "rgba(180, 35, 24, 0.18)",
  };

  function fmt(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  // The index of the first x not below `x` (binary search: xs is sorted).
  function lowerBound(x) {
    var lo = 0;
    var hi = xs.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (xs[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // The index of time `x`, inserted (with no reading or level yet) when absent.
  function slot(x) {
    var i = lowerBound(x);
    if (xs[i] !== x) {
      xs.splice(i, 0, x);
      values.splice(i, 0, null);
      levels.splice(i, 0, null);
    }
    return i;
  }

  function epoch(iso) {
    return Date.parse(iso) / 1000;
  }

  var last = { time: null, value: null };
  function noteLast(t, value) {
    if (last.time === null || t >= last.time) {
      last.time = t;
      last.value = value;
    }
  }
  for (var k = xs.length - 1; k >= 0; k--) {
    if (values[k] !== null) {
      noteLast(xs[k], values[k]);
      break;
    }
  }

  function addReading(item) {
    var t = epoch(item.timestamp);
    var value = item.value;
    if (bucket) {
      if (until !== null && t <= until) return; // already in the page's buckets
      until = t;
      var start = Math.floor(t / bucket) * bucket;
      var i = slot(start);
      var n = counts[start] || 0;
      values[i] = n && values[i] !== null ? (values[i] * n + value) / (n + 1) : value;
      counts[start] = n + 1;
    } else {
      values[slot(t)] = value;
    }
    noteLast(t, value);
  }

  function addDetection(item) {
    var t = epoch(item.timestamp);
    var x = bucket ? Math.floor(t / bucket) * bucket : t;
    var i = slot(x);
    if (item.level !== null && (!bucket || levels[i] === null || item.level > levels[i])) levels[i] = item.level;
    if (item.status === "warning" || item.status === "critical") {
      if (!liveBand) {
        liveBand = { start: t, end: t, critical: false };
        bands.push(liveBand);
      }
      liveBand.end = Math.max(liveBand.end, t);
      liveBand.critical = liveBand.critical || item.status === "critical";
    } else if (item.status === "ok") {
      liveBand = null;
    }
  }

  // Live ranges slide: they end now, and what falls off their start is dropped.
  function slide() {
    if (!cfg.live) return;
    var now = Date.now() / 1000;
    view.end = Math.max(cfg.end, now);
    view.start = view.end - cfg.span;
    var drop = 0;
    while (drop < xs.length && xs[drop] < view.start - bucket) drop++;
    if (drop) {
      xs.splice(0, drop);
      values.splice(0, drop);
      levels.splice(0, drop);
    }
  }

  var latestValue = document.querySelector("[data-latest-value]");
  var latestTime = document.querySelector("[data-latest-time]");
  var shownLatest = cfg.until; // the reading the page's header shows

  function publish() {
    var points = 0;
    for (var i = 0; i < values.length; i++) if (values[i] !== null) points++;
    root.dataset.points = String(points);
    root.dataset.lastValue = last.value === null ? "" : String(last.value);
    root.dataset.lastTime = last.time === null ? "" : new Date(last.time * 1000).toISOString();
    if (last.time !== null && (shownLatest === null || last.time > shownLatest)) {
      shownLatest = last.time;
      if (latestValue) latestValue.textContent = String(Number(last.value.toFixed(3)));
      if (latestTime) {
        latestTime.textContent = "at " + new Date(last.time * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC";
      }
    }
  }

  function drawBands(u) {
    var ctx = u.ctx;
    var box = u.bbox;
    var minWidth = 3 * (window.devicePixelRatio || 1);
    ctx.save();
    bands.forEach(function (band) {
      var x0 = u.valToPos(band.start, "x", true);
      var x1 = u.valToPos(band.end + bucket, "x", true);
      var left = Math.max(box.left, Math.min(x0, x1 - minWidth));
      var right = Math.min(box.left + box.width, Math.max(x1, x0 + minWidth));
      if (right <= box.left || left >= box.left + box.width) return;
      ctx.fillStyle = band.critical ? COLOURS.bandCritical : COLOURS.bandWarning;
      ctx.fillRect(left, box.top, right - left, box.height);
    });
    ctx.restore();
  }

  function drawLevels(u) {
    var ctx = u.ctx;
    var box = u.bbox;
    ctx.save();
    ctx.lineWidth = 1 * (window.devicePixelRatio || 1);
    ctx.setLineDash([6, 4]);
    [
      [cfg.warning_level, COLOURS.warning],
      [cfg.critical_level, COLOURS.critical],
    ].forEach(function (line) {
      var y = u.valToPos(line[0], "%", true);
      if (y < box.top || y > box.top + box.height) return;
      ctx.strokeStyle = line[1];
      ctx.beginPath();
      ctx.moveTo(box.left, y);
      ctx.lineTo(box.left + box.width, y);
      ctx.stroke();
    });
    ctx.restore();
  }

  function size() {
    var width = Math.max(280, root.clientWidth);
    return { width: width, height: Math.round(Math.min(480, Math.max(240, width * 0.42))) };
  }

  var unit = cfg.unit ? " (" + cfg.unit + ")" : "";
  var options = Object.assign(size(), {
    scales: {
      x: { time: true, range: function () { return [view.start, view.end]; } },
      "%": {
        range: function (u, min, max) {
          return [0, Math.max(cfg.critical_level * 1.15, (max || 0) * 1.05)];
        },
      },
    },
    series: [
      {},
      {
        label: cfg.sensor + unit,
        stroke: COLOURS.value,
        width: 1.5,
        spanGaps: true,
        points: { show: false },
        value: function (u, v) { return fmt(v, 3); },
      },
      {
        label: "level %",
        scale: "%",
        stroke: COLOURS.level,
        width: 1,
        spanGaps: true,
        points: { show: false },
        value: function (u, v) { return fmt(v, 1); },
      },
    ],
    axes: [
      {},
      { label: cfg.unit || "value" },
      { scale: "%", side: 1, label: "level %", grid: { show: false } },
    ],
    hooks: { drawClear: [drawBands], draw: [drawLevels] },
  });

  slide();
  var plot = new uPlot(options, [xs, values, levels], root);
  root.uplot = plot; // for scripts and tests: plot.data is [times, readings, levels]
  publish();

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      slide();
      plot.setData([xs, values, levels]);
      publish();
    });
  }

  if (window.ResizeObserver) {
    new ResizeObserver(function () {
      var next = size();
      if (next.width !== plot.width || next.height !== plot.height) plot.setSize(next);
    }).observe(root);
  }

  if (!cfg.live || !window.WebSocket) {
    root.dataset.liveState = "off";
    return;
  }

  // Both sockets: reconnect with a growing pause after a drop, never after a refusal (no right to watch: 44xx but
  // 4503, which says the channel layer is down for now).
  var states = {};
  function showState() {
    var names = Object.keys(states).map(function (key) { return states[key]; });
    var state = names.every(function (s) { return s === "open"; }) ? "open" : names.indexOf("closed") >= 0 ? "closed" : "connecting";
    root.dataset.liveState = state;
    var label = document.querySelector("[data-testid=live-state]");
    if (label) label.textContent = state === "open" ? "live" : state === "closed" ? "live updates stopped" : "connecting…";
  }

  function connect(name, path, onItems) {
    var pause = 1000;
    function open() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + window.location.host + path);
      var refused = false;
      states[name] = "connecting";
      showState();
      socket.onopen = function () {
        pause = 1000;
        states[name] = "open";
        showState();
      };
      socket.onmessage = function (event) {
        var message = JSON.parse(event.data);
        if (message.type === "error") {
          refused = message.code >= 4400 && message.code < 4500;
          return;
        }
        var items = message[name];
        if (items && items.length) {
          items.forEach(onItems);
          redraw();
        }
      };
      socket.onclose = function (event) {
        if (refused || (event.code >= 4400 && event.code < 4500)) {
          states[name] = "closed";
          showState();
          return;
        }
        states[name] = "connecting";
        showState();
        window.setTimeout(open, pause);
        pause = Math.min(pause * 2, 30000);
      };
    }
    open();
  }

  connect("readings", cfg.readings_ws, addReading);
  connect("detections", cfg.detections_ws, addDetection);
  // A live range slides even when nothing arrives (a silent sensor's line moves left).
  window.setInterval(redraw, 10000);
})();
