// The queue and alert pages' live parts: the queue is drawn again when the live connection
// (static/console_live.js, on every page) says something changed, forms post without leaving
// the page, and an open alert tells the others who is looking at it. Every form also works
// without this.
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  // --- the queue: fetch the server-rendered lists again when something changed.
  var live = document.getElementById("queue-live");
  var said = document.getElementById("queue-said");
  var refreshing = null;

  var again = false;

  function refresh() {
    if (!live) { return null; }
    // A change during a fetch may not be in its answer: fetch once more after it.
    if (refreshing) { again = true; return refreshing; }
    refreshing = fetch(live.getAttribute("data-items"), { credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401 || response.redirected) { window.location.reload(); return; }
        return response.text().then(function (html) {
          var open = Array.prototype.map.call(
            live.querySelectorAll("details[open]"), function (d) { return d.closest("li").id; });
          var focused = document.activeElement && live.contains(document.activeElement)
            ? document.activeElement.closest("li") : null;
          if (focused || open.length) { return; }  // never pull a form from under someone
          live.innerHTML = html;
          enhance(live);
        });
      })
      .catch(function () { /* the next change or tick tries again */ })
      .then(function () {
        refreshing = null;
        if (again) { again = false; refresh(); }
      });
    return refreshing;
  }

  // --- the page's part of the live connection (static/console_live.js holds it).
  var detail = document.getElementById("alert-detail");
  document.addEventListener("vaki:change", function (event) {
    var change = event.detail || {};
    if (detail && String(change.alert_id) === detail.getAttribute("data-alert-id")) {
      var changed = document.getElementById("alert-changed");
      if (changed) { changed.hidden = false; }
    }
    refresh();
  });
  document.addEventListener("vaki:reconnected", function () { refresh(); });

  // --- forms post in the background and the queue is drawn again.
  function enhance(root) {
    Array.prototype.forEach.call(root.querySelectorAll("form[data-enhance]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (!live) { return; }  // outside the queue a plain post and page is clearer
        event.preventDefault();
        var buttons = form.querySelectorAll("button");
        Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
        fetch(form.action, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(new FormData(form)).toString()
        }).then(function (response) {
          var notice = new URL(response.url).searchParams.get("notice");
          if (!response.ok || (notice !== "acknowledged" && notice !== "resolved")) {
            window.location.assign(response.url);
            return;
          }
          if (said) { said.textContent = said.getAttribute("data-" + notice) || ""; }
          if (document.activeElement) { document.activeElement.blur(); }
          var details = form.closest("details");
          if (details) { details.open = false; }
          return refresh();
        }).catch(function () { form.submit(); });
      });
    });
  }

  // --- who else is looking at this alert.
  function heartbeat(leaving) {
    var id = detail.getAttribute("data-alert-id");
    return fetch("/console/alerts/" + id + "/presence" + (leaving ? "?leaving=1" : ""), {
      method: "POST",
      credentials: "same-origin",
      keepalive: !!leaving,
      headers: { "X-CSRF-Token": csrf }
    }).then(function (response) { return leaving ? null : response.json(); })
      .then(function (body) {
        var box = document.getElementById("onlookers");
        if (!body || !box) { return; }
        box.hidden = body.onlookers.length === 0;
        box.querySelector("span").textContent = body.onlookers.join(", ");
      })
      .catch(function () { /* next beat */ });
  }

  if (live) {
    enhance(document);
    // The ages ("4 min ago") move on even when nothing else does.
    window.setInterval(refresh, 60000);
  }
  if (detail) {
    heartbeat(false);
    window.setInterval(function () { heartbeat(false); }, 15000);
    window.addEventListener("pagehide", function () { heartbeat(true); });
  }
}());
