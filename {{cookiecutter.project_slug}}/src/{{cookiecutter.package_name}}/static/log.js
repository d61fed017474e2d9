// What the sections' logs share: a line of text with a time or a label before it.
"use strict";

// Appends a line to `log` and keeps the newest in view; returns it, for the caller to mark.
// `text` is set as text, never HTML: what the server or another client sends cannot become
// markup. `lead` (a time, a label) goes first, in a span of class `leadClass`.
function appendLine(log, text, { lead = "", leadClass = "time", className = "" } = {}) {
  const item = document.createElement("li");
  if (className) item.className = className;
  if (lead) {
    const tag = document.createElement("span");
    tag.className = leadClass;
    tag.textContent = lead;
    item.append(tag);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(body);
  log.append(item);
  log.scrollTop = log.scrollHeight;
  return item;
}

// Seconds since `since` (a performance.now() reading).
function seconds(since) {
  return (performance.now() - since) / 1000;
}

// A line's lead for something that arrived `seconds(since)` after the start: "+1.25 s".
function elapsed(since) {
  return `+${seconds(since).toFixed(2)} s`;
}
