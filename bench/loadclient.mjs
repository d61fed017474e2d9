#!/usr/bin/env node
// The load client of bench/: raw TCP sockets, no npm packages, one JSON line on stdout.
//
// It speaks just enough HTTP/1.1 and WebSocket (RFC 6455, masked client frames) to drive every
// server the same way, and stays cheap per message so that it is not the bottleneck: it reports
// its own CPU time, and the harness prints it beside every figure.
//
// Modes (every loop is bounded in count and in time, and the process exits by itself):
//   streams   --conns N --path /stream --expect END      N concurrent GETs; wall time, errors
//   echo      --conns N --size B [--binary]              closed-loop echo; msgs/s, RTT, CPU
//   idle      --conns N [--path /websocket] [--no-echo]   N open WebSockets; server RSS per socket
//             (--no-echo: open only, e.g. idle chat subscribers on --path /chat/idle/ws)
//   broadcast --conns N --path /chat/bench/ws            one post reaching N sockets; ms
//   sse       --conns N --path /chat/bench/events --post-path /chat/bench
//                                                        one POST reaching N event streams; ms, KiB
//
// Only 127.0.0.1 is ever contacted.

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';

const HOST = '127.0.0.1';

function parseArgs(argv) {
  const opts = {
    mode: 'echo', port: 0, path: '/websocket', conns: 100, size: 32, binary: false,
    warmup: 1, duration: 3, timeout: 60, expect: 'END', serverPid: 0, clkTck: 100,
    parallel: 256, settle: 1.5, warmConns: 50, messages: 5, postPath: '/chat/bench', noEcho: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in opts)) throw new Error(`unknown option ${argv[i]}`);
    if (typeof opts[key] === 'boolean') opts[key] = true;
    else if (typeof opts[key] === 'number') opts[key] = Number(argv[++i]);
    else opts[key] = argv[++i];
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));

