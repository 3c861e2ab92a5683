// Emergency banner of the receptionist board (SPEC §8): every emergency
// call is shown above everything else — extension, its name and location,
// the number dialled, the time, answered or not — until someone
// acknowledges it. board.js hands over its event stream (attach) and its
// API helper (load); everything from the network goes in as text.
"use strict";

(function () {
  const alerts = new Map(); // record id -> emergency (the API's shape)
  const done = new Set(); // ids acknowledged, so that a replayed event is ignored
  let api = null;
  const timeFmt = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

  function text(tag, cls, s) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    e.textContent = s;
    return e;
  }

  function upsert(e) {
    if (!e || !e.id || done.has(e.id) || e.acknowledged_at) return;
    const prev = alerts.get(e.id) || {};
    alerts.set(e.id, { ...prev, ...e, answered: Boolean(e.answered || prev.answered), disposition: e.disposition || prev.disposition || "" });
    render();
  }

  function drop(id) {
    done.add(id);
    alerts.delete(id);
    render();
  }

  // state of the call: answered, ended without answer, or still trying.
  function callState(a) {
    if (a.answered) return "answered";
    if (a.disposition) return "not answered (" + a.disposition.replace("_", " ") + ")";
    return "not answered yet";
  }

  function render() {
    const box = document.getElementById("emergency");
    if (!box) return;
    const items = [...alerts.values()].sort((a, b) => (a.at < b.at ? 1 : -1));
    box.replaceChildren(...items.map(card));
    box.hidden = items.length === 0;
  }

  function card(a) {
    const d = document.createElement("div");
    d.className = "alert";
    d.dataset.emergencyId = a.id;
    d.dataset.answered = a.answered ? "yes" : "no";
    const when = a.at ? timeFmt.format(new Date(a.at)) : "";
    d.append(
      text("strong", "what", "Emergency call"),
      text("span", "ext", "Extension " + (a.extension || "?") + (a.name ? " (" + a.name + ")" : "")),
      text("span", "location", a.location || "location unknown"),
      text("span", "dialled", "dialled " + (a.dialled || "?")),
      text("time", "when", when),
      text("span", "state", callState(a)),
    );
    const by = document.createElement("input");
    by.className = "by";
    by.placeholder = "Your name";
    by.maxLength = 100;
    by.setAttribute("aria-label", "Your name");
    by.value = localStorage.getItem("switchboard.name") || "";
    const ack = text("button", "ack", "Acknowledge");
    ack.type = "button";
    ack.addEventListener("click", async () => {
      ack.disabled = true;
      const name = by.value.trim();
      if (name) localStorage.setItem("switchboard.name", name);
      try {
        await api("POST", "/api/calls/" + encodeURIComponent(a.id) + "/acknowledge", name ? { by: name } : {});
        drop(a.id);
      } catch (e) {
        ack.disabled = false;
        d.append(text("span", "error", "Not acknowledged: " + e.message));
      }
    });
    d.append(by, ack);
    return d;
  }

  function onCall(m) {
    try {
      const c = JSON.parse(m.data).call;
      if (!c || !alerts.has(c.id)) return;
      upsert({ id: c.id, answered: Boolean(c.answered_at), disposition: c.ended_at ? c.disposition : "" });
    } catch (e) { console.error("bad call event", e); }
  }

  window.emergencyBoard = {
    // attach listens on the board's event stream.
    attach(es) {
      es.addEventListener("call.emergency", (m) => {
        try { upsert(JSON.parse(m.data)); } catch (e) { console.error("bad event call.emergency", e); }
      });
      es.addEventListener("call.emergency.acknowledged", (m) => {
        try { drop(JSON.parse(m.data).id); } catch (e) { console.error("bad acknowledgement", e); }
      });
      es.addEventListener("call.answered", onCall);
      es.addEventListener("call.ended", onCall);
    },
    // load shows the emergency calls nobody has acknowledged yet.
    async load(apiFn) {
      api = apiFn;
      const list = await api("GET", "/api/emergencies");
      for (const e of list.items || []) upsert(e);
    },
  };
})();
