// The browser cases. Each gets `t`: t.page(url, options), t.server (url, port), t.restart(),
// t.shot(page, name), t.skip(reason). Every case uses rooms of its own.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { exists, sleep, startBackend, startHerald, startNginx, startProxy, startRedis } from "./procs.mjs";

const PHONE = { viewport: { width: 390, height: 760 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
const XSS = "<img src=x onerror=alert(1)>";

let rooms = 0;
const room = () => `e2e${Date.now().toString(36)}${rooms++}`;
const chat = (base, r, name) => `${base}/?room=${r}&name=${encodeURIComponent(name)}`;

/** Waits until the status badge has `kind` (connected, connecting, closed). */
function badge(page, kind, timeout = 15000) {
  return page.waitForFunction((k) => document.getElementById("status").classList.contains(k), kind, { timeout });
}

async function send(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

/** Waits for a message with exactly `text`; `own` also waits for the server's copy of ours. */
function seen(page, text, { own = false, timeout = 10000 } = {}) {
  const scope = page.locator(own ? "#log .msg.own:not(.pending)" : "#log .msg:not(.own)");
  return scope.locator(".text").getByText(text, { exact: true }).first().waitFor({ timeout });
}

const texts = (page) => page.$$eval("#log .msg .text", (els) => els.map((e) => e.textContent));

/** Waits until the page lists exactly `names` as online; a timeout says what it listed. */
async function online(page, names, timeout = 10000) {
  const listed = () => page.$$eval("#online .name", (els) => els.map((e) => e.textContent).sort());
  try {
    await page.waitForFunction(
      (want) => {
        const got = [...document.querySelectorAll("#online .name")].map((e) => e.textContent).sort();
        return JSON.stringify(got) === JSON.stringify([...want].sort());
      },
      names,
      { timeout },
    );
  } catch (e) {
    throw new Error(`online: wanted ${JSON.stringify([...names].sort())}, the page lists ${JSON.stringify(await listed().catch(() => "?"))}: ${e.message}`);
  }
}

/** Records the 101 responses' headers of the page's WebSockets (Chrome DevTools Protocol). */
async function handshakes(page) {
  const heads = [];
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.webSocketHandshakeResponseReceived", (e) => {
    heads.push(Object.fromEntries(Object.entries(e.response.headers).map(([k, v]) => [k.toLowerCase(), v])));
  });
  return heads;
}

/** Open sessions by transport on a node, from its /metrics. */
async function transports(node) {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const count = (t) => Number(text.match(new RegExp(`herald_transport_connections\\{transport="${t}"\\} (\\d+)`))?.[1] ?? 0);
  return { websocket: count("websocket"), stream: count("stream"), poll: count("poll") };
}

/** An HS256 token from `herald token`. */
function token(bin, secret, user) {
  const out = spawnSync(bin, ["token", "--secret", secret, "--user", user, "--channels", "chat:*"], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout.trim();
}

/** Publishes `data` to `channel` from inside `page`, over a bare herald.v1 WebSocket: what any
 * script can send, with no chat page in between. */
function forge(page, { channel, data, token }) {
  return page.evaluate(
    ({ channel, data, token }) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}/ws?token=${encodeURIComponent(token)}`, "herald.v1");
        ws.onmessage = (e) => {
          const msg = JSON.parse(e.data);
          if (msg.push === "connected") ws.send(JSON.stringify({ id: 1, method: "publish", params: { channel, data } }));
          if (msg.id === 1) {
            ws.close();
            msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result);
          }
        };
        ws.onerror = () => reject(new Error("websocket error"));
      }),
    { channel, data, token },
  );
}

/** Sends one herald.v1 command from inside `page` over a bare WebSocket; resolves to the reply. */
function command(page, { method, params }) {
  return page.evaluate(
    ({ method, params }) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}/ws`, "herald.v1");
        ws.onmessage = (e) => {
          const msg = JSON.parse(e.data);
          if (msg.push === "connected") ws.send(JSON.stringify({ id: 1, method, params }));
          if (msg.id === 1) {
            ws.close();
            resolve(msg);
          }
        };
        ws.onerror = () => reject(new Error("websocket error"));
      }),
    { method, params },
  );
}

/** The name, the identity mark and the class of the message with `text`. */
async function from(page, text) {
  const msg = page.locator("#log .msg", { hasText: text }).first();
  await msg.waitFor({ timeout: 10000 });
  return {
    who: await msg.locator(".who").textContent(),
    mark: await msg.locator(".meta .tag").textContent(),
    anon: await msg.evaluate((e) => e.classList.contains("anon")),
  };
}

