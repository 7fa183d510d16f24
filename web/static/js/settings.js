// Settings: profile and privacy, API keys, editor setup, sessions, badges, export, erasure.
import { $, announce, api, download, el, fill, session, setText, setupNav, signOut, toSignIn } from "./core.js";

const FLAGS = [
  "is_public", "show_in_leaderboard", "profile_show_activity", "profile_show_streak",
  "profile_show_languages", "profile_show_projects", "profile_show_plugins", "available_for_hire",
];
const BADGES = [
  ["coding-time", "code time, last 7 days"],
  ["today", "today"],
  ["streak", "current streak"],
  ["top-language", "top language"],
  ["all-time", "all time"],
  ["heatmap", "activity heatmap"],
];
let me = null;

function timezones(current) {
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const all = Array.from(new Set(["UTC", ...zones, current].filter(Boolean))).sort();
  fill("#f-timezone", all.map((z) => el("option", { value: z }, z)));
  $("#f-timezone").value = current || "UTC";
}

function showProfile() {
  $("#f-username").value = me.username;
  $("#f-display-name").value = me.display_name || "";
  $("#f-website").value = me.website || "";
  $("#f-country").value = me.country || "";
  $("#f-bio").value = me.bio || "";
  $("#f-timeout").value = me.timeout ?? "";
  $("#f-writes-only").checked = Boolean(me.writes_only);
  timezones(me.timezone);
  for (const flag of FLAGS) $(`#p-${flag}`).checked = Boolean(me[flag]);
  const link = $("#public-link");
  link.href = `/u/${encodeURIComponent(me.username)}`;
  link.textContent = `/u/${me.username}`;
}

async function saveProfile(event) {
  event.preventDefault();
  const body = {
    username: $("#f-username").value.trim(),
    display_name: $("#f-display-name").value.trim(),
    website: $("#f-website").value.trim(),
    country: $("#f-country").value.trim().toUpperCase(),
    bio: $("#f-bio").value,
    timezone: $("#f-timezone").value,
    writes_only: $("#f-writes-only").checked,
  };
  const timeout = $("#f-timeout").value.trim();
  if (timeout) body.timeout = Number(timeout);
  for (const flag of FLAGS) body[flag] = $(`#p-${flag}`).checked;
  try {
    await api("/api/v1/user/profile/update", { method: "POST", body });
    me = await api("/api/v1/user/me");
    showProfile();
    showBadges();
    announce("#profile-message", "Saved.");
  } catch (err) {
    const fields = err.details && err.details.fields ? Object.entries(err.details.fields).map(([k, v]) => `${k}: ${v}`).join("; ") : "";
    announce("#profile-message", `${err.message}${fields ? ` (${fields})` : ""}`, { error: true });
  }
}

function editorConfig(key) {
  const base = `${location.origin}/api/v1`;
  setText("#legacy-url", `${base}/users/current/heartbeats.bulk`);
  setText("#wakatime-cfg", `[settings]\napi_url = ${base}\napi_key = ${key || "<your API key>"}\n`);
  $("#editor-key-hint").hidden = Boolean(key);
}

async function loadKeys() {
  const { keys } = await api("/api/v1/keys");
  if (!keys.length) {
    fill("#keys", el("p", { class: "empty" }, "No API keys yet."));
    return;
  }
  fill(
    "#keys",
    el(
      "ul",
      { class: "list-plain", "aria-label": "Your API keys" },
      keys.map((k) =>
        el(
          "li",
          { class: "spread", "data-key": k.id },
          el(
            "div",
            {},
            el("strong", {}, k.name || "unnamed"), " ",
            el("span", { class: "mono dim" }, `${k.key_prefix}…`), " ",
            k.read_only ? el("span", { class: "tag" }, "read-only") : null,
            el("div", { class: "dim" }, `created ${k.created_at.slice(0, 10)} · ${k.last_used_at ? `last used ${k.last_used_at.slice(0, 13).replace("T", " ")}h` : "never used"}`),
          ),
          el("button", { type: "button", class: "danger", "aria-label": `Revoke key ${k.name || k.key_prefix}`, onclick: () => revokeKey(k) }, "Revoke"),
        ),
      ),
    ),
  );
}

async function createKey(event) {
  event.preventDefault();
  try {
    const { key } = await api("/api/v1/keys", {
      method: "POST",
      body: { name: $("#key-name").value.trim() || "editor", read_only: $("#key-read-only").checked },
    });
    setText("#new-key-value", key.key);
    $("#new-key").hidden = false;
    if (!key.read_only) editorConfig(key.key);
    $("#key-name").value = "";
    announce("#key-message", `Key ${key.name} created.`);
    await loadKeys();
  } catch (err) {
    announce("#key-message", err.message, { error: true });
  }
}

