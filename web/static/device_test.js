// The device test: call the server's echo peer with this device's camera and microphone,
// show what comes back, and say in plain words whether the connection, the camera and the
// microphone work. Used by the console (session + CSRF header) and the tablet (device key).
(function () {
  "use strict";
  var root = document.getElementById("device-test");
  if (!root) { return; }
  var T = JSON.parse(document.getElementById("device-test-strings").textContent);
  var mode = root.getAttribute("data-mode");
  var base = mode === "tablet" ? "/api/tablet/video/device-test" : "/api/video/device-test";
  var headers = { "Content-Type": "application/json" };
  if (mode === "tablet") {
    headers.Authorization = "Bearer " + (window.localStorage.getItem("vaki.tablet.key") || "");
  } else {
    var csrf = document.querySelector('meta[name="csrf-token"]');
    headers["X-CSRF-Token"] = csrf ? csrf.getAttribute("content") : "";
  }
  var status = document.getElementById("device-test-status");
  var results = document.getElementById("device-test-results");
  var start = document.getElementById("device-test-start");
  var pc = null;
  var local = null;

  function say(text) { status.textContent = text; }

  function gathered(connection) {
    // The echo peer takes the whole offer at once, candidates included.
    if (connection.iceGatheringState === "complete") { return Promise.resolve(); }
    return new Promise(function (resolve) {
      connection.addEventListener("icegatheringstatechange", function () {
        if (connection.iceGatheringState === "complete") { resolve(); }
      });
      window.setTimeout(resolve, 3000);
    });
  }

  function show(report) {
    results.replaceChildren();
    ["connection", "camera", "microphone"].forEach(function (name) {
      var item = report[name] || { ok: false };
      var li = document.createElement("li");
      li.className = item.ok ? "works" : "fails";
      li.setAttribute("data-item", name);
      li.setAttribute("data-ok", item.ok ? "true" : "false");
      li.textContent = (item.ok ? "✓ " : "✗ ") + T[name + (item.ok ? "_ok" : "_fail")];
      results.appendChild(li);
    });
    var all = ["connection", "camera", "microphone"].every(function (n) { return report[n] && report[n].ok; });
    say(all ? T.all_good : T.some_fail);
    root.setAttribute("data-done", "true");
  }

  function stop() {
    if (pc) { pc.close(); pc = null; }
    if (local) { local.getTracks().forEach(function (t) { t.stop(); }); local = null; }
  }

  start.addEventListener("click", function () {
    stop();
    root.removeAttribute("data-done");
    results.replaceChildren();
    say(T.starting);
    navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } })
      .then(function (stream) {
        local = stream;
        document.getElementById("device-test-self").srcObject = stream;
        pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
        stream.getTracks().forEach(function (track) { pc.addTrack(track, stream); });
        pc.addEventListener("track", function (event) {
          document.getElementById("device-test-echo").srcObject = event.streams[0] || new MediaStream([event.track]);
        });
        return pc.createOffer()
          .then(function (offer) { return pc.setLocalDescription(offer); })
          .then(function () { return gathered(pc); })
          .then(function () {
            return fetch(base, { method: "POST", headers: headers, body: JSON.stringify({ sdp: pc.localDescription.sdp }) });
          })
          .then(function (response) {
            if (!response.ok) { throw new Error(String(response.status)); }
            return response.json();
          })
          .then(function (answer) {
            say(T.testing);
            return pc.setRemoteDescription({ type: "answer", sdp: answer.sdp }).then(function () { return answer.test_id; });
          })
          .then(function (testId) {
            return new Promise(function (resolve) { window.setTimeout(resolve, 6000); }).then(function () {
              return fetch(base + "/" + encodeURIComponent(testId), { headers: headers });
            });
          })
          .then(function (response) { return response.json(); })
          .then(function (report) { show(report); stop(); });
      }, function () {
        show({ connection: { ok: false }, camera: { ok: false }, microphone: { ok: false } });
        say(T.no_devices);
      })
      .catch(function () { say(T.failed); stop(); });
  });
}());
