// Chat: join a room, see its messages as they arrive, send your own. The page says how they
// arrive (data-transport): over a WebSocket ("socket"), as Server-Sent Events ("events", with
// posts over HTTP), or by long polling ("poll"). Either way the id of the last message is kept
// as a cursor (an opaque string), so a reconnect or the next poll asks only for what came after
// it; EventSource keeps it by itself, as the last event id it sends when it reconnects. The server sends each message once, in order, and says so when some of
// what came after the cursor is gone (a restart, or history trimmed): the log shows a note.
"use strict";

(() => {
  const section = document.getElementById("chat");
  const joinForm = document.getElementById("chat-join");
  const roomInput = document.getElementById("chat-room");
  const sendForm = document.getElementById("chat-form");
  const textInput = document.getElementById("chat-text");
  const status = document.getElementById("chat-status");
  const log = document.getElementById("chat-log");
  const transport = section.dataset.transport;
  const useSocket = transport === "socket";

  let room = null;
  let cursor = null; // the id of the last message shown; null: none yet
  let session = 0; // bumped on every join, so the loops of an old room stop
  let socket = null;
  let events = null; // the EventSource of the room
  let polling = null; // aborts the long poll of the room being left
  let failures = 0;

  function roomUrl(suffix = "") {
    return new URL(`chat/${encodeURIComponent(room)}${suffix}`, location.href); // relative
  }

  function note(text) {
    const item = document.createElement("li");
    item.className = "meta";
    item.textContent = text;
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  function showGap() {
    note("Some earlier messages are no longer available (the server restarted, or they were too old).");
  }

  function show(message) {
    cursor = message.id;
    appendLine(log, message.text, { lead: new Date(message.ts * 1000).toLocaleTimeString() + " " });
  }

  function backoff() {
    const ceiling = Math.min(15000, 500 * 2 ** failures);
    failures += 1;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  function connectSocket(mine) {
    const url = roomUrl("/ws");
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (cursor !== null) url.searchParams.set("since", cursor);
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      failures = 0;
      status.textContent = `In room “${room}” (WebSocket).`;
    });
    socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (data.error) status.textContent = data.error;
      else if (data.gap) {
        showGap();
        cursor = data.cursor; // the history is whole after it
      }
      else show(data);
    });
    socket.addEventListener("close", (event) => {
      if (mine !== session) return; // left this room on purpose
      const wait = backoff();
      status.textContent = `Connection closed (code ${event.code}); reconnecting in ${(wait / 1000).toFixed(1)} s…`;
      setTimeout(() => mine === session && connectSocket(mine), wait);
    });
  }

  function listen() {
    events = new EventSource(roomUrl("/events")); // a new room: from its start
    events.addEventListener("open", () => {
      status.textContent = `In room “${room}” (events).`;
    });
    events.addEventListener("message", (event) => show(JSON.parse(event.data)));
    events.addEventListener("gap", showGap); // its id is the cursor past the gap
    events.addEventListener("error", () => {
      // The browser reconnects by itself with the last event id, unless the server refused.
      status.textContent =
        events.readyState === EventSource.CLOSED
          ? "The chat refused the connection; join again to retry."
          : "Connection lost; reconnecting…";
    });
  }

  async function poll(mine) {
    status.textContent = `In room “${room}” (long polling).`;
    while (mine === session) {
      try {
        const query = cursor === null ? "" : `?since=${encodeURIComponent(cursor)}`;
        const response = await fetch(roomUrl(query), {
          cache: "no-store",
          signal: polling.signal,
        });
        if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
        const page = await response.json();
        if (mine !== session) return;
        failures = 0;
        status.textContent = `In room “${room}” (long polling).`;
        if (page.gap) showGap();
        page.messages.forEach(show);
        cursor = page.cursor; // past these messages, and past a gap ("0": from the start)
      } catch (error) {
        if (mine !== session) return; // aborted on leaving the room
        const wait = backoff();
        status.textContent = `Polling failed (${error.message}); retrying in ${(wait / 1000).toFixed(1)} s…`;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  function join(name) {
    session += 1;
    room = name;
    cursor = null;
    failures = 0;
    log.replaceChildren();
    if (socket) socket.close(1000, "left the room");
    if (events) events.close();
    // A parked long poll would hold one of the browser's few connections per host.
    if (polling) polling.abort();
    polling = new AbortController();
    status.textContent = `Joining “${room}”…`;
    if (useSocket) connectSocket(session);
    else if (transport === "events") listen();
    else poll(session);
  }

  joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    join(roomInput.value.trim());
  });

  sendForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = textInput.value;
    if (!text.trim() || room === null) return;
    if (useSocket && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ text }));
    } else {
      const response = await fetch(roomUrl(), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text }),
      });
      if (!response.ok) {
        status.textContent = `Not sent: ${await response.text()}`;
        return;
      }
    }
    textInput.value = "";
    textInput.focus();
  });

  join(roomInput.value.trim());
})();
