// Shared by every page: the session (access token in sessionStorage, refresh token in an
// HttpOnly cookie the page never sees), authenticated fetches, and a DOM builder that only ever
// writes user text through textContent.

import { paintCachedTheme, paintTheme } from "./theme.js";

const ACCESS_KEY = "ct.access";
paintCachedTheme();

export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

async function sessionPost(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": cookie("ct_csrf") },
    body: JSON.stringify(body || {}),
  });
  const data = await response.json();
  if (!response.ok) throw new ApiFailure(response.status, data);
  return data;
}

function remember(answer) {
  if (!answer.signed_in) {
    sessionStorage.removeItem(ACCESS_KEY);
    return null;
  }
  const held = {
    token: answer.token,
    username: answer.username,
    userId: answer.user_id,
    expiresAt: Date.now() + answer.expires_in * 1000,
  };
  sessionStorage.setItem(ACCESS_KEY, JSON.stringify(held));
  return held;
}

/** Turn a login answered by the JSON API into the cookie session (the refresh token is rotated
 * into the HttpOnly cookie at once; the page keeps only the access token). */
export async function adoptLogin(refreshToken) {
  return remember(await sessionPost("/web/session", { refresh_token: refreshToken }));
}

function held() {
  try {
    const value = JSON.parse(sessionStorage.getItem(ACCESS_KEY) || "null");
    return value && value.expiresAt - Date.now() > 60_000 ? value : null;
  } catch {
    return null;
  }
}

/** The signed-in user's {token, username, userId}, or null. Refreshes through the cookie when
 * the access token is (nearly) expired; refreshes are serialized across tabs with a Web Lock,
 * since presenting one refresh token twice ends the session. */
export async function session({ fresh = false } = {}) {
  if (!fresh) {
    const current = held();
    if (current) return current;
  }
  const run = async () => {
    if (!fresh) {
      const current = held();
      if (current) return current;
    }
    return remember(await sessionPost("/web/session/refresh"));
  };
  return navigator.locks ? navigator.locks.request("ct-refresh", run) : run();
}

export async function signOut() {
  sessionStorage.removeItem(ACCESS_KEY);
  paintTheme(null);
  await sessionPost("/web/session/logout");
}

export class ApiFailure extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed (${status})`);
    this.status = status;
    this.code = error.code || "";
    this.details = error.details || {};
  }
}

/** A JSON API call. `auth`: send the access token (and go to sign-in when there is none).
 * `raw`: answer the Response itself (`accept`: the media type asked for). */
export async function api(path, { method = "GET", body, auth = true, raw = false, accept } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (accept) headers.Accept = accept;
  if (auth) {
    const who = await session();
    if (!who) {
      toSignIn();
      throw new ApiFailure(401, { error: { message: "signed out" } });
    }
    headers.Authorization = "Bearer " + who.token;
  }
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
  });
  if (raw) return response;
  const text = await response.text();
  const data = text ? JSON.parse(text) : {};
  if (!response.ok) {
    if (response.status === 401 && auth) {
      sessionStorage.removeItem(ACCESS_KEY);
      toSignIn();
    }
    throw new ApiFailure(response.status, data);
  }
  return data;
}

export function toSignIn() {
  const next = location.pathname + location.search;
  location.assign("/signin?next=" + encodeURIComponent(next));
}

/** Build an element: el("li", {class: "x", onclick: f}, "text", child...). Strings become text
 * nodes, never markup. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function setText(selector, value) {
  const node = typeof selector === "string" ? $(selector) : selector;
  if (node) node.textContent = value;
}

export function fill(selector, ...children) {
  const node = typeof selector === "string" ? $(selector) : selector;
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  return node;
}

/** "3h 25m", "12m", "45s", "0m". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h) return `${h.toLocaleString("en-US")}h ${m}m`;
  if (m) return `${m}m`;
  return s ? `${s}s` : "0m";
}

export function plural(n, word) {
  return `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;
}

/** Today's date (YYYY-MM-DD) in an IANA timezone. */
export function todayIn(timezone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: timezone || "UTC" }).format(new Date());
}

export function addDays(isoDate, days) {
  const d = new Date(isoDate + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export function addMonths(isoDate, months) {
  const d = new Date(isoDate + "T00:00:00Z");
  d.setUTCMonth(d.getUTCMonth() + months);
  return d.toISOString().slice(0, 10);
}

/** The ISO week id (2026-W47) of a date. */
export function isoWeek(isoDate) {
  const d = new Date(isoDate + "T00:00:00Z");
  const day = (d.getUTCDay() + 6) % 7;
  d.setUTCDate(d.getUTCDate() - day + 3);
  const year = d.getUTCFullYear();
  const jan4 = new Date(Date.UTC(year, 0, 4));
  const week = 1 + Math.round(((d - jan4) / 86400000 - 3 + ((jan4.getUTCDay() + 6) % 7)) / 7);
  return `${year}-W${String(week).padStart(2, "0")}`;
}

export function announce(target, message, { error = false } = {}) {
  const node = typeof target === "string" ? $(target) : target;
  if (!node) return;
  node.textContent = message;
  node.classList.toggle("error", error);
}

/** Mark the current page in the navigation and show sign-in or sign-out. */
export async function setupNav() {
  const page = document.body.dataset.page;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === page) link.setAttribute("aria-current", "page");
  }
  const who = await session();
  const signin = $("#nav-signin");
  const signout = $("#nav-signout");
  if (who) {
    // The user's theme (themes.md); a page works on the defaults if it cannot be read.
    api("/api/v1/themes/active").then((active) => paintTheme(active), () => {});
    signin.hidden = true;
    signout.hidden = false;
    signout.addEventListener("click", async () => {
      await signOut();
      location.assign("/");
    });
  }
  return who;
}

export function providers() {
  const meta = document.querySelector('meta[name="ct-oauth"]');
  return (meta ? meta.content : "").split(" ").filter(Boolean);
}

/** Download an authenticated file without putting a token in a URL. */
export async function download(path) {
  const response = await api(path, { raw: true });
  if (!response.ok) throw new ApiFailure(response.status, await response.json());
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: match ? match[1] : "codetrackr-export" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
