// The tablet's page and its files, kept for when the server cannot be reached: a reload
// without a connection still shows the resident the page, with any call for help that waits
// and the number to call. Always the network first; the copy only when it fails. The API is
// never cached.
"use strict";
var CACHE = "vaki-tablet-v1";
var PAGE = "/tablet/";
var FILES = ["/static/tablet.css", "/static/call.css", "/static/call.js", "/static/tablet.js"];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(FILES.concat([PAGE])); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== CACHE; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) { return; }
  var isPage = url.pathname === PAGE;
  if (!isPage && FILES.indexOf(url.pathname) < 0) { return; }
  // The page is kept under one name whatever its query (?lang=...).
  var name = isPage ? PAGE : url.pathname;
  event.respondWith(fetch(event.request).then(function (response) {
    if (response.ok) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { return cache.put(name, copy); });
    }
    return response;
  }, function () {
    return caches.match(name).then(function (kept) { return kept || Response.error(); });
  }));
});
