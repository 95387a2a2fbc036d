// The console's live parts: the queue follows the alert stream, a new critical alert
// beeps (Web Audio, no sound files) and flashes, forms post without leaving the page, and an
// open alert tells the others who is looking at it. Every form also works without this.
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var RINGING = { raised: true, reopened: true, retriggered: true };

  // --- sound: browsers let a page play sound only after a click, so staff switch it on.
  var audio = null;
  var soundOn = false;
  var soundButton = document.getElementById("sound-toggle");

  function setSound(on) {
    soundOn = on;
    try { window.localStorage.setItem("vaki.sound", on ? "on" : "off"); } catch (e) { /* private mode */ }
    if (soundButton) {
      soundButton.setAttribute("aria-pressed", on ? "true" : "false");
      soundButton.textContent = soundButton.getAttribute(on ? "data-on" : "data-off");
    }
  }

  function beep() {
    if (!soundOn) { return; }
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    audio = audio || new Context();
    if (audio.state === "suspended") { audio.resume(); }
    [0, 0.35, 0.7].forEach(function (offset) {
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.type = "square";
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, audio.currentTime + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, audio.currentTime + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + offset + 0.25);
      tone.connect(gain).connect(audio.destination);
      tone.start(audio.currentTime + offset);
      tone.stop(audio.currentTime + offset + 0.3);
    });
  }

  if (soundButton) {
    var stored = null;
    try { stored = window.localStorage.getItem("vaki.sound"); } catch (e) { /* private mode */ }
    setSound(stored === "on");
    soundButton.addEventListener("click", function () {
      setSound(!soundOn);
      if (soundOn) { beep(); }
    });
  }

  // --- the visual cue for a new critical alert, until someone looks at the page.
  var banner = document.getElementById("alarm-banner");
  var baseTitle = document.title;
  var alarms = 0;

  function ring(change) {
    alarms += 1;
    document.body.setAttribute("data-alarms", String(alarms));
    document.body.classList.add("ringing");
    if (banner) {
      banner.hidden = false;
      banner.textContent = banner.textContent.split(":")[0] + ": " + change.title;
    }
    document.title = "(!) " + baseTitle;
    beep();
  }

  function calm() {
    document.body.classList.remove("ringing");
    document.title = baseTitle;
  }
  document.addEventListener("click", calm);
  document.addEventListener("keydown", calm);

  // --- the queue: fetch the server-rendered lists again when something changed.
  var live = document.getElementById("queue-live");
  var said = document.getElementById("queue-said");
  var refreshing = null;

  function refresh() {
    if (!live || refreshing) { return refreshing; }
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
      .then(function () { refreshing = null; });
    return refreshing;
  }

  // --- the alert stream (the session cookie opens it; the server checks our origin).
  var state = document.getElementById("live-state");
  var detail = document.getElementById("alert-detail");
  var delay = 1000;

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/api/alerts/stream");
    socket.onopen = function () {
      delay = 1000;
      if (state) { state.textContent = state.getAttribute("data-live"); state.className = "live on"; }
      refresh();
    };
    socket.onmessage = function (message) {
      var change;
      try { change = JSON.parse(message.data); } catch (e) { return; }
      if (RINGING[change.change] && change.severity === "critical") { ring(change); }
      if (detail && String(change.alert_id) === detail.getAttribute("data-alert-id")) {
        var changed = document.getElementById("alert-changed");
        if (changed) { changed.hidden = false; }
      }
      refresh();
    };
    socket.onclose = function () {
      if (state) { state.textContent = state.getAttribute("data-offline"); state.className = "live off"; }
      window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

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
    window.setInterval(refresh, 15000);
  }
  if (live || detail) { connect(); }
  if (detail) {
    heartbeat(false);
    window.setInterval(function () { heartbeat(false); }, 15000);
    window.addEventListener("pagehide", function () { heartbeat(true); });
  }
}());
