// Choosing a transport: WebSocket first, then herald.v1 over an event stream and POSTs when
// no WebSocket gets through, remembering what worked; and that emulation's wire format.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Herald, HttpPoll, HttpStream, pollUrl, streamUrl } from "../herald.js";
import { FakeClock, FakeSocket, settle } from "./fake.js";

let clock;
beforeEach(() => {
  FakeSocket.reset();
  clock = new FakeClock();
});

/** A fetch that serves one event stream (fed by the test) and records POSTs. */
function fakeFetch({ postStatus = 202 } = {}) {
  const posts = [];
  let feed;
  const stream = new ReadableStream({ start: (c) => (feed = c) });
  const encoder = new TextEncoder();
  const fetch = async (url, init = {}) => {
    if (init.method === "POST") {
      posts.push({ url, body: init.body, type: init.headers["content-type"] });
      return new Response(postStatus === 202 ? null : "unknown session\n", { status: postStatus });
    }
    return new Response(stream, { status: 200, headers: { "content-type": "text/event-stream" } });
  };
  return {
    fetch,
    posts,
    send: (text) => feed.enqueue(encoder.encode(text)),
    end: () => feed.close(),
  };
}

const until = async (cond) => {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), "condition in time");
};

test("the stream URL is the WebSocket URL's sibling /stream, query kept", () => {
  assert.equal(streamUrl("ws://h:1/ws?token=a"), "http://h:1/stream?token=a");
  assert.equal(streamUrl("wss://x/app/ws"), "https://x/app/stream");
});

test("HttpStream hands each data event over as a message, split anywhere, CRLF or LF", async () => {
  const f = fakeFetch();
  const ws = new HttpStream("http://hub/stream", { fetch: f.fetch });
  const got = [];
  ws.onmessage = (e) => got.push(JSON.parse(e.data));
  const wire = 'event: session\r\ndata: {"session":"n.1"}\r\n\r\n:\n\ndata: {"push":"connected",\ndata: "client":"c1"}\n\ndata: {"id":1,"result":{}}\n\n';
  for (let i = 0; i < wire.length; i += 7) f.send(wire.slice(i, i + 7));
  await until(() => got.length === 2);
  assert.deepEqual(got, [{ push: "connected", client: "c1" }, { id: 1, result: {} }]);
  ws.close();
});

test("HttpStream posts commands after the session id, batched one per line while a POST is out", async () => {
  const f = fakeFetch();
  const ws = new HttpStream("http://hub/stream?token=t", { fetch: f.fetch });
  ws.send('{"id":1}');
  ws.send('{"id":2}');
  assert.equal(f.posts.length, 0, "no session id yet");
  f.send('event: session\ndata: {"session":"n.abc"}\n\n');
  await until(() => f.posts.length === 1);
  ws.send('{"id":3}');
  await until(() => f.posts.length === 2);
  assert.deepEqual(
    f.posts.map((p) => p.body),
    ['{"id":1}\n{"id":2}', '{"id":3}'],
  );
  assert.equal(f.posts[0].url, "http://hub/stream/n.abc");
  assert.equal(f.posts[0].type, "text/plain");
  ws.close();
});

test("HttpStream closes with the disconnect event's code when the stream ends, and after a refused POST", async () => {
  let f = fakeFetch();
  let ws = new HttpStream("http://hub/stream", { fetch: f.fetch });
  let closed = null;
  ws.onclose = (e) => (closed = e);
  f.send('event: session\ndata: {"session":"n.1"}\n\nevent: disconnect\ndata: {"code":4001,"reason":"slow consumer"}\n\n');
  f.end();
  await until(() => closed);
  assert.deepEqual(closed, { code: 4001, reason: "slow consumer" });

  f = fakeFetch({ postStatus: 404 });
  ws = new HttpStream("http://hub/stream", { fetch: f.fetch });
  closed = null;
  ws.onclose = (e) => (closed = e);
  f.send('event: session\ndata: {"session":"n.1"}\n\n');
  ws.send('{"id":1}');
  await until(() => closed);
  assert.equal(closed.code, 1006);
  assert.match(closed.reason, /POST 404 unknown session/);
});

/** A stand-in for HttpStream with FakeSocket's test API, recording its URLs. */
class FakeStream extends FakeSocket {
  constructor(url) {
    super(url, "stream");
  }
}

function memory(initial = {}) {
  const items = new Map(Object.entries(initial));
  return { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, v), items };
}

