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
    reasons: [], // wrapup.reasons from the config
    view: "board", // or "insights"
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

  // Times follow the browser's locale: the hour cycle (24-hour or AM/PM)
  // is the locale's, never fixed here.
  const locales = undefined;
  const timeFmt = new Intl.DateTimeFormat(locales, { timeStyle: "short" });
  const dateFmt = new Intl.DateTimeFormat(locales, { day: "numeric", month: "short", hour: "numeric", minute: "2-digit" });
  const numFmt = new Intl.NumberFormat(locales);
  const pctFmt = new Intl.NumberFormat(locales, { style: "percent", maximumFractionDigits: 0 });

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

  function answeredBy(c) { return c.answered_by ? `answered by ${c.answered_by}` : ""; }

  function hasWrapUp(c) { return Boolean(c.reason || c.satisfaction || c.notes || c.resolved != null || c.transcript); }

  function wrapSummary(c) {
    if (!hasWrapUp(c)) return null;
    const parts = [c.reason, c.satisfaction ? `${c.satisfaction}/5` : "", c.notes ? "notes" : "",
      c.resolved === true ? "resolved" : c.resolved === false ? "unresolved" : ""].filter(Boolean);
    return el("span", { class: "tag wrapped", title: c.notes || "" }, parts.join(" · "));
  }

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
    $("insights").hidden = true;
    $("views").hidden = true;
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
    // A known contact calling for the first time is "First call"; only a
    // number that matches no contact is "Not in contacts". A record with a
    // contact id whose details did not come along says neither.
    let history = "";
    if (ct && ct.calls_count > 0) {
      history = `${plural(ct.calls_count, "earlier call", "earlier calls")}`;
      if (ct.last_call_at) history += ` · last ${when(ct.last_call_at)}`;
    } else if (ct) {
      history = "First call";
    } else if (!c.contact_id && !(remoteNumber(c) && state.people.get(remoteNumber(c)) || {}).name) {
      history = "Not in contacts";
    }
    return el("article", { class: "card", dataset: { callId: c.id }, "aria-label": `Ringing: ${name}` },
      el("span", { class: "duration", dataset: { since: c.started_at }, title: "Ringing for" }, since(c.started_at)),
      el("p", { class: "company" }, company(c, h) || (c.direction === "outbound" ? "Outgoing call" : "Incoming call")),
      h && h.greeting ? el("p", { class: "greeting" }, `“${h.greeting}”`) : null,
      el("p", { class: "caller-name" }, name),
      ct && ct.company ? el("p", { class: "caller-company" }, ct.company) : null,
      el("p", { class: "number" }, number || "no number"),
      history ? el("p", { class: "history" }, history) : null,
      ct && ct.open_missed > 0 ? el("p", { class: "open-missed" }, plural(ct.open_missed, "open missed call", "open missed calls")) : null,
    );
  }

  function renderActive() {
    const list = [...state.active.values()];
    $("active").replaceChildren(...list.map((ev) => {
      const c = ev.call, ct = ev.contact;
      return el("li", { dataset: { callId: c.id } },
        el("span", { class: "who" }, (ct && ct.name) || person(c).name || person(c).number),
        el("span", { class: "meta" }, [company(c, ev.hotline), ct && ct.company, answeredBy(c)].filter(Boolean).join(" · ")),
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
        el("span", { class: "meta" }, [company(c), who.company, answeredBy(c)].filter(Boolean).join(" · ")),
        el("span", { class: `tag disp-${c.disposition || "ringing"}` }, (c.disposition || "in progress").replace("_", " ")),
        talk ? el("span", { class: "duration" }, talk) : null,
        wrapSummary(c),
        el("span", { class: "actions" },
          c.ended_at ? el("button", { type: "button", class: "quiet wrapup", onclick: () => openWrapUp(c),
            "aria-label": `Wrap up the call with ${who.name || who.number}` }, hasWrapUp(c) ? "Edit wrap-up" : "Wrap up") : null,
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

  // wrap-up: reason, satisfaction and notes of an ended call (SPEC §10),
  // saved with PATCH /api/calls/{id}.
  let wrapTarget = null;
  let wrapReturnFocus = null;
  function openWrapUp(c) {
    wrapTarget = c;
    wrapReturnFocus = document.activeElement;
    const who = person(c);
    $("wrapup-who").textContent = who.name || who.number;
    $("wrapup-when").textContent = [when(c.started_at), company(c), answeredBy(c)].filter(Boolean).join(" · ");
    $("wrapup-reason").value = c.reason || "";
    $("wrapup-notes").value = c.notes || "";
    const score = c.satisfaction ? String(c.satisfaction) : "";
    for (const r of document.querySelectorAll('#wrapup-form input[name="satisfaction"]')) r.checked = r.value === score;
    const res = c.resolved == null ? "" : String(c.resolved);
    for (const r of document.querySelectorAll('#wrapup-form input[name="resolved"]')) r.checked = r.value === res;
    $("wrapup-transcript").value = c.transcript || "";
    $("wrapup-error").textContent = "";
    $("wrapup-dialog").showModal();
    $("wrapup-reason").focus();
  }

  function resolvedPicked() {
    const r = document.querySelector('#wrapup-form input[name="resolved"]:checked');
    return r && r.value ? r.value === "true" : null;
  }

  async function saveWrapUp(ev) {
    ev.preventDefault();
    const c = wrapTarget;
    if (!c) return;
    const picked = document.querySelector('#wrapup-form input[name="satisfaction"]:checked');
    const body = {
      reason: $("wrapup-reason").value.trim(),
      satisfaction: picked && picked.value ? Number(picked.value) : null,
      notes: $("wrapup-notes").value.trim(),
      resolved: resolvedPicked(),
      transcript: $("wrapup-transcript").value.trim(),
    };
    const btn = $("wrapup-save");
    btn.disabled = true;
    try {
      const rec = await api("PATCH", `/api/calls/${encodeURIComponent(c.id)}`, body);
      onUpdated(rec);
      $("wrapup-dialog").close();
      toast("Wrap-up saved");
    } catch (e) {
      $("wrapup-error").textContent = `Could not save: ${e.message}`;
    } finally {
      btn.disabled = false;
    }
  }

  // onUpdated takes a changed record (a saved wrap-up, here or on another
  // board) into the recent calls.
  function onUpdated(rec) {
    if (!rec || !rec.id) return;
    if (!state.recent.some((x) => x.id === rec.id) && !rec.ended_at) return;
    upsertRecent(rec);
    renderRecent();
    insightsStale();
  }

  // ------------------------------------------------------------ insights

  const insights = { timer: 0, stale: true, loading: false, again: false, seq: 0 };

  function showView(view) {
    state.view = view;
    $("board").hidden = view !== "board";
    $("insights").hidden = view !== "insights";
    for (const b of document.querySelectorAll("#views button")) b.setAttribute("aria-pressed", String(b.dataset.view === view));
    if (view === "insights" && insights.stale) loadInsights();
  }

  // insightsStale is called on events that change the figures: the view
  // reloads them after a quiet second (a burst of calls costs one query),
  // or when it is shown next.
  function insightsStale() {
    insights.stale = true;
    if (state.view !== "insights") return;
    clearTimeout(insights.timer);
    insights.timer = setTimeout(loadInsights, 1000);
  }

  function localDay(d) {
    const two = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  }

  // insightsQuery builds the /api/stats parameters from the filter form.
  function insightsQuery() {
    const q = new URLSearchParams();
    const range = $("range").value;
    const midnight = (d) => { const m = new Date(d); m.setHours(0, 0, 0, 0); return m; };
    if (range === "today") {
      q.set("since", midnight(new Date()).toISOString());
    } else if (range === "custom") {
      const from = $("range-from").value, to = $("range-to").value;
      if (from) q.set("since", new Date(`${from}T00:00:00`).toISOString());
      if (to) { const u = new Date(`${to}T00:00:00`); u.setDate(u.getDate() + 1); q.set("until", u.toISOString()); }
    } else {
      const d = midnight(new Date());
      d.setDate(d.getDate() - (Number(range) - 1));
      q.set("since", d.toISOString());
    }
    if ($("filter-hotline").value) q.set("hotline", $("filter-hotline").value);
    if ($("filter-campaign").value) q.set("campaign", $("filter-campaign").value);
    q.set("theme", matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    return q;
  }

  async function loadInsights() {
    clearTimeout(insights.timer);
    if (insights.loading) { insights.again = true; return; }
    insights.loading = true;
    insights.stale = false;
    const seq = ++insights.seq;
    $("insights-status").textContent = "Loading…";
    try {
      const data = await api("GET", `/api/stats/charts?${insightsQuery()}`);
      if (seq === insights.seq) renderInsights(data);
      $("insights-status").textContent = `Updated ${timeFmt.format(new Date())}`;
    } catch (e) {
      insights.stale = true;
      $("insights-status").textContent = e.status === 404 ? "Insights are not available on this switchboard." : `Could not load: ${e.message}`;
    } finally {
      insights.loading = false;
      if (insights.again) { insights.again = false; loadInsights(); }
    }
  }

  function renderInsights(data) {
    const r = data.report || {};
    const t = r.totals || {};
    const sat = r.satisfaction || {};
    const item = (k, v) => [el("dt", {}, k), el("dd", {}, v)];
    $("totals").replaceChildren(
      ...item("Calls", numFmt.format(t.calls || 0)),
      ...item("Answered", numFmt.format(t.answered || 0)),
      ...item("Missed", numFmt.format(t.missed || 0)),
      ...item("Answer rate", pctFmt.format(t.answer_rate || 0)),
      ...item("Satisfaction", sat.count ? `${sat.mean.toFixed(1)} / 5 (${numFmt.format(sat.count)})` : "–"));
    fillChoices($("filter-hotline"), (r.hotlines || []).map((h) => [h.name, h.company || h.name]));
    fillChoices($("filter-campaign"), (r.campaigns || []).filter((c) => c.campaign).map((c) => [c.campaign, c.campaign]));
    $("charts").replaceChildren(...(data.charts || []).map(chartFigure));
  }

  // fillChoices adds the hotlines and campaigns seen to a filter, keeping
  // the choice and those seen before (a filtered report names only its own).
  function fillChoices(sel, pairs) {
    const have = new Set([...sel.options].map((o) => o.value));
    for (const [value, label] of pairs) {
      if (value && !have.has(value)) { sel.append(el("option", { value }, label)); have.add(value); }
    }
  }

  // chartFigure shows one server-drawn chart. The SVG goes in as an image
  // (a data: URL), so nothing in it can run or style the page.
  function chartFigure(c) {
    const fig = el("figure", { class: "panel chart", dataset: { chart: c.name } },
      el("figcaption", {}, el("h3", {}, c.title),
        c.svg ? el("ul", { class: "legend" }, ...(c.series || []).map((s) =>
          el("li", {}, el("span", { class: "swatch", dataset: { color: s.color } }), s.name))) : null));
    if (c.svg) {
      fig.append(el("img", { src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(c.svg)}`,
        alt: c.summary ? `${c.title}. ${c.summary}` : c.title }));
    } else {
      fig.append(el("p", { class: "empty" }, c.empty || "Nothing to show."));
    }
    for (const sw of fig.querySelectorAll(".swatch")) sw.style.backgroundColor = sw.dataset.color;
    return fig;
  }

  function onFilter() {
    const custom = $("range").value === "custom";
    for (const l of document.querySelectorAll("#insights-filter .custom")) l.hidden = !custom;
    loadInsights();
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
      insightsStale();
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
    es.addEventListener("call.updated", (m) => {
      try { const d = JSON.parse(m.data); onUpdated(d.call || d); } catch (e) { console.error("bad event call.updated", e); }
    });
    for (const t of ["missed.created", "missed.processed"]) {
      es.addEventListener(t, (m) => {
        insightsStale();
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
    if (window.emergencyBoard) window.emergencyBoard.attach(es);
    es.addEventListener("reset", () => {
      // The history did not reach back far enough: what we show may be
      // stale, so it is loaded again.
      state.ringing.clear();
      state.active.clear();
      renderRinging();
      renderActive();
      loadRecent().catch(() => {});
      reloadMissedSoon();
      insightsStale();
    });
  }

  async function startBoard(signedIn) {
    $("signin").hidden = true;
    $("views").hidden = false;
    showView(state.view);
    $("signout").hidden = !signedIn;
    try {
      const cfg = await api("GET", "/api/board");
      state.linkPrefix = cfg.link_prefix || "tel:";
      state.reasons = cfg.wrapup_reasons || [];
      $("wrapup-reasons").replaceChildren(...state.reasons.map((r) => el("option", { value: r })));
      if (cfg.title) { $("title").textContent = cfg.title; }
    } catch (e) {
      if (e.status === 401) return;
    }
    connect();
    const emergencies = window.emergencyBoard ? window.emergencyBoard.load(api).catch(() => {}) : null;
    await Promise.all([loadRecent().catch(() => {}), loadMissed().catch(() => {}), emergencies]);
  }

  function init() {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("block-form").addEventListener("submit", confirmBlock);
    $("block-cancel").addEventListener("click", () => $("block-dialog").close());
    $("block-dialog").addEventListener("close", () => {
      if (blockReturnFocus && document.contains(blockReturnFocus)) blockReturnFocus.focus();
    });
    $("wrapup-form").addEventListener("submit", saveWrapUp);
    $("wrapup-cancel").addEventListener("click", () => $("wrapup-dialog").close());
    $("wrapup-dialog").addEventListener("close", () => {
      // The row was probably drawn again meanwhile: return to its button.
      const row = wrapTarget && document.querySelector(`#recent li[data-call-id="${CSS.escape(wrapTarget.id)}"] button.wrapup`);
      const back = row || wrapReturnFocus;
      if (back && document.contains(back)) back.focus();
      wrapTarget = null;
    });
    for (const b of document.querySelectorAll("#views button")) b.addEventListener("click", () => showView(b.dataset.view));
    $("insights-filter").addEventListener("change", onFilter);
    // The charts are drawn for the colour scheme: draw them again when it changes.
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", insightsStale);
    $("insights-filter").addEventListener("submit", (e) => { e.preventDefault(); loadInsights(); });
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
