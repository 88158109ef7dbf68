// herald.js: the browser client of the Herald hub's `herald.v1` protocol (docs/protocol.md).
// One dependency-free ES module: commands with replies, subscriptions that recover after a
// reconnect, server-side subscriptions (the personal channel, token `subs`, the server API)
// that recover too, exponential backoff with full jitter, and dead-connection detection.

/** The error and disconnect codes, mirrored from crates/herald-hub-protocol/codes.json
 * (web/test/codes.test.js fails when the two differ). */
export const CODES = {
  errors: {
    internal: { code: 100, temporary: true, message: "internal error" },
    unauthorized: { code: 101, temporary: false, message: "unauthorized" },
    unknown_method: { code: 102, temporary: false, message: "unknown method" },
    permission_denied: { code: 103, temporary: false, message: "permission denied" },
    already_subscribed: { code: 104, temporary: false, message: "already subscribed" },
    not_subscribed: { code: 105, temporary: false, message: "not subscribed" },
    limit_exceeded: { code: 106, temporary: false, message: "limit exceeded" },
    bad_request: { code: 107, temporary: false, message: "bad request" },
    rate_limited: { code: 108, temporary: true, message: "rate limited" },
    unavailable: { code: 109, temporary: true, message: "temporarily unavailable" },
    position_unavailable: { code: 110, temporary: false, message: "position unavailable" },
    outcome_unknown: { code: 111, temporary: true, message: "outcome unknown" },
    unknown_namespace: { code: 112, temporary: false, message: "unknown namespace" },
  },
  disconnects: {
    normal: { code: 1000, reconnect: false, reason: "" },
    shutdown: { code: 1001, reconnect: true, reason: "server shutting down" },
    policy: { code: 1008, reconnect: false, reason: "policy violation" },
    too_big: { code: 1009, reconnect: false, reason: "message too big" },
    internal: { code: 1011, reconnect: true, reason: "internal error" },
    slow: { code: 4001, reconnect: true, reason: "slow consumer" },
    insufficient_state: { code: 4002, reconnect: true, reason: "insufficient state" },
    unavailable: { code: 4003, reconnect: true, reason: "broker unavailable" },
    write_timeout: { code: 4004, reconnect: true, reason: "write timeout" },
    bad_request: { code: 4500, reconnect: false, reason: "bad request" },
    unauthorized: { code: 4501, reconnect: false, reason: "unauthorized" },
    idle: { code: 4502, reconnect: false, reason: "idle timeout" },
    connection_limit: { code: 4503, reconnect: false, reason: "too many connections" },
    terminated: { code: 4504, reconnect: false, reason: "disconnected by the server" },
  },
  reconnect_ranges: { reconnect: [4000, 4499], terminal: [4500, 4999] },
};

/** Codes of failures on this side, below the server's 100: no reply came, or it cannot. */
export const LOCAL_ERRORS = {
  timeout: { code: 1, temporary: true, message: "no reply in time" },
  disconnected: { code: 2, temporary: true, message: "connection lost before the reply" },
  closed: { code: 3, temporary: false, message: "client closed" },
};

// RFC 6455 §7.4.1 codes a browser or proxy reports for a transient failure: abnormal closure
// (no close frame), service restart, try again later. The server never sends them itself.
const TRANSIENT_CLOSE_CODES = [1006, 1012, 1013];

/** Whether a connection closed with `code` should be reopened (docs/protocol.md, Disconnects). */
export function shouldReconnect(code) {
  const known = Object.values(CODES.disconnects).find((d) => d.code === code);
  if (known) return known.reconnect;
  const [low, high] = CODES.reconnect_ranges.reconnect;
  return (code >= low && code <= high) || TRANSIENT_CLOSE_CODES.includes(code);
}

/** A failed command: `code` is the server's error code (100–110) or a LOCAL_ERRORS code. */
export class HeraldError extends Error {
  constructor(code, message, temporary = false) {
    super(message);
    this.name = "HeraldError";
    this.code = code;
    this.temporary = temporary;
  }
}

function localError(kind) {
  const e = LOCAL_ERRORS[kind];
  return new HeraldError(e.code, e.message, e.temporary);
}

