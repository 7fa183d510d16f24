// Runs one widget plugin inside its sandboxed frame (opaque origin: it cannot read the app's
// cookies, storage or DOM). The dashboard sends {script, token, vars, isDark}; the script's
// body runs with `container`, `token` and `isDark` in scope. A throw, sync or async, replaces
// the panel with "⚠ Plugin error" and the message.
(function () {
  "use strict";
  var started = false;

  function report(kind, data) {
    parent.postMessage(Object.assign({ source: "codetrackr-widget", type: kind }, data), "*");
  }

  function showError(error) {
    var container = document.getElementById("container");
    var message = error && error.message ? error.message : String(error);
    var box = document.createElement("div");
    box.className = "plugin-error";
    box.setAttribute("role", "alert");
    var title = document.createElement("strong");
    title.textContent = "⚠ Plugin error";
    var detail = document.createElement("pre");
    detail.textContent = (error && error.name ? error.name + ": " : "") + message;
    box.append(title, detail);
    container.replaceChildren(box);
    report("error", { message: message });
    resized();
  }

  function resized() {
    report("height", { height: Math.ceil(document.documentElement.scrollHeight) });
  }

  window.addEventListener("error", function (event) {
    event.preventDefault();
    showError(event.error || event.message);
  });
  window.addEventListener("unhandledrejection", function (event) {
    event.preventDefault();
    showError(event.reason);
  });

  window.addEventListener("message", function (event) {
    if (event.source !== parent || started) return;
    var data = event.data || {};
    if (data.type !== "run") return;
    started = true;
    var root = document.documentElement;
    Object.keys(data.vars || {}).forEach(function (name) {
      if (/^--[a-z-]+$/.test(name)) root.style.setProperty(name, data.vars[name]);
    });
    root.style.colorScheme = data.isDark ? "dark" : "light";
    var container = document.getElementById("container");
    new ResizeObserver(resized).observe(document.body);
    try {
      var run = new Function("container", "token", "isDark", String(data.script || ""));
      var result = run(container, data.token, Boolean(data.isDark));
      if (result && typeof result.then === "function") result.then(null, showError);
    } catch (error) {
      showError(error);
    }
    resized();
  });
  report("ready", {});
})();
