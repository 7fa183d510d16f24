// Widget plugins on the dashboard: each installed plugin's script runs in its own sandboxed
// frame (sandbox="allow-scripts", no allow-same-origin: an opaque origin that cannot read the
// app's cookies, storage or DOM), given the container, the user's token, the theme's variables
// and isDark. A panel's ✕ uninstalls the plugin.
import { api, el, session } from "./core.js";
import { THEME_VARIABLES, isDarkNow } from "./theme.js";

const frames = new Map(); // contentWindow -> {frame, panel, script}
let givenToken = ""; // the token the frames were last given

export function themeVariables() {
  const style = getComputedStyle(document.documentElement);
  return Object.fromEntries(THEME_VARIABLES.map((name) => [name, style.getPropertyValue(name).trim()]));
}

export function isDark() {
  return isDarkNow();
}

window.addEventListener("message", async (event) => {
  const entry = frames.get(event.source);
  const data = event.data || {};
  if (!entry || data.source !== "codetrackr-widget") return;
  if (data.type === "ready") {
    const who = await session();
    givenToken = who ? who.token : "";
    event.source.postMessage(
      { type: "run", script: entry.script, token: who ? who.token : "", vars: themeVariables(), isDark: isDark() },
      "*", // the frame's origin is opaque: "*" is the only target that reaches it
    );
  } else if (data.type === "height") {
    entry.frame.style.height = `${Math.min(Math.max(Number(data.height) || 0, 40), 800)}px`;
  } else if (data.type === "error") {
    entry.panel.dataset.error = "1";
  }
});

/** Append a panel running `script` in a sandboxed frame to `target`; `onRemove` for its ✕
 * button (optional). */
export function mountWidget(target, { name, title, icon, script, onRemove }) {
  const frame = el("iframe", {
    src: "/widget-frame",
    sandbox: "allow-scripts",
    title: `${title} widget`,
    class: "widget-frame",
    "data-plugin": name,
    referrerpolicy: "no-referrer",
  });
  const panel = el(
    "section",
    { class: "card plugin-panel", "data-plugin": name, "aria-label": `${title} plugin` },
    el(
      "div",
      { class: "spread" },
      el("h2", {}, `${icon || "🔌"} ${title}`),
      onRemove ? el("button", { type: "button", class: "linkish", "aria-label": `Remove ${title}`, onclick: () => { frames.delete(frame.contentWindow); onRemove(panel); } }, "✕") : null,
    ),
    frame,
  );
  target.append(panel);
  // The frame's window object stays the same through its navigation to /widget-frame.
  frames.set(frame.contentWindow, { frame, panel, script });
  return panel;
}

// A widget keeps the token it was given; access tokens live 15 minutes. When the page's token
// is renewed, each frame is reloaded, and so run again with the new one.
setInterval(async () => {
  if (!frames.size) return;
  const who = await session();
  if (!who || !givenToken || who.token === givenToken) return;
  givenToken = who.token;
  for (const { frame } of frames.values()) frame.src = "/widget-frame";
}, 60_000);

// A new theme: run each widget again, so it gets the new variables and isDark.
window.addEventListener("ct-theme", () => {
  for (const { frame } of frames.values()) frame.src = "/widget-frame";
});

/** Every installed plugin with a widget script, as panels in `target`. */
export async function loadWidgets(target) {
  const { plugins } = await api("/api/v1/store/installed");
  const widgets = plugins.filter((p) => p.script && !p.suspended);
  target.hidden = widgets.length === 0;
  const grid = target.querySelector(".widgets");
  grid.replaceChildren();
  for (const plugin of widgets) {
    mountWidget(grid, {
      name: plugin.name,
      title: plugin.display_name,
      icon: plugin.icon,
      script: plugin.script,
      onRemove: async (node) => {
        await api(`/api/v1/store/uninstall/${encodeURIComponent(plugin.name)}`, { method: "DELETE" });
        node.remove();
        target.hidden = grid.children.length === 0;
      },
    });
  }
}
