// Small progressive enhancements; every page works without them.
"use strict";

// Times in the browser's zone.
function localTimes(root) {
  root.querySelectorAll("time[datetime]").forEach((el) => {
    const when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) { el.textContent = when.toLocaleString(); el.title = el.getAttribute("datetime"); }
  });
}

// Changing a production site's data: the button stays disabled until the site's name is typed.
function confirmFields(root) {
  root.querySelectorAll("input[data-confirm]").forEach((input) => {
    const button = input.form.querySelector("button");
    const sync = () => { button.disabled = input.value !== input.dataset.confirm; };
    input.addEventListener("input", sync);
    sync();
  });
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
    if (wasRunning && !document.getElementById("tasks-note")) {
      const note = document.createElement("p");
      note.id = "tasks-note";
      note.className = "muted";
      note.innerHTML = 'The operation ended: <a href="">reload</a> for its task results.';
      log.after(note);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  confirmFields(document);
  followLog();
});
