// Write actions of the pages, through the documented API (the server decides who may):
// a silence from an alert, a new silence, expiring one, feedback on an anomaly or alert. A refusal is shown as the API said it.
"use strict";
async function dtkSend(method, url, body) {
  const r = await fetch(url, {
    method, credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!r.ok) {
    let text = r.status + " " + r.statusText;
    try { text = (await r.json()).error || text; } catch (e) { /* not JSON */ }
    const where = document.getElementById("action-error");
    if (where) where.textContent = text;
    return false;
  }
  return true;
}
document.addEventListener("click", async (ev) => {
  const b = ev.target;
  if (!(b instanceof HTMLButtonElement)) return;
  if (b.classList.contains("silence")) {
    const body = { matchers: JSON.parse(b.dataset.matchers), duration: b.dataset.duration, comment: "from the alerts page", created_by: "ui" };
    if (await dtkSend("POST", "/api/v1/silences", body)) location.href = "/ui/silences";
  } else if (b.classList.contains("label")) {
    const d = b.dataset;
    const body = { metric: d.metric, series: d.series, period: Number(d.period), label: d.label };
    if (d.until) body.until = Number(d.until);
    if (await dtkSend("POST", "/api/v1/feedback", body)) location.reload();
  } else if (b.classList.contains("unlabel")) {
    const q = new URLSearchParams({ metric: b.dataset.metric, series: b.dataset.series, period: b.dataset.period });
    if (await dtkSend("DELETE", "/api/v1/feedback?" + q)) location.reload();
  } else if (b.classList.contains("expire")) {
    if (await dtkSend("DELETE", "/api/v1/silences/" + encodeURIComponent(b.dataset.id))) location.reload();
  }
});
document.addEventListener("submit", async (ev) => {
  const f = ev.target;
  if (!(f instanceof HTMLFormElement) || f.id !== "new-silence") return;
  ev.preventDefault();
  const body = { matchers: f.matchers.value.trim().split(/\s+/), duration: f.duration.value, comment: f.comment.value, created_by: "ui" };
  if (await dtkSend("POST", "/api/v1/silences", body)) location.reload();
});
