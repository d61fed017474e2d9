// WebSocket echo: shows the connection state, logs what is sent and received, and reconnects
// with exponential backoff and jitter when the connection drops.
"use strict";

(() => {
  const state = document.getElementById("ws-state");
  const reconnectButton = document.getElementById("ws-reconnect");
  const form = document.getElementById("ws-form");
  const input = document.getElementById("ws-message");
  const log = document.getElementById("ws-log");

  // ws: or wss: to match the page, and relative to it, so a proxy sub-path keeps working.
  const url = new URL("websocket", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";

  // Backoff: the ceiling doubles with each failure up to MAX_DELAY_MS, and the wait is a random
  // point in its upper half, so clients dropped together do not all come back at once.
  const FIRST_DELAY_MS = 500;
  const MAX_DELAY_MS = 15000;
  // Closes the server means. 1000: the conversation is over, so stay closed until asked.
  // 1001 and 1012: the server is going away or restarting, so come back when it does.
  const FINISHED = 1000;
  const RESTARTING = new Set([1001, 1012]);
  const CODE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1006: "abnormal closure",
    1008: "policy violation",
    1009: "message too big",
    1011: "server error",
    1012: "service restart",
    1013: "try again later",
  };

  let socket = null;
  let failures = 0; // unexpected closes in a row: the backoff's exponent
  let timer = null;

  function addEntry(kind, label, text) {
    appendLine(log, text, { lead: label, leadClass: "label", className: kind });
  }

  function setState(name, text) {
    state.dataset.state = name;
    state.textContent = text;
  }

  function describe(event) {
    const name = CODE_NAMES[event.code];
    const reason = event.reason ? `: ${event.reason}` : "";
    return `code ${event.code}${name ? ` ${name}` : ""}${reason}`;
  }

  function backoff() {
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** failures);
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  function reconnectIn(delay) {
    reconnectButton.hidden = false;
    timer = setTimeout(connect, delay);
    return `reconnecting in ${(delay / 1000).toFixed(1)} s`;
  }

  function connect() {
    clearTimeout(timer);
    timer = null;
    reconnectButton.hidden = true;
    setState("connecting", failures ? `reconnecting (attempt ${failures + 1})` : "connecting");
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    socket = ws;
    let opened = false;

    ws.addEventListener("open", () => {
      opened = true;
      failures = 0;
      setState("open", "open");
    });

    ws.addEventListener("message", (event) => {
      const text = typeof event.data === "string" ? event.data : `[${event.data.byteLength} bytes of binary data]`;
      addEntry("received", "received", text);
    });

    ws.addEventListener("close", (event) => {
      if (ws !== socket) return; // an old socket, already replaced
      const closed = `closed (${describe(event)})`;
      if (event.code === FINISHED) {
        setState("closed", closed);
        reconnectButton.hidden = false;
        addEntry("meta", "", `The server ended the connection (${describe(event)}); not reconnecting. Use Reconnect now to start again.`);
      } else if (RESTARTING.has(event.code)) {
        const next = reconnectIn(backoff());
        setState("closed", `${closed}; ${next}`);
        addEntry("meta", "", `The server is going away (${describe(event)}); ${next}.`);
      } else {
        const next = reconnectIn(backoff());
        failures += 1;
        setState("closed", `${closed}; ${next}`);
        const what = !opened ? "Could not connect" : event.code === 1006 ? "Connection lost" : "Connection closed";
        addEntry("meta problem", "", `${what} (${describe(event)}); ${next}, attempt ${failures + 1}.`);
      }
    });
  }

  reconnectButton.addEventListener("click", () => {
    if (!socket || socket.readyState === WebSocket.CLOSED) connect();
  });

  // Back online: try at once instead of waiting out the backoff.
  window.addEventListener("online", () => {
    if (timer) connect();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      addEntry("meta problem", "", "Not connected: message not sent.");
      return;
    }
    socket.send(input.value);
    addEntry("sent", "sent", input.value);
    input.value = "";
    input.focus();
  });

  connect();
})();
