// /staff/alerts: asks /staff/alerts.json every few seconds and shows the newest alerts
// first. Plain DOM, no library; text only through textContent (never innerHTML).
"use strict";
(function () {
  const table = document.getElementById("alerts");
  if (!table) return;
  const state = document.getElementById("alerts-state");
  const body = table.tBodies[0];
  const prefix = table.dataset.regionPrefix || "";
  const every = (Number(table.dataset.pollS) || 3) * 1000;
  const shown = new Set();

  function statusText(code) {
    // NO_RECORD is data-status-no-record on the table, dataset.statusNoRecord here: the
    // page's words for it, in the page's language (the catalogues, not this script).
    const words = code.toLowerCase().split("_").map((w) => w.charAt(0).toUpperCase() + w.slice(1));
    return table.dataset["status" + words.join("")] || code;
  }

  function row(alert) {
    const tr = document.createElement("tr");
    tr.dataset.alertId = alert.alert_id;
    tr.className = "alert-row status-" + alert.status.toLowerCase();
    const cells = [
      alert.seen_at.replace("T", " ").slice(0, 19),
      alert.plate,
      statusText(alert.status),
      alert.lapsed_since ? alert.lapsed_since.slice(0, 10) : "—",
      alert.region_code,
      alert.camera_id,
    ];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    return tr;
  }

  async function poll() {
    try {
      const answer = await fetch("/staff/alerts.json?region_prefix=" + encodeURIComponent(prefix), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (answer.redirected || !answer.ok) {
        state.textContent = state.dataset.msgEnded;
        return;
      }
      const data = await answer.json();
      for (const alert of data.alerts) {  // oldest first: each new one goes on top
        if (shown.has(alert.alert_id)) continue;
        shown.add(alert.alert_id);
        body.insertBefore(row(alert), body.firstChild);
      }
      const time = new Date().toLocaleTimeString(table.dataset.timeLocale || "zh-CN");
      state.textContent = state.dataset.msgCount
        .replace("{count}", String(shown.size))
        .replace("{time}", time);
    } catch (error) {
      state.textContent = state.dataset.msgFailed;
    }
    setTimeout(poll, every);
  }
  poll();
})();