test("a WebSocket that never connects gives way to the stream after fallbackTimeout, and that is remembered", async () => {
  const storage = memory();
  const c = new Herald("ws://hub/ws", {
    WebSocket: FakeSocket,
    HttpStream: FakeStream,
    transports: ["websocket", "stream"],
    fallbackTimeout: 3000,
    storage,
    timers: clock,
  });
  c.connect();
  await settle();
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(FakeSocket.last.protocol, "herald.v1");
  await clock.advance(3000);
  assert.equal(FakeSocket.all.length, 2, "the stream opened at once, no backoff");
  assert.ok(FakeSocket.last instanceof FakeStream);
  assert.equal(FakeSocket.last.url, "http://hub/stream");
  FakeSocket.last.connected();
  assert.equal(c.state, "connected");
  assert.equal(c.transport, "stream");
  assert.equal(storage.items.get("herald.transport"), "stream");
  // Once connected, a drop reconnects on the same transport, after the backoff.
  FakeSocket.last.drop(1006);
  await clock.advance(30000);
  assert.ok(FakeSocket.last instanceof FakeStream);
});

test("a failed upgrade falls back at once; a remembered transport is tried first", async () => {
  const c = new Herald("ws://hub/ws", {
    WebSocket: FakeSocket,
    HttpStream: FakeStream,
    transports: ["websocket", "stream"],
    storage: memory(),
    timers: clock,
  });
  c.connect();
  await settle();
  FakeSocket.last.drop(1006);
  await clock.advance(0);
  assert.ok(FakeSocket.last instanceof FakeStream, "the next attempt is the stream");
  c.close();

  FakeSocket.reset();
  const again = new Herald("ws://hub/ws", {
    WebSocket: FakeSocket,
    HttpStream: FakeStream,
    transports: ["websocket", "stream"],
    storage: memory({ "herald.transport": "stream" }),
    timers: clock,
  });
  again.connect();
  await settle();
  assert.equal(FakeSocket.all.length, 1);
  assert.ok(FakeSocket.last instanceof FakeStream);
  again.close();
});

test("a WebSocket that works is used, and remembered", async () => {
  const storage = memory();
  const c = new Herald("ws://hub/ws", {
    WebSocket: FakeSocket,
    HttpStream: FakeStream,
    transports: ["websocket", "stream"],
    storage,
    timers: clock,
  });
  c.connect();
  await settle();
  FakeSocket.last.connected();
  assert.equal(c.transport, "websocket");
  assert.equal(storage.items.get("herald.transport"), "websocket");
  c.close();
});

test("a WebSocket that connected once stays the transport through outages", async () => {
  const c = new Herald("ws://hub/ws", {
    WebSocket: FakeSocket,
    HttpStream: FakeStream,
    transports: ["websocket", "stream"],
    storage: memory(),
    timers: clock,
  });
  c.connect();
  await settle();
  FakeSocket.last.connected();
  for (let i = 0; i < 3; i++) {
    FakeSocket.last.drop(1006);
    await clock.advance(30000);
    assert.ok(!(FakeSocket.last instanceof FakeStream), "still a WebSocket");
  }
  c.close();
});

test("when neither transport connects, the client alternates between them with backoff", async () => {
  const c = new Herald("ws://hub/ws", {
    WebSocket: FakeSocket,
    HttpStream: FakeStream,
    transports: ["websocket", "stream"],
    storage: memory(),
    random: () => 0.5,
    timers: clock,
  });
  c.connect();
  await settle();
  const kinds = [];
  for (let i = 0; i < 4; i++) {
    kinds.push(FakeSocket.last instanceof FakeStream ? "stream" : "websocket");
    FakeSocket.last.drop(1006);
    // Past the backoff, short of the next attempt's own timeout.
    await clock.advance(2500);
  }
  assert.deepEqual(kinds, ["websocket", "stream", "websocket", "stream"]);
  c.close();
});

/** A fetch playing a long-polling hub: answers each poll from `script` (by call), records all. */
function pollFetch(script) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    calls.push({ url, method: init.method ?? "GET", body: init.body });
    if (init.method === "POST") return new Response(null, { status: 202 });
    if (new URL(url).pathname === "/poll") return Response.json({ session: "n.s1" });
    const step = script.shift();
    if (!step) return new Promise(() => {}); // held for ever
    if (step === "lost") throw new TypeError("network error");
    if (step.status) return new Response(`${step.reason}\n`, { status: step.status });
    return Response.json(step);
  };
  return { fetch, calls };
}

test("the poll URL is the WebSocket URL's sibling /poll, query kept", () => {
  assert.equal(pollUrl("ws://h:1/ws?token=a"), "http://h:1/poll?token=a");
});

test("HttpPoll says what it received: a lost answer is asked for again with the same last", async () => {
  const f = pollFetch([
    { from: 1, messages: [{ push: "connected", client: "c1" }] },
    "lost",
    { from: 2, messages: [{ id: 1, result: {} }, { id: 2, result: {} }] },
    { from: 4, messages: [{ id: 3, result: {} }] },
  ]);
  const ws = new HttpPoll("http://hub/poll?token=t", { fetch: f.fetch });
  const got = [];
  ws.onmessage = (e) => got.push(JSON.parse(e.data));
  ws.send('{"id":1}');
  await until(() => got.length === 4);
  assert.deepEqual(
    got.map((m) => m.id ?? m.push),
    ["connected", 1, 2, 3],
  );
  const polls = f.calls.filter((c) => c.method === "GET").map((c) => c.url);
  assert.deepEqual(polls.slice(0, 6), [
    "http://hub/poll?token=t",
    "http://hub/poll/n.s1?last=0",
    "http://hub/poll/n.s1?last=1",
    "http://hub/poll/n.s1?last=1", // the lost answer, asked for again
    "http://hub/poll/n.s1?last=3",
    "http://hub/poll/n.s1?last=4",
  ]);
  const post = f.calls.find((c) => c.method === "POST");
  assert.equal(post.url, "http://hub/poll/n.s1");
  assert.equal(post.body, '{"id":1}');
  ws.close();
});

