// The dashboard: totals, the daily chart, every breakdown, the year's heatmap, streaks; a range
// picker; live updates over the WebSocket (re-read from the API on each event, as docs/live.md
// advises, so the page always shows what the API answers).
import { barList, dailyChart, heatmap } from "./charts.js";
import { $, addDays, addMonths, announce, api, duration, fill, plural, setText, setupNav, todayIn, toSignIn } from "./core.js";
import { LiveSocket } from "./live.js";
import { loadWidgets } from "./widgets.js";

const DIMENSIONS = ["language", "project", "editor", "os", "machine", "branch"];
const RANGES = ["today", "7d", "30d", "6m", "year", "all", "custom"];
const state = { me: null, range: "7d", custom: null, loads: 0, year: null };
const ME_KEY = "ct.me"; // {id, timezone} of the user as this tab last read them

function span() {
  const today = todayIn(state.me.timezone);
  switch (state.range) {
    case "today": return { start: today, end: today };
    case "7d": return { start: addDays(today, -6), end: today };
    case "30d": return { start: addDays(today, -29), end: today };
    case "6m": return { start: addDays(addMonths(today, -6), 1), end: today };
    case "year": return { start: addDays(today, -364), end: today };
    case "custom": return state.custom || { start: addDays(today, -6), end: today };
    default: return null; // all
  }
}

function query() {
  const s = span();
  return s ? `start=${s.start}&end=${s.end}` : "range=all";
}

// The year's days (the heatmap) also answer the daily chart of every range inside the last 365
// days, so a first paint reads them once. Kept until the data may have changed (a live event).
function yearDays() {
  if (!state.year) {
    const today = todayIn(state.me.timezone);
    const start = addDays(today, -364);
    state.year = { start, end: today, days: api(`/api/v1/stats/daily?start=${start}&end=${today}`).then((d) => d.daily) };
    state.year.days.catch(() => { state.year = null; });
  }
  return state.year;
}

function dailyOf(s, q) {
  const year = yearDays();
  if (s && s.start >= year.start && s.end <= year.end) {
    return year.days.then((days) => days.filter((d) => d.date >= s.start && d.date <= s.end));
  }
  return api(`/api/v1/stats/daily?${q}`).then((d) => d.daily);
}

function latestOf(answer) {
  return answer.projects
    .filter((p) => p.last_heartbeat)
    .sort((a, b) => b.last_heartbeat.localeCompare(a.last_heartbeat))[0];
}

// The latest heartbeat, whatever the range: looked for in the last 7 days (reading when each
// project was last seen scans heartbeats, so a short span is cheap), then in all time.
async function lastActivity() {
  const today = todayIn(state.me.timezone);
  const recent = latestOf(await api(`/api/v1/stats/projects?start=${addDays(today, -6)}&end=${today}`));
  return recent || latestOf(await api("/api/v1/stats/projects?range=all"));
}

async function loadRange() {
  const load = ++state.loads;
  const q = query();
  const [summary, days, breakdown, latest] = await Promise.all([
    api(`/api/v1/stats/summary?${q}`),
    dailyOf(span(), q),
    api(`/api/v1/stats/breakdown?${q}&limit=8`),
    lastActivity(),
  ]);
  if (load !== state.loads) return; // a newer range was picked meanwhile
  setText("#total", duration(summary.total_seconds));
  setText("#total-sub", `${summary.range_start.slice(0, 10)} to ${days.at(-1)?.date ?? ""}`);
  setText("#average", duration(summary.daily_average));
  setText("#streak", plural(summary.streak_current, "day"));
  setText("#streak-sub", `longest ${plural(summary.streak_longest, "day")}`);
  setText("#range-text", `Showing ${days.length === 1 ? days[0].date : `${days[0]?.date} to ${days.at(-1)?.date}`}.`);
  fill("#daily-chart", dailyChart(days));
  for (const dim of DIMENSIONS) {
    fill(`[data-dim="${dim}"]`, barList(breakdown.dimensions[dim] || []));
  }
  if (latest) showLast(Date.parse(latest.last_heartbeat) / 1000, latest.project);
  document.body.dataset.loaded = String(load);
}