// The server process, read from /proc: CPU seconds and resident memory.
function serverCpu() {
  if (!opts.serverPid) return 0;
  const stat = fs.readFileSync(`/proc/${opts.serverPid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / opts.clkTck; // utime + stime
}

function serverMemKiB(field = 'VmRSS') {
  if (!opts.serverPid) return 0;
  const status = fs.readFileSync(`/proc/${opts.serverPid}/status`, 'utf8');
  const line = status.split('\n').find((l) => l.startsWith(field + ':'));
  return Number(line.split(/\s+/)[1]);
}

function clientCpu() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

// Run `task(i)` for i < n with at most `limit` at once (connection ramp: no SYN flood).
async function inBatches(n, limit, task) {
  let next = 0;
  async function lane() {
    while (next < n) await task(next++);
  }
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
}

// WebSocket

// Random masking keys, drawn in bulk: one crypto call per 16k frames.
let maskPool = crypto.randomBytes(65536);
let maskAt = 0;
function nextMask() {
  if (maskAt + 4 > maskPool.length) {
    maskPool = crypto.randomBytes(65536);
    maskAt = 0;
  }
  maskAt += 4;
  return maskPool.subarray(maskAt - 4, maskAt);
}

// One masked, final frame. The payload is placed 4-byte aligned so that it can be XORed a
// 32-bit word at a time.
function buildFrame(opcode, payload) {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const head = 2 + lengthBytes + 4;
  const pad = (4 - (head % 4)) % 4;
  const buffer = Buffer.from(new ArrayBuffer(pad + head + length + 4), pad, head + length);
  buffer[0] = 0x80 | opcode;
  if (lengthBytes === 0) buffer[1] = 0x80 | length;
  else if (lengthBytes === 2) {
    buffer[1] = 0x80 | 126;
    buffer.writeUInt16BE(length, 2);
  } else {
    buffer[1] = 0x80 | 127;
    buffer.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = nextMask();
  mask.copy(buffer, head - 4);
  payload.copy(buffer, head);
  const words = new Uint32Array(buffer.buffer, pad + head, length >> 2);
  const key = new Uint32Array(buffer.buffer, pad + head - 4, 1)[0];
  for (let i = 0; i < words.length; i++) words[i] ^= key;
  for (let i = length & ~3; i < length; i++) buffer[head + i] ^= mask[i & 3];
  return buffer;
}

class WebSocketClient {
  // onMessage(opcode, length, payloadOrNull) is called for each whole data frame; payloads of
  // up to `keep` bytes are kept for checking, larger ones are only counted.
  constructor(path, onMessage, keep = 4096) {
    this.path = path;
    this.onMessage = onMessage;
    this.keep = keep;
    this.pending = [];
    this.pendingBytes = 0;
    this.frame = null; // {opcode, remaining, parts}
    this.closed = false;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const key = crypto.randomBytes(16).toString('base64');
      const sock = net.connect({ host: HOST, port: opts.port });
      this.sock = sock;
      sock.setNoDelay(true);
      let head = Buffer.alloc(0);
      const onHandshake = (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        sock.removeListener('data', onHandshake);
        const status = head.subarray(0, 12).toString();
        if (!status.startsWith('HTTP/1.1 101')) {
          sock.destroy();
          reject(new Error(`handshake: ${status}`));
          return;
        }
        sock.on('data', (data) => this.onData(data));
        const rest = head.subarray(end + 4);
        if (rest.length) this.onData(rest);
        resolve(this);
      };
      sock.on('data', onHandshake);
      sock.once('error', (error) => {
        this.closed = true;
        reject(error);
      });
      sock.once('close', () => {
        this.closed = true;
        reject(new Error('closed during handshake'));
      });
      sock.write(
        `GET ${this.path} HTTP/1.1\r\nHost: ${HOST}:${opts.port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  send(opcode, payload) {
    this.sock.write(buildFrame(opcode, payload));
  }

  sendFrame(frame) {
    this.sock.write(frame);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.sock.end(buildFrame(0x8, Buffer.from([0x03, 0xe8])));
    setTimeout(() => this.sock.destroy(), 500).unref();
  }

  // A small state machine over the incoming bytes: a header, then its payload.
  onData(data) {
    let at = 0;
    while (at < data.length) {
      if (this.frame) {
        const take = Math.min(this.frame.remaining, data.length - at);
        if (this.frame.parts) this.frame.parts.push(data.subarray(at, at + take));
        this.frame.remaining -= take;
        at += take;
        if (this.frame.remaining === 0) this.endFrame();
        continue;
      }
      // Gather header bytes (at most 10 for a server frame).
      this.pending.push(data.subarray(at));
      this.pendingBytes += data.length - at;
      at = data.length;
      const header = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
      if (header.length < 2) continue;
      let length = header[1] & 0x7f;
      let size = 2;
      if (length === 126) size = 4;
      else if (length === 127) size = 10;
      if (header.length < size) continue;
      if (size === 4) length = header.readUInt16BE(2);
      else if (size === 10) length = Number(header.readBigUInt64BE(2));
      this.pending = [];
      this.pendingBytes = 0;
      this.frame = {
        opcode: header[0] & 0x0f,
        length,
        remaining: length,
        parts: length <= this.keep ? [] : null,
      };
      data = header;
      at = size;
      if (length === 0) this.endFrame();
    }
  }

  endFrame() {
    const { opcode, length, parts } = this.frame;
    this.frame = null;
    if (opcode === 0x9) {
      this.send(0xa, Buffer.concat(parts)); // answer pings
    } else if (opcode === 0x8) {
      this.closed = true;
      this.sock.destroy();
    } else if (opcode === 0x1 || opcode === 0x2) {
      const payload = parts ? (parts.length === 1 ? parts[0] : Buffer.concat(parts)) : null;
      this.onMessage(opcode, length, payload);
    }
  }
}

function textPayload(size) {
  // Mostly ASCII with some 2- and 3-byte characters, so UTF-8 validation has real work.
  const pattern = Buffer.from('The quick brown fox jumps over the lazy dög ✓ 0123456789 ');
  const out = Buffer.alloc(size, 0x20);
  for (let i = 0; i + pattern.length <= size; i += pattern.length) pattern.copy(out, i);
  return out;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function openSockets(n, path, onMessage) {
  const sockets = new Array(n);
  let errors = 0;
  const firstErrors = [];
  await inBatches(n, opts.parallel, async (i) => {
    try {
      sockets[i] = await new WebSocketClient(path, (...a) => onMessage(i, ...a)).connect();
      sockets[i].attempt = i; // what onMessage calls it, whatever its place in the returned list
    } catch (error) {
      errors++;
      if (firstErrors.length < 3) firstErrors.push(String(error.message || error));
    }
  });
  return { sockets: sockets.filter(Boolean), errors, firstErrors };
}

async function echo() {
  const opcode = opts.binary ? 0x2 : 0x1;
  const payload = opts.binary ? crypto.randomBytes(opts.size) : textPayload(opts.size);
  // Each socket sends one prebuilt frame over and over, masked with a key drawn for it: the
  // server does the same work whatever the key, and the client stays cheap.
  let measuring = false;
  let stopping = false;
  let received = 0;
  let bytes = 0;
  let bad = 0;
  let rtts = new Float64Array(1 << 20);
  let rttCount = 0;
  const sentAt = new Float64Array(opts.conns);
  const frames = [];
  const sockets = [];

  const onMessage = (i, gotOpcode, length, data) => {
    const now = performance.now();
    if (gotOpcode !== opcode || length !== payload.length || (data && !data.equals(payload))) bad++;
    if (measuring) {
      received++;
      bytes += length;
      if (rttCount === rtts.length) {
        const grown = new Float64Array(rtts.length * 2);
        grown.set(rtts);
        rtts = grown;
      }
      rtts[rttCount++] = now - sentAt[i];
    }
    if (stopping) return;
    sentAt[i] = now;
    sockets[i].sendFrame(frames[i]);
  };

  const opened = await openSockets(opts.conns, opts.path, onMessage);
  opened.sockets.forEach((ws, i) => {
    sockets[i] = ws;
    frames[i] = buildFrame(opcode, payload);
  });
  // Rebind by position: openSockets numbered sockets by attempt, which match when none failed.
  if (opened.errors) return { mode: 'echo', errors: opened.errors, firstErrors: opened.firstErrors };

  sockets.forEach((ws, i) => {
    sentAt[i] = performance.now();
    ws.sendFrame(frames[i]);
  });
  await sleep(opts.warmup);
  const cpu0 = clientCpu();
  const server0 = serverCpu();
  const t0 = performance.now();
  measuring = true;
  await sleep(opts.duration);
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const serverSeconds = serverCpu() - server0;
  const clientSeconds = clientCpu() - cpu0;
  stopping = true;
  const lost = sockets.filter((ws) => ws.closed).length;
  sockets.forEach((ws) => ws.close());
  const sorted = rtts.subarray(0, rttCount).sort();
  return {
    mode: 'echo',
    conns: opts.conns,
    size: opts.size,
    binary: opts.binary,
    seconds: elapsed,
    messages: received,
    msgsPerSec: received / elapsed,
    mibPerSec: bytes / elapsed / 1048576,
    rttP50Ms: percentile(sorted, 50),
    rttP99Ms: percentile(sorted, 99),
    serverCpuUsPerMsg: received ? (serverSeconds * 1e6) / received : null,
    serverCpuPercent: (100 * serverSeconds) / elapsed,
    clientCpuPercent: (100 * clientSeconds) / elapsed,
    errors: bad + lost,
  };
}

// Idle memory: N open WebSockets, server RSS per socket. Each echoes one message first, so that
// it has reached the state it idles in; with --no-echo each only opens (a chat subscriber: a post
// would go to the whole room), and any message that reaches it counts as an error.
async function idle() {
  const payload = Buffer.from('hello');
  const echoed = new Map();
  let unexpected = 0;
  const onMessage = (i) => {
    const done = echoed.get(i);
    if (done) done();
    else unexpected++;
  };
  // Keyed by attempt: the returned lists leave out sockets that failed to connect.
  const echoOnce = (ws) =>
    new Promise((resolve) => {
      echoed.set(ws.attempt, resolve);
      ws.send(0x1, payload);
    });
  const settleIn = (sockets) => (opts.noEcho ? null : Promise.all(sockets.map(echoOnce)));

  // Warm up the code paths (imports, caches, pools) with a few sockets, then take a baseline.
  const warm = await openSockets(opts.warmConns, opts.path, onMessage);
  await settleIn(warm.sockets);
  warm.sockets.forEach((ws) => ws.close());
  await sleep(opts.settle);
  const baseline = serverMemKiB();

  echoed.clear();
  unexpected = 0;
  const opened = await openSockets(opts.conns, opts.path, onMessage);
  await settleIn(opened.sockets);
  await sleep(opts.settle); // and time for whatever the server would still send
  const held = serverMemKiB();
  const lost = opened.sockets.filter((ws) => ws.closed).length;
  const clientSeconds = clientCpu();
  opened.sockets.forEach((ws) => ws.close());
  return {
    mode: 'idle',
    conns: opened.sockets.length,
    baselineKiB: baseline,
    heldKiB: held,
    kibPerConn: (held - baseline) / Math.max(1, opened.sockets.length),
    unexpectedMessages: unexpected,
    errors: opened.errors + lost + unexpected,
    firstErrors: opened.firstErrors,
    clientCpuSeconds: clientSeconds,
  };
}

// Chat fan-out: N sockets in one room; one posts, and the clock runs until all N have it.
async function broadcast() {
  const pending = new Map(); // token -> {left, started, done}
  const onMessage = (i, opcode, length, data) => {
    if (!data) return;
    const text = data.toString();
    for (const [token, wait] of pending) {
      if (text.includes(token) && !wait.seen.has(i)) {
        wait.seen.add(i);
        if (wait.seen.size === wait.expected) wait.done(performance.now() - wait.started);
      }
    }
  };
  const opened = await openSockets(opts.conns, opts.path, onMessage);
  if (opened.errors) {
    opened.sockets.forEach((ws) => ws.close());
    return { mode: 'broadcast', errors: opened.errors, firstErrors: opened.firstErrors };
  }
  await sleep(opts.settle); // let every socket subscribe
  const times = [];
  let missing = 0;
  for (let k = 0; k < opts.messages; k++) {
    const token = `bench-${k}-${crypto.randomBytes(4).toString('hex')}`;
    const wait = { seen: new Set(), expected: opened.sockets.length, started: performance.now() };
    const arrived = new Promise((resolve) => (wait.done = resolve));
    pending.set(token, wait);
    opened.sockets[k % opened.sockets.length].send(0x1, Buffer.from(JSON.stringify({ text: token })));
    const took = await Promise.race([arrived, sleep(opts.timeout).then(() => null)]);
    pending.delete(token);
    if (took === null) missing += wait.expected - wait.seen.size;
    else times.push(took);
    await sleep(0.2);
  }
  const lost = opened.sockets.filter((ws) => ws.closed).length;
  opened.sockets.forEach((ws) => ws.close());
  const sorted = times.sort((a, b) => a - b);
  return {
    mode: 'broadcast',
    conns: opened.sockets.length,
    messages: opts.messages,
    fanoutP50Ms: percentile(sorted, 50),
    fanoutMaxMs: sorted.length ? sorted[sorted.length - 1] : null,
    errors: missing + lost,
    clientCpuSeconds: clientCpu(),
  };
}

// HTTP: N concurrent GETs that each last a while; done when every body has ended.
// Returns {connected, done}: the first settles once TCP has connected (or failed), the second
// with null for a whole 200 response or with what went wrong.
const pendingGets = new Set();
function getOnce(path, expect) {
  let connected;
  const whenConnected = new Promise((resolve) => (connected = resolve));
  const done = new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port: opts.port });
    const chunks = [];
    let settled = false;
    const finish = (error) => {
      connected();
      if (settled) return;
      settled = true;
      pendingGets.delete(finish);
      sock.destroy();
      if (error) return resolve(error);
      const text = Buffer.concat(chunks).toString();
      if (!text.startsWith('HTTP/1.1 200') && !text.startsWith('HTTP/1.0 200')) {
        return resolve(`status: ${text.slice(0, 30)}`);
      }
      resolve(text.includes(expect) ? null : 'body ended before its last part');
    };
    sock.on('connect', connected);
    sock.on('data', (data) => chunks.push(data));
    sock.on('end', () => finish(null));
    sock.on('error', (error) => finish(error.code || String(error)));
    pendingGets.add(finish);
    sock.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}:${opts.port}\r\nConnection: close\r\n\r\n`);
  });
  return { connected: whenConnected, done };
}

async function streams() {
  const server0 = serverCpu();
  const t0 = performance.now();
  // One deadline for the whole run: what has not ended by then counts as a timeout.
  const deadline = setTimeout(() => [...pendingGets].forEach((finish) => finish('timeout')),
    opts.timeout * 1000);
  const requests = [];
  let lastDone = t0;
  // Keep at most `parallel` connections in their TCP handshake at once: no SYN flood.
  await inBatches(opts.conns, opts.parallel, async () => {
    const request = getOnce(opts.path, opts.expect);
    request.done.then(() => (lastDone = performance.now()));
    requests.push(request.done);
    await request.connected;
  });
  const connectedIn = (performance.now() - t0) / 1000;
  const outcomes = await Promise.all(requests);
  clearTimeout(deadline);
  const kinds = {};
  for (const error of outcomes) if (error !== null) kinds[error] = (kinds[error] || 0) + 1;
  const ok = outcomes.filter((error) => error === null).length;
  return {
    mode: 'streams',
    path: opts.path,
    conns: opts.conns,
    ok,
    errors: opts.conns - ok,
    errorKinds: kinds,
    seconds: (lastDone - t0) / 1000,
    connectedSeconds: connectedIn,
    serverCpuSeconds: serverCpu() - server0,
    clientCpuSeconds: clientCpu(),
  };
}

// Server-Sent Events: an EventSource-style reader over a raw socket. It de-chunks the body
// (servers stream it with Transfer-Encoding: chunked) and hands each `data:` line to onData.
class EventStreamClient {
  constructor(path, onData) {
    this.path = path;
    this.onData = onData;
    this.closed = false;
    this.chunked = false;
    this.chunkLeft = 0; // bytes left in the current chunk; 0 while a size line is due
    this.sizeLine = '';
    this.partial = ''; // the last line, until its end arrives
  }

  // Resolves once the response headers and the first body bytes have arrived (the server has
  // subscribed the client by then); rejects on another status, a closed socket or after `ms`.
  open(ms) {
    return new Promise((resolve, reject) => {
      this.reject = reject;
      this.timer = setTimeout(() => this.fail('timeout'), ms);
      const sock = net.connect({ host: HOST, port: opts.port });
      this.sock = sock;
      let head = Buffer.alloc(0);
      sock.on('data', (data) => {
        if (head) {
          head = Buffer.concat([head, data]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          const headers = head.toString('latin1', 0, end);
          data = head.subarray(end + 4);
          head = null;
          if (!headers.startsWith('HTTP/1.1 200')) return this.fail(`status: ${headers.split('\r\n', 1)[0]}`);
          if (!/\r\ncontent-type: *text\/event-stream/i.test(headers)) return this.fail('not text/event-stream');
          this.chunked = /\r\ntransfer-encoding: *chunked/i.test(headers);
        }
        if (this.onBody(data) > 0) {
          clearTimeout(this.timer);
          resolve(this);
        }
      });
      sock.on('error', (error) => this.fail(error.code || String(error)));
      sock.on('close', () => this.fail('closed'));
      sock.write(
        `GET ${this.path} HTTP/1.1\r\nHost: ${HOST}:${opts.port}\r\nAccept: text/event-stream\r\n` +
          'Cache-Control: no-cache\r\n\r\n',
      );
    });
  }

  fail(why) {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.closed = true;
    this.sock.destroy();
    this.reject(new Error(why)); // a no-op once subscribed: `closed` tells the fan-out instead
  }

  close() {
    this.closed = true;
    this.sock.destroy();
  }

  // The body's bytes, de-chunked if need be, go on as text; returns how many there were.
  onBody(data) {
    if (!this.chunked) {
      this.onText(data.toString('latin1'));
      return data.length;
    }
    let got = 0;
    let at = 0;
    while (at < data.length) {
      if (this.chunkLeft > 0) {
        const end = Math.min(data.length, at + this.chunkLeft);
        this.onText(data.toString('latin1', at, end));
        this.chunkLeft -= end - at;
        got += end - at;
        at = end;
        continue;
      }
      // A chunk's size line, or the empty line after its data.
      const end = data.indexOf(10, at);
      this.sizeLine += data.toString('latin1', at, end < 0 ? data.length : end);
      if (end < 0) break;
      at = end + 1;
      const line = this.sizeLine.trim();
      this.sizeLine = '';
      if (line === '') continue;
      this.chunkLeft = parseInt(line, 16);
      if (!(this.chunkLeft > 0)) {
        this.fail(this.chunkLeft === 0 ? 'stream ended' : 'bad chunk size');
        break;
      }
    }
    return got;
  }

  // Latin-1 keeps one character per byte, so a line split across reads joins up unharmed.
  onText(text) {
    const lines = (this.partial + text).split(/\r\n|\r|\n/);
    this.partial = lines.pop();
    for (const line of lines) if (line.startsWith('data:')) this.onData(this, line);
  }
}

// One POST of a JSON body on a connection of its own; resolves with the status (0: none came).
function postJson(path, body) {
  return new Promise((resolve) => {
    const json = JSON.stringify(body);
    const sock = net.connect({ host: HOST, port: opts.port });
    const chunks = [];
    const finish = () => {
      sock.destroy();
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(Buffer.concat(chunks).toString('latin1', 0, 16));
      resolve(match ? Number(match[1]) : 0);
    };
    sock.setTimeout(opts.timeout * 1000, finish);
    sock.on('data', (data) => chunks.push(data));
    sock.on('close', finish); // Connection: close, so the response ends with the connection
    sock.on('error', () => {}); // 'close' follows
    sock.end(
      `POST ${path} HTTP/1.1\r\nHost: ${HOST}:${opts.port}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
    );
  });
}

