// Sign in with an account number, create an anonymous account, or use a configured provider.
// Every login answered by the JSON API is handed at once to /web/session, which rotates the
// refresh token into an HttpOnly cookie.
import { $, adoptLogin, announce, el, fill, providers, session, setupNav } from "./core.js";

const PROVIDER_NAMES = { github: "GitHub", gitlab: "GitLab", oidc: "Single sign-on" };

function next() {
  const wanted = new URLSearchParams(location.search).get("next") || "/dashboard";
  // Only a path of this site: never an open redirect.
  return wanted.startsWith("/") && !wanted.startsWith("//") ? wanted : "/dashboard";
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    credentials: "omit",
  });
  const data = await response.json();
  return { ok: response.ok, status: response.status, data };
}

async function fromOAuthReturn() {
  // An OAuth login returns here with its tokens in the fragment (never sent to a server):
  // adopt them and wipe the fragment from the address bar and history.
  if (!location.hash.includes("refresh_token=")) return false;
  const values = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, "", location.pathname + location.search);
  await adoptLogin(values.get("refresh_token"));
  location.assign(next());
  return true;
}

async function main() {
  if (await fromOAuthReturn()) return;
  await setupNav();
  if (await session()) {
    announce("#login-message", "You are signed in.");
  }
  const names = providers();
  if (names.length) {
    $("#oauth").hidden = false;
    fill(
      "#oauth-buttons",
      names.map((name) => el("a", { class: "button", href: `/auth/${name}` }, `Sign in with ${PROVIDER_NAMES[name] || name}`)),
    );
  }
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const number = $("#account-number").value.trim();
    announce("#login-message", "Signing in…");
    const answer = await post("/auth/anonymous/verify", { account_number: number });
    if (!answer.ok || !answer.data.valid) {
      announce("#login-message", "No account has this number.", { error: true });
      $("#account-number").focus();
      return;
    }
    const login = await post("/auth/anonymous/login", { account_number: number });
    if (!login.ok) {
      announce("#login-message", login.data.error?.message || "Could not sign in.", { error: true });
      return;
    }
    await adoptLogin(login.data.refresh_token);
    location.assign(next());
  });
  $("#create-account").addEventListener("click", async () => {
    const button = $("#create-account");
    button.disabled = true;
    const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    const created = await post("/auth/anonymous/create", { timezone });
    if (!created.ok) {
      button.disabled = false;
      announce("#create-message", created.data.error?.message || "Could not create an account.", { error: true });
      return;
    }
    await adoptLogin(created.data.refresh_token);
    $("#new-number").textContent = created.data.account_number;
    $("#continue").href = next();
    $("#created").hidden = false;
    button.hidden = true;
    announce("#create-message", `Account ${created.data.username} created. Save your account number now.`);
    $("#copy-number").focus();
  });
  $("#copy-number").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("#new-number").textContent);
      announce("#create-message", "Copied.");
    } catch {
      announce("#create-message", "Select the number and copy it.");
    }
  });
}

main();
