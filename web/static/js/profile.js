// A public profile. The API already hides what the owner's privacy flags hide; the page shows a
// section only when its flag is on, so a hidden section is absent, not an empty zero.
import { barList } from "./charts.js";
import { $, duration, el, plural, setText, setupNav, fill } from "./core.js";

function show(id, on) {
  $(id).hidden = !on;
}

async function main() {
  await setupNav();
  const name = decodeURIComponent(location.pathname.split("/")[2] || "");
  const response = await fetch(`/api/v1/user/profile/${encodeURIComponent(name)}`);
  if (!response.ok) {
    show("#profile-missing", true);
    document.body.dataset.loaded = "missing";
    return;
  }
  const p = await response.json();
  document.title = `${p.display_name || p.username} · CodeTrackr`;
  setText("#display-name", p.display_name || p.username);
  setText("#username", `@${p.username}`);
  setText("#bio", p.bio || "");
  setText("#country", p.country ? `${p.country} ·` : "");
  setText("#member-since", `member since ${p.member_since.slice(0, 10)}`);
  if (p.website && /^https?:\/\//i.test(p.website)) {
    const link = $("#website");
    link.href = p.website;
    link.textContent = p.website;
    link.hidden = false;
  }
  setText("#followers", plural(p.follower_count, "follower"));
  setText("#following", `${p.following_count.toLocaleString("en-US")} following`);
  show("#hire", p.available_for_hire);
  show("#activity-card", p.show_activity);
  setText("#weekly", duration(p.weekly_seconds));
  show("#streak-card", p.show_streak);
  setText("#streak", plural(p.streak_days, "day"));
  show("#languages-card", p.show_languages);
  fill("#languages", barList(p.languages.map((l) => ({ name: l.language, seconds: l.seconds }))));
  show("#projects-card", p.show_projects);
  fill("#projects", barList(p.projects.map((l) => ({ name: l.project, seconds: l.seconds }))));
  show("#plugins-card", p.show_plugins);
  fill(
    "#plugins",
    p.plugins.length
      ? el(
          "ul",
          { class: "list-plain" },
          p.plugins.map((plugin) =>
            el(
              "li",
              {},
              el("a", { href: `/store?q=${encodeURIComponent(plugin.name)}` }, `${plugin.icon || "🧩"} ${plugin.display_name}`),
              el("span", { class: "dim" }, ` v${plugin.version} · ${plural(plugin.install_count || 0, "install")}`),
            ),
          ),
        )
      : el("p", { class: "empty" }, "No plugins published yet."),
  );
  show("#heatmap-card", p.show_activity);
  if (p.show_activity) $("#heatmap").src = `/badge/${encodeURIComponent(p.username)}/heatmap`;
  show("#numbers", p.show_activity || p.show_streak);
  show("#profile", true);
  document.body.dataset.loaded = p.username;
}

main();