// SSE fan-out: N clients hold one room's event stream open; one POST on another connection, and
// the clock runs until every client has a `data:` line with the POST's marker in it.
async function sse() {
  let wait = null; // the broadcast being timed: {marker, started, times, expected, done}
  const onData = (client, line) => {
    if (!wait || client.seen === wait.marker || !line.includes(wait.marker)) return;
    client.seen = wait.marker;
    wait.times.push(performance.now() - wait.started);
    if (wait.times.length === wait.expected) wait.done();
  };

  // n clients, at most `parallel` of them subscribing at once, all within one deadline.
  async function subscribe(n) {
    const clients = [];
    const errorKinds = {};
    const deadline = performance.now() + opts.timeout * 1000;
    await inBatches(n, opts.parallel, async () => {
      const left = deadline - performance.now();
      try {
        if (left <= 0) throw new Error('timeout');
        clients.push(await new EventStreamClient(opts.path, onData).open(left));
      } catch (error) {
        errorKinds[error.message] = (errorKinds[error.message] || 0) + 1;
      }
    });
    return { clients, errors: n - clients.length, errorKinds };
  }

  // One marker posted; waits up to the timeout for every client to have it.
  async function fanout(clients) {
    const marker = `bench-${crypto.randomBytes(6).toString('hex')}`;
    const arrived = new Promise((done) => {
      wait = { marker, started: performance.now(), times: [], expected: clients.length, done };
    });
    const status = await postJson(opts.postPath, { text: marker });
    if (status === 201 && clients.length) await Promise.race([arrived, sleep(opts.timeout)]);
    const times = wait.times.sort((a, b) => a - b);
    wait = null;
    return { status, times, missing: clients.length - times.length };
  }

  // Warm up the code paths (imports, caches, the publish path) with a few clients, then take a
  // baseline.
  const warm = await subscribe(opts.warmConns);
  const warmed = warm.errors ? null : await fanout(warm.clients);
  warm.clients.forEach((client) => client.close());
  if (!warmed || warmed.status !== 201 || warmed.missing) {
    const why = warmed
      ? `POST answered ${warmed.status}, ${warmed.missing} missed it`
      : JSON.stringify(warm.errorKinds);
    return { mode: 'sse', errors: warm.errors || warmed.missing || 1, failure: `warm-up: ${why}` };
  }
  await sleep(opts.settle);
  const baseline = serverMemKiB();

  const t0 = performance.now();
  const opened = await subscribe(opts.conns);
  const subscribeSeconds = (performance.now() - t0) / 1000;
  await sleep(opts.settle);
  const held = serverMemKiB();
  const server0 = serverCpu();
  const { status, times, missing } = await fanout(opened.clients);
  const serverCpuSeconds = serverCpu() - server0;
  opened.clients.forEach((client) => client.close());
  return {
    mode: 'sse',
    conns: opened.clients.length,
    subscribeSeconds,
    postStatus: status,
    // The time until the last client has it: none when some never did (errors counts them).
    fanoutMs: missing || !times.length ? null : times[times.length - 1],
    fanoutMedianMs: percentile(times, 50),
    serverCpuMs: serverCpuSeconds * 1000,
    baselineKiB: baseline,
    heldKiB: held,
    kibPerClient: (held - baseline) / Math.max(1, opened.clients.length),
    errors: opened.errors + missing,
    errorKinds: opened.errorKinds,
    ...(status === 201 ? {} : { failure: `POST answered ${status}` }),
    clientCpuSeconds: clientCpu(),
  };
}

const modes = { echo, idle, streams, broadcast, sse };
if (!(opts.mode in modes)) {
  console.error(`mode ${opts.mode} is not implemented`);
  process.exit(2);
}
// A hard stop, whatever happens: the run can never hang. Each phase has opts.timeout.
const phases = { broadcast: opts.messages + 1, sse: 4 }[opts.mode] ?? 1;
setTimeout(() => {
  console.log(JSON.stringify({ mode: opts.mode, errors: -1, firstErrors: ['client timeout'] }));
  process.exit(3);
}, (opts.timeout * phases + opts.warmup + opts.duration + 30) * 1000).unref();

const result = await modes[opts.mode]();
console.log(JSON.stringify(result));
process.exit(0);
