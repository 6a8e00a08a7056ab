// Live updates of the overview and the events page (progressive enhancement: both pages are complete without
// this script). Each page opens one summary socket (dashboard/consumers.py) named by its `data-live-url`.
(function () {
  "use strict";

  var SILENT_STATUSES = { ok: true, warning: true, critical: true };

  // The same words as the `age_text` template filter (dashboard/templatetags/dashboard_tags.py).
  function ageText(seconds) {
    if (seconds === null) return "never";
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h";
    return Math.floor(seconds / 86400) + " d";
  }

  function valueText(value) {
    if (value === null || value === undefined) return "–";
    if (value === 0 || Math.abs(value) >= 1e-3) return String(Number(value.toPrecision(6)));
    return value.toExponential(3);
  }

  // Reconnects with a growing delay (1 s … 30 s); `status` shows whether the page is live.
  function openSocket(path, status, onMessage) {
    var delay = 1000;
    function connect() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + location.host + path);
      socket.onopen = function () {
        delay = 1000;
      };
      socket.onmessage = function (event) {
        var message = JSON.parse(event.data);
        if (message.type === "error") {
          status.textContent = "not live: " + message.detail;
          status.classList.remove("on");
          status.hidden = false;
          return;
        }
        status.textContent = "live";
        status.classList.add("on");
        status.hidden = false;
        onMessage(message);
      };
      socket.onclose = function (event) {
        status.classList.remove("on");
        status.hidden = false;
        if (event.code === 4401 || event.code === 4403 || event.code === 4400 || event.code === 4404) return;
        status.textContent = "reconnecting…";
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
  }

  // --- overview ---------------------------------------------------------------------------------------------------
  function overview(root) {
    var silentSeconds = Number(root.dataset.silentSeconds);
    var stateFilter = root.dataset.stateFilter;
    var status = document.querySelector("[data-testid=live-status]");
    var rows = {};
    root.querySelectorAll("tr[data-sensor]").forEach(function (row) {
      rows[row.dataset.sensor] = row;
    });

    // The rules of dashboard/selectors.py: silent, else the latest detection's status, else undefined.
    function stateOf(row, now) {
      var timestamp = row.dataset.timestamp ? Date.parse(row.dataset.timestamp) : null;
      if (timestamp === null || (now - timestamp) / 1000 > silentSeconds) return "silent";
      return SILENT_STATUSES[row.dataset.status] ? row.dataset.status : "undefined";
    }

    function render(row, now) {
      var timestamp = row.dataset.timestamp ? Date.parse(row.dataset.timestamp) : null;
      row.querySelector("[data-field=age]").textContent = ageText(timestamp === null ? null : (now - timestamp) / 1000);
      var state = stateOf(row, now);
      if (state !== row.dataset.state) {
        row.dataset.state = state;
        var badge = row.querySelector("[data-field=state]");
        badge.className = "badge state-" + state;
        badge.textContent = state;
        recount();
      }
    }

    // Counts follow the rows only when the page shows every state (a state filter hides the others' rows).
    function recount() {
      if (stateFilter) return;
      var counts = {};
      Object.keys(rows).forEach(function (key) {
        counts[rows[key].dataset.state] = (counts[rows[key].dataset.state] || 0) + 1;
      });
      document.querySelectorAll("[data-state-count]").forEach(function (link) {
        link.querySelector("strong").textContent = counts[link.dataset.stateCount] || 0;
      });
    }

    function apply(item, live) {
      var row = rows[item.sensor];
      if (!row) return;
      if (item.timestamp !== undefined && item.timestamp !== null) {
        var known = row.dataset.timestamp ? Date.parse(row.dataset.timestamp) : null;
        // The latest value is the reading with the greatest timestamp, not the last to arrive.
        var newer = known === null || Date.parse(item.timestamp) > known;
        if (newer || Date.parse(item.timestamp) === known) {
          row.dataset.timestamp = item.timestamp;
          row.querySelector("[data-field=value]").textContent = valueText(item.value);
        }
        if (newer && live) {
          row.classList.remove("flash");
          void row.offsetWidth; // restart the highlight
          row.classList.add("flash");
        }
      }
      if (item.status !== undefined) {
        row.dataset.status = item.status || "";
        var level = row.querySelector("[data-field=level]");
        if (level) level.textContent = item.level === null || item.level === undefined ? "–" : Math.round(item.level) + " %";
      }
      render(row, Date.now());
    }

    openSocket(root.dataset.liveUrl, status, function (message) {
      var live = message.type !== "history";
      (message.sensors || []).forEach(function (item) {
        apply(item, live);
      });
    });
    setInterval(function () {
      var now = Date.now();
      Object.keys(rows).forEach(function (key) {
        render(rows[key], now);
      });
    }, 1000);
  }

  // --- events -----------------------------------------------------------------------------------------------------
  function events(table) {
    var status = document.querySelector("[data-testid=live-status]");
    var body = table.tBodies[0];

    function cell(text, className) {
      var td = document.createElement("td");
      if (className) td.className = className;
      td.textContent = text;
      return td;
    }

    function prepend(item) {
      var id = item.source + "-" + item.event_id;
      if (body.querySelector('tr[data-event="' + id + '"]')) return;
      var empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      var row = document.createElement("tr");
      row.dataset.event = id;
      var at = new Date(item.event_at);
      row.appendChild(cell(at.toISOString().slice(0, 19).replace("T", " "), "num"));
      row.appendChild(cell(item.source));
      var kind = cell("", "kind");
      var badge = document.createElement("span");
      badge.className = "badge kind-" + item.event_kind;
      badge.textContent = item.event_kind;
      kind.appendChild(badge);
      row.appendChild(kind);
      var sensor = cell(item.sensor_key ? "" : "–");
      if (item.sensor_key) {
        var link = document.createElement("a");
        link.href = "/dashboard/sensors/" + encodeURIComponent(item.sensor_key) + "/";
        link.textContent = item.sensor_key;
        sensor.appendChild(link);
      }
      row.appendChild(sensor);
      row.appendChild(cell(item.event_message));
      row.classList.add("flash");
      body.insertBefore(row, body.firstChild);
    }

    openSocket(table.dataset.liveUrl, status, function (message) {
      (message.events || []).forEach(prepend);
    });
  }

  var root = document.querySelector("[data-testid=overview][data-live-url]");
  if (root) overview(root);
  var feed = document.querySelector("[data-testid=events][data-live-url]");
  if (feed) events(feed);
})();
