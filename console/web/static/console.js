// console.js: keeps a page current without reloading it. The daemon's
// event stream (/api/v1/events) says when the status changed; the page
// then fetches its main region again (rendered by the daemon, the same
// HTML as on first load) and swaps it in, keeping open cells open. If the
// stream is down the page polls instead, and says so.
"use strict";

(function () {
  const main = document.getElementById("main");
  const live = document.getElementById("live");
  const fragment = document.body.dataset.fragment;
  if (!main || !fragment) {
    return;
  }
  const POLL_MS = 5000;
  let pending = null;
  let inflight = false;
  let again = false;
  let poller = null;
  let lastUpdate = null;

  function setLive(cls, text) {
    live.className = "live " + cls;
    live.textContent = text;
  }

  function clock(d) {
    return d.toTimeString().slice(0, 8);
  }

  async function refresh() {
    if (inflight) {
      again = true;
      return;
    }
    inflight = true;
    try {
      const resp = await fetch(fragment, { cache: "no-store" });
      if (resp.status === 404) {
        setLive("bad", "✗ this node is no longer in the manifest");
        return;
      }
      if (!resp.ok) {
        throw new Error("HTTP " + resp.status);
      }
      swap(await resp.text());
      lastUpdate = new Date();
    } catch (err) {
      setLive("bad", "✗ update failed: " + err.message);
    } finally {
      inflight = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  // swap replaces the main region, keeping the cells the operator opened.
  function swap(html) {
    if (html === main.dataset.html) {
      return;
    }
    const open = Array.from(main.querySelectorAll("details[open][id]"), (d) => d.id);
    main.innerHTML = html;
    main.dataset.html = html;
    for (const id of open) {
      const d = document.getElementById(id);
      if (d) {
        d.open = true;
      }
    }
  }

  function soon() {
    clearTimeout(pending);
    pending = setTimeout(refresh, 100);
  }

  function startPolling() {
    if (poller === null) {
      poller = setInterval(refresh, POLL_MS);
    }
  }

  function stopPolling() {
    if (poller !== null) {
      clearInterval(poller);
      poller = null;
    }
  }

  if (!("EventSource" in window)) {
    setLive("warn", "◐ polling every " + POLL_MS / 1000 + "s");
    startPolling();
    return;
  }
  // view=delta: after the first event, only what changed (the page needs
  // only the signal; the daemon sends a fleet's whole status once).
  const events = new EventSource("/api/v1/events?view=delta");
  events.addEventListener("open", function () {
    stopPolling();
    setLive("ok", "● live");
  });
  function changed() {
    soon();
    setLive("ok", "● live · changed " + clock(new Date()));
  }
  events.addEventListener("status", changed);
  events.addEventListener("delta", changed);
  events.addEventListener("heartbeat", function () {
    setLive("ok", "● live · quiet since " + clock(lastUpdate || new Date()));
  });
  events.addEventListener("error", function () {
    // EventSource reconnects by itself; poll meanwhile.
    setLive("warn", "◐ connection lost, retrying (polling every " + POLL_MS / 1000 + "s)");
    startPolling();
  });
  window.addEventListener("pagehide", function () {
    events.close();
  });
})();
