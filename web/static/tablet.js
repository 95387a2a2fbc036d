// The resident's tablet: pairing, the home screen, check-ins, "call my care team",
// "I need help" and the incoming call. Its words come translated in the page
// (#tablet-strings); its device key lives in this browser and is never dropped by the page
// itself, only when the server says the key is no longer valid (the device was revoked).
(function () {
  "use strict";
  var KEY_NAME = "vaki.tablet.key";
  var ZONE_NAME = "vaki.tablet.zone";
  var OUTBOX_NAME = "vaki.tablet.outbox";
  var ANSWERED_NAME = "vaki.tablet.answered";
  var LANGUAGE_COOKIE = "vaki_tablet_lang";
  var POLL_MS = 10000;
  var HOLD_MS = 1500;
  var UNDO_S = 5;
  var T = JSON.parse(document.getElementById("tablet-strings").textContent);
  var C = JSON.parse(document.getElementById("tablet-calendar").textContent);
  var lang = document.documentElement.lang;
  var $ = function (id) { return document.getElementById(id); };
  var store = window.localStorage;

  var key = store.getItem(KEY_NAME);
  var hash = window.location.hash;
  var keyMatch = /[#&]key=([^&]+)/.exec(hash);
  var pairMatch = /[#&]pair=([0-9 ]+)/.exec(hash);
  if (keyMatch || pairMatch) { window.history.replaceState(null, "", window.location.pathname + window.location.search); }
  if (keyMatch) { key = decodeURIComponent(keyMatch[1]); store.setItem(KEY_NAME, key); }

  var state = { screen: null, home: null, failures: 0, unauthorised: 0, timer: null, busy: false,
                dismissedCall: null, flow: null };

  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, name) { return String(values[name]); });
  }

  // --- screens -------------------------------------------------------------------------
  function show(name) {
    var screens = document.querySelectorAll(".screen");
    for (var i = 0; i < screens.length; i++) { screens[i].hidden = screens[i].id !== "screen-" + name; }
    if (state.screen !== name) {
      state.screen = name;
      var heading = document.querySelector("#screen-" + name + " [tabindex='-1']");
      if (heading) { heading.focus({ preventScroll: true }); }
      window.scrollTo(0, 0);
    }
  }

  function button(label, onClick, className) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.className = className || "primary";
    b.addEventListener("click", onClick);
    return b;
  }

  // --- the connection: every request, an outbox that survives reloads, and backoff --------
  function api(method, path, body) {
    var controller = new AbortController();
    var timeout = window.setTimeout(function () { controller.abort(); }, 15000);
    var headers = { "Content-Type": "application/json" };
    if (key) { headers.Authorization = "Bearer " + key; }
    return fetch(path, {
      method: method, headers: headers, signal: controller.signal, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      window.clearTimeout(timeout);
      if (!response.ok) {
        var error = new Error(String(response.status));
        error.status = response.status;
        throw error;
      }
      return response.json();
    }, function (err) { window.clearTimeout(timeout); throw err; });
  }

  function outbox() {
    try { return JSON.parse(store.getItem(OUTBOX_NAME) || "[]"); } catch (e) { return []; }
  }

  function saveOutbox(items) { store.setItem(OUTBOX_NAME, JSON.stringify(items)); }

  function queue(path, body) {
    var items = outbox();
    items.push({ path: path, body: body });
    saveOutbox(items);
    return flush();
  }

  // Sends what waits, oldest first; stops at the first failure and keeps the rest.
  function flush() {
    var items = outbox();
    if (items.length === 0 || !key) { return Promise.resolve(); }
    return api("POST", items[0].path, items[0].body).then(function () {
      saveOutbox(outbox().slice(1));
      return flush();
    }, function (err) {
      if (err.status && err.status >= 400 && err.status < 500 && err.status !== 401 && err.status !== 429) {
        saveOutbox(outbox().slice(1)); // the server will never take it (e.g. a closed prompt)
        return flush();
      }
      throw err;
    });
  }

  function setOnline(online) {
    document.body.classList.toggle("offline", !online);
    $("connection").textContent = online ? "" : T.offline;
    var pending = outbox().length > 0;
    $("help-pending").hidden = !pending;
    $("help-pending").textContent = pending ? T.pending : "";
  }

  function schedule(ms) {
    window.clearTimeout(state.timer);
    state.timer = window.setTimeout(poll, ms);
  }

  function poll() {
    if (!key) { return; }
    flush().then(function () { return api("GET", "/api/tablet/home"); }).then(function (home) {
      state.failures = 0;
      state.unauthorised = 0;
      setOnline(true);
      render(home);
      schedule(POLL_MS);
    }).catch(function (err) {
      if (err.status === 401 && ++state.unauthorised >= 2) {
        // Revoked by the care team: this tablet has to be paired again.
        store.removeItem(KEY_NAME);
        saveOutbox([]);
        key = null;
        showPairing();
        return;
      }
      state.failures += 1;
      setOnline(false);
      var wait = Math.min(60000, 1000 * Math.pow(2, state.failures));
      schedule(wait / 2 + Math.random() * wait / 2);
    });
  }

  window.addEventListener("online", function () { schedule(0); });
  window.addEventListener("offline", function () { setOnline(false); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { schedule(0); }
  });

  // --- the home screen -----------------------------------------------------------------
  function zone() { return store.getItem(ZONE_NAME) || undefined; }

  // The moment's numbers in the resident's time zone (Intl knows every zone's rules).
  function partsIn(now) {
    var parts = {};
    var numeric = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone(), year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", hourCycle: "h23"
    });
    numeric.formatToParts(now).forEach(function (p) { parts[p.type] = Number(p.value); });
    parts.weekday = (new Date(Date.UTC(parts.year, parts.month - 1, parts.day)).getUTCDay() + 6) % 7;
    return parts;
  }

  // A CLDR pattern ("EEEE, d. MMMM y", "HH:mm") filled in with the locale's own names.
  function formatted(pattern, p) {
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    var hour12 = p.hour % 12 === 0 ? 12 : p.hour % 12;
    var fields = {
      EEEE: C.days[p.weekday], cccc: C.days_alone[p.weekday],
      MMMM: C.months[p.month - 1], LLLL: C.months_alone[p.month - 1],
      MM: two(p.month), M: String(p.month), dd: two(p.day), d: String(p.day),
      y: String(p.year), yyyy: String(p.year), HH: two(p.hour), H: String(p.hour),
      hh: two(hour12), h: String(hour12), mm: two(p.minute), m: String(p.minute),
      a: p.hour < 12 ? C.am : C.pm
    };
    return pattern.replace(/'([^']*)'|([A-Za-z])\2*/g, function (token, quoted) {
      if (quoted !== undefined) { return quoted; }
      return Object.prototype.hasOwnProperty.call(fields, token) ? fields[token] : token;
    });
  }

  function tick() {
    var p = partsIn(new Date());
    $("date").textContent = formatted(C.date, p);
    $("time").textContent = formatted(C.time, p);
    if (state.home) {
      var greeting = p.hour < 12 ? T.good_morning : p.hour < 18 ? T.good_day : T.good_evening;
      $("greeting").textContent = fill(greeting, { name: state.home.resident.name });
    }
  }

  function answered() {
    try { return JSON.parse(store.getItem(ANSWERED_NAME) || "[]"); } catch (e) { return []; }
  }

  function markAnswered(promptId) {
    store.setItem(ANSWERED_NAME, JSON.stringify(answered().concat([promptId]).slice(-20)));
  }

  function render(home) {
    var language = home.resident.language;
    if (language !== lang && window.sessionStorage.getItem("vaki.tablet.reloaded") !== language) {
      // The care team set the resident's language: the page comes again, in it.
      document.cookie = LANGUAGE_COOKIE + "=" + language + "; path=/tablet/; max-age=315360000; samesite=lax";
      window.sessionStorage.setItem("vaki.tablet.reloaded", language);
      window.location.reload();
      return;
    }
    state.home = home;
    store.setItem(ZONE_NAME, home.resident.time_zone);
    tick();
    renderPrompt(home.prompts.filter(function (p) { return answered().indexOf(p.prompt_id) < 0; })[0]);
    renderAppointments(home.appointments);
    var soon = home.starting_soon;
    $("starting-soon").hidden = !soon;
    $("starting-soon").textContent = soon ? T.starting_soon.replace("%(when)s", soon.when) : "";
    $("call-status").hidden = !home.call_requested;
    $("call-status").textContent = home.call_requested ? T.call_requested : "";
    var call = home.incoming_call;
    if (call && call.id !== state.dismissedCall && (state.screen === "home" || state.screen === "thanks")) {
      state.incoming = call.id;
      show("incoming");
      if (call.auto_answer) { startAutoAnswer(); }
    } else if (!call && state.screen === "incoming") {
      stopAutoAnswer();
      show("home");
    } else if (state.screen === null || state.screen === "pair") {
      show("home");
    }
  }

  function renderAppointments(appointments) {
    var list = $("appointment-list");
    list.replaceChildren();
    appointments.forEach(function (a) {
      var item = document.createElement("li");
      item.textContent = a.when;
      list.appendChild(item);
    });
    $("no-appointments").hidden = appointments.length > 0;
  }

  function renderPrompt(prompt) {
    var card = $("prompt-card");
    $("nothing-now").hidden = Boolean(prompt);
    if (!prompt) { card.hidden = true; card.dataset.prompt = ""; return; }
    if (card.dataset.prompt === prompt.prompt_id) { return; }
    card.dataset.prompt = prompt.prompt_id;
    card.hidden = false;
    $("prompt-title").textContent = prompt.title;
    $("prompt-text").textContent = prompt.text;
    var choices = $("prompt-choices");
    choices.replaceChildren();
    if (prompt.questions) {
      choices.appendChild(button(T.answer_prompt, function () {
        ask(prompt, prompt.questions, 0, "done", {});
      }));
      return;
    }
    prompt.answers.forEach(function (choice) {
      var kind = choice.value === "call_me" || choice.value === "not_taken" ? "secondary" : "primary";
      choices.appendChild(button(choice.label, function () {
        if (choice.value === "not_so_good" && prompt.follow_up && prompt.follow_up.length) {
          ask(prompt, prompt.follow_up, 0, choice.value, {});
        } else {
          send(prompt, choice.value, {});
        }
      }, kind));
    });
  }

  // One question per screen; the answer goes when the last one is answered.
  function ask(prompt, questions, index, answer, answers) {
    if (index >= questions.length) { send(prompt, answer, answers); return; }
    var question = questions[index];
    state.flow = prompt.prompt_id;
    $("question-progress").textContent = questions.length > 1
      ? fill(T.question_of, { number: index + 1, count: questions.length }) : "";
    $("question-text").textContent = question.text;
    var choices = $("question-choices");
    choices.replaceChildren();
    choices.className = "choices" + (question.kind === "scale" ? " scale" : "");
    function next(value) {
      answers[question.id] = value;
      ask(prompt, questions, index + 1, answer, answers);
    }
    if (question.kind === "scale") {
      for (var n = question.min; n <= question.max; n++) {
        choices.appendChild(button(String(n), next.bind(null, n)));
      }
    } else if (question.kind === "choice") {
      question.options.forEach(function (o) { choices.appendChild(button(o.label, next.bind(null, o.value))); });
    } else {
      choices.appendChild(button(T.yes, next.bind(null, true)));
      choices.appendChild(button(T.no, next.bind(null, false)));
    }
    state.screen = null; // focus the new question even when the screen stays the same
    show("question");
  }

  function send(prompt, answer, answers) {
    markAnswered(prompt.prompt_id);
    state.flow = null;
    renderPrompt(null);
    show("thanks");
    queue("/api/tablet/prompts/" + encodeURIComponent(prompt.prompt_id) + "/answer",
          { answer: answer, answers: answers })
      .then(function () { setOnline(true); }, function () { setOnline(false); schedule(2000); });
  }

  function backHome() {
    state.flow = null;
    show("home");
    schedule(0);
  }

  // --- "Call my care team" -------------------------------------------------------------
  $("call-team").addEventListener("click", function () {
    $("call-status").hidden = false;
    $("call-status").textContent = T.call_requested;
    queue("/api/tablet/call-request", {}).then(function () { setOnline(true); },
                                              function () { setOnline(false); schedule(2000); });
  });

  // --- "I need help": confirm by holding, then five seconds to undo, then it goes -------
  var hold = { timer: null };

  $("need-help").addEventListener("click", function () { show("help-confirm"); });
  $("help-cancel").addEventListener("click", backHome);

  function startHold(event) {
    if (event.button !== undefined && event.button !== 0) { return; }
    event.preventDefault();
    var target = $("help-hold");
    if (event.pointerId !== undefined && target.setPointerCapture) { target.setPointerCapture(event.pointerId); }
    target.classList.add("holding");
    window.clearTimeout(hold.timer);
    hold.timer = window.setTimeout(function () { stopHold(); countdown(); }, HOLD_MS);
  }

  function stopHold() {
    window.clearTimeout(hold.timer);
    $("help-hold").classList.remove("holding");
  }

  var holdButton = $("help-hold");
  holdButton.addEventListener("pointerdown", startHold);
  holdButton.addEventListener("pointerup", stopHold);
  holdButton.addEventListener("pointercancel", stopHold);
  holdButton.addEventListener("contextmenu", function (event) { event.preventDefault(); });
  // A keyboard, switch or screen reader presses without a pointer: that deliberate second
  // press, on another button than the first, is the confirmation.
  holdButton.addEventListener("click", function (event) { if (event.detail === 0) { countdown(); } });

  var undo = { timer: null, left: 0 };

  function countdown() {
    undo.left = UNDO_S;
    show("help-countdown");
    $("countdown").textContent = String(undo.left);
    window.clearInterval(undo.timer);
    undo.timer = window.setInterval(function () {
      undo.left -= 1;
      if (undo.left <= 0) {
        window.clearInterval(undo.timer);
        sendHelp();
      } else {
        $("countdown").textContent = String(undo.left);
      }
    }, 1000);
  }

  $("help-undo").addEventListener("click", function () {
    window.clearInterval(undo.timer);
    backHome();
  });

  function requestId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return String(Date.now()) + "-" + String(Math.random()).slice(2, 12);
  }

  function sendHelp() {
    show("help-sent");
    queue("/api/tablet/help", { request_id: requestId() })
      .then(function () { setOnline(true); }, function () { setOnline(false); schedule(2000); });
    setOnline(!document.body.classList.contains("offline"));
  }

  // --- the incoming call ---------------------------------------------------------------
  // A booked call of the resident's own team may answer itself after a countdown that
  // "Not now" stops, for a resident who cannot reach the screen.
  var AUTO_ANSWER_S = 10;
  function startAutoAnswer() {
    if (state.autoTimer) { return; }
    var left = AUTO_ANSWER_S;
    var note = $("auto-answer");
    function tickDown() {
      note.textContent = T.auto_answer.replace("%(seconds)s", String(left));
      note.hidden = false;
      if (left === 0) { stopAutoAnswer(); $("answer-call").click(); return; }
      left -= 1;
    }
    tickDown();
    state.autoTimer = window.setInterval(tickDown, 1000);
  }
  function stopAutoAnswer() {
    if (state.autoTimer) { window.clearInterval(state.autoTimer); state.autoTimer = null; }
    $("auto-answer").hidden = true;
  }
  $("answer-call").addEventListener("click", function () {
    stopAutoAnswer();
    show("connecting");
    document.dispatchEvent(new CustomEvent("vaki:answer-call", { detail: { consultation: state.incoming } }));
  });
  $("decline-call").addEventListener("click", function () {
    stopAutoAnswer();
    state.dismissedCall = state.incoming;
    backHome();
  });

  // --- the video call: the care team full-screen, one big button to end it ---------------
  document.addEventListener("vaki:answer-call", function (event) {
    var consultation = event.detail.consultation;
    var sign = $("call-sign");
    sign.textContent = "";
    window.VakiCall.join({
      tokenUrl: "/api/tablet/video/" + encodeURIComponent(consultation) + "/token",
      headers: { Authorization: "Bearer " + key },
      self: $("call-self"),
      endWhenAlone: true,
      makeTile: function () {
        var video = document.createElement("video");
        video.autoplay = true;
        video.playsInline = true;
        $("call-tiles").appendChild(video);
        if (state.screen === "connecting") { show("call"); }
        return { element: video, video: video };
      },
      onquality: function (quality) {
        var text = quality.weak ? T.call_weak : T.call_good;
        if (sign.textContent !== text) { sign.textContent = text; }
        sign.className = "call-sign " + (quality.weak ? "weak" : "good");
      },
      onend: function (ended) {
        // Once over, the same call does not ring again while the server closes it.
        state.dismissedCall = consultation;
        $("call-tiles").replaceChildren();
        $("call-self").srcObject = null;
        if (state.screen !== "connecting" && state.screen !== "call") { return; }
        var failed = ended.reason === "failed" || ended.reason === "no_camera" || ended.reason === "lost";
        $("call-ended-heading").textContent = failed ? T.call_failed : T.call_ended;
        show("call-ended");
        window.setTimeout(function () { if (state.screen === "call-ended") { backHome(); } }, 10000);
      }
    });
  });
  function endCall() { if (window.vakiCall && !window.vakiCall.ended) { window.vakiCall.hangUp(); } }
  $("end-call").addEventListener("click", endCall);
  document.querySelector("#screen-connecting .back-home").addEventListener("click", endCall);

  var backs = document.querySelectorAll(".back-home");
  for (var i = 0; i < backs.length; i++) { backs[i].addEventListener("click", backHome); }
  $("question-back").addEventListener("click", backHome);

  // --- pairing -------------------------------------------------------------------------
  function showPairing() {
    show("pair");
  }

  function pair(code) {
    $("pair-message").textContent = T.pairing;
    return api("POST", "/api/tablet/pair", { code: code }).then(function (paired) {
      key = paired.key;
      store.setItem(KEY_NAME, key);
      $("pair-message").textContent = "";
      $("pair-code").value = "";
      document.cookie = LANGUAGE_COOKIE + "=" + paired.language + "; path=/tablet/; max-age=315360000; samesite=lax";
      if (paired.language !== lang) { window.location.reload(); return; }
      schedule(0);
    }, function (err) {
      $("pair-message").textContent = err.status === 429 ? T.too_many : err.status ? T.wrong_code : T.offline;
      $("pair-code").focus();
    });
  }

  $("pair-form").addEventListener("submit", function (event) {
    event.preventDefault();
    pair($("pair-code").value);
  });

  // --- start ---------------------------------------------------------------------------
  if (navigator.wakeLock) {
    var keepAwake = function () { navigator.wakeLock.request("screen").catch(function () {}); };
    keepAwake();
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") { keepAwake(); }
    });
  }
  tick();
  window.setInterval(tick, 5000);
  if (key) {
    show("home");
    setOnline(true);
    poll();
  } else {
    showPairing();
    if (pairMatch) { $("pair-code").value = pairMatch[1]; pair(pairMatch[1]); }
  }
}());
