// The console's one live connection, on every page: a critical or high alert nobody has
// acknowledged shows a banner, flashes the title and sounds again and again until someone
// acknowledges it (or this nurse mutes that one ringing episode); a browser notification goes
// up when the page is in the background. A re-fetch every 15 s stands in for a socket that
// died without a word, and a signed-out page says so loudly. A resident asking to be called
// chimes. On every (re)connect the page fetches again what it shows, so nothing said while
// the line was down is missed.
// Sound: browsers allow it after a click on the site, so signing in arms it; "Start shift"
// arms it (and notifications) on a page opened without a click.
(function () {
  "use strict";

  // A critical alert sounds every 5 s, a high one every 30 s, until someone acknowledges it.
  var RING_EVERY_MS = 5000;
  var RING_HIGH_EVERY_MS = 30000;
  // The backstop for a socket that died without a word (a Wi-Fi roam, a laptop asleep).
  var REFETCH_EVERY_MS = 15000;
  var FLASH_EVERY_MS = 1000;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var root = document.getElementById("live-root");
  if (!root) { return; }
  var words = function (name) { return root.getAttribute("data-" + name) || ""; };

  // --- sound (Web Audio: no sound files to load or lose).
  var audio = null;
  var startButton = document.getElementById("start-shift");

  function context() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return null; }
    audio = audio || new Context();
    return audio;
  }

  function armed() {
    return !!audio && audio.state === "running";
  }

  function asking() {
    return !!window.Notification && Notification.permission === "default";
  }

  function showArming() {
    // Shown until sound plays and the browser has been asked about notifications.
    if (startButton) { startButton.hidden = armed() && !asking(); }
  }

  function tones(pattern) {
    var ctx = context();
    if (!ctx) { return; }
    var play = function () {
      pattern.forEach(function (tone) {
        var oscillator = ctx.createOscillator();
        var gain = ctx.createGain();
        oscillator.type = "square";
        oscillator.frequency.value = tone[1];
        gain.gain.setValueAtTime(0.0001, ctx.currentTime + tone[0]);
        gain.gain.exponentialRampToValueAtTime(0.3, ctx.currentTime + tone[0] + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + tone[0] + 0.25);
        oscillator.connect(gain).connect(ctx.destination);
        oscillator.start(ctx.currentTime + tone[0]);
        oscillator.stop(ctx.currentTime + tone[0] + 0.3);
      });
    };
    if (ctx.state === "running") { play(); return; }
    ctx.resume().then(function () {
      showArming();
      if (ctx.state === "running") { play(); }
    }).catch(function () { showArming(); });
  }

  var alarmSound = function () { tones([[0, 880], [0.35, 880], [0.7, 880]]); };
  var callSound = function () { tones([[0, 660], [0.3, 990]]); };

  function startShift() {
    var ctx = context();
    if (ctx) { ctx.resume().then(showArming); }
    if (asking()) {
      Notification.requestPermission().then(function () { showArming(); subscribePush(); });
    } else {
      subscribePush();
    }
  }
  if (startButton) { startButton.addEventListener("click", startShift); }
  // A page opened after a click on the site (the sign-in, a link) may sound at once.
  context();
  if (audio && audio.state !== "running") { audio.resume().then(showArming).catch(showArming); }
  showArming();
  window.setTimeout(function () { subscribePush(); }, 0);

  // --- web push to the phone, for when she is not at a console (only with a VAPID key).
  function subscribePush() {
    var key = words("push-key");
    if (!key || !("serviceWorker" in navigator) || !window.PushManager) { return; }
    if (!window.Notification || Notification.permission !== "granted") { return; }
    try { if (window.sessionStorage.getItem("vaki.push") === key) { return; } } catch (e) { /* private mode */ }
    var raw = window.atob(key.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((key.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) { bytes[i] = raw.charCodeAt(i); }
    navigator.serviceWorker.register("/static/console_push_worker.js").then(function (registration) {
      return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes });
    }).then(function (subscription) {
      return fetch("/api/push-subscriptions", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(subscription.toJSON())
      });
    }).then(function (response) {
      if (response.ok) {
        try { window.sessionStorage.setItem("vaki.push", key); } catch (e) { /* private mode */ }
      }
    }).catch(function () { /* the console still rings; push is the extra */ });
  }

  // --- the banner, the title and the repeated sound.
  var banner = document.getElementById("alarm-banner");
  var list = banner ? banner.querySelector("ul") : null;
  var baseTitle = document.title;
  var heading = banner ? banner.querySelector("h2") : null;
  var criticalHeading = heading ? heading.textContent : "";
  var ringing = [];
  var seen = {};
  var alarms = 0;
  var muted = {};
  try { muted = JSON.parse(window.sessionStorage.getItem("vaki.muted") || "{}"); } catch (e) { muted = {}; }

  // A mute holds for one ringing episode: a second press or a re-trigger raises the count,
  // and the alert rings again.
  function episode(alert) { return alert.id + ":" + (alert.count || 1); }

  function isMuted(alert) { return !!muted[episode(alert)]; }

  function audible() {
    return ringing.filter(function (alert) { return !isMuted(alert); });
  }

  function mute(alert) {
    muted[episode(alert)] = true;
    try { window.sessionStorage.setItem("vaki.muted", JSON.stringify(muted)); } catch (e) { /* private mode */ }
    draw();
  }

  function acknowledge(id, button) {
    button.disabled = true;
    fetch("/console/alerts/" + id + "/acknowledge", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ next: window.location.pathname }).toString()
    }).then(function () { return fetchState(); })
      .then(function () { document.dispatchEvent(new CustomEvent("vaki:change", { detail: {} })); })
      .catch(function () { button.disabled = false; });
  }

  function button(text, className, onClick) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = className;
    b.textContent = text;
    b.addEventListener("click", onClick);
    return b;
  }

  function draw() {
    if (!banner || !list) { return; }
    list.textContent = "";
    ringing.forEach(function (alert) {
      var item = document.createElement("li");
      item.setAttribute("data-alert-id", String(alert.id));
      if (isMuted(alert)) { item.className = "muted"; }
      var link = document.createElement("a");
      link.href = alert.url;
      link.textContent = alert.what + (alert.who ? " · " + alert.who : "");
      item.appendChild(link);
      if (alert.facts) {
        var facts = document.createElement("span");
        facts.className = "facts";
        facts.textContent = " " + alert.facts;
        item.appendChild(facts);
      }
      var ack = button(words("acknowledge"), "ack", function () { acknowledge(alert.id, ack); });
      item.appendChild(ack);
      if (!isMuted(alert)) {
        item.appendChild(button(words("mute"), "secondary", function () { mute(alert); }));
      }
      list.appendChild(item);
    });
    banner.hidden = ringing.length === 0;
    if (heading) {
      heading.textContent = ringing.some(function (alert) { return alert.severity === "critical"; })
        ? criticalHeading : words("unacknowledged");
    }
    document.body.classList.toggle("ringing", audible().length > 0);
    if (!ringing.length) { document.title = baseTitle; }
  }

  function notify(alert) {
    if (!window.Notification || Notification.permission !== "granted") { return; }
    try { if (window.sessionStorage.getItem("vaki.push") === words("push-key")) { return; } } catch (e) { /* private mode */ }
    try {
      var note = new Notification(alert.what, { body: alert.who + (alert.facts ? " · " + alert.facts : ""), tag: "vaki-alert-" + alert.id, requireInteraction: true });
      note.onclick = function () { window.focus(); window.location.assign(alert.url); };
    } catch (e) { /* some browsers allow notifications only from a service worker */ }
  }

  function show(state) {
    signedIn();
    ringing = state.ringing || [];
    var fresh = ringing.filter(function (alert) { return !seen[episode(alert)]; });
    ringing.forEach(function (alert) { seen[episode(alert)] = true; });
    var now = {};
    ringing.forEach(function (alert) { now[episode(alert)] = true; });
    Object.keys(seen).forEach(function (id) { if (!now[id]) { delete seen[id]; } });
    // Mutes of episodes no longer ringing are forgotten: the next one rings.
    var kept = {};
    Object.keys(muted).forEach(function (id) { if (now[id]) { kept[id] = true; } });
    if (Object.keys(kept).length !== Object.keys(muted).length) {
      muted = kept;
      try { window.sessionStorage.setItem("vaki.muted", JSON.stringify(muted)); } catch (e) { /* private mode */ }
    }
    if (fresh.length) {
      alarms += fresh.length;
      document.body.setAttribute("data-alarms", String(alarms));
      fresh.forEach(notify);
    }
    draw();
    var calls = document.getElementById("calls-count");
    if (calls) {
      calls.textContent = String(state.calls || 0);
      calls.hidden = !state.calls;
    }
    if (fresh.some(function (alert) { return !isMuted(alert); })) { alarmSound(); lastRing = Date.now(); }
  }

  // Signed out (the session ended, the server restarted without it): this screen no longer
  // hears alarms, and says so loudly until someone signs in again.
  var signedOut = document.getElementById("signed-out");

  function signedIn() {
    if (signedOut) { signedOut.hidden = true; }
  }

  function lostSession() {
    if (signedOut && signedOut.hidden) { signedOut.hidden = false; alarmSound(); lastRing = Date.now(); }
  }

  function fetchState() {
    return fetch("/console/live", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.redirected) { lostSession(); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (state) { if (state) { show(state); } })
      .catch(function () { /* the next change, reconnect or re-fetch tries again */ });
  }
  window.setInterval(fetchState, REFETCH_EVERY_MS);

  var lastRing = 0;
  window.setInterval(function () {
    if (signedOut && !signedOut.hidden) { alarmSound(); lastRing = Date.now(); return; }
    var loud = audible();
    if (!loud.length) { return; }
    var critical = loud.some(function (alert) { return alert.severity === "critical"; });
    if (critical || Date.now() - lastRing >= RING_HIGH_EVERY_MS - RING_EVERY_MS / 2) {
      alarmSound();
      lastRing = Date.now();
    }
  }, RING_EVERY_MS);
  var flashOn = false;
  window.setInterval(function () {
    var loud = audible();
    if (!ringing.length) { return; }
    flashOn = !flashOn && loud.length > 0;
    document.title = flashOn ? "(!) " + ringing[0].what : "(" + ringing.length + ") " + baseTitle;
  }, FLASH_EVERY_MS);

  // --- the connection.
  var state = document.getElementById("live-state");
  var delay = 1000;

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/api/alerts/stream");
    socket.onopen = function () {
      delay = 1000;
      if (state) { state.textContent = state.getAttribute("data-live"); state.className = "live on"; }
      fetchState();
      document.dispatchEvent(new CustomEvent("vaki:reconnected"));
    };
    socket.onmessage = function (message) {
      var change;
      try { change = JSON.parse(message.data); } catch (e) { return; }
      if (change.change === "call_requested") { callSound(); }
      fetchState();
      document.dispatchEvent(new CustomEvent("vaki:change", { detail: change }));
    };
    socket.onclose = function () {
      if (state) { state.textContent = state.getAttribute("data-offline"); state.className = "live off"; }
      window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();

  // --- parts of a page that follow the stream by fetching the page again (the waiting room).
  var regions = document.querySelectorAll("[data-live-region]");
  function refreshRegions() {
    if (!regions.length) { return; }
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok && !response.redirected ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        Array.prototype.forEach.call(regions, function (region) {
          var replacement = fresh.getElementById(region.id);
          if (!replacement || region.contains(document.activeElement)) { return; }
          var before = region.querySelectorAll("[data-in-call]").length;
          region.innerHTML = replacement.innerHTML;
          if (region.querySelectorAll("[data-in-call]").length > before) { callSound(); }
        });
        regions = document.querySelectorAll("[data-live-region]");
      })
      .catch(function () { /* next change */ });
  }
  if (regions.length) {
    document.addEventListener("vaki:change", refreshRegions);
    document.addEventListener("vaki:reconnected", refreshRegions);
    window.setInterval(refreshRegions, 20000);
  }
}());