/** Delay before reconnect attempt `attempt` (0-based): full jitter over an exponential cap. */
export function backoffDelay(attempt, { min, max }, random = Math.random) {
  const cap = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

// An exception in application code must not break the client's own bookkeeping: it is
// reported as an uncaught error (window.onerror, the console) and delivery goes on.
function callSafely(fn, value) {
  if (!fn) return;
  try {
    fn(value);
  } catch (e) {
    if (globalThis.reportError) {
      globalThis.reportError(e);
    } else {
      setTimeout(() => {
        throw e;
      });
    }
  }
}

const DEFAULTS = {
  backoff: { min: 500, max: 20000 },
  fallbackTimeout: 4000, // ms for a transport to say `connected` before the next one
  probeInterval: 60000, // ms between WebSocket probes while on a fallback (0: never)
  timeout: 10000, // ms for a reply
  pingMargin: 5000, // ms of silence beyond the server's ping_interval before we ask
  pingTimeout: 10000, // ms to wait for the answer to our ping
};

const STORAGE_KEY = "herald.transport";

function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // denied (sandboxed frame, privacy settings)
  }
}

/** An HTTP sibling of a WebSocket URL: `ws://h/ws?q` → `http://h/{name}?q`. */
function siblingUrl(url, name) {
  const u = new URL(url, globalThis.location?.href);
  u.protocol = u.protocol === "wss:" ? "https:" : u.protocol === "ws:" ? "http:" : u.protocol;
  u.pathname = u.pathname.replace(/\/[^/]*$/, `/${name}`);
  return u.href;
}

/** The emulation's downstream URL for a WebSocket URL: `ws://h/ws?q` → `http://h/stream?q`. */
export function streamUrl(url) {
  return siblingUrl(url, "stream");
}

/** The long-polling URL for a WebSocket URL: `ws://h/ws?q` → `http://h/poll?q`. */
export function pollUrl(url) {
  return siblingUrl(url, "poll");
}

/**
 * herald.v1 where no WebSocket gets through, shaped like a WebSocket for the client: the
 * downstream is an event stream (`GET /stream`) whose every `data` is one herald.v1 message;
 * what `send` gets goes up by `POST /stream/{session}`, batched one command per line while a
 * POST is in flight. A POST may land on any node. A failed POST (404: the session or its node
 * is gone) or the end of the stream closes it, with the code of the `disconnect` event if one
 * came, and the client reconnects and recovers as after a WebSocket close.
 */
export class HttpStream {
  constructor(url, { fetch } = {}) {
    this._fetch = fetch ?? globalThis.fetch.bind(globalThis);
    this._url = new URL(url);
    this._abort = new AbortController();
    this._outbox = [];
    this._posting = false;
    this._session = null;
    this._closed = false;
    this._last = { code: 1006, reason: "stream ended" };
    this._path = "stream"; // where commands are POSTed: `{path}/{session}`
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
    this._read().catch(() => {}).finally(() => this._end());
  }

