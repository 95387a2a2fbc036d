// The console's call page: joins the call as the signed-in staff member (session cookie and
// CSRF token), shows each participant as a tile and their connection's figures in a table.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("call-config").textContent);
  var T = config.strings;
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var lang = document.documentElement.lang || "en";
  var $ = function (id) { return document.getElementById(id); };
  var whole = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
  var tenth = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, name) { return String(values[name]); });
  }

  function nameOf(participant) { return config.names[participant] || T.someone; }

  function status(text) { $("call-status").textContent = text; }

  function makeTile(participant) {
    var figure = document.createElement("figure");
    figure.className = "call-tile";
    figure.dataset.participant = participant;
    var video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    var caption = document.createElement("figcaption");
    caption.textContent = nameOf(participant);
    video.setAttribute("aria-label", nameOf(participant));
    figure.appendChild(video);
    figure.appendChild(caption);
    $("call-tiles").appendChild(figure);
    return { element: figure, video: video };
  }

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  function showQuality(quality) {
    var body = $("call-quality");
    body.replaceChildren();
    Object.keys(quality.participants).forEach(function (participant) {
      var f = quality.participants[participant];
      var row = document.createElement("tr");
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = nameOf(participant);
      row.appendChild(th);
      cell(row, f.rtt_ms === null ? "–" : whole.format(f.rtt_ms) + " ms");
      cell(row, f.loss_pct === null ? "–" : tenth.format(f.loss_pct) + " %");
      cell(row, f.kbps === null ? "–" : whole.format(f.kbps) + " kbit/s");
      cell(row, whole.format(f.fps) + " fps");
      cell(row, f.weak ? T.quality_weak : T.quality_good);
      row.className = f.weak ? "weak" : "good";
      body.appendChild(row);
    });
  }

  function onChange(state) {
    if (state.shown.length > 0) {
      status(fill(T.in_call, { names: state.shown.map(nameOf).join(", ") }));
    } else {
      status(fill(T.waiting, { name: nameOf(config.resident) }));
    }
  }

  function onEnd(ended) {
    var hangUp = $("hang-up");
    hangUp.disabled = true;
    $("call-self").srcObject = null;
    if (ended.reason === "no_camera") { status(T.no_camera); }
    else if (ended.reason === "failed") { status(fill(T.failed, { reason: ended.detail })); }
    else if (ended.reason === "lost") { status(T.lost); }
    else { status(T.ended); }
    document.body.classList.add("call-ended");
  }

  var call = window.VakiCall.join({
    tokenUrl: config.token_url,
    headers: { "X-CSRF-Token": csrf ? csrf.getAttribute("content") : "" },
    self: $("call-self"),
    makeTile: makeTile,
    onchange: onChange,
    onquality: showQuality,
    onleft: function (participant) { status(fill(T.left, { name: nameOf(participant) })); },
    onend: onEnd
  });

  $("hang-up").addEventListener("click", function () { call.hangUp(); });
  window.addEventListener("pagehide", function () { if (!call.ended) { call.hangUp(); } });
}());
