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
    // NO_RECORD is data-status-no-record on the table, dataset.statusNoRecord here.
    const words = code.toLowerCase().split("_").map((w) => w.charAt(0).toUpperCase() + w.slice(1));
    const zh = table.dataset["status" + words.join("")];
    return zh ? zh + " " + code : code;
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
        state.textContent = "会话已结束或请求有误，请刷新页面。 Session ended or bad request: reload the page.";
        return;
      }
      const data = await answer.json();
      let added = 0;
      for (const alert of data.alerts) {  // oldest first: each new one goes on top
        if (shown.has(alert.alert_id)) continue;
        shown.add(alert.alert_id);
        body.insertBefore(row(alert), body.firstChild);
        added += 1;
      }
      state.textContent = "共 " + shown.size + " 条告警，最近刷新 " + new Date().toLocaleTimeString("zh-CN") +
        (added ? "（新增 " + added + " 条）" : "") + " · " + shown.size + " alerts";
    } catch (error) {
      state.textContent = "暂时无法刷新，稍后重试。 Cannot refresh now; retrying.";
    }
    setTimeout(poll, every);
  }
  poll();
})();
