// Events: reads GET /events with EventSource, the browser's own client for Server-Sent Events.
// It shows each event the moment it arrives (text, never HTML), with the time since the start.
// After a drop the browser reconnects by itself and sends the last event id it got, so the
// stream continues where it was; when it is over, the server answers 204 and the browser stops.
"use strict";

(() => {
  const button = document.getElementById("events-start");
  const status = document.getElementById("events-status");
  const log = document.getElementById("events-log");
  const LAST = "END"; // the stream's last event
  let source = null;

  button.addEventListener("click", () => {
    if (source) source.close();
    log.replaceChildren();
    button.disabled = true;
    status.textContent = "Waiting for events…";
    const started = performance.now();
    source = new EventSource("events"); // relative: works under a sub-path too
    source.addEventListener("message", (event) => {
      appendLine(log, event.data, { lead: elapsed(started) }).dataset.id = event.lastEventId;
      status.textContent = "Receiving…";
      if (event.data === LAST) {
        source.close(); // done: no need to reconnect and be told so
        button.disabled = false;
        status.textContent = `Done: ${log.children.length} events in ${seconds(started).toFixed(2)} s.`;
      }
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        button.disabled = false;
        status.textContent = "The stream closed.";
      } else {
        status.textContent = "Connection lost; the browser reconnects and resumes…";
      }
    });
  });
})();
