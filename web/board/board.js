// Switchboard receptionist board. Plain JavaScript, no build step, no
// dependencies. Every value that came from the network is put on the page
// with textContent, never parsed as markup: caller names are chosen by whoever
// calls.
"use strict";

(function () {
  const RECENT_MAX = 30;
  const $ = (id) => document.getElementById(id);

  const state = {
    csrf: "",
    linkPrefix: "tel:",
    ringing: new Map(), // record id -> call event
    active: new Map(), // record id -> call event
    ended: new Set(), // record ids seen ended, so a late ringing is ignored
    recent: [], // call records, newest first
    missed: [], // missed-call entries
    missedAvailable: true,
    companies: new Map(), // hotline name -> company, learnt from events
    people: new Map(), // remote number -> {name, company, national}, learnt from events
    es: null,
    lastId: "",
  };

  // ------------------------------------------------------------ DOM helpers

  // el builds an element; strings among children become text nodes.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  let toastTimer = 0;
  function toast(msg) {
    const t = $("toast");
    t.textContent = msg;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  function setStatus(s, text) {
    const st = $("status");
    st.dataset.state = s;
    st.textContent = text;
  }

  // ------------------------------------------------------------ formatting

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const dateFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const today = new Date();
    return d.toDateString() === today.toDateString() ? timeFmt.format(d) : dateFmt.format(d);
  }

  function duration(ms) {
    if (!(ms >= 0)) ms = 0;
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
  }

  function since(iso) {
    const t = Date.parse(iso || "");
    return isNaN(t) ? "" : duration(Date.now() - t);
  }

  // remote is the party outside the PBX: the caller inbound, the callee outbound.
  function remoteNumber(call) {
    return call.direction === "outbound" ? (call.called || call.called_raw) : (call.caller || call.caller_raw);
  }

  function company(call, hotline) {
    if (hotline && hotline.company) return hotline.company;
    if (call.hotline && state.companies.has(call.hotline)) return state.companies.get(call.hotline);
    return call.hotline || "";
  }

  // person is what the board knows of a call's remote party: the name and
  // company of its contact (from call events), else the display name
  // received, and the number in the most readable form known.
  function person(c) {
    const number = remoteNumber(c);
    const p = (number && state.people.get(number)) || {};
    const name = p.name || (c.direction !== "outbound" ? c.caller_name : "") || "";
    return { name, company: p.company || "", number: p.national || number || c._national || "unknown number" };
  }

  function learn(ev) {
    const c = ev.call;
    const number = remoteNumber(c);
    const national = c.direction === "outbound" ? ev.called_national : ev.caller_national;
    if (national) c._national = national;
    if (!number) return;
    const p = state.people.get(number) || {};
    if (ev.contact) { p.name = ev.contact.name; p.company = ev.contact.company; }
    if (national) p.national = national;
    state.people.set(number, p);
  }

  function plural(n, one, many) { return `${n} ${n === 1 ? one : many}`; }

  // ------------------------------------------------------------ API

  class HTTPError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
      if (body !== undefined) headers["Content-Type"] = "application/json";
    }
    const resp = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      if (resp.status === 401 && path !== "/api/session") showSignIn("Your session has ended; please sign in again.");
      throw new HTTPError(resp.status, (data && data.error) || resp.statusText);
    }
    return data;
  }

  // ------------------------------------------------------------ sign-in

  function showSignIn(msg) {
    if (state.es) { state.es.close(); state.es = null; }
    $("board").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = msg || "";
    setStatus("offline", "Signed out");
    $("token").focus();
  }

  async function signIn(ev) {
    ev.preventDefault();
    const btn = ev.target.querySelector("button[type=submit]");
    btn.disabled = true;
    $("signin-error").textContent = "";
    try {
      const s = await api("POST", "/api/session", { token: $("token").value });
      $("token").value = "";
      state.csrf = s.csrf || "";
      await startBoard(true);
    } catch (e) {
      $("signin-error").textContent = e.status === 429 ? `Too many attempts. ${e.message}` :
        e.status === 401 ? "Wrong token." : `Sign-in failed: ${e.message}`;
      $("token").select();
    } finally {
      btn.disabled = false;
    }
  }

  async function signOut() {
    try { await api("DELETE", "/api/session"); } catch (e) { /* signed out anyway */ }
    state.csrf = "";
    showSignIn("");
  }

  // ------------------------------------------------------------ rendering

  function renderRinging() {
    const box = $("ringing");
    const cards = [...state.ringing.values()].sort((a, b) => a.call.started_at < b.call.started_at ? -1 : 1);
    box.replaceChildren(...cards.map(ringCard));
    $("ringing-count").textContent = String(cards.length);
    $("ringing-empty").hidden = cards.length > 0;
    document.title = cards.length ? `(${cards.length}) ringing · Switchboard` : "Switchboard";
  }

  function ringCard(ev) {
    const c = ev.call, h = ev.hotline, ct = ev.contact;
    const name = (ct && ct.name) || c.caller_name || "Unknown caller";
    const number = c.direction === "outbound" ? (ev.called_national || remoteNumber(c)) : (ev.caller_national || remoteNumber(c));
    let history = "First call";
    if (ct && ct.calls_count > 0) {
      history = `${plural(ct.calls_count, "earlier call", "earlier calls")}`;
      if (ct.last_call_at) history += ` · last ${when(ct.last_call_at)}`;
    } else if (!ct) {
      history = "Unknown number";
    }
    return el("article", { class: "card", dataset: { callId: c.id }, "aria-label": `Ringing: ${name}` },
      el("span", { class: "duration", dataset: { since: c.started_at }, title: "Ringing for" }, since(c.started_at)),
      el("p", { class: "company" }, company(c, h) || (c.direction === "outbound" ? "Outgoing call" : "Incoming call")),
      h && h.greeting ? el("p", { class: "greeting" }, `“${h.greeting}”`) : null,
      el("p", { class: "caller-name" }, name),
      ct && ct.company ? el("p", { class: "caller-company" }, ct.company) : null,
      el("p", { class: "number" }, number || "no number"),
      el("p", { class: "history" }, history),
      ct && ct.open_missed > 0 ? el("p", { class: "open-missed" }, plural(ct.open_missed, "open missed call", "open missed calls")) : null,
    );
  }

  function renderActive() {
    const list = [...state.active.values()];
    $("active").replaceChildren(...list.map((ev) => {
      const c = ev.call, ct = ev.contact;
      return el("li", { dataset: { callId: c.id } },
        el("span", { class: "who" }, (ct && ct.name) || person(c).name || person(c).number),
        el("span", { class: "meta" }, [company(c, ev.hotline), ct && ct.company].filter(Boolean).join(" · ")),
        el("span", { class: "duration", dataset: { since: c.answered_at || c.started_at }, title: "Talking for" },
          since(c.answered_at || c.started_at)));
    }));
    $("active-count").textContent = String(list.length);
    $("active-empty").hidden = list.length > 0;
  }

  function renderRecent() {
    $("recent").replaceChildren(...state.recent.map((c) => {
      const number = remoteNumber(c);
      const inbound = c.direction !== "outbound";
      const who = person(c);
      const talk = c.disposition === "answered" ? duration(c.talk_ms) : "";
      return el("li", { dataset: { callId: c.id, disposition: c.disposition || "" } },
        el("span", { class: "when" }, when(c.started_at)),
        el("span", { "aria-label": inbound ? "incoming" : "outgoing", title: inbound ? "incoming" : "outgoing" }, inbound ? "↙" : "↗"),
        el("span", { class: "who" }, who.name ? `${who.name} (${who.number})` : who.number),
        el("span", { class: "meta" }, [company(c), who.company].filter(Boolean).join(" · ")),
        el("span", { class: `tag disp-${c.disposition || "ringing"}` }, (c.disposition || "in progress").replace("_", " ")),
        talk ? el("span", { class: "duration" }, talk) : null,
        el("span", { class: "actions" },
          number && number.startsWith("+") ? callBackLink(number) : null,
          inbound && number && c.disposition !== "blocked" ? blockButton(number) : null));
    }));
    $("recent-empty").hidden = state.recent.length > 0;
  }

  function renderMissed() {
    const list = state.missed;
    $("missed").replaceChildren(...list.map((m) => {
      const at = m.last_call_at || m.created_at || m.started_at || "";
      return el("li", { dataset: { missedId: String(m.id) } },
        el("span", { class: "who" }, missedName(m)),
        m.count > 1 ? el("span", { class: "tag" }, `×${m.count}`) : null,
        el("span", { class: "meta" }, company({ hotline: m.hotline })),
        at ? el("span", { class: "when" }, when(at)) : null,
        m.exception ? el("span", { class: "tag", title: "not notified" }, m.exception.replace(/_/g, " ")) : null,
        el("span", { class: "actions" },
          el("button", { type: "button", class: "processed", onclick: () => markProcessed(m) }, "Mark processed"),
          m.caller && m.caller.startsWith("+") ? callBackLink(m.caller) : null,
          m.caller ? blockButton(m.caller) : null));
    }));
    $("missed-count").textContent = String(list.length);
    const empty = $("missed-empty");
    empty.hidden = list.length > 0;
    empty.textContent = state.missedAvailable ? "No open missed call." : "Missed calls are not available.";
  }

  function missedName(m) {
    const p = (m.caller && state.people.get(m.caller)) || {};
    const name = p.name || m.caller_name || "";
    const number = p.national || m.caller || "unknown number";
    return name ? `${name} (${number})` : number;
  }

  function callBackLink(number) {
    return el("a", { class: "button quiet callback", href: state.linkPrefix + number, "aria-label": `Call back ${number}` }, "Call back");
  }

  function blockButton(number) {
    return el("button", { type: "button", class: "quiet block", onclick: () => askBlock(number), "aria-label": `Block ${number}` }, "Block number");
  }

  // tick updates the running durations once a second without rebuilding lists.
  function tick() {
    // A ringing call whose end was never heard of (events lost while
    // offline) must not stay on the board: no call rings for ten minutes.
    const stale = Date.now() - 10 * 60 * 1000;
    let changed = false;
    for (const [id, ev] of state.ringing) {
      if (Date.parse(ev.call.started_at) < stale) { state.ringing.delete(id); changed = true; }
    }
    if (changed) renderRinging();
    for (const e of document.querySelectorAll("[data-since]")) {
      e.textContent = since(e.dataset.since);
    }
  }

  // ------------------------------------------------------------ actions

  async function markProcessed(m) {
    try {
      await api("POST", `/api/missed/${encodeURIComponent(m.id)}/processed`);
      state.missed = state.missed.filter((x) => x.id !== m.id);
      renderMissed();
      toast("Marked processed");
    } catch (e) {
      toast(`Could not mark processed: ${e.message}`);
    }
  }

  let blockTarget = "";
  let blockReturnFocus = null;
  function askBlock(number) {
    blockTarget = number;
    blockReturnFocus = document.activeElement;
    $("block-number").textContent = number;
    $("block-reason").value = "";
    $("block-error").textContent = "";
    $("block-dialog").showModal();
    $("block-reason").focus();
  }

  async function confirmBlock(ev) {
    ev.preventDefault();
    const reason = $("block-reason").value.trim();
    if (!reason) {
      $("block-error").textContent = "Please give a reason.";
      return;
    }
    try {
      await api("POST", "/api/blocks", { number: blockTarget, action: "block", direction: "in", reason });
      $("block-dialog").close();
      toast(`Blocked ${blockTarget}`);
    } catch (e) {
      $("block-error").textContent = `Could not block: ${e.message}`;
    }
  }

  // ------------------------------------------------------------ data

  async function loadRecent() {
    const list = await api("GET", `/api/calls?limit=${RECENT_MAX}`);
    const byId = new Map(state.recent.map((c) => [c.id, c]));
    for (const c of list.items || []) {
      if (c.ended_at) byId.set(c.id, c);
    }
    state.recent = [...byId.values()].sort((a, b) => a.started_at < b.started_at ? 1 : -1).slice(0, RECENT_MAX);
    renderRecent();
  }

  let missedTimer = 0;
  function reloadMissedSoon() {
    clearTimeout(missedTimer);
    missedTimer = setTimeout(() => { loadMissed().catch(() => {}); }, 100);
  }

  async function loadMissed() {
    try {
      const list = await api("GET", "/api/missed?status=open");
      state.missed = list.items || [];
      state.missedAvailable = true;
    } catch (e) {
      if (e.status === 404) state.missedAvailable = false;
      else throw e;
    }
    renderMissed();
  }

  function upsertRecent(c) {
    state.recent = [c, ...state.recent.filter((x) => x.id !== c.id)]
      .sort((a, b) => a.started_at < b.started_at ? 1 : -1).slice(0, RECENT_MAX);
  }

  function onCall(type, ev) {
    const c = ev.call;
    if (!c || !c.id) return;
    if (ev.hotline && c.hotline) state.companies.set(c.hotline, ev.hotline.company);
    learn(ev);
    if (type === "call.ended" || c.ended_at) {
      state.ringing.delete(c.id);
      state.active.delete(c.id);
      state.ended.add(c.id);
      upsertRecent(c);
      renderRecent();
      if (c.disposition === "no_answer" || c.disposition === "busy") reloadMissedSoon();
    } else if (type === "call.answered" || c.answered_at) {
      state.ringing.delete(c.id);
      if (!state.ended.has(c.id)) state.active.set(c.id, ev);
    } else if (!state.ended.has(c.id)) {
      // call.ringing, or any other event of a call that has not ended.
      const prev = state.ringing.get(c.id);
      state.ringing.set(c.id, prev ? { ...prev, ...ev, hotline: ev.hotline || prev.hotline, contact: ev.contact || prev.contact } : ev);
    }
    renderRinging();
    renderActive();
  }

  function connect() {
    if (state.es) state.es.close();
    // The first connection asks for the history from the start, so that
    // calls ringing right now appear with their hotline and contact;
    // later reconnects send Last-Event-ID on their own.
    const es = new EventSource("/api/events?last_event_id=0");
    state.es = es;
    es.onopen = () => setStatus("live", "Live");
    es.onerror = async () => {
      if (state.es !== es) return;
      setStatus("connecting", "Reconnecting…");
      if (es.readyState === EventSource.CLOSED) {
        // The server refused the stream (signed out, restarted with a new
        // token): find out which and start again.
        es.close();
        try {
          const s = await api("GET", "/api/session");
          if (s.auth_required && !s.signed_in) { showSignIn("Your session has ended; please sign in again."); return; }
        } catch (e) { /* try again below */ }
        setTimeout(() => { if (state.es === es) connect(); }, 2000);
      }
    };
    for (const t of ["call.ringing", "call.answered", "call.ended", "call.forwarded"]) {
      es.addEventListener(t, (m) => {
        try { onCall(t, JSON.parse(m.data)); } catch (e) { console.error("bad event", t, e); }
      });
    }
    for (const t of ["missed.created", "missed.processed"]) {
      es.addEventListener(t, (m) => {
        if (t === "missed.processed") {
          try {
            const d = JSON.parse(m.data);
            const id = d && (d.id || (d.missed && d.missed.id));
            if (id) { state.missed = state.missed.filter((x) => String(x.id) !== String(id)); renderMissed(); }
          } catch (e) { /* reload below */ }
        }
        reloadMissedSoon();
      });
    }
    es.addEventListener("reset", () => {
      // The history did not reach back far enough: what we show may be
      // stale, so it is loaded again.
      state.ringing.clear();
      state.active.clear();
      renderRinging();
      renderActive();
      loadRecent().catch(() => {});
      reloadMissedSoon();
    });
  }

  async function startBoard(signedIn) {
    $("signin").hidden = true;
    $("board").hidden = false;
    $("signout").hidden = !signedIn;
    try {
      const cfg = await api("GET", "/api/board");
      state.linkPrefix = cfg.link_prefix || "tel:";
      if (cfg.title) { $("title").textContent = cfg.title; }
    } catch (e) {
      if (e.status === 401) return;
    }
    connect();
    await Promise.all([loadRecent().catch(() => {}), loadMissed().catch(() => {})]);
  }

  function init() {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("block-form").addEventListener("submit", confirmBlock);
    $("block-cancel").addEventListener("click", () => $("block-dialog").close());
    $("block-dialog").addEventListener("close", () => {
      if (blockReturnFocus && document.contains(blockReturnFocus)) blockReturnFocus.focus();
    });
    setInterval(tick, 1000);
    renderRinging(); renderActive(); renderRecent(); renderMissed();
    boot();
  }

  async function boot() {
    let s;
    try {
      s = await api("GET", "/api/session");
    } catch (e) {
      if (e.status === 401) { showSignIn(""); return; } // a server that guards the session path too
      setStatus("offline", "Switchboard is not reachable");
      setTimeout(boot, 3000);
      return;
    }
    if (s.auth_required && !s.signed_in) { showSignIn(""); return; }
    state.csrf = s.csrf || "";
    await startBoard(s.auth_required);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
