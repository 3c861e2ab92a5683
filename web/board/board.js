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
    view: "board", // or "insights", "contact"
    recordingsBase: "", // recordings.base_url
    recordingsAtPBX: false, // Delete also deletes at the PBX
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
    $("contact").hidden = true;
    $("search").hidden = true;
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
      el("p", { class: "caller-name" }, (ct && ct.id) || c.contact_id ? contactLink((ct && ct.id) || c.contact_id, name, "caller-link") : name),
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
        c.contact_id ? contactLink(c.contact_id, who.name ? `${who.name} (${who.number})` : who.number) :
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
        m.contact_id ? contactLink(m.contact_id, missedName(m)) : el("span", { class: "who" }, missedName(m)),
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
      if (state.view === "contact") loadContact();
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
    if (rec.contact_id && rec.contact_id === cpage.id) contactStale();
  }

  // ------------------------------------------------------------ insights

  const insights = { timer: 0, stale: true, loading: false, again: false, seq: 0 };

  function showView(view) {
    state.view = view;
    $("board").hidden = view !== "board";
    $("insights").hidden = view !== "insights";
    $("contact").hidden = view !== "contact";
    if (view !== "contact") document.title = "Switchboard";
    if (view !== "contact" && contactPath.test(location.pathname)) history.pushState(null, "", "/");
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
      ...item("Satisfaction", sat.count ? `${sat.mean.toFixed(1)} / 5 (${numFmt.format(sat.count)})` : "–"),
      ...item("Resolved", r.resolved && r.resolved.count ? `${pctFmt.format(r.resolved.share)} (${numFmt.format(r.resolved.count)})` : "–"));
    fillChoices($("filter-hotline"), (r.hotlines || []).map((h) => [h.name, h.company || h.name]));
    fillChoices($("filter-campaign"), (r.campaigns || []).filter((c) => c.campaign).map((c) => [c.campaign, c.campaign]));
    $("charts").replaceChildren(...(data.charts || []).map(chartFigure));
    const top = r.top_callers || [];
    if (top.length) {
      $("charts").append(el("section", { class: "panel", "aria-labelledby": "top-links-h" },
        el("h3", { id: "top-links-h" }, "Most frequent callers: contact pages"),
        el("ol", { id: "top-callers", class: "rows" }, ...top.map((t) => el("li", {},
          contactLink(t.contact_id, t.name ? `${t.name} (${t.number || ""})` : (t.number || `Contact #${t.contact_id}`)),
          el("span", { class: "meta" }, plural(t.calls, "call", "calls")))))));
    }
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

  // ------------------------------------------------------------ contact page

  // The contact page (SPEC §8): /board/contacts/{id}, reached from call
  // rows, missed calls, the top callers and the search box. Its address is
  // a real link, so that it opens in a new tab, reloads and goes back.
  const contactPath = /^\/board\/contacts\/(\d+)$/;
  const cpage = { id: 0, contact: null, blocks: [], timer: 0, seq: 0 };

  function contactHref(id) { return `/board/contacts/${encodeURIComponent(id)}`; }

  // contactLink is a link to a contact's page that stays on the board.
  function contactLink(id, text, cls) {
    return el("a", { class: cls || "who", href: contactHref(id), onclick: (e) => followLink(e, contactHref(id)) }, text);
  }

  function followLink(e, href) {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return; // a new tab or window
    e.preventDefault();
    navigate(href);
  }

  function navigate(href) {
    if (location.pathname !== href) history.pushState(null, "", href);
    route();
  }

  // route shows what the address names: a contact's page or the board.
  function route() {
    const m = contactPath.exec(location.pathname);
    if (m) { openContact(Number(m[1])); return; }
    cpage.id = 0;
    showView(state.view === "contact" ? "board" : state.view);
  }

  async function openContact(id) {
    const fresh = cpage.id !== id;
    cpage.id = id;
    showView("contact");
    if (fresh) {
      cpage.contact = null;
      $("contact-id").textContent = `#${id}`;
      $("contact-name-big").textContent = "Loading…";
      $("contact-summary").textContent = "";
      for (const box of ["timeline", "c-numbers", "c-missed", "contact-charts"]) $(box).replaceChildren();
      $("contact-form").reset();
      for (const e of ["contact-error", "contact-form-error", "numbers-error"]) $(e).textContent = "";
      $("contact-h").focus();
    }
    await loadContact();
  }

  async function loadContact() {
    const id = cpage.id, seq = ++cpage.seq;
    if (!id) return;
    try {
      const [c, blocks] = await Promise.all([
        api("GET", `/api/contacts/${id}`),
        api("GET", "/api/blocks?limit=1000").catch(() => ({ items: [] })),
      ]);
      if (seq !== cpage.seq) return;
      cpage.contact = c;
      cpage.blocks = blocks.items || [];
      renderContact(c);
    } catch (e) {
      if (seq !== cpage.seq) return;
      $("contact-name-big").textContent = "";
      $("contact-error").textContent = e.status === 404 ? `There is no contact #${id}.` : `Could not load the contact: ${e.message}`;
      return;
    }
    await Promise.all([loadContactMissed(seq), loadTimeline(seq), loadContactCharts(seq)]);
  }

  // contactStale reloads the open contact page after a quiet second, when
  // a call, message or missed call may have changed it.
  function contactStale() {
    if (state.view !== "contact" || !cpage.id) return;
    clearTimeout(cpage.timer);
    cpage.timer = setTimeout(loadContact, 1000);
  }

  function displayName(c) { return c.name || (c.numbers && c.numbers[0] && (c.numbers[0].raw || c.numbers[0].e164)) || `Contact #${c.id}`; }

  function renderContact(c) {
    $("contact-name-big").textContent = displayName(c);
    document.title = `${displayName(c)} · Switchboard`;
    const parts = [c.company, c.calls_count ? plural(c.calls_count, "call", "calls") : "no calls yet",
      c.last_call_at ? `last ${when(c.last_call_at)}` : "", c.source ? `from ${c.source}` : ""].filter(Boolean);
    $("contact-summary").textContent = parts.join(" · ");
    // The form is filled only when nobody is typing in it.
    if (!$("contact-form").contains(document.activeElement)) {
      $("c-name").value = c.name || "";
      $("c-company").value = c.company || "";
      $("c-email").value = c.email || "";
      $("c-client-id").value = c.client_id || "";
      $("c-tags").value = (c.tags || []).join(", ");
      $("c-notes").value = (c.fields && c.fields.notes) || "";
    }
    renderNumbers(c);
  }

  function blocksOf(number) {
    return cpage.blocks.filter((b) => b.number === number && b.action !== "allow" && b.direction !== "out");
  }

  function renderNumbers(c) {
    const nums = c.numbers || [];
    const blocked = nums.some((n) => blocksOf(n.e164).length > 0);
    $("c-numbers").replaceChildren(...nums.map((n, i) => {
      const bl = blocksOf(n.e164);
      return el("li", { dataset: { e164: n.e164 } },
        el("span", { class: "who" }, n.raw && n.raw !== n.e164 ? `${n.raw}` : n.e164),
        n.raw && n.raw !== n.e164 ? el("span", { class: "meta" }, n.e164) : null,
        n.ext ? el("span", { class: "meta" }, `ext. ${n.ext}`) : null,
        bl.length ? el("span", { class: "tag blocked-tag", title: bl.map((b) => b.reason).join("; ") }, `blocked: ${bl[0].reason || "no reason"}`) : null,
        el("span", { class: "actions" },
          callBackLink(n.e164),
          el("button", { type: "button", class: "quiet remove-number", onclick: () => removeNumber(i), "aria-label": `Remove ${n.raw || n.e164}` }, "Remove")));
    }));
    const actions = nums.length ? el("li", { class: "block-all" },
      el("span", { class: "meta" }, blocked ? "Calls from this contact are refused." : "Calls from this contact ring through."),
      el("span", { class: "actions" }, blocked ?
        el("button", { type: "button", id: "c-allow", class: "quiet", onclick: allowContact }, "Allow calls") :
        el("button", { type: "button", id: "c-block", class: "danger", onclick: askBlockContact }, "Block calls"))) : null;
    if (actions) $("c-numbers").append(actions);
  }

  async function saveContact(ev) {
    ev.preventDefault();
    const c = cpage.contact;
    if (!c) return;
    const tags = $("c-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
    const body = {
      name: $("c-name").value.trim(), company: $("c-company").value.trim(), email: $("c-email").value.trim(),
      client_id: $("c-client-id").value.trim(), tags, fields: { notes: $("c-notes").value.trim() || null },
    };
    $("contact-form-error").textContent = "";
    const btn = $("contact-save");
    btn.disabled = true;
    try {
      const saved = await api("PATCH", `/api/contacts/${c.id}`, body);
      cpage.contact = saved;
      document.activeElement.blur();
      renderContact(saved);
      learnContact(saved);
      toast("Contact saved");
    } catch (e) {
      $("contact-form-error").textContent = `Could not save: ${e.message}`;
    } finally {
      btn.disabled = false;
    }
  }

  // learnContact tells the call lists the contact's new name at once.
  function learnContact(c) {
    for (const n of c.numbers || []) {
      const p = state.people.get(n.e164) || {};
      p.name = c.name; p.company = c.company;
      state.people.set(n.e164, p);
    }
    renderRecent();
  }

  async function patchNumbers(nums, errorPrefix) {
    const c = cpage.contact;
    $("numbers-error").textContent = "";
    try {
      const saved = await api("PATCH", `/api/contacts/${c.id}`, { numbers: nums });
      cpage.contact = saved;
      renderContact(saved);
      return true;
    } catch (e) {
      $("numbers-error").textContent = `${errorPrefix}: ${e.message}`;
      return false;
    }
  }

  function currentNumbers() {
    return (cpage.contact.numbers || []).map((n) => ({ e164: n.e164, raw: n.raw || n.e164, ext: n.ext || "" }));
  }

  async function addNumber(ev) {
    ev.preventDefault();
    const raw = $("c-number-new").value.trim();
    if (!raw || !cpage.contact) return;
    if (await patchNumbers([...currentNumbers(), raw], `Could not add ${raw}`)) {
      $("c-number-new").value = "";
      toast(`Added ${raw}`);
    }
  }

  async function removeNumber(i) {
    if (!cpage.contact) return;
    const nums = currentNumbers();
    const [gone] = nums.splice(i, 1);
    if (await patchNumbers(nums, "Could not remove the number")) toast(`Removed ${gone.raw}`);
  }

  function askBlockContact() {
    const c = cpage.contact;
    if (!c) return;
    $("cblock-who").textContent = displayName(c);
    $("cblock-numbers").textContent = (c.numbers || []).map((n) => n.raw || n.e164).join(", ");
    $("cblock-reason").value = "";
    $("cblock-error").textContent = "";
    $("contact-block-dialog").showModal();
    $("cblock-reason").focus();
  }

  async function confirmBlockContact(ev) {
    ev.preventDefault();
    const reason = $("cblock-reason").value.trim();
    if (!reason) { $("cblock-error").textContent = "Please give a reason."; return; }
    try {
      for (const n of cpage.contact.numbers || []) {
        if (blocksOf(n.e164).length) continue;
        await api("POST", "/api/blocks", { number: n.e164, action: "block", direction: "in", reason });
      }
      $("contact-block-dialog").close();
      toast(`Blocked ${displayName(cpage.contact)}`);
      await loadContact();
      $("c-allow") && $("c-allow").focus();
    } catch (e) {
      $("cblock-error").textContent = `Could not block: ${e.message}`;
    }
  }

  async function allowContact() {
    try {
      for (const n of cpage.contact.numbers || []) {
        for (const b of blocksOf(n.e164)) {
          if (b.id) await api("DELETE", `/api/blocks/${encodeURIComponent(b.id)}`);
        }
      }
      toast(`Calls from ${displayName(cpage.contact)} ring through again`);
      await loadContact();
      $("c-block") && $("c-block").focus();
    } catch (e) {
      $("numbers-error").textContent = `Could not allow: ${e.message}`;
    }
  }

  async function loadContactMissed(seq) {
    let items = [];
    try {
      const list = await api("GET", "/api/missed?status=open&limit=1000");
      items = (list.items || []).filter((m) => m.contact_id === cpage.id);
    } catch (e) { /* missed calls not available */ }
    if (seq !== cpage.seq) return;
    $("c-missed").replaceChildren(...items.map((m) => el("li", { dataset: { missedId: String(m.id) } },
      el("span", { class: "when" }, when(m.last_call_at || m.created_at || "")),
      m.count > 1 ? el("span", { class: "tag" }, `×${m.count}`) : null,
      el("span", { class: "meta" }, company({ hotline: m.hotline })),
      el("span", { class: "actions" },
        el("button", { type: "button", class: "processed", onclick: async () => { await markProcessed(m); loadContact(); } }, "Mark processed")))));
    $("c-missed-count").textContent = String(items.length);
    $("c-missed-empty").hidden = items.length > 0;
  }

  async function loadTimeline(seq) {
    let items = [];
    try {
      const t = await api("GET", `/api/trace?contact_id=${cpage.id}&months=12&limit=200`);
      items = t.items || [];
    } catch (e) {
      if (seq === cpage.seq) $("contact-error").textContent = `Could not load the timeline: ${e.message}`;
      return;
    }
    if (seq !== cpage.seq) return;
    const at = (x) => x.kind === "message" ? x.at : x.started_at;
    items.sort((a, b) => (at(a) || "") < (at(b) || "") ? 1 : -1);
    $("timeline").replaceChildren(...items.map((x) => x.kind === "message" ? messageItem(x) : callItem(x)));
    $("timeline-empty").hidden = items.length > 0;
  }

  const fullFmt = new Intl.DateTimeFormat(locales, { dateStyle: "medium", timeStyle: "short" });
  function fullWhen(iso) { const d = new Date(iso || ""); return isNaN(d) ? "" : fullFmt.format(d); }

  function callItem(c) {
    const inbound = c.direction !== "outbound";
    const disp = c.disposition || "in progress";
    const wrap = [c.reason ? `reason: ${c.reason}` : "", c.satisfaction ? `satisfaction ${c.satisfaction}/5` : "",
      c.resolved === true ? "resolved" : c.resolved === false ? "not resolved" : ""].filter(Boolean).join(" · ");
    return el("li", { class: "kind-call", dataset: { callId: c.id, disposition: c.disposition || "" } },
      el("span", { class: "when" }, fullWhen(c.started_at)),
      el("span", { "aria-label": inbound ? "incoming call" : "outgoing call", title: inbound ? "incoming call" : "outgoing call" }, inbound ? "↙" : "↗"),
      el("span", { class: "who" }, [company(c) || (inbound ? "Incoming call" : "Outgoing call"), c.campaign].filter(Boolean).join(" · ")),
      el("span", { class: `tag disp-${c.disposition || "ringing"}` }, disp.replace("_", " ")),
      el("span", { class: "meta" }, [c.ring_ms ? `rang ${duration(c.ring_ms)}` : "", c.disposition === "answered" ? `talked ${duration(c.talk_ms)}` : "",
        answeredBy(c)].filter(Boolean).join(" · ")),
      el("span", { class: "actions" },
        c.ended_at ? el("button", { type: "button", class: "quiet wrapup", onclick: () => openWrapUp(c) }, hasWrapUp(c) ? "Edit wrap-up" : "Wrap up") : null),
      wrap ? el("p", { class: "detail wrap" }, wrap) : null,
      c.notes ? el("p", { class: "detail notes" }, `Notes: ${c.notes}`) : null,
      recordingLine(c),
      c.transcript ? el("details", { class: "transcript" }, el("summary", {}, "Transcript"), el("pre", {}, c.transcript)) : null);
  }

  function messageItem(m) {
    const received = m.direction !== "sent";
    return el("li", { class: "kind-message", dataset: { messageId: String(m.id) } },
      el("span", { class: "when" }, fullWhen(m.at)),
      el("span", { "aria-label": received ? "text received" : "text sent", title: received ? "text received" : "text sent" }, received ? "↙" : "↗"),
      el("span", { class: "who" }, received ? "Text received" : "Text sent"),
      m.status ? el("span", { class: "tag" }, String(m.status)) : null,
      el("span", { class: "meta" }, [m.trunk, m.source ? `from ${m.source}` : "", m.content_type].filter(Boolean).join(" · ")),
      el("p", { class: "detail content" }, m.content || ""));
  }

  // recordingURL is where Listen plays a reference: an http(s) URL as it
  // is, a relative one joined to recordings.base_url; null for anything
  // else (SPEC §2: no other scheme is ever rendered).
  function recordingURL(ref) {
    let u;
    try {
      u = state.recordingsBase ? new URL(ref, state.recordingsBase) : new URL(ref);
    } catch (e) { return null; }
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  }

  function recordingLine(c) {
    if (!c.recording) return el("p", { class: "detail recording" }, "Recording: N/A");
    const url = recordingURL(c.recording);
    return el("p", { class: "detail recording" }, "Recording: ", el("span", { class: "tag stored" }, "Stored"), " ",
      url ? el("audio", { controls: true, preload: "none", src: url, "aria-label": `Recording of the call of ${fullWhen(c.started_at)}` }) :
        el("span", { class: "muted" }, "(no playable address)"), " ",
      el("button", { type: "button", class: "quiet delete-recording", onclick: (e) => deleteRecording(c, e.currentTarget) }, "Delete recording"),
      el("span", { class: "recording-outcome", role: "status" }));
  }

  // deleteRecording asks once more on the button itself (a second press
  // deletes), so that a stray click or key press deletes nothing.
  async function deleteRecording(c, btn) {
    if (!btn.dataset.armed) {
      btn.dataset.armed = "1";
      btn.textContent = state.recordingsAtPBX ? "Delete at the PBX? Press again" : "Remove the reference? Press again";
      btn.classList.add("danger");
      return;
    }
    btn.disabled = true;
    const out = document.querySelector(`#timeline li[data-call-id="${CSS.escape(c.id)}"] .recording-outcome`);
    try {
      const res = await api("DELETE", `/api/calls/${encodeURIComponent(c.id)}/recording`);
      toast(`Recording deleted: ${res.message}`);
      await loadTimeline(cpage.seq);
    } catch (e) {
      if (out) out.textContent = `Not deleted: ${e.message}`;
      toast(`Recording not deleted: ${e.message}`);
      btn.disabled = false;
    }
  }

  async function loadContactCharts(seq) {
    try {
      const theme = matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
      const data = await api("GET", `/api/contacts/${cpage.id}/charts?theme=${theme}`);
      if (seq !== cpage.seq) return;
      const r = data.report || {};
      const res = r.resolved || {};
      if (res.count) $("contact-summary").textContent += ` · ${pctFmt.format(res.share)} of ${plural(res.count, "call", "calls")} resolved`;
      $("contact-charts").replaceChildren(...(data.charts || []).map(chartFigure));
    } catch (e) {
      if (seq === cpage.seq) $("contact-charts").replaceChildren(el("p", { class: "empty" }, `Charts not available: ${e.message}`));
    }
  }

  // ------------------------------------------------------------ search

  const search = { timer: 0, seq: 0, items: [] };

  function onSearchInput() {
    clearTimeout(search.timer);
    search.timer = setTimeout(runSearch, 250);
  }

  async function runSearch() {
    const q = $("search-q").value.trim();
    const box = $("search-results");
    if (!q) { box.hidden = true; box.replaceChildren(); search.items = []; return; }
    const seq = ++search.seq;
    try {
      const list = await api("GET", `/api/contacts?q=${encodeURIComponent(q)}&limit=8`);
      if (seq !== search.seq) return;
      search.items = list.items || [];
    } catch (e) {
      if (seq !== search.seq) return;
      search.items = [];
    }
    box.replaceChildren(...(search.items.length ? search.items.map((c) => el("li", {},
      el("a", { href: contactHref(c.id), onclick: (e) => { closeSearch(); followLink(e, contactHref(c.id)); } },
        [displayName(c), c.company, c.numbers && c.numbers[0] ? (c.numbers[0].raw || c.numbers[0].e164) : "", c.email, c.client_id]
          .filter(Boolean).filter((v, i, a) => a.indexOf(v) === i).join(" · ")))) :
      [el("li", { class: "empty" }, "No contact found.")]));
    box.hidden = false;
    $("search-status").textContent = search.items.length ? plural(search.items.length, "contact found", "contacts found") : "No contact found.";
  }

  function closeSearch() {
    $("search-results").hidden = true;
  }

  async function submitSearch(ev) {
    ev.preventDefault();
    clearTimeout(search.timer);
    await runSearch();
    if (search.items.length === 1 || (search.items.length > 0 && ev.submitter !== undefined)) {
      closeSearch();
      navigate(contactHref(search.items[0].id));
    }
  }

  function searchKeys(ev) {
    const links = [...$("search-results").querySelectorAll("a")];
    const i = links.indexOf(document.activeElement);
    if (ev.key === "Escape") { closeSearch(); $("search-q").focus(); return; }
    if (ev.key === "ArrowDown" && links.length) { ev.preventDefault(); links[Math.min(i + 1, links.length - 1)].focus(); }
    if (ev.key === "ArrowUp" && links.length) { ev.preventDefault(); if (i <= 0) $("search-q").focus(); else links[i - 1].focus(); }
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
      if (c.contact_id && c.contact_id === cpage.id) contactStale();
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
        contactStale();
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
    $("search").hidden = false;
    route();
    $("signout").hidden = !signedIn;
    try {
      const cfg = await api("GET", "/api/board");
      state.linkPrefix = cfg.link_prefix || "tel:";
      state.reasons = cfg.wrapup_reasons || [];
      $("wrapup-reasons").replaceChildren(...state.reasons.map((r) => el("option", { value: r })));
      if (cfg.title) { $("title").textContent = cfg.title; }
      state.recordingsBase = cfg.recordings_base_url || "";
      state.recordingsAtPBX = Boolean(cfg.recordings_delete_at_pbx);
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
    $("search").addEventListener("submit", submitSearch);
    $("search-q").addEventListener("input", onSearchInput);
    $("search").addEventListener("keydown", searchKeys);
    document.addEventListener("click", (e) => { if (!$("search").contains(e.target)) closeSearch(); });
    $("contact-form").addEventListener("submit", saveContact);
    $("number-form").addEventListener("submit", addNumber);
    $("contact-block-form").addEventListener("submit", confirmBlockContact);
    $("cblock-cancel").addEventListener("click", () => $("contact-block-dialog").close());
    $("contact-back").addEventListener("click", (e) => followLink(e, "/"));
    window.addEventListener("popstate", route);
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
