// Spool Studio: follows logs while a job runs, and reloads a page that waits for a result.
// Pages work without it; it only adds live updates.
"use strict";

async function follow(pre) {
  let offset = 0;
  const url = pre.dataset.log;
  for (;;) {
    let size = offset;
    try {
      const response = await fetch(`${url}?offset=${offset}`, { credentials: "same-origin" });
      if (response.ok) {
        const text = await response.text();
        size = Number(response.headers.get("x-spool-size") || offset + text.length);
        if (text) {
          const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.append(text);
          if (atBottom) pre.scrollTop = pre.scrollHeight;
        }
        offset = size;
      }
    } catch (e) {
      // The server may be restarting; try again.
    }
    if (pre.dataset.follow !== "true") return;
    await new Promise((done) => setTimeout(done, 1000));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("pre[data-log]").forEach((pre) => follow(pre));
  const refresh = document.querySelector("meta[data-refresh]");
  if (refresh) setTimeout(() => location.reload(), Number(refresh.dataset.refresh));
  // A job still running: its status is polled; once it ends the page reloads to show how.
  const status = document.querySelector("[data-testid=status][data-live=true]");
  if (status) pollStatus(status);
});

async function pollStatus(badge) {
  for (;;) {
    await new Promise((done) => setTimeout(done, 1500));
    try {
      const response = await fetch(`${location.pathname}/status`, { credentials: "same-origin" });
      if (!response.ok) continue;
      const now = await response.json();
      badge.textContent = now.status;
      if (now.finished) {
        document.querySelectorAll("pre[data-log]").forEach((pre) => (pre.dataset.follow = "false"));
        setTimeout(() => location.reload(), 1500);
        return;
      }
    } catch (e) {
      // Try again.
    }
  }
}
