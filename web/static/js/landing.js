// The landing page: public platform totals, this week's top of the board, the plugin store.
import { barList } from "./charts.js";
import { duration, el, fill, setText, setupNav } from "./core.js";
import { leaderTable } from "./boards.js";

async function platform() {
  const stats = await (await fetch("/api/v1/stats/public")).json();
  setText("#users", stats.users.toLocaleString("en-US"));
  setText("#all-time", duration(stats.total_seconds));
  setText("#week-total", duration(stats.last_7_days.total_seconds));
  setText("#week-range", `${stats.last_7_days.start} to ${stats.last_7_days.end}`);
  setText("#active-users", stats.last_7_days.active_users.toLocaleString("en-US"));
  const langs = stats.last_7_days.top_languages.map((l) => ({ name: l.language, seconds: l.seconds }));
  fill("#languages", barList(langs, { empty: "No public language data yet" }));
}

async function leaders() {
  const board = await (await fetch("/api/v1/leaderboards/global?limit=5")).json();
  fill("#leaders", leaderTable(board.leaderboard, { empty: "Nobody is ranked this week yet." }));
}

async function plugins() {
  const store = await (await fetch("/api/v1/store?sort=installs&per_page=6")).json();
  if (!store.plugins.length) {
    fill("#plugins", el("p", { class: "empty" }, "No plugins published yet."));
    return;
  }
  fill(
    "#plugins",
    store.plugins.map((p) =>
      el(
        "article",
        { class: "card" },
        el("h3", {}, `${p.icon || "🧩"} ${p.display_name}`),
        el("p", { class: "muted" }, p.description || ""),
        el("p", { class: "dim" }, `v${p.version} · ${(p.install_count || 0).toLocaleString("en-US")} installs`),
      ),
    ),
  );
}

async function main() {
  const who = await setupNav();
  if (who) {
    const cta = document.getElementById("cta");
    cta.textContent = "Open your dashboard";
    cta.href = "/dashboard";
  }
  await Promise.all([platform(), leaders(), plugins()]);
  document.body.dataset.loaded = "1";
}

main();
