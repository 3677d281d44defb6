// The status (and "collecting now") page: poll the JSON while the job is scheduled or
// running and move the progress bar, counters, time left, previews and event log
// without reloading. The counters sit in a polite live region: they are rewritten only
// when they change, so a screen reader hears each change once.
(function () {
  "use strict";
  const root = document.getElementById("status-root");
  if (!root) return;
  const bar = document.getElementById("progress-bar");
  const setBar = p => { bar.style.width = p + "%"; document.getElementById("progress").setAttribute("aria-valuenow", p); };
  setBar(parseInt(bar.dataset.percent || "0", 10));
  let status = root.dataset.status;
  if (status !== "scheduled" && status !== "running") return;
  const text = (id, value) => { const el = document.getElementById(id); if (el && el.textContent !== String(value)) el.textContent = value; };
  function showThumbs(data) {
    const box = document.getElementById("previews"), list = document.getElementById("thumbs");
    if (!box || !data.thumbs.length) return;
    box.hidden = false;
    text("thumbs-shown", `${data.thumbs.length} of ${data.thumbs_total} shown`);
    for (let i = list.children.length; i < data.thumbs.length; i++) {
      const t = data.thumbs[i];
      const img = document.createElement("img");
      img.src = t.src; img.alt = `Image ${t.n}`; img.width = 100; img.height = 100;
      const li = document.createElement("li"); li.append(img); list.append(li);
    }
  }
  let delay = 1500;
  async function poll() {
    try {
      const response = await fetch(root.dataset.json, {headers: {"Accept": "application/json"}, cache: "no-store"});
      if (response.status === 404 || response.status === 410) { window.location.reload(); return; }
      if (!response.ok) throw new Error("status " + response.status);  // busy or down: ask again later
      delay = 1500;
      const data = await response.json();
      setBar(data.percent);
      text("c-found", data.found); text("c-downloaded", data.downloaded); text("c-rejected", data.rejected);
      text("time-left", data.time_left ? " · " + data.time_left : "");
      const word = document.getElementById("status-word");
      if (word.textContent !== data.status_text) { word.textContent = data.status_text; word.className = "badge badge-" + data.status; }
      showThumbs(data);
      const list = document.getElementById("events");
      if (list) list.replaceChildren(...data.events.map(e => {
        const li = document.createElement("li"); li.className = "event-" + e.level;
        const t = document.createElement("time"); t.textContent = e.at.slice(11, 19);
        li.append(t, " " + e.message); return li;
      }));
      if (data.status !== status) {
        status = data.status;
        if (status !== "scheduled" && status !== "running") {
          if (root.dataset.finalUrl) window.location.assign(root.dataset.finalUrl); else window.location.reload();
          return;
        }
      }
    } catch (err) {
      delay = Math.min(delay * 2, 30000);  // a blip or an error answer: back off, never give up
    }
    setTimeout(poll, delay);
  }
  setTimeout(poll, 1000);
})();