test("HttpPoll closes with the session's disconnect, or after a refused poll", async () => {
  let f = pollFetch([{ from: 1, messages: [], disconnect: { code: 4001, reason: "slow consumer" } }]);
  let ws = new HttpPoll("http://hub/poll", { fetch: f.fetch });
  let closed = null;
  ws.onclose = (e) => (closed = e);
  await until(() => closed);
  assert.deepEqual(closed, { code: 4001, reason: "slow consumer" });

  f = pollFetch([{ status: 404, reason: "the session's node does not answer" }]);
  ws = new HttpPoll("http://hub/poll", { fetch: f.fetch });
  closed = null;
  ws.onclose = (e) => (closed = e);
  await until(() => closed);
  assert.equal(closed.code, 1006);
  assert.match(closed.reason, /poll 404 the session's node does not answer/);
});

class FakePoll extends FakeSocket {
  constructor(url) {
    super(url, "poll");
  }
}

const three = (extra = {}) => ({
  WebSocket: FakeSocket,
  HttpStream: FakeStream,
  HttpPoll: FakePoll,
  transports: ["websocket", "stream", "poll"],
  fallbackTimeout: 3000,
  timers: clock,
  ...extra,
});

test("a stream that delivers nothing in fallbackTimeout gives way to long-polling, remembered", async () => {
  const storage = memory();
  const c = new Herald("ws://hub/ws", three({ storage }));
  c.connect();
  await settle();
  await clock.advance(3000);
  assert.ok(FakeSocket.last instanceof FakeStream);
  // A buffering proxy: the stream is open, and nothing of it arrives.
  await clock.advance(3000);
  assert.ok(FakeSocket.last instanceof FakePoll, "polling, at once");
  assert.equal(FakeSocket.last.url, "http://hub/poll");
  FakeSocket.last.connected();
  assert.equal(c.transport, "poll");
  assert.equal(storage.items.get("herald.transport"), "poll");
  c.close();
});

test("on a fallback, a WebSocket is probed now and then, and the client moves to it once it works", async () => {
  const storage = memory({ "herald.transport": "poll" });
  const c = new Herald("ws://hub/ws", three({ storage, probeInterval: 60000 }));
  const states = [];
  c.on("state", (e) => states.push(e.state));
  c.connect();
  await settle();
  const poll = FakeSocket.last;
  assert.ok(poll instanceof FakePoll);
  poll.connected(1000); // no ping due while the test advances the clock
  const sub = c.subscribe("room");
  await settle();
  poll.reply(poll.lastCommand("subscribe"), { epoch: "e", offset: 4 });
  await settle();
  // The first probe: a WebSocket that never answers is given up after fallbackTimeout.
  await clock.advance(60000);
  const first = FakeSocket.last;
  assert.ok(!(first instanceof FakeStream) && first.protocol === "herald.v1", "a WebSocket probe");
  await clock.advance(3000);
  assert.deepEqual(first.closedWith, { code: 1000, reason: "probe" });
  assert.equal(c.transport, "poll");
  assert.equal(c.state, "connected");
  assert.equal(poll.closedWith, null, "the fallback kept");
  // The next probe works: the client moves to a WebSocket at once.
  await clock.advance(60000);
  const second = FakeSocket.last;
  second.connected();
  await clock.advance(0);
  assert.deepEqual(second.closedWith, { code: 1000, reason: "probe" });
  assert.deepEqual(poll.closedWith, { code: 1000, reason: undefined });
  const ws = FakeSocket.last;
  assert.ok(ws !== second && ws.protocol === "herald.v1", "a new WebSocket");
  assert.equal(c.transport, "websocket");
  assert.equal(storage.items.get("herald.transport"), "websocket");
  ws.connected(1000);
  await settle();
  // The subscription recovers from where it was, as after any reconnect.
  const again = ws.lastCommand("subscribe");
  assert.equal(again.params.channel, "room");
  assert.deepEqual(again.params.recover, { offset: 4, epoch: "e" });
  assert.deepEqual(states.slice(-3), ["disconnected", "connecting", "connected"]);
  // On WebSocket, nothing is probed.
  await clock.advance(120000);
  assert.equal(FakeSocket.last, ws);
  sub.unsubscribe?.();
  c.close();
});
