/* The jobs page (templates/dashboard/jobs.html): its first page follows every job live by polling the JSON of
   /dashboard/jobs/status/ with the page's filters, and redraws the rows (new jobs appear at the top). */
(function () {
  "use strict";
  var table = document.querySelector('[data-testid="jobs-table"]');
  if (!table || table.dataset.live !== "true") return;
  var POLL_MS = 2000;
  var COLUMNS = ["Job", "State", "Progress", "Message", "Started by", "Queued", "Started", "Finished"];

  function cell(row, label) {
    var td = document.createElement("td");
    td.dataset.label = label;
    row.appendChild(td);
    return td;
  }

  function span(parent, className, role, text) {
    var node = document.createElement("span");
    if (className) node.className = className;
    if (role) node.dataset.role = role;
    node.textContent = text == null ? "" : String(text);
    parent.appendChild(node);
    return node;
  }

  function row(job) {
    var tr = document.createElement("tr");
    tr.dataset.jobId = job.id;
    tr.dataset.state = job.state;
    var first = cell(tr, COLUMNS[0]);
    span(first, "", "label", job.label);
    span(first, "kind", "", job.kind);
    span(cell(tr, COLUMNS[1]), "job-state " + job.state, "state", job.state_label);
    var bar = span(cell(tr, COLUMNS[2]), "bar", "", "");
    var progress = document.createElement("progress");
    progress.max = 100;
    progress.dataset.role = "bar";
    progress.setAttribute("aria-label", job.label + " progress");
    var percent = job.state === "succeeded" ? 100 : job.percent;
    if (percent != null) progress.value = percent;
    else if (!job.active) progress.value = 0;
    bar.appendChild(progress);
    span(bar, "job-percent", "percent", percent == null ? "" : percent + " %");
    var message = cell(tr, COLUMNS[3]);
    message.className = "msg";
    if (job.error) span(message, "job-error", "error", job.error);
    else span(message, "", "message", job.message);
    cell(tr, COLUMNS[4]).textContent = job.started_by;
    [job.created_at, job.started_at, job.finished_at].forEach(function (when, index) {
      var td = cell(tr, COLUMNS[5 + index]);
      td.className = "when";
      td.textContent = when || "";
    });
    return tr;
  }

  function poll() {
    if (document.hidden) { window.setTimeout(poll, POLL_MS); return; }
    fetch(table.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        var tbody = table.tBodies[0];
        var rows = body.jobs.map(row);
        if (!rows.length) return;
        tbody.replaceChildren.apply(tbody, rows);
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  window.setTimeout(poll, POLL_MS);
})();
