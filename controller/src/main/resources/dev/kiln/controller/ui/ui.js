// kiln ui: refreshes the fleet and snapshot tables, runs the actions, follows a log.
// Markup comes only from the server, which escapes every value; text from logs and messages is
// set as textContent, never parsed as HTML.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="kiln-csrf"]').content;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 3000;
  const LOG_MS = 1000;

  function say(text, bad) {
    const m = $("message");
    m.textContent = text;
    m.className = bad ? "error" : "";
  }

  // Deadlines as local time and time left (the server sends ISO-8601 UTC).
  function showTimes(root) {
    const now = Date.now();
    root.querySelectorAll("time.deadline").forEach((t) => {
      const d = new Date(t.getAttribute("datetime"));
      const sameDay = d.toDateString() === new Date(now).toDateString();
      t.textContent = sameDay ? d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"})
                              : d.toLocaleString([], {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
      t.title = d.toString();
    });
  }

  async function refreshFleet() {
    try {
      const r = await fetch("/fleet", {credentials: "same-origin"});
      const html = await r.text();
      if (r.status === 401) {
        $("refreshed").textContent = "the token is no longer valid: open the URL kiln ui printed";
        return;
      }
      const focused = document.activeElement && document.activeElement.id;
      $("fleet-rows").innerHTML = html;
      showTimes($("fleet-rows"));
      if (focused && $(focused)) {
        $(focused).focus(); // keyboard users keep their place across refreshes
      }
      $("refreshed").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (e) {
      $("refreshed").textContent = "cannot reach kiln ui (" + e.message + ")";
    }
  }

  async function refreshSnapshots() {
    try {
      const r = await fetch("/snapshots", {credentials: "same-origin"});
      $("snapshot-rows").innerHTML = await r.text();
    } catch (e) {
      // the fleet's refresh says so
    }
  }

  async function loop() {
    await refreshFleet();
    setTimeout(loop, REFRESH_MS);
  }

  async function post(path, params) {
    say("working: " + path.substring(1) + "…");
    const r = await fetch(path + "?" + new URLSearchParams(params), {
      method: "POST", credentials: "same-origin", headers: {"X-Kiln-CSRF": csrf}
    });
    let body;
    try {
      body = await r.json();
    } catch (e) {
      body = {ok: false, message: r.status + " " + (await r.text())};
    }
    say(body.message || (body.ok ? "done" : "failed"), !body.ok);
    refreshFleet();
    return body;
  }

  // The log view: asks for the bytes after the ones it has, every second, while it is open.
  let following = null;
  function follow(instance, log) {
    following = {instance: instance, log: log, offset: 0, decoder: new TextDecoder("utf-8"), id: Math.random()};
    const mine = following.id;
    $("log").hidden = false;
    $("log-name").textContent = log + " on " + instance;
    $("log-text").textContent = "";
    $("log-state").textContent = "following";
    const step = async () => {
      if (!following || following.id !== mine) {
        return;
      }
      let more = false;
      try {
        const q = new URLSearchParams({instance: instance, log: log, from: String(following.offset)});
        const r = await fetch("/log?" + q, {credentials: "same-origin"});
        const body = await r.json();
        if (body.error) {
          $("log-state").textContent = body.error;
          if (body.stop) {
            return; // the agent cannot serve this offset: asking again every second would not help
          }
        } else {
          const bytes = Uint8Array.from(atob(body.data), (c) => c.charCodeAt(0));
          const pre = $("log-text");
          const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          if (body.skipped) {
            following.decoder = new TextDecoder("utf-8");
            pre.append((pre.textContent === "" ? "" : "\n") + "[kiln ui: " + body.skipped
                       + " bytes rotated away before this point; the agent keeps only the newest]\n");
          }
          pre.append(following.decoder.decode(bytes, {stream: true}));
          following.offset = body.offset;
          pre.dataset.offset = String(body.offset);
          if (atEnd) {
            pre.scrollTop = pre.scrollHeight;
          }
          $("log-state").textContent = "following (" + body.offset + " bytes)";
          more = body.more;
        }
      } catch (e) {
        $("log-state").textContent = "cannot read the log (" + e.message + "); trying again";
      }
      setTimeout(step, more ? 0 : LOG_MS);
    };
    step();
    $("log").scrollIntoView();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("fleet-rows").addEventListener("click", async (ev) => {
      const b = ev.target.closest("button[data-action]");
      if (!b) {
        return;
      }
      const instance = b.closest("tr").dataset.instance;
      const action = b.dataset.action;
      if (action === "extend") {
        const by = b.dataset.by || window.prompt("Extend " + instance + "'s lease by (e.g. 30m, 2h):", "1h");
        if (by) {
          await post("/extend", {instance: instance, by: by.trim()});
        }
      } else if (action === "stop") {
        if (window.confirm("Stop " + instance + " now? Its builds are cancelled and it ends.")) {
          await post("/stop", {instance: instance});
        }
      } else if (action === "log") {
        follow(instance, b.dataset.log);
      }
    });
    $("stop-all").addEventListener("click", async () => {
      if (window.confirm("Stop every running instance now?")) {
        await post("/stop-all", {});
      }
    });
    $("log-close").addEventListener("click", () => {
      following = null;
      $("log").hidden = true;
    });
    const form = $("launch");
    if (form) {
      const template = $("launch-template");
      const choose = () => form.querySelectorAll("fieldset[data-template]").forEach((f) => {
        const on = f.dataset.template === template.value;
        f.hidden = !on;
        f.querySelectorAll("input").forEach((i) => { i.disabled = !on; });
      });
      template.addEventListener("change", choose);
      choose();
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const params = {};
        new FormData(form).forEach((v, k) => { params[k] = v; });
        $("launch-submit").disabled = true;
        try {
          await post("/launch", params);
        } finally {
          $("launch-submit").disabled = false;
        }
      });
    }
    loop();
    refreshSnapshots();
    setInterval(refreshSnapshots, 30000);
    setInterval(() => showTimes(document), 30000);
  });
})();