async function pair(t, base, r = room()) {
  const a = await t.page(chat(base, r, "Ann"));
  const b = await t.page(chat(base, r, "Bob"), PHONE);
  await Promise.all([badge(a, "connected"), badge(b, "connected")]);
  await Promise.all([online(a, ["Ann", "Bob"]), online(b, ["Ann", "Bob"])]);
  return { a, b, r };
}

/** A self-signed certificate for 127.0.0.1 (openssl), and its SPKI hash for Chromium's
 * --ignore-certificate-errors-spki-list. */
function selfSigned() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "herald-e2e-tls-"));
  const [cert, key] = [path.join(dir, "cert.pem"), path.join(dir, "key.pem")];
  const out = spawnSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
  ], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  const spki = new X509Certificate(readFileSync(cert)).publicKey.export({ type: "spki", format: "der" });
  return { dir, cert, key, spki: createHash("sha256").update(spki).digest("base64") };
}

/** The value of one sample line of the server's /metrics, read by `page`, 0 when absent. */
async function sample(page, line) {
  const text = await page.evaluate(() => fetch("/metrics").then((r) => r.text()));
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found ? Number(found.split(" ")[1]) : 0;
}

export const cases = {
  async "the join form takes a name and a room and puts the room in the URL"(t) {
    const page = await t.page(`${t.server.url}/`, PHONE);
    await page.locator("#join-form").waitFor();
    await t.shot(page, "join-phone");
    const r = room();
    await page.fill("#join-name", "Eve");
    await page.fill("#join-room", r);
    await page.click("#join-form button");
    await badge(page, "connected");
    assert.equal(new URL(page.url()).search, `?room=${r}`);
    await online(page, ["Eve"]);
  },

  async "the online namespace counts everyone in every room, and who leaves"(t) {
    const count = (page) => page.$eval("#everyone-count", (e) => Number(e.textContent));
    const a = await t.page(chat(t.server.url, room(), "Ann"));
    await badge(a, "connected");
    await a.waitForFunction(() => !document.getElementById("everyone").hidden, null, { timeout: 10000 });
    const b = await t.page(chat(t.server.url, room(), "Bob"), PHONE);
    await badge(b, "connected");
    // Two rooms, one presence: Ann counts Bob too (and anyone still leaving from an earlier
    // case), and one fewer once Bob's page is gone.
    await a.waitForFunction(
      () => Number(document.getElementById("everyone-count").textContent) >= 2,
      null,
      { timeout: 10000 },
    );
    const before = await count(a);
    await b.context().close();
    await a.waitForFunction(
      (n) => Number(document.getElementById("everyone-count").textContent) === n - 1,
      before,
      { timeout: 10000 },
    );
  },

  async "two pages in one room see each other's messages, presence and leaving"(t) {
    const { a, b } = await pair(t, t.server.url);
    await send(a, "Hi Bob, this is Ann");
    await Promise.all([seen(b, "Hi Bob, this is Ann"), seen(a, "Hi Bob, this is Ann", { own: true })]);
    await send(b, "¡Hola Ann! Sending from a phone-sized screen — café, naïve, Ελληνικά.");
    await seen(a, "¡Hola Ann! Sending from a phone-sized screen — café, naïve, Ελληνικά.");
    await send(a, "A longer message, to see how the bubbles wrap when a line does not fit on the screen at once.");
    await seen(b, "A longer message, to see how the bubbles wrap when a line does not fit on the screen at once.");
    await t.shot(a, "chat-desktop");
    await t.shot(b, "chat-phone");
    await b.context().close();
    await online(a, ["Ann"]);
    await a.locator("#log .system", { hasText: "Bob (anonymous) left" }).waitFor({ timeout: 5000 });
  },

  async "a page in another room sees none of it"(t) {
    const { a } = await pair(t, t.server.url);
    const c = await t.page(chat(t.server.url, room(), "Cleo"));
    await badge(c, "connected");
    await send(a, "only for the first room");
    await seen(a, "only for the first room", { own: true });
    await send(c, "only for the second room");
    await seen(c, "only for the second room", { own: true });
    await sleep(300);
    assert.deepEqual(await texts(c), ["only for the second room"]);
    assert.ok(!(await texts(a)).includes("only for the second room"));
    await online(c, ["Cleo"]);
  },

  async "the XSS payload renders as text and runs nothing"(t) {
    const { a, b } = await pair(t, t.server.url);
    const dialogs = [];
    for (const p of [a, b]) p.on("dialog", (d) => dialogs.push(d.message()) && d.dismiss());
    await send(a, XSS);
    await Promise.all([seen(b, XSS), seen(a, XSS, { own: true })]);
    await sleep(500);
    assert.deepEqual(dialogs, []);
    for (const p of [a, b]) assert.equal(await p.locator("#log img").count(), 0);
    assert.ok(await b.getByText(XSS, { exact: true }).isVisible());
    await t.shot(b, "chat-xss");
  },

  async "over HTTPS the chat page comes by HTTP/2 and its WebSocket runs on it (RFC 8441)"(t) {
    if (!exists("openssl")) t.skip("no openssl to make a certificate");
    const tls = selfSigned();
    const args = ["--config", "web/chat.toml", "--tls-cert", tls.cert, "--tls-key", tls.key];
    const server = await startHerald(t.bin, { args, logFile: path.join(t.out, "herald-h2.log") });
    // A browser that trusts this one key: with it, Chromium treats the connection as secure.
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", `--ignore-certificate-errors-spki-list=${tls.spki}`],
    });
    try {
      const base = `https://127.0.0.1:${server.port}`;
      const r = room();
      const context = await browser.newContext();
      const a = await context.newPage();
      const cdp = await context.newCDPSession(a);
      await cdp.send("Network.enable");
      const versions = [];
      cdp.on("Network.responseReceived", (e) => versions.push(e.response.protocol));
      await a.goto(chat(base, r, "Ann"));
      const b = await context.newPage();
      await b.goto(chat(base, r, "Bob"));
      await Promise.all([badge(a, "connected"), badge(b, "connected")]);
      await Promise.all([online(a, ["Ann", "Bob"]), online(b, ["Ann", "Bob"])]);
      await send(a, "sent over an HTTP/2 stream");
      await seen(b, "sent over an HTTP/2 stream");
      assert.equal(versions[0], "h2", `the page came over ${versions[0]}`);
      // The server counts each WebSocket by the HTTP version of its handshake.
      assert.equal(await sample(a, 'herald_ws_upgrades_total{http="2"}'), 2);
      assert.equal(await sample(a, 'herald_ws_upgrades_total{http="1.1"}'), 0);
      await t.shot(b, "chat-h2");
    } finally {
      await browser.close();
      await server.stop();
      rmSync(tls.dir, { recursive: true, force: true });
    }
  },

  async "Chromium negotiates permessage-deflate with the server"(t) {
    const page = await t.page();
    const heads = await handshakes(page);
    await page.goto(chat(t.server.url, room(), "Dee"));
    await badge(page, "connected");
    assert.ok(heads.length > 0, "saw the 101 response");
    const ext = heads[0]["sec-websocket-extensions"] ?? "";
    assert.match(ext, /permessage-deflate/, `Sec-WebSocket-Extensions: ${ext}`);
    assert.equal(heads[0]["sec-websocket-protocol"], "herald.v1");
  },

  async "the chat runs in its namespaces: other prefixes are refused with 112, news only from the server"(t) {
    const { a, r } = await pair(t, t.server.url);
    await send(a, "inside the chat namespace");
    await seen(a, "inside the chat namespace", { own: true });
    const history = await command(a, { method: "history", params: { channel: `chat:${r}` } });
    assert.ok(history.result.publications.length >= 1, JSON.stringify(history));
    const outside = await command(a, { method: "subscribe", params: { channel: `other:${r}` } });
    assert.equal(outside.error?.code, 112, JSON.stringify(outside));
    const news = await command(a, { method: "publish", params: { channel: "news:all", data: "hi" } });
    assert.equal(news.error?.code, 103, JSON.stringify(news));
  },

  async "/plain.html exchanges messages with the protocol page over the bare WebSocket API"(t) {
    const r = room();
    const a = await t.page(chat(t.server.url, r, "Ann"));
    const p = await t.page(`${t.server.url}/plain.html?room=${r}&name=Pat`, PHONE);
    await Promise.all([badge(a, "connected"), badge(p, "connected")]);
    await a.waitForFunction(() => document.querySelectorAll("#online li").length === 2);
    await send(p, "hello from plain mode");
    await seen(a, "hello from plain mode");
    const who = await a.locator("#log .msg", { hasText: "hello from plain mode" }).locator(".who").textContent();
    assert.equal(who, "Pat");
    await send(a, "hello from herald.js");
    await seen(p, "hello from herald.js");
    await t.shot(p, "plain-phone");
  },

  async "the chat logs in through the application's backend and the hub admits its session cookie"(t) {
    const backend = await startBackend(path.join(t.out, "backend.log"));
    const hook = ["--config", "web/chat.toml", "--connect-hook-url", `${backend.url}/herald/connect`];
    const server = await startHerald(t.bin, { args: hook, logFile: path.join(t.out, "herald-backend.log") });
    try {
      const r = room();
      const login = async (name, options) => {
        const next = `${server.url}/?room=${r}&name=${name}`;
        const page = await t.page(`${backend.url}/login?next=${encodeURIComponent(next)}`, options);
        await page.fill("#name", name);
        await Promise.all([page.waitForURL(`${server.url}/**`), page.click("#login")]);
        await badge(page, "connected");
        return page;
      };
      const ann = await login("ann");
      const bob = await login("bob", PHONE);
      await online(ann, ["ann", "bob"]);
      await send(ann, "Signed in by my session cookie");
      await seen(bob, "Signed in by my session cookie");
      assert.deepEqual(await from(bob, "Signed in by my session cookie"), { who: "ann", mark: "✓", anon: false });
      // Without the cookie the hub refuses the upgrade with the backend's 401.
      const eve = await t.page(chat(server.url, r, "eve"));
      await sleep(2000);
      assert.equal(await eve.evaluate(() => document.getElementById("status").classList.contains("connected")), false);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /herald_handshake_rejections_total\{status="401"\} [1-9]/);
      assert.match(metrics, /herald_hook_calls_total\{hook="connect",outcome="deny"\} [1-9]/);
      await online(bob, ["ann", "bob"]);
      await t.shot(bob, "chat-backend-login");
    } finally {
      await server.stop();
      backend.stop();
    }
  },

  async "names come from the server: a sender cannot pose as another user"(t) {
    const secret = "e2e-secret";
    const open = ["--anonymous-subscribe", "chat:*", "--anonymous-publish", "chat:*"];
    const args = ["--jwt-secret", secret, "--allow-anonymous", ...open];
    const server = await startHerald(t.bin, { args, logFile: path.join(t.out, "herald-tokens.log") });
    try {
      const r = room();
      const signedIn = (user) => `${server.url}/?room=${r}&token=${token(t.bin, secret, user)}`;
      const ann = await t.page(signedIn("ann"));
      const bob = await t.page(signedIn("bob"));
      await Promise.all([badge(ann, "connected"), badge(bob, "connected")]);
      await online(bob, ["ann", "bob"]);
      // Anonymous, typing the name of a signed-in user.
      const eve = await t.page(chat(server.url, r, "ann"), PHONE);
      await badge(eve, "connected");
      await online(bob, ["ann", "ann", "bob"]);
      await send(ann, "Hi, this is the real Ann");
      await seen(bob, "Hi, this is the real Ann");
      await send(eve, "Ann here, new laptop: send me the keys");
      await seen(bob, "Ann here, new laptop: send me the keys");
      // Signed in as mallory, publishing a message that names Ann, with Ann's look-alike data.
      const forged = { type: "msg", id: "forged-1", name: "ann", text: "This is Ann, I promise", ts: Date.now(), sid: "x" };
      await forge(bob, { channel: `chat:${r}`, data: forged, token: token(t.bin, secret, "mallory") });
      await seen(bob, "This is Ann, I promise");
      for (const page of [bob, eve]) {
        assert.deepEqual(await from(page, "Hi, this is the real Ann"), { who: "ann", mark: "✓", anon: false });
        assert.deepEqual(await from(page, "This is Ann, I promise"), { who: "mallory", mark: "✓", anon: false });
      }
      assert.deepEqual(await from(bob, "Ann here, new laptop"), { who: "ann", mark: "anonymous", anon: true });
      assert.deepEqual(await from(ann, "Ann here, new laptop"), { who: "ann", mark: "anonymous", anon: true });
      const row = bob.locator("#online li.anon");
      assert.equal(await row.locator(".name").textContent(), "ann");
      assert.equal(await row.locator(".tag.anon").textContent(), "anonymous");
      await bob.locator("#log .system", { hasText: "ann (anonymous) joined" }).waitFor({ timeout: 5000 });
      // Reloaded, the page shows the history with the same names.
      await bob.reload();
      await badge(bob, "connected");
      assert.deepEqual(await from(bob, "This is Ann, I promise"), { who: "mallory", mark: "✓", anon: false });
      assert.deepEqual(await from(bob, "Ann here, new laptop"), { who: "ann", mark: "anonymous", anon: true });
      await online(bob, ["ann", "ann", "bob"]);
      await t.shot(bob, "chat-attested-names");
      await t.shot(eve, "chat-attested-names-phone");
    } finally {
      await server.stop();
    }
  },

  async "the admin page shows the chat's channel, tails it, publishes to it and disconnects its user; wrong credentials get 401"(t) {
    const secret = "e2e-admin-secret";
    const password = "e2e-admin-password";
    const args = ["--config", "web/chat.toml", "--jwt-secret", secret, "--admin", "--admin-password", password];
    const server = await startHerald(t.bin, { args, logFile: path.join(t.out, "herald-admin.log") });
    try {
      // Off by default: the shared server has no /admin.
      assert.equal((await fetch(`${t.server.url}/admin`)).status, 404);
      const refused = await fetch(`${server.url}/admin/api/overview`);
      assert.equal(refused.status, 401);
      assert.match(refused.headers.get("www-authenticate"), /^Basic realm="herald admin"/);
      const r = room();
      const channel = `chat:${r}`;
      const ann = await t.page(`${server.url}/?room=${r}&token=${token(t.bin, secret, "ann")}`);
      await badge(ann, "connected");
      const admin = await t.page(`${server.url}/admin`, { httpCredentials: { username: "admin", password } });
      const row = admin.locator("#channels tbody tr", { hasText: channel });
      for (let i = 0; i < 50 && !(await row.count()); i++) {
        await admin.click("#refresh");
        await sleep(200);
      }
      assert.equal(await row.locator("td").nth(1).textContent(), "1");
      assert.ok(Number(await admin.textContent("#connections")) >= 1);
      assert.ok(await admin.locator("#nodes tbody tr").count() >= 1);
      // The live tail gets the chat's messages.
      await row.locator("button").click();
      await admin.waitForSelector(`#tail[data-live="${channel}"]`, { state: "attached", timeout: 10000 });
      await send(ann, "Hello, whoever watches");
      await admin.locator("#tail li", { hasText: "Hello, whoever watches" }).waitFor({ timeout: 10000 });
      // Published from the page, it reaches the chat (and the tail).
      await admin.fill("#publish-data", JSON.stringify({ text: "A word from the operator" }));
      await admin.click("#publish-form button");
      await seen(ann, "A word from the operator");
      await admin.locator("#publish-result", { hasText: "published at offset" }).waitFor({ timeout: 5000 });
      await admin.locator("#tail li", { hasText: "A word from the operator" }).waitFor({ timeout: 10000 });
      await t.shot(admin, "admin");
      // Disconnecting the user closes the chat page for good (4504).
      await admin.fill("#disconnect-user", "ann");
      await admin.click("#disconnect-form button");
      await badge(ann, "closed");
      assert.match(await ann.getAttribute("#status", "title"), /4504/);
      // Wrong credentials: 401, counted.
      const intruder = await t.page(undefined, { httpCredentials: { username: "admin", password: "not-the-password" } });
      const response = await intruder.goto(`${server.url}/admin`);
      assert.equal(response.status(), 401);
      assert.ok((await sample(ann, "herald_admin_refusals_total")) >= 2);
    } finally {
      await server.stop();
    }
  },

  async "a page's short-lived token is refreshed and its connection outlives it"(t) {
    const secret = "e2e-refresh";
    const args = ["--jwt-secret", secret, "--refresh-notice", "2s"];
    const server = await startHerald(t.bin, { args, logFile: path.join(t.out, "herald-refresh.log") });
    try {
      const page = await t.page(`${server.url}/herald.d.ts`);
      let minted = 0;
      await page.exposeFunction("mintToken", () => {
        minted++;
        const out = spawnSync(t.bin, ["token", "--secret", secret, "--user", "ann", "--channels", "chat:*", "--ttl", "4s"], {
          encoding: "utf8",
        });
        assert.equal(out.status, 0, out.stderr);
        return out.stdout.trim();
      });
      const r = room();
      const seenByPage = await page.evaluate(async (channel) => {
        const { Herald } = await import("/herald.js");
        const states = [];
        const refreshes = [];
        const c = new Herald("/ws", { getToken: () => window.mintToken() });
        c.on("state", (e) => states.push(e.code ? `${e.state}:${e.code}` : e.state));
        c.on("refresh", (e) => refreshes.push(e.ok));
        const connected = new Promise((resolve) => c.on("state", (e) => e.state === "connected" && resolve()));
        c.connect();
        await connected;
        const got = [];
        c.subscribe(channel, { onPublication: (p) => got.push(p.data) });
        // Past the first token's 4 s, and the second's.
        await new Promise((resolve) => setTimeout(resolve, 9000));
        await c.publish(channel, "after the first token expired");
        await new Promise((resolve) => setTimeout(resolve, 500));
        c.close();
        return { states, refreshes, got };
      }, `chat:${r}`);
      assert.deepEqual(seenByPage.states.slice(0, 2), ["connecting", "connected"]);
      assert.ok(!seenByPage.states.slice(2, -1).length, `no reconnect: ${seenByPage.states}`);
      assert.ok(seenByPage.refreshes.length >= 3, `refreshes: ${seenByPage.refreshes}`);
      assert.ok(seenByPage.refreshes.every(Boolean), `refreshes: ${seenByPage.refreshes}`);
      assert.deepEqual(seenByPage.got, ["after the first token expired"]);
      assert.equal(minted, 1 + seenByPage.refreshes.length);
    } finally {
      await server.stop();
    }
  },

  async "missed messages appear once each, in order, after the connection drops"(t) {
    const proxy = await startProxy(t.server.port);
    try {
      const r = room();
      const d = await t.page(chat(proxy.url, r, "Dan"), { colorScheme: "dark" });
      const b = await t.page(chat(t.server.url, r, "Bob"));
      await Promise.all([badge(d, "connected"), badge(b, "connected")]);
      await send(b, "before the drop");
      await seen(d, "before the drop");
      proxy.cut();
      await badge(d, "connecting", 5000);
      const missed = ["missed one", "missed two", "missed three"];
      for (const text of missed) {
        await send(b, text);
        await seen(b, text, { own: true });
      }
      proxy.restore();
      await badge(d, "connected", 20000);
      await seen(d, "missed three");
      await d.locator("#log .system", { hasText: "Reconnected · 3 missed messages" }).waitFor({ timeout: 5000 });
      await send(b, "after the drop");
      await seen(d, "after the drop");
      assert.deepEqual(await texts(d), ["before the drop", ...missed, "after the drop"]);
      assert.ok(await d.locator("#notice").isHidden(), "recovered: no notice");
      await t.shot(d, "chat-recovered-dark");
    } finally {
      proxy.close();
    }
  },

  async "a plain EventSource page gets every missed publication through Last-Event-ID"(t) {
    const proxy = await startProxy(t.server.port);
    try {
      const r = room();
      const events = await t.page(`${proxy.url}/events.html?channel=chat:${r}`);
      await badge(events, "connected");
      const b = await t.page(chat(t.server.url, r, "Bob"));
      await badge(b, "connected");
      const received = () =>
        events.$$eval('#log .msg[data-type="msg"]', (els) =>
          els.map((e) => ({ text: e.textContent, offset: Number(e.dataset.offset) })),
        );
      await send(b, "before the drop");
      await events.getByText("before the drop", { exact: true }).waitFor({ timeout: 10000 });
      proxy.cut();
      await badge(events, "connecting", 5000);
      const missed = ["missed one", "missed two", "missed three"];
      for (const text of missed) {
        await send(b, text);
        await seen(b, text, { own: true });
      }
      proxy.restore();
      await badge(events, "connected", 20000);
      await events.getByText("missed three", { exact: true }).waitFor({ timeout: 10000 });
      await send(b, "after the drop");
      await events.getByText("after the drop", { exact: true }).waitFor({ timeout: 10000 });
      const got = await received();
      assert.deepEqual(
        got.map((m) => m.text),
        ["before the drop", ...missed, "after the drop"],
      );
      const offsets = (await events.$$eval("#log .msg", (els) => els.map((e) => Number(e.dataset.offset))));
      assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y), "in offset order");
      assert.equal(new Set(offsets).size, offsets.length, "each offset once");
      assert.equal(await events.locator("#log .system").count(), 0, "recovered: no notice");
      await t.shot(events, "events-recovered");
    } finally {
      proxy.close();
    }
  },

  async "the page reconnects by itself when the server restarts, and can send again"(t) {
    const { a, b } = await pair(t, t.server.url);
    await send(a, "before the restart");
    await seen(b, "before the restart");
    await t.restart(async () => {
      await Promise.all([badge(a, "connecting", 5000), badge(b, "connecting", 5000)]);
      assert.equal(await a.textContent("#status"), "Reconnecting");
      await t.shot(a, "chat-reconnecting");
    });
    await Promise.all([badge(a, "connected", 25000), badge(b, "connected", 25000)]);
    // The in-memory broker lost the room's history with the restart: the page says so.
    await a.locator("#notice").waitFor({ state: "visible", timeout: 5000 });
    await online(a, ["Ann", "Bob"]);
    await send(a, "after the restart");
    await seen(b, "after the restart");
    await seen(a, "after the restart", { own: true });
    await t.shot(a, "chat-restarted");
  },

  async "behind nginx without WebSocket upgrades the chat runs on the stream fallback, across nodes and a node's death"(t) {
    if (!exists("redis-server")) t.skip("redis-server is not installed (apt-get install redis-server)");
    if (!exists("nginx") && !exists("/usr/sbin/nginx")) t.skip("nginx is not installed (apt-get install nginx)");
    const redis = await startRedis(path.join(t.out, "redis.log"));
    const nodes = [];
    const proxies = [];
    try {
      for (const name of ["node1", "node2"]) {
        const logFile = path.join(t.out, `herald-nginx-${name}.log`);
        nodes.push(await startHerald(t.bin, { args: ["--broker", redis.url], logFile }));
      }
      const blocked = await startNginx(nodes.map((n) => n.port), { upgrade: false });
      proxies.push(blocked);
      const r = room();
      const d = await t.page(chat(blocked.url, r, "Dan"));
      await badge(d, "connected", 20000);
      const counts = await Promise.all(nodes.map(transports));
      const home = counts.findIndex((c) => c.stream === 1);
      assert.ok(home >= 0, `Dan's stream is on one node: ${JSON.stringify(counts)}`);
      const b = await t.page(chat(blocked.url, r, "Bob"));
      await badge(b, "connected", 20000);
      await online(d, ["Bob", "Dan"]);
      await online(b, ["Bob", "Dan"]);
      await send(b, "hello over the fallback");
      await seen(d, "hello over the fallback");
      await send(d, "and back");
      await seen(b, "and back");
      const all = (await Promise.all(nodes.map(transports))).reduce((a, c) => ({ websocket: a.websocket + c.websocket, stream: a.stream + c.stream, poll: a.poll + c.poll }));
      assert.deepEqual(all, { websocket: 0, stream: 2, poll: 0 }, "no WebSocket got through nginx");
      await nodes[home].kill();
      await badge(d, "connecting", 10000);
      const missed = ["while Dan's node was gone 1", "while Dan's node was gone 2", "while Dan's node was gone 3"];
      for (const text of missed) {
        await send(b, text);
        await seen(b, text, { own: true, timeout: 20000 });
      }
      await badge(d, "connected", 30000);
      await seen(d, missed[2]);
      await sleep(300);
      assert.deepEqual(await texts(d), ["hello over the fallback", "and back", ...missed]);
      assert.ok(await d.locator("#notice").isHidden(), "Redis kept the history: no notice");
      await t.shot(d, "chat-stream-fallback");

      const survivor = nodes[1 - home];
      const open = await startNginx([survivor.port], { upgrade: true });
      proxies.push(open);
      const before = await transports(survivor);
      const w = await t.page(chat(open.url, r, "Wes"));
      await badge(w, "connected", 20000);
      const after = await transports(survivor);
      assert.equal(after.websocket, before.websocket + 1, "with upgrades allowed the page uses a WebSocket");
      assert.equal(after.stream, before.stream);
      await send(w, "over a WebSocket");
      await seen(d, "over a WebSocket");
    } finally {
      for (const p of proxies) p.stop();
      await Promise.all(nodes.map((n) => n.kill()));
      redis.stop();
    }
  },

  async "behind a buffering nginx without upgrades the chat runs on long-polling across nodes"(t) {
    if (!exists("redis-server")) t.skip("redis-server is not installed (apt-get install redis-server)");
    if (!exists("nginx") && !exists("/usr/sbin/nginx")) t.skip("nginx is not installed (apt-get install nginx)");
    const redis = await startRedis(path.join(t.out, "redis.log"));
    const nodes = [];
    let front;
    try {
      for (const name of ["node1", "node2"]) {
        const logFile = path.join(t.out, `herald-buffered-${name}.log`);
        nodes.push(await startHerald(t.bin, { args: ["--broker", redis.url], logFile }));
      }
      front = await startNginx(nodes.map((n) => n.port), { upgrade: false, buffering: true });
      const r = room();
      const [d, b] = await Promise.all([t.page(chat(front.url, r, "Dan")), t.page(chat(front.url, r, "Bob"))]);
      await Promise.all([badge(d, "connected", 30000), badge(b, "connected", 30000)]);
      for (const page of [d, b]) {
        assert.equal(await page.evaluate(() => localStorage.getItem("herald.transport")), "poll", "the stream delivered nothing: long-polling");
      }
      await online(d, ["Bob", "Dan"]);
      await online(b, ["Bob", "Dan"]);
      await send(b, "hello over long polls");
      await seen(d, "hello over long polls");
      await send(d, "and back");
      await seen(b, "and back");
      for (let i = 1; i <= 3; i++) await send(b, `burst ${i}`);
      await seen(d, "burst 3");
      await sleep(300);
      assert.deepEqual(await texts(d), ["hello over long polls", "and back", "burst 1", "burst 2", "burst 3"], "each once, in order");
      const all = (await Promise.all(nodes.map(transports))).reduce((a, c) => ({ websocket: a.websocket + c.websocket, poll: a.poll + c.poll }));
      assert.deepEqual(all, { websocket: 0, poll: 2 }, "both pages poll");
      await t.shot(d, "chat-long-polling");
    } finally {
      front?.stop();
      await Promise.all(nodes.map((n) => n.kill()));
      redis.stop();
    }
  },

  async "on a fallback the page probes WebSocket and moves back to it once it gets through"(t) {
    if (!exists("nginx") && !exists("/usr/sbin/nginx")) t.skip("nginx is not installed (apt-get install nginx)");
    const node = t.server;
    const blocked = await startNginx([node.port], { upgrade: false });
    // The page's origin: first through the front that refuses upgrades, then straight to the
    // hub, as when a proxy is fixed or the page moves to another network.
    const front = await startProxy(blocked.port);
    try {
      const r = room();
      const w = await t.page();
      // The page's clock jumps ahead to the next probe instead of waiting a minute.
      await w.clock.install();
      await w.goto(chat(front.url, r, "Wes"));
      const other = await t.page(chat(node.url, r, "Ola"));
      await Promise.all([badge(w, "connected", 20000), badge(other, "connected")]);
      assert.equal(await w.evaluate(() => localStorage.getItem("herald.transport")), "stream");
      const before = await transports(node);
      await send(other, "before the probe");
      await seen(w, "before the probe");
      front.setTarget(node.port);
      await w.clock.fastForward(61000);
      await w.waitForFunction(() => localStorage.getItem("herald.transport") === "websocket", null, { timeout: 10000 });
      await badge(w, "connected", 10000);
      await online(w, ["Ola", "Wes"]);
      const after = await transports(node);
      assert.equal(after.websocket, before.websocket + 1, `moved to a WebSocket: ${JSON.stringify({ before, after })}`);
      await send(other, "after the probe");
      await seen(w, "after the probe");
      await send(w, "from a WebSocket again");
      await seen(other, "from a WebSocket again");
      assert.deepEqual((await texts(w)).filter((x) => x === "before the probe"), ["before the probe"], "recovered, nothing twice");
      await t.shot(w, "chat-probed-back");
    } finally {
      front.close?.();
      blocked.stop();
    }
  },

  async "two nodes on Redis: the page's node dies, it moves to the other and catches up"(t) {
    if (!exists("redis-server")) t.skip("redis-server is not installed (apt-get install redis-server)");
    const log = path.join(t.out, "redis.log");
    const redis = await startRedis(log);
    const nodes = [];
    let proxy;
    try {
      const args = ["--broker", redis.url];
      for (const name of ["node1", "node2"]) {
        const logFile = path.join(t.out, `herald-${name}.log`);
        nodes.push(await startHerald(t.bin, { args, logFile }).catch((e) => t.skip(`herald serve --broker redis:// does not work yet: ${e.message.split("\n")[0]}`)));
      }
      const [one, two] = nodes;
      proxy = await startProxy(one.port);
      const r = room();
      const d = await t.page(chat(proxy.url, r, "Dan"));
      const b = await t.page(chat(two.url, r, "Bob"));
      await Promise.all([badge(d, "connected"), badge(b, "connected")]);
      await send(b, "across nodes");
      await seen(d, "across nodes");
      proxy.cut();
      await one.kill();
      await badge(d, "connecting", 5000);
      const missed = ["while node1 was gone 1", "while node1 was gone 2", "while node1 was gone 3"];
      for (const text of missed) {
        await send(b, text);
        await seen(b, text, { own: true });
      }
      proxy.setTarget(two.port);
      proxy.restore();
      await badge(d, "connected", 20000);
      await seen(d, missed[2]);
      await sleep(300);
      assert.deepEqual(await texts(d), ["across nodes", ...missed]);
      assert.ok(await d.locator("#notice").isHidden(), "Redis kept the history: no notice");
      await t.shot(d, "chat-failover");
    } finally {
      proxy?.close();
      await Promise.all(nodes.map((n) => n.kill()));
      redis.stop();
    }
  },
};
