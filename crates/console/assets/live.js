// sparkyard console: live updates. Every element marked `data-live` (with an id) is
// refreshed in place from a fresh render of the same page, every few seconds while the
// tab is visible. Without JavaScript the pages are complete; they just do not move.
(function () {
  "use strict";
  var body = document.body;
  var every = Number(body.getAttribute("data-live-interval") || "3000");
  var status = document.getElementById("live-status");
  if (!document.querySelector("[data-live][id]")) {
    if (status) status.hidden = true;
    return;
  }
  var busy = false;
  function show(text, cls) {
    if (!status) return;
    status.hidden = false;
    status.textContent = text;
    status.className = "live " + cls;
  }
  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "X-Console-Live": "1" },
      redirect: "manual"
    }).then(function (r) {
      if (r.type === "opaqueredirect" || r.status === 401 || r.status === 303) {
        show("Signed out", "off");
        clearInterval(timer);
        return null;
      }
      if (!r.ok && r.status !== 404 && r.status !== 403) throw new Error(String(r.status));
      return r.text();
    }).then(function (html) {
      if (html === null || html === undefined) return;
      var fresh = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live][id]").forEach(function (old) {
        // Never pull a form out from under someone typing in it.
        if (old.contains(document.activeElement) && document.activeElement !== body) return;
        var next = fresh.getElementById(old.id);
        if (next && next.outerHTML !== old.outerHTML) {
          old.replaceWith(document.importNode(next, true));
        }
      });
      document.dispatchEvent(new CustomEvent("console:refreshed"));
      show("Live · " + clock(), "on");
    }).catch(function () {
      show("Reconnecting…", "off");
    }).finally(function () {
      busy = false;
    });
  }
  show("Live", "on");
  var timer = setInterval(refresh, every);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
})();
