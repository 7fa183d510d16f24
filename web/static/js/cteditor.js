// The plugin editor: a script, a simulate bar and an output pane. Widget mode renders the script
// live in a sandboxed frame with the user's real token; lifecycle modes run it once on the server
// (POST /api/v1/plugins/editor/run, streamed as NDJSON) and show its log/warn/error lines as the
// script logs them, then its result and exit status.
import { $, api, ApiFailure, el, fill, session, setText, setupNav, toSignIn } from "./core.js";
import { mountWidget } from "./widgets.js";

const WIDGET_TEMPLATE = `// A widget: render into \`container\`; \`token\` calls the API as you.
container.textContent = 'Loading…';
fetch('/api/v1/stats/summary?range=7d', { headers: { 'Authorization': 'Bearer ' + token } })
  .then(function (r) { if (!r.ok) throw new Error('API error ' + r.status); return r.json(); })
  .then(function (data) {
    var h = Math.floor(data.total_seconds / 3600);
    var m = Math.floor((data.total_seconds % 3600) / 60);
    container.innerHTML = '<div style="font-size:28px;font-weight:700;color:var(--text-main)">'
      + h + 'h ' + m + 'm</div><div style="color:var(--text-muted)">this week</div>';
  })
  .catch(function (e) { container.textContent = '—'; });
`;

const SERVER_TEMPLATE = `// A server script: lifecycle hooks and RPC endpoints, run in the sandbox with your own data.
async function on_heartbeat(ctx, heartbeat) {
  log('Heartbeat from', heartbeat.editor, 'on', heartbeat.project);
  const count = await ctx.redis.incr('heartbeats');
  return { heartbeats: count };
}

async function on_tick(ctx) {
  const rows = await ctx.db.query('SELECT count(*) AS days FROM daily_stats_cache');
  log('days with activity:', rows[0].days);
}

async function on_install(ctx) {
  log('installed for', ctx.user_id);
}

const endpoints = {
  'GET-streak': async (ctx, body) => {
    const n = await ctx.redis.get('heartbeats');
    return { heartbeats: Number(n || 0), body };
  },
};
`;

let mode = "on_heartbeat";

function template() {
  $("#code").value = mode === "widget" ? WIDGET_TEMPLATE : SERVER_TEMPLATE;
}

function setMode(next) {
  const wasWidget = mode === "widget";
  mode = next;
  for (const button of document.querySelectorAll("[data-mode]")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
  }
  $("#rpc-fields").hidden = mode !== "rpc";
  $("#heartbeat-fields").hidden = mode !== "on_heartbeat";
  // Switching between a widget and a server script with the other kind's template loaded.
  const code = $("#code").value;
  if (wasWidget !== (mode === "widget") && (code === WIDGET_TEMPLATE || code === SERVER_TEMPLATE || !code.trim())) template();
}

function line(level, text) {
  return el("div", { class: `line ${level}` }, `${level === "log" ? "" : `[${level}] `}${text}`);
}

function status(ok, text) {
  const node = $("#exit-status");
  node.textContent = text;
  node.dataset.ok = String(ok);
}

async function run() {
  const code = $("#code").value;
  const output = $("#output");
  if (mode === "widget") {
    output.replaceChildren();
    mountWidget(output, { name: "editor-preview", title: "Preview", icon: "▶", script: code });
    status(true, "widget rendered");
    return;
  }
  const body = { server_script: code, trigger: mode };
  try {
    if (mode === "rpc") {
      body.handler = $("#rpc-handler").value.trim();
      body.body = JSON.parse($("#rpc-body").value || "{}");
    }
    if (mode === "on_heartbeat") body.heartbeat = JSON.parse($("#mock-heartbeat").value);
  } catch (err) {
    fill(output, line("error", `invalid JSON: ${err.message}`));
    status(false, "not run");
    return;
  }
  status(true, "running…");
  fill(output, line("log", `▶ ${mode === "rpc" ? `RPC ${body.handler}` : mode}`));
  let shown = 0; // log lines already in the pane
  try {
    for await (const item of runStream(body)) {
      if (item.type === "log") {
        output.append(line(item.level, item.text));
        shown += 1;
      } else if (item.type === "error") {
        throw new ApiFailure(503, item);
      } else if (item.type === "done") {
        // Lines the stream could not carry (none, normally) are in the final answer.
        output.append(...item.logs.slice(shown).map((l) => line(l.level, l.text)));
        if (item.ok) {
          output.append(line("log", `← ${JSON.stringify(item.result)}`));
        } else {
          output.append(line("error", `${item.kind}: ${item.message}`));
          if (item.stack) output.append(line("error", item.stack));
        }
        status(item.ok, `exit ${item.exit_status} · ${Math.round(item.wall_s * 1000)} ms`);
        return;
      }
    }
    throw new Error("the run ended without an outcome");
  } catch (err) {
    output.append(line("error", err.message));
    status(false, "failed");
  }
}

/** The editor run's answer, one object per NDJSON line as the server sends it. */
async function* runStream(body) {
  const response = await api("/api/v1/plugins/editor/run", { method: "POST", body, raw: true, accept: "application/x-ndjson" });
  if (!response.ok) {
    const text = await response.text();
    throw new ApiFailure(response.status, text ? JSON.parse(text) : {});
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      if (text.trim()) yield JSON.parse(text);
    }
  }
  if (buffered.trim()) yield JSON.parse(buffered);
}

async function main() {
  const who = (await setupNav()) && (await session());
  if (!who) {
    toSignIn();
    return;
  }
  $("#mock-heartbeat").value = JSON.stringify(
    { project: "codetrackr", language: "Python", file: "src/main.py", editor: "VS Code", branch: "main", os: "Linux", machine: "laptop", duration: 30, time: Date.now() / 1000 },
    null,
    2,
  );
  for (const button of document.querySelectorAll("[data-mode]")) {
    button.addEventListener("click", () => setMode(button.dataset.mode));
  }
  $("#template").addEventListener("click", template);
  $("#clear").addEventListener("click", () => {
    $("#code").value = "";
    $("#output").replaceChildren();
    setText("#exit-status", "");
    $("#code").focus();
  });
  $("#run").addEventListener("click", run);
  $("#code").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run();
    }
  });
  setMode("on_heartbeat");
  template();
  document.body.dataset.loaded = "1";
}

main();
