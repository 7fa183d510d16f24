// The store's Themes tab: installed themes (apply, uninstall, back to the default), the theme
// store (install), the CSS variable editor (live preview, Save, Reset, Export, Import) and
// publishing the current variables as a theme. See docs/themes.md for the API.
import { $, announce, api, download, el, fill } from "./core.js";
import { THEME_VARIABLES, isDarkNow, paintTheme } from "./theme.js";

let active = null;
let installedIds = new Set();

function swatch(variables) {
  return el(
    "div",
    { class: "swatch", "aria-hidden": "true" },
    ["--bg", "--bg-card", "--accent", "--text-main"].map((name) => {
      const chip = el("span");
      chip.style.background = variables[name] || "transparent";
      return chip;
    }),
  );
}

async function apply(body, message) {
  try {
    active = await api("/api/v1/themes/apply", { method: "POST", body });
    paintTheme(active);
    showVariables();
    await loadInstalled();
    announce("#vars-message", message);
  } catch (err) {
    announce("#vars-message", err.message, { error: true });
  }
}

async function loadInstalled() {
  const { themes } = await api("/api/v1/themes/installed");
  installedIds = new Set(themes.map((t) => t.id));
  const isDefault = !active || !active.active_theme_id;
  fill(
    "#installed-themes",
    el("button", { type: "button", "aria-pressed": String(isDefault), onclick: () => apply({ theme_id: null }, "Default theme applied.") }, "Default"),
    themes.map((t) =>
      el(
        "div",
        { class: "row installed-theme", "data-theme": t.name },
        swatch(t.variables),
        el("button", { type: "button", "aria-pressed": String(Boolean(t.active)), "aria-label": `Apply ${t.display_name}`, onclick: () => apply({ theme_id: t.id }, `${t.display_name} applied.`) }, t.display_name),
        el("button", {
          type: "button",
          class: "linkish",
          "aria-label": `Uninstall ${t.display_name}`,
          onclick: async () => {
            await api(`/api/v1/themes/uninstall/${t.id}`, { method: "DELETE" });
            active = await api("/api/v1/themes/active");
            paintTheme(active);
            await Promise.all([loadInstalled(), loadStore()]);
          },
        }, "✕"),
      ),
    ),
  );
}

async function loadStore() {
  const response = await fetch("/api/v1/themes?sort=installs&per_page=30");
  const { themes } = await response.json();
  fill(
    "#theme-list",
    themes.length
      ? themes.map((t) =>
          el(
            "article",
            { class: "card", "data-theme": t.name },
            swatch(t.variables),
            el("h3", {}, `${t.icon || "🎨"} ${t.display_name}`),
            el("p", { class: "muted" }, t.description || ""),
            el("p", { class: "dim" }, `v${t.version} · by ${t.author || "unknown"} · ${t.install_count} installs`),
            installedIds.has(t.id)
              ? el("span", { class: "tag" }, "installed")
              : el("button", {
                  type: "button",
                  "aria-label": `Install ${t.display_name}`,
                  onclick: async () => {
                    await api(`/api/v1/themes/install/${t.id}`, { method: "POST" });
                    await loadInstalled();
                    await loadStore();
                  },
                }, "Install"),
          ),
        )
      : el("p", { class: "empty" }, "No themes published yet."),
  );
}

function current(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function preview(name, value) {
  const root = document.documentElement;
  const base = (active && active.variables && active.variables[name]) || "";
  if (value) root.style.setProperty(name, value);
  else if (base) root.style.setProperty(name, base);
  else root.style.removeProperty(name);
}

function showVariables() {
  const overrides = (active && active.custom_vars) || {};
  fill(
    "#vars",
    THEME_VARIABLES.map((name) => {
      const id = `var-${name.slice(2)}`;
      const text = el("input", { type: "text", id, "data-var": name, value: overrides[name] || "", placeholder: current(name) });
      const color = el("input", { type: "color", "aria-label": `${name} colour picker`, tabindex: "-1" });
      const sync = () => {
        const shown = text.value.trim() || current(name);
        if (/^#[0-9a-fA-F]{6}$/.test(shown)) color.value = shown;
      };
      sync();
      text.addEventListener("input", () => {
        preview(name, text.value.trim());
        sync();
      });
      color.addEventListener("input", () => {
        text.value = color.value;
        preview(name, color.value);
      });
      return el("div", { class: "field var-field" }, el("label", { for: id }, name), el("div", { class: "row" }, color, text));
    }),
  );
}

function editedVariables() {
  const out = {};
  for (const input of document.querySelectorAll("#vars input[data-var]")) {
    if (input.value.trim()) out[input.dataset.var] = input.value.trim();
  }
  return out;
}

async function importFile() {
  const file = $("#theme-import").files[0];
  if (!file) return;
  try {
    const text = await file.text();
    const response = await fetch("/api/v1/themes/import", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: text,
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : "not a theme file");
    for (const input of document.querySelectorAll("#vars input[data-var]")) {
      const value = body.variables[input.dataset.var];
      if (value !== undefined) {
        input.value = value;
        preview(input.dataset.var, value);
      }
    }
    const ignored = body.ignored && body.ignored.length ? ` Ignored: ${body.ignored.join(", ")}.` : "";
    announce("#vars-message", `Imported ${file.name}: preview it, then Save.${ignored}`);
  } catch (err) {
    announce("#vars-message", err.message, { error: true });
  } finally {
    $("#theme-import").value = "";
  }
}

async function publishTheme(event) {
  event.preventDefault();
  const variables = Object.fromEntries(THEME_VARIABLES.map((name) => [name, current(name)]).filter(([, v]) => v));
  try {
    const { theme } = await api("/api/v1/themes/publish", {
      method: "POST",
      body: {
        name: $("#theme-name").value.trim(),
        display_name: $("#theme-display").value.trim(),
        description: $("#theme-description").value,
        variables,
      },
    });
    announce("#theme-publish-message", `Published ${theme.display_name}.`);
    await loadStore();
  } catch (err) {
    announce("#theme-publish-message", err.message, { error: true });
  }
}

export async function setupThemes() {
  active = await api("/api/v1/themes/active");
  showVariables();
  $("#vars-form").addEventListener("submit", (event) => {
    event.preventDefault();
    apply({ custom_vars: editedVariables() }, "Saved.");
  });
  $("#vars-reset").addEventListener("click", () => apply({ custom_vars: {} }, "Overrides cleared."));
  $("#theme-export").addEventListener("click", async () => {
    try {
      await download(`/api/v1/themes/export?mode=${isDarkNow() ? "dark" : "light"}`);
    } catch (err) {
      announce("#vars-message", err.message, { error: true });
    }
  });
  $("#theme-import").addEventListener("change", importFile);
  $("#theme-publish-form").addEventListener("submit", publishTheme);
  await loadInstalled();
  await loadStore();
}
