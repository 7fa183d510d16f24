// The signed-in user's theme: the ten variables set on the root element (the stylesheet's own
// light and dark values are the defaults under them) and the theme's raw CSS as a constructed
// stylesheet. The last theme seen is kept in localStorage (it is not a secret) so a page paints
// with it before the API answers.
export const THEME_VARIABLES = [
  "--bg", "--bg-card", "--bg-input", "--bg-hover", "--text-main",
  "--text-muted", "--text-dark", "--border", "--border-focus", "--accent",
];
const CACHE_KEY = "ct.theme";
const sheet = typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype ? new CSSStyleSheet() : null;

/** Paint `active` ({variables, custom_css, is_dark}, as GET /api/v1/themes/active answers). */
export function paintTheme(active, { remember = true } = {}) {
  const root = document.documentElement;
  for (const name of THEME_VARIABLES) root.style.removeProperty(name);
  for (const [name, value] of Object.entries((active && active.variables) || {})) {
    if (THEME_VARIABLES.includes(name)) root.style.setProperty(name, value);
  }
  if (sheet) {
    try {
      sheet.replaceSync((active && active.custom_css) || "");
    } catch {
      sheet.replaceSync("");
    }
    if (!document.adoptedStyleSheets.includes(sheet)) document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  }
  const dark = active ? active.is_dark : null;
  if (dark === true || dark === false) {
    root.dataset.themeDark = String(dark);
    root.style.colorScheme = dark ? "dark" : "light";
  } else {
    delete root.dataset.themeDark;
    root.style.removeProperty("color-scheme");
  }
  window.dispatchEvent(new CustomEvent("ct-theme"));
  if (remember) {
    if (active) localStorage.setItem(CACHE_KEY, JSON.stringify({ variables: active.variables, custom_css: active.custom_css, is_dark: active.is_dark }));
    else localStorage.removeItem(CACHE_KEY);
  }
}

/** Whether the page is dark now: the theme says so, else the system's scheme. */
export function isDarkNow() {
  const said = document.documentElement.dataset.themeDark;
  if (said === "true" || said === "false") return said === "true";
  return matchMedia("(prefers-color-scheme: dark)").matches;
}

export function paintCachedTheme() {
  try {
    const cached = JSON.parse(localStorage.getItem(CACHE_KEY) || "null");
    if (cached) paintTheme(cached, { remember: false });
  } catch {
    localStorage.removeItem(CACHE_KEY);
  }
}

// Another tab applied a theme: repaint this one too, without a reload.
window.addEventListener("storage", (event) => {
  if (event.key !== CACHE_KEY) return;
  if (event.newValue) paintCachedTheme();
  else paintTheme(null, { remember: false });
});
