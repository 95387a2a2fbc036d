// A video call through Vaki's relay, for the console and the tablet alike (docs/video.md).
// The page asks for a room token, opens the room's signalling socket, sends its camera and
// microphone to the server in one send-and-receive pair and offers receive-only pairs for
// further people; the server says who is in which pair ("streams"), and each becomes a tile.
// window.VakiCall.join(options) starts a call; the running call is window.vakiCall.
(function () {
  "use strict";
  var RECEIVE_ONLY_PAIRS = 3; // the server's rooms hold four; one pair per other person
  var STATS_MS = 2000;
  var GATHER_MS = 3000;
  // Past these the picture stutters or the voice lags noticeably: the sign turns to "weak".
  var WEAK_RTT_MS = 400;
  var WEAK_LOSS_PCT = 5;
  var WEAK_FPS = 8;

  function Call(options) {
    this.options = options;
    this.participants = [];
    this.tiles = {};       // participant -> {element, video}
    this.pairs = [];       // {audio: transceiver, video: transceiver}
    this.previous = {};    // mid -> last inbound-rtp figures, for rates
    this.quality = {};     // participant -> latest figures
    this.metSomeone = false;
    this.ended = false;
    this.pc = null;
    this.socket = null;
    this.local = null;
    this.timer = null;
  }

  Call.prototype.emit = function (name, detail) {
    var handler = this.options["on" + name];
    if (handler) { handler(detail, this); }
  };

  Call.prototype.start = function () {
    var self = this;
    var headers = Object.assign({ "Content-Type": "application/json" }, self.options.headers || {});
    var token = fetch(self.options.tokenUrl, {
      method: "POST", headers: headers, body: "{}", cache: "no-store", credentials: "same-origin"
    }).then(function (response) {
      if (!response.ok) { throw new Error("token " + response.status); }
      return response.json();
    });
    var media = navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true },
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } }
    }).catch(function (err) { err.camera = true; throw err; });
    return Promise.all([token, media]).then(function (found) {
      if (self.ended) { found[1].getTracks().forEach(function (t) { t.stop(); }); return; }
      self.local = found[1];
      if (self.options.self) { self.options.self.srcObject = self.local; }
      if (found[0].mode !== "relay") { throw new Error("mode " + found[0].mode); }
      self.open(found[0]);
    }).catch(function (err) {
      self.end(err.camera ? "no_camera" : "failed", String(err.message || err));
    });
  };

  Call.prototype.open = function (room) {
    var self = this;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var url = scheme + window.location.host + room.signal_path + "?token=" + encodeURIComponent(room.token);
    self.me = room.participant;
    self.iceServers = room.ice_servers || [];
    self.socket = new WebSocket(url);
    self.socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      self.onMessage(message);
    };
    self.socket.onclose = function () {
      if (!self.ended) { self.end("lost"); }
    };
  };

  Call.prototype.send = function (message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  };

  Call.prototype.onMessage = function (message) {
    var self = this;
    if (message.type === "welcome") {
      self.participants = message.participants.slice();
      if (message.ice_servers) { self.iceServers = message.ice_servers; }
      self.offer().catch(function (err) { self.end("failed", String(err.message || err)); });
      self.changed();
    } else if (message.type === "answer") {
      self.pc.setRemoteDescription({ type: "answer", sdp: message.sdp }).catch(function (err) {
        self.end("failed", String(err.message || err));
      });
    } else if (message.type === "streams") {
      self.showStreams(message.streams);
    } else if (message.type === "joined") {
      if (self.participants.indexOf(message.participant) < 0) { self.participants.push(message.participant); }
      self.changed();
    } else if (message.type === "left") {
      if (message.participant === self.me) { self.end("ended"); return; }
      self.participants = self.participants.filter(function (p) { return p !== message.participant; });
      self.removeTile(message.participant);
      self.changed();
      self.emit("left", message.participant);
      if (self.options.endWhenAlone && self.metSomeone && self.participants.length === 0) {
        self.hangUp("ended");
      }
    } else if (message.type === "error") {
      self.emit("error", message.message);
    }
  };

  // The offer the relay expects: own audio + video first, then receive-only pairs.
  Call.prototype.offer = function () {
    var self = this;
    var pc = new RTCPeerConnection({ iceServers: self.iceServers, bundlePolicy: "max-bundle" });
    self.pc = pc;
    var audio = self.local.getAudioTracks()[0];
    var video = self.local.getVideoTracks()[0];
    self.pairs.push({
      audio: pc.addTransceiver(audio || "audio", { direction: audio ? "sendrecv" : "recvonly", streams: [self.local] }),
      video: pc.addTransceiver(video || "video", { direction: video ? "sendrecv" : "recvonly", streams: [self.local] })
    });
    for (var i = 0; i < RECEIVE_ONLY_PAIRS; i++) {
      self.pairs.push({
        audio: pc.addTransceiver("audio", { direction: "recvonly" }),
        video: pc.addTransceiver("video", { direction: "recvonly" })
      });
    }
    pc.onconnectionstatechange = function () {
      self.emit("connection", pc.connectionState);
      if (pc.connectionState === "failed") { self.end("lost"); }
    };
    return pc.createOffer().then(function (offer) {
      return pc.setLocalDescription(offer);
    }).then(function () {
      return gathered(pc);
    }).then(function () {
      self.send({ type: "offer", sdp: pc.localDescription.sdp });
      self.timer = window.setInterval(function () { self.measure(); }, STATS_MS);
    });
  };

  function gathered(pc) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") { resolve(); return; }
      var timer = window.setTimeout(resolve, GATHER_MS);
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") { window.clearTimeout(timer); resolve(); }
      });
    });
  }

  Call.prototype.pairOf = function (videoMid) {
    for (var i = 0; i < this.pairs.length; i++) {
      if (this.pairs[i].video.mid === videoMid) { return this.pairs[i]; }
    }
    return null;
  };

  Call.prototype.showStreams = function (streams) {
    var self = this;
    var shown = {};
    streams.forEach(function (stream) {
      var pair = self.pairOf(stream.video_mid);
      if (!pair) { return; }
      shown[stream.participant] = true;
      self.metSomeone = true;
      var tile = self.tiles[stream.participant];
      if (!tile) {
        tile = self.options.makeTile(stream.participant);
        self.tiles[stream.participant] = tile;
      }
      if (tile.mid !== stream.video_mid) {
        tile.mid = stream.video_mid;
        tile.video.srcObject = new MediaStream([pair.audio.receiver.track, pair.video.receiver.track]);
        var playing = tile.video.play();
        if (playing && playing.catch) { playing.catch(function () {}); }
      }
    });
    Object.keys(self.tiles).forEach(function (participant) {
      if (!shown[participant]) { self.removeTile(participant); }
    });
    self.changed();
  };

  Call.prototype.removeTile = function (participant) {
    var tile = this.tiles[participant];
    if (!tile) { return; }
    tile.video.srcObject = null;
    if (tile.element.parentNode) { tile.element.parentNode.removeChild(tile.element); }
    delete this.tiles[participant];
    delete this.quality[participant];
  };

  Call.prototype.changed = function () {
    this.emit("change", { participants: this.participants.slice(), shown: Object.keys(this.tiles) });
  };

  // What reaches this browser from each participant: round trip, loss, bitrate, frame rate.
  Call.prototype.measure = function () {
    var self = this;
    if (!self.pc || self.ended) { return Promise.resolve(); }
    return self.pc.getStats().then(function (report) {
      var rtt = null;
      var inbound = {};
      report.forEach(function (s) {
        if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" &&
            typeof s.currentRoundTripTime === "number") {
          rtt = s.currentRoundTripTime * 1000;
        } else if (s.type === "inbound-rtp" && s.kind === "video") {
          inbound[s.mid] = s;
        }
      });
      var now = Date.now();
      var figures = {};
      Object.keys(self.tiles).forEach(function (participant) {
        var s = inbound[self.tiles[participant].mid];
        if (!s) { return; }
        var before = self.previous[s.mid];
        var lost = s.packetsLost || 0;
        var received = s.packetsReceived || 0;
        var f = { rtt_ms: rtt, fps: s.framesPerSecond || 0, kbps: null, loss_pct: null,
                  frames_decoded: s.framesDecoded || 0 };
        if (before) {
          var seconds = (now - before.at) / 1000;
          var packets = (lost - before.lost) + (received - before.received);
          f.kbps = seconds > 0 ? ((s.bytesReceived - before.bytes) * 8) / 1000 / seconds : null;
          f.loss_pct = packets > 0 ? Math.max(0, 100 * (lost - before.lost) / packets) : 0;
        }
        f.weak = (rtt !== null && rtt > WEAK_RTT_MS) || (f.loss_pct !== null && f.loss_pct > WEAK_LOSS_PCT) ||
                 (before !== undefined && f.fps < WEAK_FPS);
        self.previous[s.mid] = { at: now, lost: lost, received: received, bytes: s.bytesReceived || 0 };
        figures[participant] = f;
      });
      self.quality = figures;
      var all = Object.keys(figures).map(function (p) { return figures[p]; });
      self.emit("quality", {
        participants: figures,
        weak: all.length > 0 && all.some(function (f) { return f.weak; }),
        rtt_ms: rtt
      });
    }).catch(function () {});
  };

  // For tests and the page: frames decoded from the others so far.
  Call.prototype.stats = function () {
    if (!this.pc) { return Promise.resolve({ framesDecoded: 0, inbound: [] }); }
    return this.pc.getStats().then(function (report) {
      var total = 0;
      var inbound = [];
      report.forEach(function (s) {
        if (s.type === "inbound-rtp" && s.kind === "video") {
          total += s.framesDecoded || 0;
          inbound.push({ mid: s.mid, framesDecoded: s.framesDecoded || 0, framesPerSecond: s.framesPerSecond || 0 });
        }
      });
      return { framesDecoded: total, inbound: inbound };
    });
  };

  Call.prototype.hangUp = function (reason) {
    this.send({ type: "leave" });
    this.end(reason || "hung_up");
  };

  Call.prototype.end = function (reason, detail) {
    if (this.ended) { return; }
    this.ended = true;
    window.clearInterval(this.timer);
    var socket = this.socket;
    if (socket) {
      socket.onclose = null;
      // Let a "leave" already queued go out before the socket closes.
      window.setTimeout(function () { try { socket.close(); } catch (e) { /* already closed */ } }, 200);
    }
    if (this.pc) { this.pc.close(); }
    if (this.local) { this.local.getTracks().forEach(function (t) { t.stop(); }); }
    var self = this;
    Object.keys(this.tiles).forEach(function (p) { self.removeTile(p); });
    this.emit("end", { reason: reason, detail: detail || "" });
  };

  window.VakiCall = {
    join: function (options) {
      if (window.vakiCall && !window.vakiCall.ended) { window.vakiCall.hangUp(); }
      var call = new Call(options);
      window.vakiCall = call;
      call.start();
      return call;
    }
  };
}());
