// drover setup wizard. Vanilla JS, no build step. The server keeps no
// state between steps (apart from the host keys preflight saw), so this
// page holds the setup and sends it whole to preflight and review.
//
// Every POST carries the console token and JSON, as the console's guard
// requires. The token is kept as the console's pages keep it (see
// console/web/static/common.js): sessionStorage "drover.token", taken from
// a ?token= URL (the one the daemon prints) and removed from the address bar.
"use strict";

(function () {
  const TOKEN_KEY = "drover.token";
  const STEPS = ["ssh", "nodes", "components", "preflight", "review", "write"];

  const state = {
    info: null,        // GET /api/v1/wizard/artifacts
    nodes: [],         // {name, address, port, roles: []}
    components: [],    // one per artifact name: {name, include, version, file, template, roles, exec, health, filesYAML}
    preflight: null,   // last PreflightReport
    review: null,      // last Review
    written: null,     // last Written
  };

  // ---- small helpers --------------------------------------------------

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // el builds an element; text goes in as text, never as HTML, so node
  // output and file names cannot inject markup.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "value") e.value = v;
      else if (k === "checked") e.checked = !!v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function show(node, text) {
    node.textContent = text || "";
    node.hidden = !text;
  }

  function splitList(s) {
    return s.split(/[\s,]+/).map((x) => x.trim()).filter((x, i, a) => x !== "" && a.indexOf(x) === i);
  }

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  // api GETs (body undefined) or POSTs JSON; a refusal throws an Error
  // with the server's message, status and body.
  async function api(path, body) {
    const opts = { method: body === undefined ? "GET" : "POST", headers: {}, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
      const t = token();
      if (t) opts.headers["Authorization"] = "Bearer " + t;
    }
    const r = await fetch(path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) {
      const err = new Error((data && data.error) || r.status + " " + r.statusText);
      err.status = r.status;
      err.data = data;
      if (r.status === 401) askToken("The daemon refused the request: " + err.message);
      throw err;
    }
    return data;
  }

  // busy disables a button while fn runs.
  async function busy(button, fn) {
    button.disabled = true;
    button.classList.add("busy");
    try { return await fn(); } finally {
      button.disabled = false;
      button.classList.remove("busy");
    }
  }

  // ---- token ------------------------------------------------------------

  function askToken(message) {
    $("#token-panel").hidden = false;
    $("#token-status").textContent = message || "";
    $("#token-input").focus();
  }

  // tokenFromURL keeps a ?token= and takes it out of the address bar, so
  // it stays out of history and of copied links.
  function tokenFromURL() {
    const url = new URL(window.location.href);
    const t = url.searchParams.get("token");
    if (t === null) return;
    try { if (t) sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* private mode */ }
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }

  function initToken() {
    tokenFromURL();
    $("#token-toggle").addEventListener("click", () => {
      const p = $("#token-panel");
      p.hidden = !p.hidden;
    });
    $("#token-save").addEventListener("click", () => {
      const v = $("#token-input").value.trim();
      try { sessionStorage.setItem(TOKEN_KEY, v); } catch (e) { /* private mode */ }
      $("#token-input").value = "";
      $("#token-status").textContent = v ? "Token set for this tab." : "Token cleared.";
      $("#token-panel").hidden = !!v;
      updateTokenButton();
    });
    updateTokenButton();
  }

  function updateTokenButton() {
    $("#token-toggle").textContent = token() ? "console token ✓" : "console token: not set";
  }

  // ---- navigation ---------------------------------------------------------

  function go(step) {
    collect();
    for (const s of STEPS) $("#step-" + s).hidden = s !== step;
    for (const b of $$(".steps button")) b.classList.toggle("current", b.dataset.step === step);
    if (step === "components") renderComponents();
    if (step === "write") renderWriteStep();
    window.scrollTo(0, 0);
    document.body.dataset.step = step;
  }

  function markDone(step, done) {
    const b = $('.steps button[data-step="' + step + '"]');
    if (b) b.classList.toggle("done", !!done);
  }

  // ---- step 1: ssh ----------------------------------------------------------

  function initSSH(d) {
    $("#install-root").value = d.installRoot;
    $("#probe-interval").value = d.probeInterval;
    $("#ssh-user").value = d.user;
    $("#ssh-port").value = d.port;
    $("#known-hosts-path").textContent = d.knownHostsFile || "(none configured)";
  }

  // ---- step 2: nodes --------------------------------------------------------

  // parseNodeLine reads "address[:port] [name]"; IPv6 goes in brackets
  // when it has a port ([::1]:22).
  function parseNodeLine(line) {
    const parts = line.trim().split(/[\s,]+/);
    let addr = parts[0];
    let port = 0;
    const m6 = addr.match(/^\[([^\]]+)\](?::(\d+))?$/);
    if (m6) {
      addr = m6[1];
      port = m6[2] ? Number(m6[2]) : 0;
    } else if ((addr.match(/:/g) || []).length === 1) {
      const i = addr.indexOf(":");
      port = Number(addr.slice(i + 1));
      addr = addr.slice(0, i);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error("bad port in " + JSON.stringify(line));
    }
    if (parts.length > 2) throw new Error("want address[:port] [name], got " + JSON.stringify(line));
    return { address: addr, port: port, name: parts[1] || "", roles: [] };
  }

  // initSSHHosts offers the ssh_config's aliases: a click adds one to the
  // paste box (named after it when that is a valid node name).
  function initSSHHosts(hosts) {
    if (!hosts.length) return;
    const box = $("#ssh-hosts");
    box.querySelector("span").replaceChildren(...hosts.map((h) => el("button", {
      type: "button", class: "small", text: h,
      onclick: () => {
        const name = h.toLowerCase();
        const line = /^[a-z0-9][a-z0-9._-]*$/.test(name) ? h + " " + name : h;
        const ta = $("#nodes-paste");
        ta.value = (ta.value.trim() ? ta.value.trim() + "\n" : "") + line;
      },
    })));
    box.hidden = false;
  }

  function addNodes() {
    collect();
    const lines = $("#nodes-paste").value.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    const added = [];
    try {
      for (const l of lines) added.push(parseNodeLine(l));
    } catch (e) {
      show($("#nodes-error"), e.message);
      return;
    }
    show($("#nodes-error"), "");
    const used = new Set(state.nodes.map((n) => n.name).concat(added.map((n) => n.name)).filter(Boolean));
    let i = 1;
    for (const n of added) {
      if (!n.name) {
        while (used.has("n" + i)) i++;
        n.name = "n" + i;
        used.add(n.name);
      }
      state.nodes.push(n);
    }
    $("#nodes-paste").value = "";
    renderNodes();
  }

  function renderNodes() {
    const tb = $("#nodes-table tbody");
    tb.replaceChildren();
    state.nodes.forEach((n, i) => {
      const roles = el("input", { class: "roles", value: n.roles.join(", "), "aria-label": "roles of " + n.name, spellcheck: "false" });
      const preset = (r) => el("button", {
        type: "button", class: "small", text: "+ " + r,
        onclick: () => {
          const list = splitList(roles.value);
          if (!list.includes(r)) list.push(r);
          roles.value = list.join(", ");
          collect();
        },
      });
      tb.append(el("tr", { "data-node": String(i) },
        el("td", { "data-label": "Name" }, el("input", { class: "name", value: n.name, "aria-label": "name", spellcheck: "false" })),
        el("td", { "data-label": "Address" }, el("input", { class: "address", value: n.address, "aria-label": "address", spellcheck: "false" })),
        el("td", { class: "port", "data-label": "Port" }, el("input", { class: "port", type: "number", min: "0", max: "65535", value: n.port || "", placeholder: "ssh", "aria-label": "port" })),
        el("td", { class: "roles", "data-label": "Roles" }, roles, el("div", { class: "presets" }, preset("master"), preset("agent"))),
        el("td", { class: "remove" }, el("button", {
          type: "button", class: "small", text: "remove", "aria-label": "remove " + n.name,
          onclick: () => { collect(); state.nodes.splice(i, 1); renderNodes(); },
        })),
      ));
    });
    markDone("nodes", state.nodes.length > 0);
  }

  function collectNodes() {
    const rows = $$("#nodes-table tbody tr");
    if (rows.length !== state.nodes.length) return;
    rows.forEach((tr, i) => {
      const n = state.nodes[i];
      n.name = $(".name", tr).value.trim();
      n.address = $(".address", tr).value.trim();
      n.port = Number($("input.port", tr).value) || 0;
      n.roles = splitList($("input.roles", tr).value);
    });
  }

  function allRoles() {
    const seen = [];
    for (const n of state.nodes) for (const r of n.roles) if (!seen.includes(r)) seen.push(r);
    return seen;
  }

  // ---- step 3: components ---------------------------------------------------

  function templateByName(name) {
    return (state.info.templates || []).find((t) => t.name === name);
  }

  // initComponents makes one entry per artifact name, its newest version
  // chosen, filled from the template the name matches.
  function initComponents(arts) {
    const byName = new Map();
    for (const a of arts) {
      if (!byName.has(a.name)) byName.set(a.name, []);
      byName.get(a.name).push(a);
    }
    for (const [name, versions] of byName) {
      const latest = versions[versions.length - 1];
      const c = {
        name: name, include: false, versions: versions, file: latest.file, template: latest.template || "",
        roles: [], exec: "", health: { kind: "", port: 0, path: "" }, filesYAML: "",
      };
      applyTemplate(c);
      state.components.push(c);
    }
  }

  function applyTemplate(c) {
    const t = templateByName(c.template);
    if (!t) return;
    c.roles = (t.roles || []).slice();
    c.exec = t.exec;
    c.health = Object.assign({ path: "" }, t.health);
  }

  function renderComponents() {
    const box = $("#components");
    box.replaceChildren();
    const roles = allRoles();
    state.components.forEach((c, i) => {
      const t = templateByName(c.template);
      const versionSel = el("select", { class: "version", "aria-label": "version of " + c.name },
        c.versions.map((a) => el("option", { value: a.file, text: a.version + "  (" + a.sha256.slice(0, 12) + "…)", selected: a.file === c.file ? "selected" : null })));
      const templateSel = el("select", { class: "template", "aria-label": "template of " + c.name },
        el("option", { value: "", text: "generic (fill in below)" }),
        (state.info.templates || []).map((tt) => el("option", { value: tt.name, text: tt.title, selected: tt.name === c.template ? "selected" : null })));
      templateSel.addEventListener("change", () => {
        collect();
        c.template = templateSel.value;
        applyTemplate(c);
        renderComponents();
      });
      const include = el("input", { type: "checkbox", class: "include", checked: c.include });
      include.addEventListener("change", () => { collect(); renderComponents(); });
      const rolesInput = el("input", { class: "roles", value: c.roles.join(", "), placeholder: "empty: every node", spellcheck: "false" });
      const roleButtons = roles.map((r) => el("button", {
        type: "button", class: "small", text: r,
        onclick: () => { rolesInput.value = r; collect(); },
      }));
      const kind = el("select", { class: "health-kind" },
        [["", "none"], ["tcp", "TCP port accepts"], ["http", "HTTP GET answers 200"]].map(([v, label]) =>
          el("option", { value: v, text: label, selected: c.health.kind === v ? "selected" : null })));
      kind.addEventListener("change", () => { collect(); renderComponents(); });
      box.append(el("div", { class: "component" + (c.include ? "" : " off"), "data-component": c.name, "data-index": String(i) },
        el("header", {},
          el("label", {}, include, el("span", { text: c.name })),
          versionSel),
        t ? el("p", { class: "desc hint", text: t.description }) : null,
        el("div", { class: "details" },
          el("label", {}, "Template", templateSel),
          el("label", {}, "Roles (comma separated)", rolesInput, el("div", { class: "presets" }, roleButtons)),
          el("label", { class: "wide" }, "Service command (empty: files only, no service)",
            el("input", { class: "exec", value: c.exec, spellcheck: "false", placeholder: "{{ .Dir }}/bin/server --listen={{ .Node.Address }}:8080" })),
          el("label", {}, "Health check", kind),
          c.health.kind ? el("label", {}, "Port", el("input", { class: "health-port", type: "number", min: "1", max: "65535", value: c.health.port || "" })) : null,
          c.health.kind === "http" ? el("label", {}, "Path", el("input", { class: "health-path", value: c.health.path || "/", spellcheck: "false" })) : null,
          el("details", {},
            el("summary", { text: "Advanced: config files as YAML" + (t && t.oneRole ? " (default: the template's, built from the role's nodes)" : "") }),
            el("textarea", { class: "files-yaml", rows: "8", spellcheck: "false", value: c.filesYAML,
              placeholder: "- path: conf/app.conf\n  mode: \"0644\"\n  template: |\n    listen={{ .Node.Address }}" }))),
      ));
    });
    $("#artifacts-none").hidden = state.components.length > 0;
    markDone("components", state.components.some((c) => c.include));
  }

  function collectComponents() {
    for (const div of $$("#components .component")) {
      const c = state.components[Number(div.dataset.index)];
      c.include = $(".include", div).checked;
      c.file = $(".version", div).value;
      c.template = $(".template", div).value;
      c.roles = splitList($("input.roles", div).value);
      c.exec = $(".exec", div).value.trim();
      c.health.kind = $(".health-kind", div).value;
      const port = $(".health-port", div);
      c.health.port = port ? Number(port.value) || 0 : c.health.port;
      const path = $(".health-path", div);
      c.health.path = path ? path.value.trim() : c.health.path;
      c.filesYAML = $(".files-yaml", div).value;
    }
  }

  // ---- the setup sent to the server ---------------------------------------

  function collect() {
    collectNodes();
    if ($("#components .component")) collectComponents();
  }

  function setup() {
    collect();
    return {
      cluster: $("#cluster-name").value.trim(),
      installRoot: $("#install-root").value.trim(),
      probeInterval: $("#probe-interval").value.trim(),
      ssh: {
        user: $("#ssh-user").value.trim(),
        port: Number($("#ssh-port").value) || 0,
        identityFile: $("#identity-file").value.trim(),
        bastion: $("#ssh-bastion").value.trim(),
      },
      nodes: state.nodes.map((n) => ({ name: n.name, address: n.address, port: n.port || 0, roles: n.roles })),
      components: state.components.filter((c) => c.include).map((c) => {
        const a = c.versions.find((v) => v.file === c.file) || c.versions[c.versions.length - 1];
        return {
          name: c.name, version: a.version, artifact: a.file, template: c.template, roles: c.roles,
          exec: c.exec, filesYAML: c.filesYAML,
          health: c.health.kind ? { kind: c.health.kind, port: c.health.port, path: c.health.kind === "http" ? c.health.path : "" } : { kind: "", port: 0 },
        };
      }),
    };
  }

  // ---- step 4: preflight ----------------------------------------------------

  async function runPreflight() {
    show($("#preflight-error"), "");
    const s = setup();
    if (s.nodes.length === 0) {
      show($("#preflight-error"), "Add nodes first (step 2).");
      return;
    }
    $("#preflight-summary").textContent = "connecting to " + s.nodes.length + " node(s)…";
    $("#preflight-results").dataset.state = "running";
    try {
      state.preflight = await api("/api/v1/wizard/preflight", s);
      renderPreflight();
    } catch (e) {
      $("#preflight-summary").textContent = "";
      show($("#preflight-error"), "Preflight failed: " + e.message);
    } finally {
      $("#preflight-results").dataset.state = "done";
    }
  }

  function renderPreflight() {
    const rep = state.preflight;
    const box = $("#preflight-results");
    box.replaceChildren();
    let unknown = 0;
    for (const n of rep.nodes) {
      const worst = ["fail", "warn", "skip", "pass"].find((s) => n.checks.some((c) => c.status === s)) || "pass";
      const k = n.hostKey;
      let keyBox = null;
      if (k) {
        const accept = k.status === "unknown" ? el("button", {
          type: "button", class: "small primary accept-key", text: "Accept this key", "data-hostport": n.hostport,
          onclick: (ev) => busy(ev.target, () => acceptKeys([n])),
        }) : null;
        if (k.status === "unknown") unknown++;
        keyBox = el("div", { class: "key " + k.status },
          el("div", {}, el("strong", { text: "Host key " }), el("span", { class: "badge " + keyBadge(k.status), text: k.status })),
          el("div", {}, el("code", { class: "fingerprint", text: k.type + " " + k.fingerprint })),
          k.known && k.known.length ? el("div", {}, "known_hosts holds: ", el("code", { text: k.known.join(", ") })) : null,
          accept);
      }
      box.append(el("div", { class: "card", "data-node": n.name, "data-status": worst },
        el("h2", {}, el("span", { text: n.name }), el("span", { class: "addr", text: n.hostport }), el("span", { class: "badge " + worst, text: worst })),
        keyBox,
        el("table", {}, el("tbody", {}, checkRows(n.checks)))));
    }
    const cnt = rep.counts || {};
    $("#preflight-summary").textContent = rep.nodes.length + " node(s): " +
      ["pass", "warn", "fail", "skip"].map((s) => (cnt[s] || 0) + " " + s).join(", ");
    const accAll = $("#accept-all");
    accAll.hidden = unknown < 2;
    accAll.textContent = "Accept all " + unknown + " unknown keys shown";
    markDone("preflight", !rep.nodes.some((n) => n.checks.some((c) => c.status === "fail" || c.status === "skip")));
  }

  // checkRows is one row per check, except that skipped checks in a row
  // with the same reason share one ("os, systemd, disk: needs a login").
  function checkRows(checks) {
    const rows = [];
    for (let i = 0; i < checks.length;) {
      const c = checks[i];
      let j = i + 1;
      while (c.status === "skip" && j < checks.length && checks[j].status === "skip" && checks[j].message === c.message) j++;
      const group = checks.slice(i, j);
      rows.push(el("tr", { "data-check": group.map((g) => g.name).join(" ") },
        el("td", { text: group.map((g) => g.name).join(", ") }),
        el("td", {}, el("span", { class: "badge " + c.status, text: c.status })),
        el("td", { class: "msg", text: c.message })));
      i = j;
    }
    return rows;
  }

  function keyBadge(status) {
    return status === "known" ? "pass" : status === "unknown" ? "warn" : "fail";
  }

  // acceptKeys writes the shown keys to known_hosts, then runs preflight
  // again so the nodes are checked with their keys trusted.
  async function acceptKeys(nodes) {
    show($("#preflight-error"), "");
    try {
      for (const n of nodes) {
        await api("/api/v1/wizard/hostkeys/accept", { hostport: n.hostKey.hostport || n.hostport, fingerprint: n.hostKey.fingerprint });
      }
    } catch (e) {
      show($("#preflight-error"), "Accepting the key failed: " + e.message);
      return;
    }
    await runPreflight();
  }

  // ---- step 5: review ---------------------------------------------------------

  async function runReview(edited) {
    show($("#review-error"), "");
    $("#review-summary").textContent = edited ? "checking your edits…" : "building the manifest and probing the nodes for the plan…";
    $("#problems").dataset.state = "running";
    try {
      const body = edited ? { manifest: $("#manifest-yaml").value } : { setup: setup() };
      state.review = await api("/api/v1/wizard/review", body);
      renderReview();
    } catch (e) {
      $("#review-summary").textContent = "";
      show($("#review-error"), "Review failed: " + e.message);
    } finally {
      $("#problems").dataset.state = "done";
    }
  }

  function renderReview() {
    const r = state.review;
    $("#manifest-yaml").value = r.manifest;
    renderProblems($("#problems"), r.problems, r.valid);
    $("#plan").textContent = r.plan || (r.planError ? "No plan: " + r.planError : "No plan: the manifest is not valid.");
    $("#review-summary").textContent = r.valid ? "The manifest is valid." : "The manifest has problems: fix them in the steps before, or edit it and check again.";
    markDone("review", r.valid);
  }

  function renderProblems(ul, problems, valid) {
    ul.replaceChildren();
    if (valid && !(problems || []).length) {
      ul.append(el("li", { class: "ok", text: "Valid: no problems." }));
    }
    for (const p of problems || []) {
      ul.append(el("li", { class: p.severity, "data-path": p.path },
        el("code", { text: p.path }), " ", p.severity === "warning" ? "warning: " : "", p.message));
    }
  }

  // ---- step 6: write ------------------------------------------------------------

  function renderWriteStep() {
    const r = state.review;
    $("#write-path").textContent = state.info.defaults.manifestPath;
    const exists = r ? r.manifestExists : state.info.defaults.manifestExists;
    $("#write-backup-note").textContent = exists ? "A manifest is there already: it is kept as a .bak-<time> file next to it." : "There is no manifest there yet.";
    const edited = r && $("#manifest-yaml").value !== r.manifest;
    const ok = r && r.valid && !edited && !r.written;
    $("#write-run").disabled = !ok;
    $("#write-hint").textContent = !r ? "Review the manifest first (step 5)." :
      edited ? "You edited the manifest after the last check: check your edits in step 5 first." :
        !r.valid ? "The reviewed manifest is not valid." :
          r.written ? "Written. To change it, go back, change something and review again." : "";
  }

  async function runWrite() {
    show($("#write-error"), "");
    const r = state.review;
    try {
      state.written = await api("/api/v1/wizard/write", { manifest: r.manifest, baseHash: r.baseHash });
    } catch (e) {
      const probs = e.data && e.data.problems;
      show($("#write-error"), "Not written: " + e.message + (probs ? "\n" + probs.map((p) => p.path + ": " + p.message).join("\n") : ""));
      return;
    }
    const w = state.written;
    const res = $("#write-result");
    res.replaceChildren(
      el("p", {}, el("span", { class: "badge pass", text: "written" }), " ", el("code", { text: w.path })),
      w.backup ? el("p", {}, "Previous manifest kept as ", el("code", { text: w.backup })) : null,
      el("p", { class: "hint" }, "sha256 ", el("code", { text: w.hash })));
    res.hidden = false;
    // A second write needs a new review, whose base is this file.
    r.written = true;
    r.manifestExists = true;
    markDone("write", true);
    watchDaemon(w.hash);
  }

  // watchDaemon follows the daemon's status until it runs the written
  // manifest and every node converged. Served by the daemon, the status
  // API is on the same origin; elsewhere the panel says so and stops.
  let watchTimer = null;
  function watchDaemon(hash) {
    clearTimeout(watchTimer);
    const box = $("#converge");
    box.hidden = false;
    const tick = async () => {
      let st;
      try {
        const r = await fetch("/api/v1/status", { credentials: "same-origin" });
        if (!r.ok) throw new Error(r.status + " " + r.statusText);
        st = await r.json();
      } catch (e) {
        $("#converge-status").textContent = "Daemon status unavailable here (" + e.message + "): follow it on the cluster page.";
        return;
      }
      // Until the daemon runs the new manifest, its nodes are the old one's.
      const nodes = st.hash === hash ? st.nodes || [] : [];
      const converged = nodes.filter((n) => n.converged).length;
      let text;
      if (st.hash !== hash) {
        text = st.loadError ? "The daemon rejected a manifest: " + st.loadError : "Waiting for the daemon to load the new manifest…";
      } else {
        text = "Manifest loaded (generation " + st.generation + "). " + converged + " of " + nodes.length + " node(s) converged.";
      }
      const done = st.hash === hash && nodes.length > 0 && converged === nodes.length;
      box.dataset.state = done ? "converged" : "converging";
      $("#converge-status").textContent = text + (done ? " The cluster matches the manifest." : "");
      $("#converge-nodes").replaceChildren(...nodes.map((n) => el("li", { "data-node": n.name },
        el("span", { class: "badge " + (n.converged ? "pass" : n.reachable ? "warn" : "fail"), text: n.converged ? "ok" : n.reachable ? "busy" : "down" }),
        " ", el("strong", { text: n.name }), " ", n.reason || "")));
      if (!done) watchTimer = setTimeout(tick, 2000);
    };
    tick();
  }

  // ---- start ------------------------------------------------------------------

  async function start() {
    initToken();
    for (const b of $$("[data-step]")) b.addEventListener("click", () => go(b.dataset.step));
    for (const b of $$("[data-next]")) b.addEventListener("click", () => go(b.dataset.next));
    $("#nodes-add").addEventListener("click", addNodes);
    for (const b of $$("[data-all-role]")) {
      b.addEventListener("click", () => {
        collect();
        const r = b.dataset.allRole;
        for (const n of state.nodes) {
          if (!r) n.roles = [];
          else if (!n.roles.includes(r)) n.roles.push(r);
        }
        renderNodes();
      });
    }
    $("#preflight-run").addEventListener("click", (ev) => busy(ev.target, runPreflight));
    $("#accept-all").addEventListener("click", (ev) => busy(ev.target, () =>
      acceptKeys(state.preflight.nodes.filter((n) => n.hostKey && n.hostKey.status === "unknown"))));
    $("#review-run").addEventListener("click", (ev) => busy(ev.target, () => runReview(false)));
    $("#review-recheck").addEventListener("click", (ev) => busy(ev.target, () => runReview(true)));
    $("#write-run").addEventListener("click", (ev) => busy(ev.target, runWrite).then(renderWriteStep));
    $("#manifest-yaml").addEventListener("input", () => markDone("review", false));

    try {
      state.info = await api("/api/v1/wizard/artifacts");
    } catch (e) {
      show($("#load-error"), "Cannot load the wizard's data: " + e.message);
      return;
    }
    const info = state.info;
    initSSH(info.defaults);
    initSSHHosts(info.defaults.sshConfigHosts || []);
    $("#artifacts-dir").textContent = info.dir || "(no artifacts folder configured)";
    $("#artifacts-convention").textContent = info.convention;
    if (info.error) show($("#load-error"), info.error);
    if (info.skipped && info.skipped.length) {
      show($("#artifacts-skipped"), "Skipped: " + info.skipped.map((s) => s.file + " (" + s.reason + ")").join("; "));
    }
    initComponents(info.artifacts);
    renderNodes();
    go("ssh");
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