  async _read() {
    const response = await this._fetch(this._url.href, {
      headers: { accept: "text/event-stream" },
      credentials: "include",
      cache: "no-store",
      signal: this._abort.signal,
    });
    if (!response.ok || !response.body) {
      this._last = { code: 1006, reason: `HTTP ${response.status}` };
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      // CRLF, CR and LF all end a line; a CR at the end may be half of a CRLF: kept for now.
      buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n|\r(?!$)/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        this._event(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  _event(block) {
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    // As an EventSource does: a block without data (a heartbeat comment) dispatches nothing.
    if (this._closed || data.length === 0) return;
    const text = data.join("\n");
    if (kind === "session") {
      this._session = JSON.parse(text).session;
      this._post();
    } else if (kind === "disconnect") {
      const { code, reason } = JSON.parse(text);
      this._last = { code, reason };
    } else if (kind === "message") {
      this.onmessage?.({ data: text });
    }
  }

  send(text) {
    if (this._closed) return;
    this._outbox.push(text);
    this._post();
  }

  async _post() {
    if (this._posting || !this._session || this._outbox.length === 0 || this._closed) return;
    this._posting = true;
    const body = this._outbox.splice(0).join("\n");
    const url = new URL(`${this._path}/${encodeURIComponent(this._session)}`, this._url);
    try {
      // text/plain: a "simple" request, so a cross-origin POST needs no preflight.
      const response = await this._fetch(url.href, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body,
        credentials: "include",
      });
      if (!response.ok) {
        const reason = (await response.text().catch(() => "")).trim();
        this._last = { code: 1006, reason: `POST ${response.status} ${reason}`.trim() };
        return this.close();
      }
    } catch (e) {
      this._last = { code: 1006, reason: `POST failed: ${e.message}` };
      return this.close();
    } finally {
      this._posting = false;
    }
    this._post();
  }

  close() {
    if (this._closed) return;
    this._closed = true;
    this._abort.abort();
    this._end();
  }

  _end() {
    if (this._ended) return;
    this._ended = true;
    this._closed = true;
    this._abort.abort();
    const { code, reason } = this._last;
    this.onclose?.({ code, reason });
  }
}

/** Poll failures in a row (the network, not a refusal) before the connection counts as lost. */
const POLL_RETRIES = 3;

/**
 * herald.v1 over long polls, for a proxy that holds streamed responses back: `GET /poll`
 * opens the session, then each `GET /poll/{session}?last=N` returns the messages after number
 * `N`, held by the server until there is one. An answer lost in flight (a network failure) is
 * asked for again with the same `last`, so nothing is skipped; commands go up as for
 * HttpStream (`POST /poll/{session}`). A refused poll (404: the session or its node is gone)
 * or the session's `disconnect` closes it.
 */
export class HttpPoll extends HttpStream {
  constructor(url, options = {}) {
    super(url, options);
    this._path = "poll";
    this._last = { code: 1006, reason: "polling ended" };
  }

  async _read() {
    const init = { credentials: "include", cache: "no-store", signal: this._abort.signal };
    const open = await this._fetch(this._url.href, init);
    if (!open.ok) {
      this._last = { code: 1006, reason: `HTTP ${open.status}` };
      return;
    }
    this._session = (await open.json()).session;
    this._post();
    const url = new URL(`poll/${encodeURIComponent(this._session)}`, this._url);
    let last = 0;
    let failures = 0;
    while (!this._closed) {
      url.search = `?last=${last}`;
      let body;
      try {
        const response = await this._fetch(url.href, init);
        if (!response.ok) {
          const reason = (await response.text().catch(() => "")).trim();
          this._last = { code: 1006, reason: `poll ${response.status} ${reason}`.trim() };
          return;
        }
        body = await response.json();
      } catch (e) {
        if (this._closed || ++failures > POLL_RETRIES) {
          this._last = { code: 1006, reason: `poll failed: ${e.message}` };
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 250 * failures));
        continue;
      }
      failures = 0;
      if (body.from > last + 1) {
        this._last = { code: 1006, reason: "poll skipped messages" };
        return;
      }
      for (const [i, message] of body.messages.entries()) {
        if (this._closed) return;
        if (body.from + i <= last) continue; // sent again: had it already
        last = body.from + i;
        this.onmessage?.({ data: JSON.stringify(message) });
      }
      if (body.disconnect) {
        this._last = { code: body.disconnect.code, reason: body.disconnect.reason };
        return;
      }
    }
  }
}

/** A client of one hub. Nothing happens until `connect()`. */
export class Herald {
  constructor(url, options = {}) {
    this.url = url;
    this.options = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...options.backoff } };
    // In order of preference. The emulations need a page's origin to find /stream by default.
    this.options.transports ??= globalThis.location ? ["websocket", "stream", "poll"] : ["websocket"];
    this.state = "disconnected";
    this.clientId = null;
    this.user = null;
    this._Transport = options.WebSocket ?? globalThis.WebSocket;
    this._HttpStream = options.HttpStream ?? HttpStream;
    this._HttpPoll = options.HttpPoll ?? HttpPoll;
    this._storage = options.storage === undefined ? storage() : options.storage;
    // The transport to try next: what worked last time (remembered), else the first.
    const remembered = this._storage?.getItem(STORAGE_KEY);
    this.transport = this.options.transports.includes(remembered) ? remembered : this.options.transports[0];
    this._timers = options.timers ?? globalThis;
    this._random = options.random ?? Math.random;
    this._listeners = new Map();
    this._subs = new Map();
    this._server = new Map(); // channel -> ServerSubscription: subscribed by the server
    this._pending = new Map(); // id -> {resolve, reject, timer}
    this._queue = []; // commands waiting for the connection
    this._nextId = 1;
    this._ws = null;
    this._attempt = 0;
    this._opening = 0; // counts attempts: a close() during one's await cancels it
    this._wanted = false;
    this._retryTimer = null;
    this._idleTimer = null;
    this._pingInterval = 25;
    this._proven = false; // a transport connected once: stick to it
    this._probeTimer = null;
    this._moving = false; // reconnecting at once to a transport that a probe found working
  }

  // The token source that can be asked again: `getToken`, or a `token` given as a function.
  // A client with one refreshes on a `refresh` push and reconnects after 4501.
  get _tokenSource() {
    const { getToken, token } = this.options;
    return getToken ?? (typeof token === "function" ? token : null);
  }

  /** Listens to `state`, `refresh`, `subscribed`, `unsubscribed` and `publication`
   * (publications on server-side subscriptions) events; returns a function that stops
   * listening. */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this._listeners.get(event).delete(fn);
  }

  _emit(event, value) {
    for (const fn of this._listeners.get(event) ?? []) callSafely(fn, value);
  }

  _setState(state, details = {}) {
    this.state = state;
    this._emit("state", { state, ...details });
  }

  /** Opens the connection and keeps it open until `close()` or a terminal disconnect. */
  connect() {
    if (this._ws || this.state === "connecting") return;
    this._timers.clearTimeout(this._retryTimer); // skip the rest of a backoff wait
    this._wanted = true;
    this._open();
  }

  /** Closes for good: pending commands fail with LOCAL_ERRORS.closed; no reconnect. */
  close() {
    if (!this._wanted && this.state === "disconnected") return;
    this._wanted = false;
    this._opening++;
    this._timers.clearTimeout(this._retryTimer);
    const ws = this._ws;
    this._drop(1000, "closed by client", false, "closed");
    if (ws) ws.close(1000);
  }

  async _open() {
    const attempt = ++this._opening;
    this._setState("connecting");
    let url;
    try {
      url = await this._connectUrl();
    } catch (e) {
      if (attempt === this._opening) this._drop(1006, `token: ${e.message}`, true);
      return;
    }
    if (!this._wanted || attempt !== this._opening) return;
    let ws;
    const kind = this.transport;
    try {
      const fetch = this.options.fetch;
      if (kind === "stream") ws = new this._HttpStream(streamUrl(url), { fetch });
      else if (kind === "poll") ws = new this._HttpPoll(pollUrl(url), { fetch });
      else ws = new this._Transport(url, "herald.v1");
    } catch (e) {
      this._drop(1006, e.message, true);
      return;
    }
    this._ws = ws;
    // A handshake that never completes counts as a dead connection too; a transport that a
    // proxy holds without answering (a WebSocket upgrade left hanging, a stream buffered)
    // gives way to the next one sooner. The last in the list gets the full timeout.
    const list = this.options.transports;
    const hurry = list.indexOf(kind) < list.length - 1 && this._nextTransport();
    const wait = hurry ? this.options.fallbackTimeout : this.options.timeout;
    this._timers.clearTimeout(this._idleTimer);
    this._idleTimer = this._timers.setTimeout(() => this._dead(), wait);
    // Events of a socket we already gave up on (a dead one we closed) are ignored.
    ws.onmessage = (e) => ws === this._ws && this._onMessage(e.data);
    ws.onclose = (e) => ws === this._ws && this._onClose(e.code, e.reason);
    ws.onerror = () => {};
  }

  // The transport to try after the current one failed before `connected`: the next in the
  // list, round and round, until one connects. Once one has, this client sticks to it: a
  // later failure is an outage, not a proxy that blocks it.
  _nextTransport() {
    const list = this.options.transports;
    if (this.state === "connected" || this._proven || list.length < 2) return null;
    return list[(list.indexOf(this.transport) + 1) % list.length];
  }

  async _connectUrl() {
    let url = this.url;
    if (globalThis.location && !/^wss?:/.test(url)) {
      const u = new URL(url, globalThis.location.href);
      u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
      url = u.href;
    }
    const source = this._tokenSource;
    const value = source ? await source() : this.options.token;
    if (!value) return url;
    return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(value)}`;
  }

  _onClose(code, reason) {
    // An expired token is final only when there is no way to get a fresh one.
    const expired = code === CODES.disconnects.unauthorized.code && this._tokenSource;
    this._drop(code, reason, shouldReconnect(code) || Boolean(expired));
  }

  // The connection is gone: fail what waits for it, then retry or stop.
  _drop(code, reason, reconnect, failure = "disconnected") {
    // A transport that never got to `connected` gives way to the next: at once, unless the
    // list starts over.
    const next = this._ws && this._nextTransport();
    const hurry = next && this.options.transports.indexOf(next) > 0;
    if (next) this.transport = next;
    const moving = this._moving;
    this._moving = false;
    this._ws = null;
    this._timers.clearTimeout(this._idleTimer);
    this._timers.clearTimeout(this._probeTimer);
    for (const p of this._pending.values()) {
      this._timers.clearTimeout(p.timer);
      p.reject(localError(failure));
    }
    this._pending.clear();
    for (const sub of this._subs.values()) sub._reset();
    for (const sub of this._server.values()) sub._reset();
    const willReconnect = reconnect && this._wanted;
    if (!willReconnect) {
      this._wanted = false;
      for (const q of this._queue.splice(0)) q.fail(localError("closed"));
    }
    this._setState("disconnected", { code, reason, willReconnect });
    if (willReconnect) {
      const delay = hurry || moving ? 0 : backoffDelay(this._attempt++, this.options.backoff, this._random);
      this._retryTimer = this._timers.setTimeout(() => this._open(), delay);
    }
  }

  _onMessage(text) {
    this._armIdle();
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.id !== undefined) return this._onReply(msg);
    switch (msg.push) {
      case "connected":
        return this._onConnected(msg);
      case "pub":
        return (this._subs.get(msg.channel) ?? this._server.get(msg.channel))?._onPub(msg);
      case "subscribed":
        return this._onServerSubscribed(msg);
      case "unsubscribed":
        return this._onServerUnsubscribed(msg);
      case "join":
      case "leave":
        return this._subs.get(msg.channel)?._onPresence(msg.push, msg);
      case "refresh":
        return this._refresh(msg.expires);
    }
  }

  // The token expires at `expires` (Unix seconds): send a fresh one. A failure is reported as
  // a `refresh` event; the server then closes with 4501 and the client reconnects with a
  // fresh token.
  async _refresh(expires) {
    const source = this._tokenSource;
    if (!source) return;
    const ws = this._ws;
    try {
      const token = await source();
      if (ws !== this._ws || !token) return;
      const result = await this._call("refresh", { token });
      this._emit("refresh", { ok: true, expires: result.expires ?? null });
    } catch (error) {
      this._emit("refresh", { ok: false, expires, error });
    }
  }

  _onConnected(msg) {
    this._attempt = 0;
    this._proven = true;
    try {
      this._storage?.setItem(STORAGE_KEY, this.transport);
    } catch {
      // Storage full or denied: nothing is remembered, which costs one timeout next time.
    }
    this.clientId = msg.client;
    this.user = msg.user;
    if (msg.ping_interval > 0) this._pingInterval = msg.ping_interval;
    this._armIdle();
    this._setState("connected", { client: msg.client, user: msg.user });
    for (const sub of this._subs.values()) sub._subscribe();
    for (const q of this._queue.splice(0)) q.send();
    this._scheduleProbe();
  }

  // On a fallback, a WebSocket is tried now and then: a proxy may have been fixed, or the
  // page moved to a network that lets it through.
  _scheduleProbe() {
    this._timers.clearTimeout(this._probeTimer);
    const every = this.options.probeInterval;
    if (!every || this.transport === "websocket" || !this.options.transports.includes("websocket")) return;
    this._probeTimer = this._timers.setTimeout(() => this._probe(), every);
  }

  // Opens a WebSocket beside the fallback; one that reaches `connected` within
  // `fallbackTimeout` is closed again and the client moves to WebSocket: a new session that
  // recovers every subscription from its position, as after any reconnect.
  async _probe() {
    const current = this._ws;
    let url;
    try {
      url = await this._connectUrl();
    } catch {
      return this._scheduleProbe();
    }
    if (this._ws !== current || this.state !== "connected") return;
    let probe;
    try {
      probe = new this._Transport(url, "herald.v1");
    } catch {
      return this._scheduleProbe();
    }
    let settled = false;
    const end = (works) => {
      if (settled) return;
      settled = true;
      this._timers.clearTimeout(timer);
      probe.onmessage = probe.onclose = null;
      try {
        probe.close(1000, "probe");
      } catch {
        // Never opened: nothing to close.
      }
      if (this._ws !== current || this.state !== "connected") return;
      if (!works) return this._scheduleProbe();
      this.transport = "websocket";
      try {
        this._storage?.setItem(STORAGE_KEY, "websocket");
      } catch {
        // Not remembered: the next page load starts with the default order anyway.
      }
      this._moving = true;
      this._drop(1000, "moving to websocket", true);
      current.close(1000);
    };
    const timer = this._timers.setTimeout(() => end(false), this.options.fallbackTimeout);
    probe.onmessage = (e) => {
      try {
        if (JSON.parse(e.data).push === "connected") end(true);
      } catch {
        // Not herald.v1: not a working WebSocket.
      }
    };
    probe.onclose = () => end(false);
    probe.onerror = () => {};
  }

  _onServerSubscribed(msg) {
    if (this._subs.has(msg.channel)) return;
    let sub = this._server.get(msg.channel);
    if (!sub) {
      sub = new ServerSubscription(this, msg.channel);
      this._server.set(msg.channel, sub);
    }
    sub._onSubscribed(msg);
  }

  _onServerUnsubscribed(msg) {
    const sub = this._server.get(msg.channel);
    if (sub) {
      this._server.delete(msg.channel);
      sub._reset();
    }
    // A subscription the application made ends too: it is not renewed after a reconnect.
    this._subs.get(msg.channel)?._ended(msg.reason);
    this._emit("unsubscribed", { channel: msg.channel, reason: msg.reason });
  }

  /** The channels the server subscribed this client to, with the last applied position. */
  get serverSubscriptions() {
    return [...this._server.values()].map((s) => ({ channel: s.channel, position: s.position }));
  }

  _onReply(msg) {
    const p = this._pending.get(msg.id);
    if (!p) return;
    this._pending.delete(msg.id);
    this._timers.clearTimeout(p.timer);
    if (msg.error) {
      const { code, message, temporary } = msg.error;
      p.reject(new HeraldError(code, message, Boolean(temporary)));
    } else {
      p.resolve(msg.result ?? {});
    }
  }

  // Browsers hide WebSocket pings, so silence is measured here: after ping_interval plus a
  // margin without a message, ask with a `ping` command; no answer in time means dead.
  _armIdle() {
    const t = this._timers;
    t.clearTimeout(this._idleTimer);
    const idle = this._pingInterval * 1000 + this.options.pingMargin;
    this._idleTimer = t.setTimeout(() => {
      this._call("ping", {}).catch(() => {});
      this._idleTimer = t.setTimeout(() => this._dead(), this.options.pingTimeout);
    }, idle);
  }

  _dead() {
    const ws = this._ws;
    this._drop(1006, "no answer to ping", true);
    try {
      ws?.close(4000, "no answer to ping");
    } catch {
      // Already closing: the handlers are detached either way.
    }
  }

  /** Sends a command now if connected, else when connected (rejects after `timeout`). */
  _call(method, params) {
    if (!this._wanted) return Promise.reject(localError("closed"));
    return new Promise((resolve, reject) => {
      const timer = this._timers.setTimeout(() => {
        this._queue = this._queue.filter((q) => q !== entry);
        this._pending.delete(entry.id);
        reject(localError("timeout"));
      }, this.options.timeout);
      const entry = {
        id: 0,
        fail: (e) => {
          this._timers.clearTimeout(timer);
          reject(e);
        },
        send: () => {
          entry.id = this._nextId++;
          this._pending.set(entry.id, { resolve, reject, timer });
          try {
            this._ws.send(JSON.stringify({ id: entry.id, method, params }));
          } catch {
            this._pending.delete(entry.id);
            entry.fail(localError("disconnected"));
          }
        },
      };
      if (this.state === "connected") entry.send();
      else this._queue.push(entry);
    });
  }

  /** Publishes `data` (any JSON) and resolves to `{offset, epoch}`. */
  publish(channel, data) {
    return this._call("publish", { channel, data });
  }

  /** Reads history: `{offset, epoch, publications}`; opts `since: {offset, epoch}`, `limit`,
   * `reverse: true` (the newest first). */
  history(channel, opts = {}) {
    return this._call("history", { channel, ...opts });
  }

  /**
   * The connections subscribed to `channel`: `[{client, user}]`, as the broker read them.
   * Join/leave pushes handled while the call is open may be newer: apply them on top.
   */
  async presence(channel) {
    return (await this._call("presence", { channel })).clients;
  }

  /** Calls `method` of the application's backend with `data` (any JSON value); resolves to
   * the backend's answer. The backend's own errors reject with their code (1000-1999). */
  async rpc(method, data = null) {
    return (await this._call("rpc", { method, data })).data;
  }

  /** Subscribes to `channel`, now and after every reconnect, recovering what was missed. */
  subscribe(channel, handlers = {}) {
    if (this._subs.has(channel)) throw new Error(`already subscribed to ${channel}`);
    const sub = new Subscription(this, channel, handlers);
    this._subs.set(channel, sub);
    if (this.state === "connected") sub._subscribe();
    return sub;
  }
}

/** One channel held by a client; keeps the stream position it last applied. */
export class Subscription {
  constructor(client, channel, handlers) {
    this.client = client;
    this.channel = channel;
    this.handlers = handlers;
    this.position = handlers.since ?? null; // {offset, epoch} of the last applied publication
    this.subscribed = false;
    this._buffer = null; // live pubs that arrived while the subscribe was in flight
    this._retry = 0;
    let resolve;
    let reject;
    this.ready = new Promise((res, rej) => ((resolve = res), (reject = rej)));
    this.ready.catch(() => {});
    this._ready = { resolve, reject };
  }

  get active() {
    return this.client._subs.get(this.channel) === this;
  }

  /** Stops receiving; the server forgets the subscription. */
  unsubscribe() {
    if (!this.active) return;
    this.client._subs.delete(this.channel);
    if (this.client.state === "connected") {
      this.client._call("unsubscribe", { channel: this.channel }).catch(() => {});
    }
  }

  _reset() {
    this.subscribed = false;
    this._buffer = null;
  }

  async _subscribe() {
    const params = { channel: this.channel };
    if (this.handlers.joinLeave) params.join_leave = true;
    if (this.position) params.recover = { ...this.position };
    else if (Number.isInteger(this.handlers.latest)) params.latest = this.handlers.latest;
    this._buffer = [];
    let result;
    try {
      result = await this.client._call("subscribe", params);
    } catch (e) {
      return this._failed(e);
    }
    if (!this.active) return;
    this._applyReply(result);
  }

  _applyReply(result) {
    const buffered = this._buffer ?? [];
    this._buffer = null;
    this.subscribed = true;
    this._retry = 0;
    const { offset, epoch } = result;
    if (result.recovered === false) {
      const previous = this.position;
      this.position = { offset, epoch };
      callSafely(this.handlers.onRecoveryFailed, { previous, offset, epoch });
    } else {
      // Recovered publications, or without a position the namespace's latest ones.
      for (const p of result.publications ?? []) this._apply({ ...p, epoch, channel: this.channel });
    }
    if (!this.position || this.position.epoch !== epoch || this.position.offset < offset) {
      this.position = { offset, epoch };
    }
    // `data`: what the application's backend attached to the subscription, when it did.
    const event = { offset, epoch, recovered: result.recovered };
    if (result.data !== undefined) event.data = result.data;
    this._ready.resolve({ ...event });
    callSafely(this.handlers.onSubscribed, event);
    for (const p of buffered) this._apply(p);
  }

  _failed(e) {
    // Lost or closed connections resubscribe on the next `connected`.
    if (!this.active || e.code === LOCAL_ERRORS.disconnected.code) return;
    if (e.code === LOCAL_ERRORS.closed.code) return;
    if (e.temporary && this.client.state === "connected") {
      const delay = backoffDelay(this._retry++, this.client.options.backoff, this.client._random);
      this.client._timers.setTimeout(() => {
        if (this.active && this.client.state === "connected" && !this.subscribed) this._subscribe();
      }, delay);
      return;
    }
    if (e.temporary) return;
    this.client._subs.delete(this.channel);
    this._ready.reject(e);
    callSafely(this.handlers.onError, e);
  }

  _onPub(p) {
    if (this._buffer) this._buffer.push(p);
    else if (this.subscribed) this._apply(p);
  }

  // Exactly once, in order: anything at or before the applied offset of the same epoch has
  // been delivered already (it came with the recovery and again live).
  _apply(p) {
    const at = this.position;
    if (at && p.epoch === at.epoch && p.offset <= at.offset) return;
    this.position = { offset: p.offset, epoch: p.epoch };
    callSafely(this.handlers.onPublication, {
      channel: this.channel,
      offset: p.offset,
      epoch: p.epoch,
      data: p.data,
      user: p.user,
      encoding: p.encoding,
    });
  }

  // The server ended the subscription (a refreshed token no longer allows the channel).
  _ended(reason) {
    this.client._subs.delete(this.channel);
    this._reset();
    callSafely(this.handlers.onUnsubscribed, { reason });
  }

  _onPresence(kind, m) {
    if (!this.subscribed) return;
    const info = { client: m.client, user: m.user };
    callSafely(kind === "join" ? this.handlers.onJoin : this.handlers.onLeave, info);
  }
}

/** Pages of history one server-side recovery reads at most before giving up on the gap. */
const MAX_RECOVERY_PAGES = 100;

/** A channel the server subscribed the client to (docs/protocol.md, Server-side
 * subscriptions). Its `subscribed` push says where live delivery starts; when the client held
 * an earlier position in the same epoch, `history` since it fills the gap, live publications
 * waiting until it did, and each publication is applied once, in order. */
class ServerSubscription {
  constructor(client, channel) {
    this.client = client;
    this.channel = channel;
    this.position = null;
    this.subscribed = false;
    this._buffer = null;
    this._generation = 0;
  }

  get active() {
    return this.client._server.get(this.channel) === this;
  }

  _reset() {
    this.subscribed = false;
    this._buffer = null;
    this._generation++;
  }

  async _onSubscribed({ offset, epoch }) {
    const generation = ++this._generation;
    const previous = this.position;
    this.subscribed = true;
    let recovered;
    if (previous && previous.epoch === epoch && previous.offset < offset) {
      this._buffer = [];
      recovered = await this._recover(offset, generation);
      if (generation !== this._generation) return;
    } else if (previous) {
      recovered = previous.epoch === epoch;
    }
    const buffered = this._buffer ?? [];
    this._buffer = null;
    const at = this.position;
    if (!at || at.epoch !== epoch || at.offset < offset) this.position = { offset, epoch };
    this.client._emit("subscribed", { channel: this.channel, offset, epoch, recovered });
    for (const p of buffered) this._apply(p);
  }

  // History since the last applied position up to `target`, page by page; false when the
  // server no longer has it (the application reloads its state).
  async _recover(target, generation) {
    for (let page = 0; page < MAX_RECOVERY_PAGES; page++) {
      const since = this.position;
      let result;
      try {
        result = await this.client.history(this.channel, { since });
      } catch {
        return false;
      }
      if (generation !== this._generation) return false;
      const publications = result.publications ?? [];
      for (const p of publications) this._apply({ ...p, epoch: since.epoch, channel: this.channel });
      if (this.position.offset >= target) return true;
      if (publications.length === 0) return false;
    }
    return false;
  }

  _onPub(p) {
    if (this._buffer) this._buffer.push(p);
    else if (this.subscribed) this._apply(p);
  }

  _apply(p) {
    const at = this.position;
    if (at && p.epoch === at.epoch && p.offset <= at.offset) return;
    this.position = { offset: p.offset, epoch: p.epoch };
    this.client._emit("publication", {
      channel: this.channel,
      offset: p.offset,
      epoch: p.epoch,
      data: p.data,
      user: p.user,
      encoding: p.encoding,
    });
  }
}
