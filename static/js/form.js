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
  const perImage = parseFloat(form.dataset.perImage || "0.2");
  function showEstimate() {
    const n = parseInt(count.value, 10);
    if (!(n >= 1 && n <= 500)) { estimate.textContent = ""; return; }
    const seconds = Math.round(8 + n * perImage);
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
    if (problems.length) { event.preventDefault(); problems[0].focus(); }
  });
})();
