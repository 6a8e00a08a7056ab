/* Background jobs' progress bars (templates/common/job_progress.html) and the jobs page's rows, updated by polling
   the small JSON answer of /dashboard/jobs/status/ (works in every set-up: the worker writes progress to the
   database, whatever channel layer the web process has). No library; loaded with `defer`, safe to load twice. */
(function () {
  "use strict";
  if (window.SensorhubJobs) return;

  var POLL_MS = 1000;

  function setText(root, role, text) {
    var node = root.querySelector('[data-role="' + role + '"]');
    if (node) node.textContent = text == null ? "" : String(text);
    return node;
  }

  /* Draw `job` (as dashboard.views.jobs.job_as_dict gives it) into a progress element. */
  function draw(root, job) {
    var bar = root.querySelector('[data-role="bar"]');
    if (bar) {
      if (job.percent == null && job.active) {
        bar.removeAttribute("value"); // indeterminate while the total is unknown
      } else {
        var percent = job.state === "succeeded" ? 100 : (job.percent || 0);
        bar.value = percent;
        bar.textContent = percent + " %";
      }
    }
    var shown = job.state === "succeeded" ? 100 : job.percent;
    setText(root, "percent", shown == null ? "" : shown + " %");
    setText(root, "state", job.state_label);
    setText(root, "message", job.message);
    if (job.label && root.querySelector('[data-role="label"]')) setText(root, "label", job.label);
    var error = setText(root, "error", job.error);
    if (error) error.hidden = !job.error;
    root.dataset.state = job.state;
    root.dispatchEvent(new CustomEvent("job:update", { detail: job, bubbles: true }));
  }

  function fetchJobs(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  /* Follow every job progress element on the page until its job ends. */
  function watchAll() {
    var elements = Array.prototype.slice.call(document.querySelectorAll("[data-job-progress]"));
    var pending = elements.filter(function (el) {
      return el.dataset.jobId && (el.dataset.state === "queued" || el.dataset.state === "running");
    });
    if (!pending.length) return;
    var url = pending[0].dataset.statusUrl + "?" + pending.map(function (el) {
      return "id=" + encodeURIComponent(el.dataset.jobId);
    }).join("&");
    fetchJobs(url).then(function (body) {
      var byId = {};
      body.jobs.forEach(function (job) { byId[job.id] = job; });
      pending.forEach(function (el) {
        var job = byId[el.dataset.jobId];
        if (!job) return;
        draw(el, job);
        if (!job.active) {
          el.dispatchEvent(new CustomEvent("job:finished", { detail: job, bubbles: true }));
          if (el.hasAttribute("data-reload-on-finish")) window.setTimeout(function () { window.location.reload(); }, 600);
        }
      });
    }).catch(function () { /* the next poll tries again */ }).then(function () {
      window.setTimeout(watchAll, POLL_MS);
    });
  }

  window.SensorhubJobs = { draw: draw, fetchJobs: fetchJobs, watchAll: watchAll };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watchAll);
  else watchAll();
})();