async function revokeKey(key) {
  try {
    await api(`/api/v1/keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
    announce("#key-message", `Key ${key.name || key.key_prefix} revoked.`);
    await loadKeys();
    $("#key-name").focus();
  } catch (err) {
    announce("#key-message", err.message, { error: true });
  }
}

async function loadSessions() {
  const { sessions } = await api("/api/v1/user/sessions");
  fill(
    "#sessions",
    el(
      "ul",
      { class: "list-plain" },
      sessions.map((s) =>
        el(
          "li",
          { class: "spread" },
          el(
            "div",
            {},
            el("div", {}, s.device || "unknown device", s.current ? el("span", { class: "tag" }, " this device") : null),
            el("div", { class: "dim" }, `${s.method} · signed in ${s.created_at.slice(0, 16).replace("T", " ")} UTC`),
          ),
          el("button", { type: "button", onclick: () => revokeSession(s) }, s.current ? "Sign out" : "Sign out this device"),
        ),
      ),
    ),
  );
}

async function revokeSession(s) {
  if (s.current) {
    await signOut();
    location.assign("/");
    return;
  }
  await api(`/api/v1/user/sessions/${encodeURIComponent(s.id)}`, { method: "DELETE" });
  await loadSessions();
}

function copyButton(text, label) {
  return el("button", {
    type: "button",
    "aria-label": label,
    onclick: async (event) => {
      try {
        await navigator.clipboard.writeText(text);
        event.target.textContent = "Copied";
      } catch {
        event.target.textContent = "Select and copy";
      }
    },
  }, "Copy");
}

function showBadges() {
  $("#badges-private").hidden = me.is_public;
  const base = `${location.origin}/badge/${encodeURIComponent(me.username)}`;
  fill(
    "#badges",
    el(
      "ul",
      { class: "list-plain" },
      BADGES.map(([metric, label]) => {
        const snippet = `![${label}](${base}/${metric})`;
        return el(
          "li",
          {},
          el("div", { class: "spread" }, el("span", {}, label), copyButton(snippet, `Copy the ${label} badge snippet`)),
          el("div", { class: "badge-preview" }, el("img", { src: `/badge/${encodeURIComponent(me.username)}/${metric}`, alt: `${label} badge` })),
          el("pre", {}, snippet),
        );
      }),
    ),
  );
}

async function exportFile(path) {
  announce("#export-message", "Preparing the download…");
  try {
    await download(path);
    announce("#export-message", "Downloaded.");
  } catch (err) {
    announce("#export-message", err.message, { error: true });
  }
}

async function erase(event) {
  event.preventDefault();
  const start = $("#erase-start").value;
  const end = $("#erase-end").value;
  if (!start || !end || end < start) {
    announce("#erase-message", "Pick a start day on or before the end day.", { error: true });
    return;
  }
  try {
    await api("/api/v1/user/data/delete", { method: "POST", body: { start, end } });
    announce("#erase-message", `Activity from ${start} to ${end} is being deleted.`);
  } catch (err) {
    announce("#erase-message", err.message, { error: true });
  }
}

async function deleteAccount(event) {
  event.preventDefault();
  const confirm = $("#delete-confirm").value.trim();
  if (confirm !== me.username) {
    announce("#delete-message", `Type ${me.username} to confirm.`, { error: true });
    return;
  }
  try {
    await api("/api/v1/user/me", { method: "DELETE", body: { confirm } });
    await signOut();
    location.assign("/");
  } catch (err) {
    announce("#delete-message", err.message, { error: true });
  }
}

async function main() {
  if (!(await setupNav()) || !(await session())) {
    toSignIn();
    return;
  }
  me = await api("/api/v1/user/me");
  showProfile();
  editorConfig("");
  showBadges();
  $("#profile-form").addEventListener("submit", saveProfile);
  $("#key-form").addEventListener("submit", createKey);
  $("#export-json").addEventListener("click", () => exportFile("/api/v1/export/json"));
  $("#export-csv").addEventListener("click", () => exportFile("/api/v1/export/csv"));
  $("#export-all").addEventListener("click", () => exportFile("/api/v1/users/current/export"));
  $("#erase-form").addEventListener("submit", erase);
  $("#delete-form").addEventListener("submit", deleteAccount);
  await Promise.all([loadKeys(), loadSessions()]);
  document.body.dataset.loaded = "1";
}

main();
