// The job form: preselect the browser's time zone, show an estimate, check fields
// before submitting (the server checks everything again).
(function () {
  "use strict";
  const form = document.getElementById("job-form");
  if (!form) return;
  const zone = form.querySelector("#id_time_zone");
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const bound = form.querySelector(".has-error") !== null || zone.dataset.keep === "1";
  if (!bound && browserZone && Array.from(zone.options).some(o => o.value === browserZone) && zone.value === "UTC") {
    zone.value = browserZone;
    // Default date and time: now, in the browser's own zone.
    const now = new Date();
    const pad = n => String(n).padStart(2, "0");
    const date = form.querySelector("#id_run_date"), time = form.querySelector("#id_run_time");
    if (date) date.value = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
    if (time) time.value = `${pad(now.getHours())}:${pad(now.getMinutes())}`;
  }
  const count = form.querySelector("#id_count");
  const estimate = document.getElementById("estimate");
  // The same model as jobs/estimate.py, with its figures from the server.
  const model = JSON.parse(form.dataset.estimate);
  function estimateSeconds(n) {
    const pages = Math.ceil(Math.ceil(n * 3 / 2) / model.results_per_page);
    return Math.floor(model.browser_start + pages * model.per_page + n / model.parallel * model.per_slot + model.overhead);
  }
  function showEstimate() {
    const n = parseInt(count.value, 10);
    if (!(n >= 1 && n <= 500)) { estimate.textContent = ""; return; }
    const seconds = estimateSeconds(n);
    estimate.textContent = seconds < 90
      ? `Estimated time once it starts: about ${seconds} seconds.`
      : `Estimated time once it starts: about ${Math.round(seconds / 60)} minutes.`;
  }
  count.addEventListener("input", showEstimate);
  showEstimate();

  function setError(input, message) {
    const field = input.closest(".field");
    let box = field.querySelector(".error.client");
    if (!message) { if (box) box.remove(); field.classList.remove("has-error"); input.removeAttribute("aria-invalid"); return; }
    if (!box) { box = document.createElement("p"); box.className = "error client"; box.id = input.id + "_client_error"; field.appendChild(box); }
    box.textContent = message;
    field.classList.add("has-error");
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", box.id);
  }
  // Wall-clock time in a zone, as "YYYY-MM-DDTHH:MM", minutes from now.
  function wallClock(zoneName, minutesFromNow) {
    const at = new Date(Date.now() + minutesFromNow * 60000);
    const parts = {};
    new Intl.DateTimeFormat("en-CA", {timeZone: zoneName, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23"}).formatToParts(at).forEach(p => { parts[p.type] = p.value; });
    return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
  }
  // The server checks again (and knows about times the clocks skip).
  function runTimeProblem(day, timeOfDay, zoneName) {
    if (!day) return "Enter a date.";
    if (!/^\d{2}:\d{2}/.test(timeOfDay)) return "Enter a time like 14:30.";
    const maxDays = parseInt(form.dataset.maxDays, 10);
    let earliest, latest;
    try { earliest = wallClock(zoneName, -2); latest = wallClock(zoneName, maxDays * 1440); }
    catch (err) { return ""; }  // a zone this browser does not know: leave it to the server
    const chosen = `${day}T${timeOfDay.slice(0, 5)}`;
    if (chosen < earliest) return "That time has passed. Choose a time from now on.";
    if (chosen > latest) return `Choose a time within the next ${maxDays} days.`;
    return "";
  }
  form.addEventListener("submit", function (event) {
    const q = form.querySelector("#id_query"), url = form.querySelector("#id_page_url"), email = form.querySelector("#id_email");
    const problems = [];
    const check = (input, message) => { setError(input, message); if (message) problems.push(input); };
    const query = q.value.trim(), page = url.value.trim();
    check(q, !query && !page ? "Enter what to search for, or a page address." : query.length > 200 ? "Keep the search under 200 characters." : "");
    check(url, query && page ? "Give either a search or a page address, not both." : page && !/^https?:\/\/[^\s/]+/i.test(page) ? "Enter a web address starting with http:// or https://." : "");
    const n = Number(count.value);
    check(count, Number.isInteger(n) && n >= 1 && n <= 500 ? "" : "Enter a whole number from 1 to 500.");
    check(email, /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.value.trim()) ? "" : "Enter a valid email address.");
    const date = form.querySelector("#id_run_date"), time = form.querySelector("#id_run_time");
    check(date, runTimeProblem(date.value, time.value, zone.value));
    if (problems.length) { event.preventDefault(); problems[0].focus(); }
  });
})();
