// Small progressive enhancements; every page works without them.
"use strict";

// Times in the browser's zone.
function localTimes(root) {
  root.querySelectorAll("time[datetime]").forEach((el) => {
    const when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) { el.textContent = when.toLocaleString(); el.title = el.getAttribute("datetime"); }
  });
}

// Taking production down or changing its data: the button stays disabled until the site's (or host's) name
// is typed, and until every box the action needs ticked (the staging-first rule) is ticked.
function confirmFields(root) {
  root.querySelectorAll("form").forEach((form) => {
    const typed = form.querySelectorAll("input[data-confirm]");
    const ticks = form.querySelectorAll("input[data-tick]");
    if (!typed.length && !ticks.length) return;
    const button = form.querySelector("button");
    const sync = () => {
      button.disabled = [...typed].some((i) => i.value !== i.dataset.confirm) || [...ticks].some((t) => !t.checked);
    };
    [...typed, ...ticks].forEach((el) => { el.addEventListener("input", sync); el.addEventListener("change", sync); });
    sync();
  });
}

function seconds(n) {
  if (n === null || n === undefined) return "";
  n = Math.round(n);
  return n < 60 ? n + " s" : Math.floor(n / 60) + " min " + (n % 60) + " s";
}

// Step N of about M, the current task, elapsed time and the estimate, from the progress events.
function showProgress(p) {
  const box = document.getElementById("progress");
  if (!box) return;
  box.hidden = p.status !== "running";
  document.getElementById("step").textContent =
    "step " + p.step + (p.steps ? " of " + (p.status === "running" ? "~" : "") + p.steps : "");
  document.getElementById("bar").style.width = p.steps ? Math.min(100, 100 * p.step / p.steps) + "%" : "0";
  document.getElementById("current-task").textContent = p.task || "";
  document.getElementById("elapsed").textContent = p.elapsed !== null ? seconds(p.elapsed) + " elapsed" : "";
  document.getElementById("eta").textContent = p.remaining !== null ? "about " + seconds(p.remaining) + " left" : "";
}

// When a run ends, its task table and result come from the page itself, without a reload.
async function refreshTail() {
  const tail = document.getElementById("op-tail");
  if (!tail) return;
  const answer = await fetch(location.href, { credentials: "same-origin" });
  if (!answer.ok) return;
  const page = new DOMParser().parseFromString(await answer.text(), "text/html");
  const fresh = page.getElementById("op-tail");
  if (fresh) { tail.innerHTML = fresh.innerHTML; localTimes(tail); }
}

// An operation's log, following live over server-sent events; a reload or a second browser starts over.
function followLog() {
  const log = document.getElementById("log");
  if (!log) return;
  const source = new EventSource(log.dataset.events);
  source.addEventListener("log", (ev) => {
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(document.createTextNode(JSON.parse(ev.data)));
    if (atEnd) log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("end", (ev) => {
    source.close();
    const end = JSON.parse(ev.data);
    const status = document.querySelector("#op-status .status");
    if (status) { status.textContent = end.status; status.className = "status status-" + end.status; }
    const duration = document.getElementById("op-duration");
    if (duration) duration.textContent = end.duration_text;
    const message = document.getElementById("op-message");
    if (message && end.message) message.textContent = end.message;
    const wasRunning = log.dataset.status === "running";
    log.dataset.status = end.status;
    if (wasRunning) refreshTail();
    const cancel = document.getElementById("cancel");
    if (cancel) cancel.remove();
  });
  source.addEventListener("progress", (ev) => showProgress(JSON.parse(ev.data)));
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  confirmFields(document);
  followLog();
});