function showLast(epochSeconds, what) {
  const when = new Date(epochSeconds * 1000);
  setText("#last-activity", when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", timeZone: state.me.timezone }));
  setText("#last-activity-sub", `${when.toLocaleDateString("en-CA", { timeZone: state.me.timezone })} · ${what}`);
}

async function loadYear() {
  fill("#heatmap", heatmap(await yearDays().days));
}

async function loadRank() {
  const leaders = await api("/api/v1/leaders");
  const mine = leaders.current_user;
  setText("#rank", mine ? `This week: rank #${mine.rank}` : "Not on this week's leaderboard");
}

function showRange() {
  for (const button of document.querySelectorAll("[data-range]")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === state.range));
  }
  $("#custom-range").hidden = state.range !== "custom";
  const url = new URL(location.href);
  url.searchParams.set("range", state.range);
  if (state.range === "custom" && state.custom) {
    url.searchParams.set("start", state.custom.start);
    url.searchParams.set("end", state.custom.end);
  } else {
    url.searchParams.delete("start");
    url.searchParams.delete("end");
  }
  history.replaceState(null, "", url);
}

async function refresh(parts) {
  try {
    await Promise.all(parts.map((p) => p()));
    announce("#dash-error", "");
  } catch (err) {
    if (err.status !== 401) announce("#dash-error", `Could not load: ${err.message}`, { error: true });
  }
}

let pending = null;
function refreshSoon() {
  // Events come in bursts (one per processed batch): re-read at most every 250 ms.
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    state.year = null; // the days may have changed
    refresh([loadRange, loadYear]);
  }, 250);
}

function onLive(message) {
  switch (message.type) {
    case "heartbeat.accepted":
      if (message.last_heartbeat_at) showLast(message.last_heartbeat_at, message.project || "");
      refreshSoon();
      break;
    case "stats.changed":
    case "subscribed":
    case "dropped":
      refreshSoon();
      break;
    case "leaderboard.changed":
      setText("#rank", message.rank ? `This week: rank #${message.rank}` : "Not on this week's leaderboard");
      break;
    default:
      break;
  }
}

function onLiveState(liveState) {
  const node = $("#live-status");
  node.dataset.state = liveState;
  node.textContent = { live: "Live", connecting: "Connecting…", offline: "Offline: reconnecting" }[liveState];
}

// The user's settings: this tab's last copy at once (the first paint needs only the timezone),
// checked against the API meanwhile; a changed timezone re-reads the page's numbers.
async function me(who) {
  const fresh = api("/api/v1/user/me").then((answer) => {
    sessionStorage.setItem(ME_KEY, JSON.stringify({ id: answer.id, timezone: answer.timezone }));
    return answer;
  });
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(ME_KEY) || "null");
  } catch {
    kept = null;
  }
  if (!kept || kept.id !== who.userId) return fresh;
  fresh.then((answer) => {
    if (answer.timezone === kept.timezone) return;
    state.me = answer;
    state.year = null;
    setText("#timezone", answer.timezone || "UTC");
    refresh([loadRange, loadYear]);
  }, () => {});
  return kept;
}

async function main() {
  const who = await setupNav();
  if (!who) {
    toSignIn();
    return;
  }
  state.me = await me(who);
  setText("#timezone", state.me.timezone || "UTC");
  const params = new URLSearchParams(location.search);
  const asked = params.get("range");
  if (RANGES.includes(asked)) state.range = asked;
  if (state.range === "custom" && params.get("start") && params.get("end")) {
    state.custom = { start: params.get("start"), end: params.get("end") };
  }
  $("#custom-start").value = (state.custom || span()).start;
  $("#custom-end").value = (state.custom || span()).end;
  showRange();
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => {
      state.range = button.dataset.range;
      showRange();
      if (state.range === "custom") {
        $("#custom-start").focus();
        return;
      }
      refresh([loadRange]);
    });
  }
  $("#custom-range").addEventListener("submit", (event) => {
    event.preventDefault();
    const start = $("#custom-start").value;
    const end = $("#custom-end").value;
    if (!start || !end || end < start) {
      announce("#dash-error", "Pick a start date on or before the end date.", { error: true });
      return;
    }
    state.custom = { start, end };
    showRange();
    refresh([loadRange]);
  });
  await refresh([loadRange, loadYear, loadRank, () => loadWidgets($("#widgets"))]);
  performance.mark("dashboard-painted"); // every number and chart drawn (make bench reads it)
  const live = new LiveSocket({ onMessage: onLive, onState: onLiveState });
  live.start();
  window.addEventListener("pagehide", () => live.stop());
}

main();
