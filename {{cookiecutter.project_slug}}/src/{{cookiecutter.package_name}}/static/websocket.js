// WebSocket echo: shows the connection state, logs what is sent and received, and reconnects
// with exponential backoff and jitter when the connection drops without the server meaning it.
"use strict";

(() => {
  const state = document.getElementById("ws-state");
  const form = document.getElementById("ws-form");
  const input = document.getElementById("ws-message");
  const log = document.getElementById("ws-log");

  // ws: or wss: to match the page, and relative to it, so a proxy sub-path keeps working.
  const url = new URL("websocket", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";

  const FIRST_DELAY_MS = 500;
  const MAX_DELAY_MS = 15000;
  // Closes the server means: normal closure and "going away" (a restart or deploy).
  const INTENDED = new Set([1000, 1001]);
  let socket = null;
  let attempt = 0;

  function note(text, kind) {
    const item = document.createElement("li");
    item.className = kind;
    item.textContent = text; // text, never HTML: a message cannot inject markup
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  function setState(text) {
    state.textContent = text;
  }

  function connect() {
    setState(attempt ? `reconnecting (attempt ${attempt})` : "connecting");
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";

    socket.addEventListener("open", () => {
      attempt = 0;
      setState("open");
    });

    socket.addEventListener("message", (event) => {
      const text = typeof event.data === "string" ? event.data : `[${event.data.byteLength} bytes]`;
      note(text, "received");
    });

    socket.addEventListener("close", (event) => {
      const reason = event.reason ? `, ${event.reason}` : "";
      const intended = INTENDED.has(event.code);
      setState(`closed (code ${event.code}${reason})`);
      // Even an intended close is followed by a reconnect: 1001 usually means the server is
      // restarting and will be back shortly.
      const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
      const jittered = Math.round(delay / 2 + Math.random() * (delay / 2));
      attempt += 1;
      note(
        `${intended ? "Server closed the connection" : "Connection lost"} (code ${event.code}${reason}); ` +
          `reconnecting in ${(jittered / 1000).toFixed(1)} s`,
        "meta",
      );
      setTimeout(connect, jittered);
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      note("Not connected yet; message not sent", "meta");
      return;
    }
    socket.send(input.value);
    note(input.value, "sent");
    input.value = "";
    input.focus();
  });

  connect();
})();
