// Small SVG charts built with DOM calls (no chart library: the dashboard needs three shapes, and
// libraries inject inline styles that the Content-Security-Policy refuses). Colours come from
// CSS classes, so themes apply.
import { duration, el } from "./core.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Columns of seconds per day: [{date, seconds}]. */
export function dailyChart(days, { label = "Coding time per day" } = {}) {
  const width = 720;
  const height = 180;
  const pad = { top: 10, right: 6, bottom: 22, left: 40 };
  const max = Math.max(3600, ...days.map((d) => d.seconds));
  const hours = Math.ceil(max / 3600);
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    role: "img",
    "aria-label": `${label}: ${days.length} days, ${duration(days.reduce((a, d) => a + d.seconds, 0))} in all`,
  });
  const step = hours <= 4 ? 1 : Math.ceil(hours / 4);
  for (let h = 0; h <= hours; h += step) {
    const y = pad.top + plotH - (h * 3600 * plotH) / (hours * 3600);
    root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid-line" }));
    root.append(svg("text", { x: pad.left - 6, y: y + 3, "text-anchor": "end", class: "axis" }, `${h}h`));
  }
  const slot = plotW / Math.max(1, days.length);
  const barW = Math.max(1, slot * 0.7);
  const labelEvery = Math.max(1, Math.ceil(days.length / 8));
  days.forEach((day, i) => {
    const h = (day.seconds / (hours * 3600)) * plotH;
    const x = pad.left + i * slot + (slot - barW) / 2;
    const bar = svg("rect", {
      x, y: pad.top + plotH - h, width: barW, height: Math.max(h, 0), class: "col", "data-date": day.date,
    });
    bar.append(svg("title", {}, `${day.date}: ${duration(day.seconds)}`));
    root.append(bar);
    if (i % labelEvery === 0) {
      root.append(svg("text", { x: x + barW / 2, y: height - 6, "text-anchor": "middle", class: "axis" }, day.date.slice(5)));
    }
  });
  return root;
}

/** A ranked list with bars: [{name, seconds, percentage}]. */
export function barList(items, { empty = "No data in this range" } = {}) {
  if (!items.length) return el("p", { class: "empty" }, empty);
  const max = Math.max(...items.map((i) => i.seconds), 1);
  return el(
    "ul",
    { class: "bars" },
    items.map((item) => {
      const fillBar = el("span");
      fillBar.style.width = `${Math.max(1, (100 * item.seconds) / max)}%`;
      return el(
        "li",
        {},
        el(
          "div",
          { class: "spread" },
          el("span", {}, item.name),
          el("span", { class: "dim" }, duration(item.seconds) + (item.percentage !== undefined ? ` · ${item.percentage.toFixed(1)}%` : "")),
        ),
        el("div", { class: "bar", "aria-hidden": "true" }, fillBar),
      );
    }),
  );
}

/** A year of days as a calendar, weeks as columns, Monday on top: [{date, seconds}]. */
export function heatmap(days) {
  const cell = 11;
  const gap = 2;
  const first = new Date(days[0].date + "T00:00:00Z");
  const offset = (first.getUTCDay() + 6) % 7;
  const weeks = Math.ceil((days.length + offset) / 7);
  const top = 14;
  const width = weeks * (cell + gap) + 4;
  const height = top + 7 * (cell + gap);
  const active = days.filter((d) => d.seconds > 0).map((d) => d.seconds).sort((a, b) => a - b);
  const level = (s) => {
    if (s <= 0) return 0;
    const share = active.filter((v) => v <= s).length / active.length;
    return Math.max(1, Math.ceil(4 * share));
  };
  const total = active.reduce((a, b) => a + b, 0);
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "heatmap",
    role: "img",
    "aria-label": `Activity over the last ${days.length} days: ${duration(total)} on ${active.length} days`,
  });
  let lastMonth = "";
  days.forEach((day, i) => {
    const pos = i + offset;
    const col = Math.floor(pos / 7);
    const row = pos % 7;
    const x = col * (cell + gap);
    const month = day.date.slice(0, 7);
    if (row === 0 && month !== lastMonth) {
      lastMonth = month;
      const name = new Date(day.date + "T00:00:00Z").toLocaleString("en-US", { month: "short", timeZone: "UTC" });
      root.append(svg("text", { x, y: 10 }, name));
    }
    const rect = svg("rect", {
      x, y: top + row * (cell + gap), width: cell, height: cell, rx: 2,
      class: `l${level(day.seconds)}`, "data-date": day.date,
    });
    rect.append(svg("title", {}, day.seconds ? `${day.date}: ${duration(day.seconds)}` : `${day.date}: no coding`));
    root.append(rect);
  });
  return root;
}
