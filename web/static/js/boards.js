// A leaderboard as a table (landing page preview and the leaderboards page).
import { duration, el } from "./core.js";

export function leaderTable(entries, { empty = "Nobody is ranked here.", value = "Time" } = {}) {
  if (!entries.length) return el("p", { class: "empty" }, empty);
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "num" }, "#"), el("th", { scope: "col" }, "Developer"), el("th", { scope: "col" }, "Top language"), el("th", { scope: "col", class: "num" }, value))),
      el(
        "tbody",
        {},
        entries.map((e) =>
          el(
            "tr",
            {},
            el("td", { class: "num" }, e.rank),
            el("td", {}, el("a", { href: `/u/${encodeURIComponent(e.username)}` }, e.display_name || e.username), e.country ? el("span", { class: "dim" }, ` ${e.country}`) : null),
            el("td", {}, e.top_language || "–"),
            el("td", { class: "num" }, duration(e.seconds)),
          ),
        ),
      ),
    ),
  );
}
