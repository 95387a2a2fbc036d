// The resident's tablet: pairing, the home screen, check-ins, "call my care team",
// "I need help" and the incoming call. Its words come translated in the page
// (#tablet-strings); its device key lives in this browser and is never dropped by the page
// itself, only when the server says the key is no longer valid (the device was revoked).
(function () {
  "use strict";
  var KEY_NAME = "vaki.tablet.key";
  var ZONE_NAME = "vaki.tablet.zone";
  var OUTBOX_NAME = "vaki.tablet.outbox";
  var HELP_NAME = "vaki.tablet.help";
  var DISMISSED_NAME = "vaki.tablet.dismissed";
  var ANSWERED_NAME = "vaki.tablet.answered";
  var LANGUAGE_COOKIE = "vaki_tablet_lang";
  var POLL_MS = 10000;
  var POLL_WITH_SOCKET_MS = 60000;
  var PING_MS = 25000;
  // "Sending…" turns into "Not sent yet" when the server has not taken the request by then.
  var SEND_GRACE_MS = 4000;
  var HOLD_MS = 1500;
  var UNDO_S = 5;
  var T = JSON.parse(document.getElementById("tablet-strings").textContent);
  var C = JSON.parse(document.getElementById("tablet-calendar").textContent);
  var S = JSON.parse(document.getElementById("tablet-settings").textContent);
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
                dismissedCall: Number(store.getItem(DISMISSED_NAME)) || null, flow: null,
                unpaired: false, chimed: {} };

  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, name) { return String(values[name]); });
  }

  // --- screens -------------------------------------------------------------------------
  function show(name) {
    var screens = document.querySelectorAll(".screen");
    for (var i = 0; i < screens.length; i++) { screens[i].hidden = screens[i].id !== "screen-" + name; }
    if (state.screen !== name) {
      if (name === "incoming") { startRinging(); } else { stopRinging(); }
      state.screen = name;
      var heading = document.querySelector("#screen-" + name + " [tabindex='-1']");
      if (heading) { heading.focus({ preventScroll: true }); }
      window.scrollTo(0, 0);
    }
    renderHelp();
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

  var sequence = 0;

  function queue(path, body) {
    var items = outbox();
    var id = body && body.request_id ? String(body.request_id) : "q" + Date.now() + "-" + (sequence += 1);
    items.push({ id: id, path: path, body: body });
    saveOutbox(items);
    return flush();
  }

  // Takes one item out of the outbox by its identity, wherever it now stands.
  function unqueue(sent) {
    saveOutbox(outbox().filter(function (item) { return !sameItem(item, sent); }));
  }

  function sameItem(a, b) {
    if (a.id || b.id) { return a.id === b.id; }
    return a.path === b.path && JSON.stringify(a.body) === JSON.stringify(b.body);
  }

  // A refusal that will never turn into a yes (a closed prompt, a malformed answer); a
  // proxy's 403, 408 or 413 in a rolling deploy may, so those stay in the outbox.
  var NEVER = [400, 404, 409, 410, 422];

  // Sends what waits, oldest first; stops at the first failure and keeps the rest. One flush
  // at a time: every caller shares the one under way, so nothing is taken out of the outbox
  // while its request is still in flight.
  var flushing = null;

  function flush() {
    if (flushing) { return flushing; }
    flushing = drain().then(function () { flushing = null; }, function (err) { flushing = null; throw err; });
    return flushing;
  }

  function drain() {
    var items = outbox();
    if (items.length === 0 || !key) { return Promise.resolve(); }
    var item = items[0];
    var help = item.path === "/api/tablet/help";
    return api("POST", item.path, item.body).then(function () {
      unqueue(item);
      if (help) { helpReceived(item.body.request_id); }
      return drain();
    }, function (err) {
      // A call for help is never given up: it is tried again and the number to call shown.
      if (help && err.status && err.status !== 401) { helpRefused(item.body.request_id); }
      if (!help && err.status && NEVER.indexOf(err.status) >= 0) {
        unqueue(item); // the server will never take it (e.g. a closed prompt)
        return drain();
      }
      throw err;
    });
  }

  function setOnline(online) {
    document.body.classList.toggle("offline", !online);
    $("connection").textContent = online ? "" : T.offline;
    renderHelp();
  }

  function helpWaiting() {
    return outbox().some(function (item) { return item.path === "/api/tablet/help"; });
  }

  function schedule(ms) {
    window.clearTimeout(state.timer);
    state.timer = window.setTimeout(poll, ms);
  }

  // The home screen comes over the socket; the poll sends what waits and stands in for
  // the socket while it is down.
  function poll() {
    if (!key) { return; }
    flush().then(function () { return api("GET", "/api/tablet/home"); }).then(function (home) {
      received(home);
      schedule(socket.open ? POLL_WITH_SOCKET_MS : POLL_MS);
      connect();
    }).catch(function (err) {
      if (err.status === 401) { unauthorised(); }
      state.failures += 1;
      if (err.status !== 401) { setOnline(false); }
      var wait = Math.min(60000, 1000 * Math.pow(2, state.failures));
      // A call for help that waits is tried every few seconds, whatever else fails.
      if (helpWaiting()) { wait = Math.min(wait, 3000); }
      schedule(wait / 2 + Math.random() * wait / 2);
    });
  }

  function received(home) {
    state.failures = 0;
    state.unauthorised = 0;
    if (state.unpaired) {
      state.unpaired = false;
      $("unpaired").hidden = true;
      show("home");
    }
    setOnline(true);
    render(home);
  }

  // The server does not know this key (the tablet was revoked, or its key was changed): the
  // resident is told whom to call, nothing waiting is thrown away, and the old key is kept
  // and tried now and then until the tablet is paired again.
  function unauthorised() {
    if (++state.unauthorised < 2 || state.unpaired) { return; }
    state.unpaired = true;
    setOnline(true);
    $("unpaired").textContent = fill(T.unpaired, { number: S.emergency_number });
    $("unpaired").hidden = false;
    showPairing();
  }

  // --- the push channel: the home screen as it changes, a ping as a sign of life --------
  var socket = { ws: null, open: false, tries: 0, pinger: null, retry: null };

  function connect() {
    if (!key || socket.ws || !window.WebSocket) { return; }
    window.clearTimeout(socket.retry);
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + "/api/tablet/socket");
    var sentKey = key;
    socket.ws = ws;
    ws.onopen = function () {
      ws.send(JSON.stringify({ key: sentKey }));
      socket.pinger = window.setInterval(function () {
        if (ws.readyState === 1) { ws.send(JSON.stringify({ type: "ping" })); }
      }, PING_MS);
    };
    ws.onmessage = function (message) {
      var data = JSON.parse(message.data);
      if (data.type !== "home") { return; }
      socket.open = true;
      socket.tries = 0;
      received(data.home);
    };
    ws.onclose = function (event) {
      window.clearInterval(socket.pinger);
      var wasOpen = socket.open;
      socket.ws = null;
      socket.open = false;
      if (event.code === 4401) {
        state.unauthorised = Math.max(state.unauthorised, 1);
        unauthorised();
      }
      socket.tries += 1;
      var wait = Math.min(30000, 1000 * Math.pow(2, socket.tries));
      socket.retry = window.setTimeout(connect, wait / 2 + Math.random() * wait / 2);
      if (wasOpen) { schedule(0); }
    };
  }

  window.addEventListener("online", function () { schedule(0); connect(); });
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
      var greeting = p.hour < 5 || p.hour >= 23 ? T.hello
        : p.hour < 12 ? T.good_morning : p.hour < 18 ? T.good_day : T.good_evening;
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
    var open = home.prompts.filter(function (p) { return answered().indexOf(p.prompt_id) < 0; });
    renderPrompt(open[0]);
    open.forEach(function (p) { chimeOnce("prompt:" + p.prompt_id); });
    if (home.starting_soon) { chimeOnce("call:" + home.starting_soon.id); }
    renderHelp();
    renderAppointments(home.appointments);
    var soon = home.starting_soon;
    $("starting-soon").hidden = !soon;
    $("starting-soon").textContent = soon ? T.starting_soon.replace("%(when)s", soon.when) : "";
    $("call-status").hidden = !home.call_requested;
    $("call-status").textContent = home.call_requested ? T.call_requested : "";
    var call = home.incoming_call;
    if (call && call.id !== state.dismissedCall &&
        (state.screen === "home" || state.screen === "thanks" || state.screen === "call-back")) {
      state.incoming = call.id;
      showCaller(call);
      show("incoming");
      if (call.booked) { stopRingingAfter(call.id); }
      if (call.auto_answer) { startAutoAnswer(); }
    } else if ((!call || call.id === state.dismissedCall) && state.screen === "incoming") {
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
    var help = helpState();
    if (help && (help.received || !helpWaiting())) { store.removeItem(HELP_NAME); }
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

  // The resident is told the team has it only once the server took it; until then
  // "Sending…", and after a few seconds without it, plainly that it is not sent and whom to
  // call. The request waits in the outbox (across reloads and a lost key) until it is sent.
  function sendHelp() {
    var id = requestId();
    store.setItem(HELP_NAME, JSON.stringify({ id: id, at: Date.now(), received: false }));
    show("help-sent");
    renderHelp();
    window.setTimeout(renderHelp, SEND_GRACE_MS + 100);
    queue("/api/tablet/help", { request_id: id })
      .then(function () { setOnline(true); }, function () { setOnline(false); schedule(2000); });
  }

  function helpState() {
    try { return JSON.parse(store.getItem(HELP_NAME) || "null"); } catch (e) { return null; }
  }

  function helpReceived(id) {
    var help = helpState();
    if (help && help.id === id && !help.received) {
      help.received = true;
      help.receivedAt = Date.now();
      store.setItem(HELP_NAME, JSON.stringify(help));
    }
    renderHelp();
  }

  // The server (or a proxy before it) refused the request: it is kept and tried again, and
  // the resident is told at once that it is not sent and whom to call.
  function helpRefused(id) {
    var help = helpState();
    if (help && help.id === id && !help.received && !help.refused) {
      help.refused = true;
      store.setItem(HELP_NAME, JSON.stringify(help));
    }
    renderHelp();
  }

  function staffName(person) {
    var pattern = T["role_" + person.role] || "%(name)s";
    return fill(pattern, { name: person.name });
  }

  function renderHelp() {
    var help = helpState();
    var waiting = helpWaiting();
    var fallback = fill(T.help_call_now, { number: S.emergency_number });
    var late = help && !help.received && (help.refused || Date.now() - help.at >= SEND_GRACE_MS);
    // On every screen but the help screen itself, a request that is not sent is said plainly.
    $("help-pending").hidden = !(waiting && late) || state.screen === "help-sent";
    $("help-pending").textContent = T.help_not_sent + ". " + fallback;
    if (!help) { return; }
    var heading = $("help-sent-heading");
    var text = $("help-sent-text");
    var screen = $("screen-help-sent");
    var status = state.home && state.home.help;
    // "Received" only when the server said so; a request not in the outbox and not
    // received was never recorded, and is said to be not sent.
    if (help.received) {
      screen.className = "screen centred help-received";
      var by = status && status.status === "acknowledged" && status.by;
      setText(heading, by ? fill(T.help_on_it, { who: staffName(status.by) }) : T.help_received);
      setText(text, T.help_received_text);
      $("help-fallback").hidden = true;
    } else if (!late) {
      screen.className = "screen centred help-sending";
      setText(heading, T.help_sending);
      setText(text, T.help_sending_text);
      $("help-fallback").hidden = true;
    } else {
      screen.className = "screen centred help-not-sent";
      setText(heading, T.help_not_sent);
      setText(text, T.help_still_trying);
      setText($("help-fallback"), fallback);
      $("help-fallback").hidden = false;
    }
  }

  function setText(element, text) { if (element.textContent !== text) { element.textContent = text; } }

  // --- sound: a ring for a call, a chime for a check-in or a reminder (Web Audio, no files) --
  // In a kiosk started with --autoplay-policy=no-user-gesture-required it sounds at once;
  // elsewhere the browser holds sound back until the screen is touched once, and the tablet
  // says so.
  var sound = { context: null, ringer: null };

  function audio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return null; }
    if (!sound.context) { sound.context = new Context(); }
    if (sound.context.state === "suspended") {
      sound.context.resume().catch(function () {});
    }
    $("sound-off").hidden = sound.context.state !== "suspended";
    return sound.context;
  }

  function tone(frequencies, at, length, volume) {
    var context = audio();
    if (!context) { return; }
    var start = context.currentTime + at;
    var gain = context.createGain();
    gain.gain.setValueAtTime(0, start);
    gain.gain.linearRampToValueAtTime(volume, start + 0.02);
    gain.gain.setValueAtTime(volume, start + length - 0.05);
    gain.gain.linearRampToValueAtTime(0, start + length);
    gain.connect(context.destination);
    frequencies.forEach(function (frequency) {
      var oscillator = context.createOscillator();
      oscillator.frequency.value = frequency;
      oscillator.connect(gain);
      oscillator.start(start);
      oscillator.stop(start + length);
    });
  }

  // A telephone's double ring (400 + 450 Hz), loud enough across a room.
  function ringOnce() { tone([400, 450], 0, 0.4, 0.5); tone([400, 450], 0.6, 0.4, 0.5); }

  function chime() { tone([660], 0, 0.35, 0.35); tone([880], 0.35, 0.6, 0.35); }

  function chimeOnce(what) {
    if (state.chimed[what]) { return; }
    state.chimed[what] = true;
    chime();
  }

  function startRinging() {
    if (sound.ringer) { return; }
    ringOnce();
    sound.ringer = window.setInterval(ringOnce, 3000);
  }

  function stopRinging() {
    window.clearInterval(sound.ringer);
    sound.ringer = null;
    window.clearTimeout(state.ringLimit);
  }

  document.addEventListener("pointerdown", function () { audio(); }, true);

  // --- the incoming call ---------------------------------------------------------------
  function showCaller(call) {
    var caller = call.caller || {};
    var heading = $("incoming-heading");
    if (!heading.dataset.plain) { heading.dataset.plain = heading.textContent; }
    setText(heading, caller.name ? fill(T.calling, { who: staffName(caller) }) : heading.dataset.plain);
    $("incoming-team").hidden = !caller.team;
    setText($("incoming-team"), caller.team || "");
  }

  // A booked call that nobody has joined stops ringing after a while: the team calls back.
  function stopRingingAfter(callId) {
    if (state.ringLimitFor === callId) { return; }
    state.ringLimitFor = callId;
    window.clearTimeout(state.ringLimit);
    state.ringLimit = window.setTimeout(function () {
      if (state.screen !== "incoming" || state.incoming !== callId) { return; }
      stopAutoAnswer();
      dismiss(callId);
      show("call-back");
    }, S.ring_s * 1000);
  }

  function dismiss(callId) {
    state.dismissedCall = callId;
    store.setItem(DISMISSED_NAME, String(callId));
  }

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
    dismiss(state.incoming);
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
        dismiss(consultation);
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
      state.unpaired = false;
      state.unauthorised = 0;
      $("unpaired").hidden = true;
      if (socket.ws) { socket.ws.close(); }
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
  if (navigator.serviceWorker && window.isSecureContext) {
    navigator.serviceWorker.register("/tablet/sw.js").catch(function () {});
  }
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
    var pending = helpState();
    show(pending && !pending.received && helpWaiting() ? "help-sent" : "home");
    if (pending) { window.setTimeout(renderHelp, Math.max(0, pending.at + SEND_GRACE_MS + 100 - Date.now())); }
    setOnline(true);
    poll();
    connect();
  } else {
    showPairing();
    if (pairMatch) { $("pair-code").value = pairMatch[1]; pair(pairMatch[1]); }
  }
}());
