// Reads a chunked response piece by piece and shows each line the moment it arrives.
// fetch() with a ReadableStream reader hands us bytes as they come off the network; loading the
// URL as a page would let the browser buffer them and hide the effect.
"use strict";

async function readLines(url, onLine) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) {
    throw new Error(`${response.status} ${response.statusText}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    pending += decoder.decode(value || new Uint8Array(), { stream: !done });
    const lines = pending.split("\n");
    pending = lines.pop(); // an unfinished line waits for the next chunk
    lines.map((line) => line.replace(/\r$/, "")).filter((line) => line).forEach(onLine);
    if (done) break;
  }
  if (pending) onLine(pending);
}

function setUpChunkedSection(section) {
  const url = section.dataset.chunked; // relative: works under a sub-path too
  const button = section.querySelector('[data-action="start"]');
  const status = section.querySelector('[data-role="status"]');
  const log = section.querySelector('[data-role="log"]');

  button.addEventListener("click", async () => {
    button.disabled = true;
    log.replaceChildren();
    status.textContent = `Waiting for ${url}…`;
    const started = performance.now();
    let count = 0;
    try {
      await readLines(url, (line) => {
        count += 1;
        appendLine(log, line, { lead: elapsed(started) });
        if (count === 1) status.textContent = "Receiving…"; // the log announces each part
      });
      status.textContent = `Done: ${count} ${count === 1 ? "part" : "parts"} in ${seconds(started).toFixed(2)} s.`;
    } catch (error) {
      status.textContent = `Failed after ${count} ${count === 1 ? "part" : "parts"}: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
}

document.querySelectorAll("[data-chunked]").forEach(setUpChunkedSection);
