// The weekly leaderboards: global, per language, per country, hireable; any week.
import { leaderTable } from "./boards.js";
import { $, ApiFailure, announce, fill, isoWeek, setText, setupNav } from "./core.js";

const PAGE = 50;
let offset = 0;

function read() {
  const params = new URLSearchParams(location.search);
  $("#board-kind").value = params.get("board") || "global";
  $("#board-language").value = params.get("language") || "";
  $("#board-country").value = params.get("country") || "";
  $("#board-week").value = params.get("week") || isoWeek(new Date().toISOString().slice(0, 10));
  $("#board-hireable").checked = params.get("hireable") === "1";
  offset = Number(params.get("offset") || 0) || 0;
}

function showFields() {
  const kind = $("#board-kind").value;
  $("#language-field").hidden = kind !== "language";
  $("#country-field").hidden = false;
  $("#board-hireable").closest("label").hidden = kind !== "global";
}

function url() {
  const kind = $("#board-kind").value;
  const country = $("#board-country").value.trim().toUpperCase();
  const params = new URLSearchParams({ limit: PAGE, offset });
  const week = $("#board-week").value;
  if (week) params.set("week", week);
  let path = "/api/v1/leaderboards/global";
  if (kind === "language") {
    path = `/api/v1/leaderboards/language/${encodeURIComponent($("#board-language").value.trim() || "other")}`;
    if (country) params.set("country", country);
  } else if (kind === "country" && country) {
    path = `/api/v1/leaderboards/country/${encodeURIComponent(country)}`;
  } else {
    if (country) params.set("country", country);
    if ($("#board-hireable").checked) params.set("available_for_hire", "true");
  }
  return `${path}?${params}`;
}

async function load() {
  const kind = $("#board-kind").value;
  if (kind === "country" && !$("#board-country").value.trim()) {
    announce("#board-error", "Enter a two-letter country code.", { error: true });
    return;
  }
  const response = await fetch(url());
  const body = await response.json();
  if (!response.ok) {
    const failure = new ApiFailure(response.status, body);
    announce("#board-error", failure.message, { error: true });
    return;
  }
  announce("#board-error", "");
  const label = kind === "language" ? `${$("#board-language").value || "other"} · ` : "";
  setText("#board-heading", `${label}Week ${body.week}`);
  setText("#board-total", `${body.total.toLocaleString("en-US")} ranked`);
  fill("#board", leaderTable(body.leaderboard, { value: kind === "language" ? "Time in language" : "Time" }));
  $("#prev-page").disabled = offset <= 0;
  $("#next-page").disabled = offset + PAGE >= body.total;
  const params = new URLSearchParams({ board: kind, week: body.week });
  if ($("#board-language").value) params.set("language", $("#board-language").value);
  if ($("#board-country").value) params.set("country", $("#board-country").value);
  if ($("#board-hireable").checked) params.set("hireable", "1");
  if (offset) params.set("offset", offset);
  history.replaceState(null, "", `/leaderboards?${params}`);
  document.body.dataset.loaded = body.week;
}

async function main() {
  await setupNav();
  read();
  showFields();
  $("#board-kind").addEventListener("change", showFields);
  $("#board-form").addEventListener("submit", (event) => {
    event.preventDefault();
    offset = 0;
    load();
  });
  $("#prev-page").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  $("#next-page").addEventListener("click", () => { offset += PAGE; load(); });
  await load();
}

main();
