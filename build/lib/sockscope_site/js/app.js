/* SockScope demo: page-load time and resource count. No network access. */
(function () {
  "use strict";
  function show() {
    var loaded = new Date();
    var el = document.getElementById("loaded-at");
    if (el) { el.textContent = loaded.toLocaleTimeString(); }
    var count = "unknown";
    if (window.performance && typeof performance.getEntriesByType === "function") {
      count = String(performance.getEntriesByType("resource").length);
    }
    var rc = document.getElementById("resource-count");
    if (rc) { rc.textContent = count; }
  }
  if (document.readyState === "complete") { show(); }
  else { window.addEventListener("load", show); }
})();
