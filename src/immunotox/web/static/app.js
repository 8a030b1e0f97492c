/* immunotox web UI — small progressive enhancements; every page works without this file.
 * - ward: polls /ward/poll (a small JSON answer) and swaps in the rows the server rendered
 * - bedside: "empty all fields" for the vital signs; the ICANS preview of the assessment form,
 *   computed by the server from the rule tables (this file holds no clinical threshold)
 */
(function () {
  "use strict";

  function csrfOf(form) {
    var input = form.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  // ------------------------------------------------------------------ ward live refresh
  function startWardPolling() {
    var table = document.getElementById("ward");
    if (!table || !table.dataset.poll) { return; }
    var rows = document.getElementById("ward-rows");
    var status = document.getElementById("ward-status");
    var interval = parseInt(table.dataset.interval || "5000", 10);
    var busy = false;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      var url = table.dataset.poll + (table.dataset.poll.indexOf("?") >= 0 ? "&" : "?") +
        "stamp=" + encodeURIComponent(table.dataset.stamp || "");
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (resp) {
          if (resp.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname + window.location.search); return null; }
          return resp.ok ? resp.json() : null;
        })
        .then(function (data) {
          if (!data) { return; }
          table.dataset.stamp = data.stamp;
          if (data.changed) {
            rows.innerHTML = data.html;
            if (status && data.status) { status.innerHTML = data.status; }
            var count = document.getElementById("nav-alert-count");
            if (count && typeof data.open_alerts === "number") {
              count.textContent = String(data.open_alerts);
              count.hidden = data.open_alerts === 0;
            }
          }
        })
        .catch(function () { /* offline for a moment: try again at the next tick */ })
        .then(function () { busy = false; });
    }
    window.setInterval(tick, interval);
  }

  // ------------------------------------------------------------------ bedside helpers
  function setupClearButtons() {
    document.querySelectorAll("[data-clear]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var form = document.querySelector(btn.dataset.clear);
        if (!form) { return; }
        form.querySelectorAll('input[inputmode="decimal"], input[type="text"]').forEach(function (input) {
          input.value = "";
        });
        var first = form.querySelector('input[inputmode="decimal"]');
        if (first) { first.focus(); }
      });
    });
  }

  function setupIcePreview() {
    var form = document.getElementById("ice-form");
    if (!form || !form.dataset.preview) { return; }
    var badge = document.getElementById("preview-badge");
    var text = document.getElementById("preview-text");
    var detail = document.getElementById("preview-detail");
    var timer = null;
    var seq = 0;
    function update() {
      var mine = ++seq;
      var body = new URLSearchParams(new FormData(form));
      fetch(form.dataset.preview, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrfOf(form), "Accept": "application/json" },
        body: body.toString()
      })
        .then(function (resp) { return resp.json(); })
        .then(function (data) {
          if (mine !== seq || !data) { return; }
          if (data.error) { text.textContent = data.error; detail.textContent = ""; return; }
          if (!data.entered) { text.textContent = data.summary; detail.textContent = ""; return; }
          badge.className = "badge " + data.css;
          badge.textContent = data.badge;
          badge.dataset.grade = data.grade === null ? "" : String(data.grade);
          text.textContent = (data.ice_text ? data.ice_text + " — " : "") + data.summary;
          detail.textContent = data.detail || "";
        })
        .catch(function () { /* the grade is computed again when the form is saved */ });
    }
    function schedule() {
      if (timer) { window.clearTimeout(timer); }
      timer = window.setTimeout(update, 120);
    }
    form.addEventListener("change", schedule);
    form.addEventListener("input", schedule);
  }

  document.addEventListener("DOMContentLoaded", function () {
    startWardPolling();
    setupClearButtons();
    setupIcePreview();
  });
}());
