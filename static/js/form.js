// The job form: preselect the browser's time zone, show an estimate, say how many
// filters are set and what a repeat promises, and check the fields before posting
// with the server's own messages (data-messages; the server checks everything again).
// Errors follow the GOV.UK pattern: one summary at the top, focused, linking to each
// field, and one message by each field.
(function () {
  "use strict";
  const form = document.getElementById("job-form");
  if (!form) return;
  const say = JSON.parse(form.dataset.messages);
  const $ = selector => form.querySelector(selector);
  const zone = $("#id_time_zone");
  const bound = document.getElementById("error-summary") !== null;
  const pad = n => String(n).padStart(2, "0");
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!bound && browserZone && zone.value === "UTC" && Array.from(zone.options).some(o => o.value === browserZone)) {
    zone.value = browserZone;
    const now = new Date();
    $("#id_run_date").value = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  }

  // --- the estimate ------------------------------------------------------------
  const count = $("#id_count");
  const estimate = document.getElementById("estimate");
  const model = JSON.parse(form.dataset.estimate);  // the figures of jobs/web/estimate.py
  function estimateSeconds(n) {
    const pages = Math.ceil(Math.ceil(n * 3 / 2) / model.results_per_page);
    return Math.floor(model.browser_start + pages * model.per_page + n / model.parallel * model.per_slot + model.overhead);
  }
  function showEstimate() {
    const n = Number(count.value);
    if (!(Number.isInteger(n) && n >= 1 && n <= 500)) { estimate.textContent = ""; return; }
    const seconds = estimateSeconds(n);
    estimate.textContent = seconds < 90
      ? `It takes about ${seconds} seconds once it starts.`
      : `It takes about ${Math.round(seconds / 60)} minutes once it starts.`;
  }
  count.addEventListener("input", showEstimate);
  showEstimate();

  // --- what the filters and the repeat say ---------------------------------------
  const picked = name => (form.querySelector(`input[name=${name}]:checked`) || {}).value || "";
  function filtersSet() {
    let n = form.querySelectorAll("input[name=formats]:checked").length ? 1 : 0;
    ["min_width", "min_height"].forEach(name => { const v = $(`#id_${name}`).value.trim(); if (v && v !== "0") n++; });
    if ($("#id_engine").value !== "auto") n++;
    form.querySelectorAll("#engine-filters select").forEach(s => { if (s.value) n++; });
    document.getElementById("filters-set").textContent = n ? `: ${n} set` : "";
  }
  const weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  function repeatPromise() {
    const every = picked("repeat");
    if (every !== "day" && every !== "week") return;
    let day = null, time = "";
    if (picked("start") === "later") {
      time = $("#id_run_time").value.slice(0, 5);
      if ($("#id_run_date").value) day = new Date($("#id_run_date").value + "T12:00:00Z").getUTCDay();
    } else {
      const now = new Date(); time = `${pad(now.getHours())}:${pad(now.getMinutes())}`; day = now.getDay();
    }
    const when = every === "week" ? (day === null ? "Every week" : `Every ${weekdays[day]}`) : "Every day";
    const at = time ? ` at ${time} (${zone.value})` : " at the time it starts";
    const until = $("#id_repeat_until").value;
    const end = until ? `until ${new Date(until + "T12:00:00Z").toLocaleDateString("en-GB", {day: "numeric", month: "long", year: "numeric", timeZone: "UTC"})} or until you stop it` : "until you stop it";
    document.getElementById("repeat-promise").textContent = `${when}${at} ${end}, at most ${form.dataset.maxRuns} times.`;
  }
  form.addEventListener("change", () => { filtersSet(); repeatPromise(); });
  form.addEventListener("input", repeatPromise);
  filtersSet(); repeatPromise();

  // --- errors ----------------------------------------------------------------------
  const baseTitle = document.title.replace(/^Error: /, "");
  function fieldOf(input) { return input.closest(".field"); }
  function clearError(input) {
    const field = fieldOf(input);
    field.classList.remove("has-error");
    const box = field.querySelector(".error"); if (box) box.remove();
    input.removeAttribute("aria-invalid");
    const hint = field.querySelector(".hint");
    if (hint) input.setAttribute("aria-describedby", hint.id); else input.removeAttribute("aria-describedby");
  }
  function showError(input, text) {
    const field = fieldOf(input);
    const box = document.createElement("p");
    box.className = "error"; box.id = input.id + "_error";
    const hidden = document.createElement("span"); hidden.className = "visually-hidden"; hidden.textContent = "Error: ";
    box.append(hidden, text);
    input.before(box);
    field.classList.add("has-error");
    input.setAttribute("aria-invalid", "true");
    const hint = field.querySelector(".hint");
    input.setAttribute("aria-describedby", (hint ? hint.id + " " : "") + box.id);
  }
  function showSummary(problems) {
    let summary = document.getElementById("error-summary");
    if (summary) summary.remove();
    if (!problems.length) { document.title = baseTitle; return null; }
    summary = document.createElement("div");
    summary.className = "error-summary"; summary.id = "error-summary"; summary.tabIndex = -1;
    summary.setAttribute("aria-labelledby", "error-summary-title");
    const alert = document.createElement("div"); alert.setAttribute("role", "alert");
    const title = document.createElement("h2"); title.id = "error-summary-title"; title.textContent = "There is a problem";
    const list = document.createElement("ul");
    problems.forEach(([input, text]) => {
      const a = document.createElement("a"); a.href = "#" + input.id; a.textContent = text;
      const li = document.createElement("li"); li.append(a); list.append(li);
    });
    alert.append(title, list); summary.append(alert);
    document.getElementById("main").prepend(summary);
    document.title = "Error: " + baseTitle;
    return summary;
  }
  // A summary link moves the focus to its field (a fragment alone only scrolls).
  document.addEventListener("click", event => {
    const link = event.target.closest("#error-summary a");
    if (!link) return;
    const target = document.getElementById(link.getAttribute("href").slice(1));
    if (!target) return;
    event.preventDefault();
    const label = document.querySelector(`label[for="${target.id}"]`) || target;
    (target.closest("fieldset") || label).scrollIntoView();
    target.focus({preventScroll: true});
  });

  // Wall-clock time in a zone, as "YYYY-MM-DDTHH:MM", minutes from now.
  function wallClock(zoneName, minutesFromNow) {
    const at = new Date(Date.now() + minutesFromNow * 60000);
    const parts = {};
    new Intl.DateTimeFormat("en-CA", {timeZone: zoneName, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23"}).formatToParts(at).forEach(p => { parts[p.type] = p.value; });
    return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
  }
  // A set time up to 15 minutes past counts as now (the server says the same, and
  // knows about the times the clocks skip).
  function whenProblems(check) {
    if (picked("start") !== "later") return;
    const date = $("#id_run_date"), time = $("#id_run_time");
    check(date, date.value ? "" : say.date_required);
    if (!time.value) { check(time, say.time_required); return; }
    if (!date.value) return;
    let earliest, latest;
    try { earliest = wallClock(zone.value, -15); latest = wallClock(zone.value, Number(form.dataset.maxDays) * 1440); }
    catch (err) { return; }  // a zone this browser does not know: the server decides
    const chosen = `${date.value}T${time.value.slice(0, 5)}`;
    if (chosen < earliest) check(time, say.time_past);
    else if (chosen > latest) check(date, say.date_far);
  }
  form.addEventListener("submit", event => {
    const problems = [];
    form.querySelectorAll("input:not([type=radio]):not([type=checkbox]):not([type=hidden]), select").forEach(clearError);
    const check = (input, text) => { if (text) { showError(input, text); problems.push([input, text]); } };
    const source = picked("source") || "query";
    const query = $("#id_query"), page = $("#id_page_url");
    if (source === "query") {
      check(query, !query.value.trim() ? say.query_required : query.value.trim().length > 200 ? say.query_long : "");
    } else {
      const address = page.value.trim();
      check(page, !address ? say.page_required : !/^https?:\/\/[^\s/]+/i.test(address) ? say.page_bad : "");
    }
    const raw = count.value.trim(), n = Number(raw);
    check(count, !raw ? say.count_required : !/^\d+$/.test(raw) ? say.count_invalid : n < 1 || n > 500 ? say.count_range : "");
    whenProblems(check);
    const email = $("#id_email"), address = email.value.trim();
    check(email, !address ? say.email_required : /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(address) ? "" : say.email_invalid);
    const summary = showSummary(problems);
    if (summary) { event.preventDefault(); summary.focus(); }
  });
  // After a server-side error: the summary takes the focus.
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
