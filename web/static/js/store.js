// The plugin store: browse and search, install and uninstall, reviews, reports, publishing.
import { $, announce, api, el, fill, session, setupNav, toSignIn } from "./core.js";
import { setupThemes } from "./themes-ui.js";

let signedIn = false;
let me = "";
let installed = new Set();
let current = null;

async function loadInstalled() {
  if (!signedIn) return;
  const { plugins } = await api("/api/v1/store/installed");
  installed = new Set(plugins.map((p) => p.name));
}

function stars(rating) {
  return rating === null || rating === undefined ? "no reviews" : `${rating.toFixed(1)} ★`;
}

function card(p) {
  const isIn = installed.has(p.name);
  return el(
    "article",
    { class: "card", "data-plugin": p.name },
    el("h2", {}, `${p.icon || "🔌"} ${p.display_name}`),
    el("p", { class: "muted" }, p.description || ""),
    el("p", { class: "dim" }, `v${p.version} · by ${p.author || "unknown"} · ${p.install_count.toLocaleString("en-US")} installs · ${stars(p.rating)}`),
    el(
      "div",
      { class: "row" },
      el("button", { type: "button", class: isIn ? "" : "primary", onclick: () => toggle(p, isIn), "aria-label": `${isIn ? "Uninstall" : "Install"} ${p.display_name}` }, isIn ? "Uninstall" : "Install"),
      el("button", { type: "button", onclick: () => openDetail(p.name), "aria-label": `Details of ${p.display_name}` }, "Details"),
    ),
  );
}

async function search() {
  const params = new URLSearchParams({ sort: $("#store-sort").value, per_page: 30 });
  const q = $("#store-q").value.trim();
  if (q) params.set("q", q);
  const response = await fetch(`/api/v1/store?${params}`);
  const body = await response.json();
  fill("#store-list", body.plugins.length ? body.plugins.map(card) : el("p", { class: "empty" }, "No plugin matches."));
  announce("#store-message", `${body.total} plugin${body.total === 1 ? "" : "s"}`);
  document.body.dataset.loaded = String(Date.now());
}

async function toggle(p, isIn) {
  if (!signedIn) return toSignIn();
  try {
    if (isIn) await api(`/api/v1/store/uninstall/${encodeURIComponent(p.name)}`, { method: "DELETE" });
    else await api(`/api/v1/store/install/${encodeURIComponent(p.name)}`, { method: "POST" });
    await loadInstalled();
    announce("#store-message", `${p.display_name} ${isIn ? "uninstalled" : "installed: it is on your dashboard"}.`);
    await search();
  } catch (err) {
    announce("#store-message", err.message, { error: true });
  }
}

async function openDetail(name) {
  const response = await fetch(`/api/v1/store/${encodeURIComponent(name)}`);
  const { plugin } = await response.json();
  current = plugin;
  $("#detail-heading").textContent = `${plugin.icon || "🔌"} ${plugin.display_name}`;
  $("#detail-description").textContent = plugin.description || "";
  $("#detail-meta").textContent = `v${plugin.version} · ${plugin.widget_type || "widget"} · ${stars(plugin.rating)}`;
  const reviews = await (await fetch(`/api/v1/store/${encodeURIComponent(name)}/reviews`)).json();
  fill(
    "#detail-reviews",
    reviews.reviews.length
      ? el("ul", { class: "list-plain" }, reviews.reviews.map((r) => el("li", {}, el("strong", {}, `${r.rating} ★ `), el("span", {}, r.comment || ""), el("span", { class: "dim" }, ` · ${r.username}`))))
      : el("p", { class: "empty" }, "No reviews yet."),
  );
  // Authors do not review their own plugins.
  $("#review-form").hidden = !signedIn || plugin.author === me;
  $("#report-form").hidden = !signedIn;
  announce("#detail-message", "");
  $("#plugin-detail").hidden = false;
  $("#detail-heading").setAttribute("tabindex", "-1");
  $("#detail-heading").focus();
}

async function review(event) {
  event.preventDefault();
  try {
    await api(`/api/v1/store/${encodeURIComponent(current.name)}/reviews`, {
      method: "POST",
      body: { rating: Number($("#review-rating").value), comment: $("#review-comment").value },
    });
    await openDetail(current.name);
    announce("#detail-message", "Thanks for your review.");
  } catch (err) {
    announce("#detail-message", err.message, { error: true });
  }
}

async function report(event) {
  event.preventDefault();
  try {
    await api(`/api/v1/store/${encodeURIComponent(current.name)}/report`, { method: "POST", body: { reason: $("#report-reason").value } });
    $("#report-reason").value = "";
    announce("#detail-message", "Reported. Thank you.");
  } catch (err) {
    announce("#detail-message", err.message, { error: true });
  }
}

async function publish(event) {
  event.preventDefault();
  const body = {
    name: $("#pub-name").value.trim(),
    display_name: $("#pub-display").value.trim(),
    description: $("#pub-description").value,
    version: $("#pub-version").value.trim() || "0.1.0",
    icon: $("#pub-icon").value.trim() || "🔌",
    widget_type: $("#pub-type").value,
    script: $("#pub-script").value,
  };
  if ($("#pub-server").value.trim()) body.server_script = $("#pub-server").value;
  try {
    const { plugin } = await api("/api/v1/store/publish", { method: "POST", body });
    announce("#publish-message", `Published ${plugin.display_name} v${plugin.version}.`);
    await search();
  } catch (err) {
    announce("#publish-message", err.message, { error: true });
  }
}

async function main() {
  const who = (await setupNav()) && (await session());
  signedIn = Boolean(who);
  me = who ? who.username : "";
  const params = new URLSearchParams(location.search);
  $("#store-q").value = params.get("q") || "";
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  $("#close-detail").addEventListener("click", () => { $("#plugin-detail").hidden = true; });
  $("#review-form").addEventListener("submit", review);
  $("#report-form").addEventListener("submit", report);
  $("#publish-form").addEventListener("submit", publish);
  $("#open-publish").addEventListener("click", () => {
    if (!signedIn) return toSignIn();
    $("#publish").hidden = false;
    $("#pub-name").focus();
  });
  let themesReady = false;
  const showTab = async (tab) => {
    for (const button of document.querySelectorAll("[data-tab]")) {
      button.setAttribute("aria-pressed", String(button.dataset.tab === tab));
    }
    $("#tab-plugins").hidden = tab !== "plugins";
    $("#tab-themes").hidden = tab !== "themes";
    const url = new URL(location.href);
    url.searchParams.set("tab", tab);
    history.replaceState(null, "", url);
    if (tab === "themes" && !themesReady) {
      if (!signedIn) return toSignIn();
      themesReady = true;
      await setupThemes();
      document.body.dataset.themes = "ready";
    }
  };
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  await loadInstalled();
  await search();
  await showTab(params.get("tab") === "themes" ? "themes" : "plugins");
}

main();
