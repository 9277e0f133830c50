// common.js: the console token, shared by every drover page (the
// cluster and node pages, and the setup wizard).
//
// The daemon prints a URL like http://127.0.0.1:9464/?token=...; the
// first page opened with it keeps the token in sessionStorage (this tab
// only, gone when it closes) and removes it from the address bar, so it
// does not stay in history or get copied along with the URL.
//
//   droverToken()                  the token, or "" when there is none
//   droverFetch(url, {method, body}) fetch with the token header; an object
//                                  body is sent as JSON. Mutating endpoints
//                                  refuse requests without the token (401).
"use strict";

const DROVER_TOKEN_KEY = "drover.token";

(function takeTokenFromURL() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token === null) {
    return;
  }
  if (token !== "") {
    sessionStorage.setItem(DROVER_TOKEN_KEY, token);
  }
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
})();

function droverToken() {
  return sessionStorage.getItem(DROVER_TOKEN_KEY) || "";
}

function droverSetToken(token) {
  if (token) {
    sessionStorage.setItem(DROVER_TOKEN_KEY, token);
  } else {
    sessionStorage.removeItem(DROVER_TOKEN_KEY);
  }
}

function droverFetch(url, opts) {
  opts = Object.assign({}, opts || {});
  const headers = new Headers(opts.headers || {});
  const token = droverToken();
  if (token) {
    headers.set("Authorization", "Bearer " + token);
  }
  if (opts.body !== undefined && typeof opts.body !== "string" && !(opts.body instanceof Blob)) {
    opts.body = JSON.stringify(opts.body);
  }
  if (opts.body !== undefined && !headers.has("Content-Type")) {
    headers.set("Content-Type", "application/json");
  }
  opts.headers = headers;
  opts.credentials = "same-origin";
  return fetch(url, opts);
}

// The token box in the header of every page.
document.addEventListener("DOMContentLoaded", function () {
  const state = document.getElementById("token-state");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const forget = document.getElementById("token-forget");
  if (!state || !form) {
    return;
  }
  function show() {
    state.textContent = droverToken() ? "✓ token kept for this tab" : "token: none (read-only)";
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    droverSetToken(input.value.trim());
    input.value = "";
    document.getElementById("token-box").open = false;
    show();
  });
  forget.addEventListener("click", function () {
    droverSetToken("");
    show();
  });
  show();
});

// Control buttons: any element with data-control="/api/v1/..." POSTs there
// with the token (data-node adds {"nodes": [name]}; data-confirm asks
// first) and shows the daemon's answer beside it. Delegated from the
// document, since the page's main region is swapped on every update.
document.addEventListener("click", async function (ev) {
  const button = ev.target.closest("[data-control]");
  if (!button) {
    return;
  }
  const box = button.parentElement.querySelector(".control-result");
  function say(cls, text) {
    if (box) {
      box.className = "control-result " + cls;
      box.textContent = text;
    }
  }
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    return;
  }
  if (!droverToken()) {
    say("bad", "✗ needs the console token: enter it in the token box above");
    return;
  }
  const body = button.dataset.node ? { nodes: [button.dataset.node] } : {};
  button.disabled = true;
  try {
    const resp = await droverFetch(button.dataset.control, { method: "POST", body: body });
    let answer = {};
    try {
      answer = await resp.json();
    } catch (e) {
      answer = { error: "HTTP " + resp.status };
    }
    if (resp.ok) {
      say("ok", "✓ " + (answer.message || "done"));
    } else {
      say("bad", "✗ " + (answer.error || "HTTP " + resp.status));
    }
  } catch (err) {
    say("bad", "✗ " + err.message);
  } finally {
    button.disabled = false;
  }
});
