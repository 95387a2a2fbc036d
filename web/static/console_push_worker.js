// Web push for staff: an alert that escalates to "push" shows on the phone or desktop even
// when no console page is open; a tap opens the alert.
self.addEventListener("push", function (event) {
  var message = {};
  try { message = event.data ? event.data.json() : {}; } catch (e) { message = { title: event.data.text() }; }
  event.waitUntil(self.registration.showNotification(message.title || "Vaki", {
    body: message.body || "",
    tag: message.tag || undefined,
    requireInteraction: true,
    data: { url: message.url || "/console/" }
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "/console/";
  event.waitUntil(self.clients.matchAll({ type: "window" }).then(function (windows) {
    for (var i = 0; i < windows.length; i += 1) {
      if ("focus" in windows[i]) { windows[i].navigate(url); return windows[i].focus(); }
    }
    return self.clients.openWindow(url);
  }));
});
