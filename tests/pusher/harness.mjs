// What the Pusher cases share: a herald serve with two Pusher apps, an auth endpoint made
// with the `pusher` server SDK, pusher-js clients and small waiting helpers.
import http from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import Pusher from "pusher-js";
import PusherServer from "pusher";

export const APPS = {
  app1: { id: "app1", key: "key-one", secret: "secret-one" },
  app2: { id: "app2", key: "key-two", secret: "secret-two" },
  // Tight limits of its own (writeConfig), beside app1 at Pusher's defaults.
  app3: { id: "app3", key: "key-three", secret: "secret-three" },
};
export const API_KEY = "pusher-test-api-key";
/**
 * The master key the application's SDK derives `private-encrypted-` channels' secrets from;
 * Herald never sees it.
 */
const MASTER_KEY = Buffer.alloc(32, 7).toString("base64");

/**
 * The herald config the cases run with: three apps, the first with client events on, the
 * third with client events and small limits of its own; browser
 * pages from `origin` (the auth endpoint's, which serves the test page) may connect.
 */
export function writeConfig(path, origin, webhookUrl = "") {
  const hook = webhookUrl ? `webhook_url = "${webhookUrl}"` : "";
  writeFileSync(path, `
[api]
key = "${API_KEY}"

[webhooks]
grace = "300ms"

[origins]
allowed = ["${origin}"]

[pusher]
activity_timeout = "30s"

[[pusher.apps]]
id = "${APPS.app1.id}"
key = "${APPS.app1.key}"
secret = "${APPS.app1.secret}"
client_events = true
${hook}

[[pusher.apps]]
id = "${APPS.app2.id}"
key = "${APPS.app2.key}"
secret = "${APPS.app2.secret}"

[[pusher.apps]]
id = "${APPS.app3.id}"
key = "${APPS.app3.key}"
secret = "${APPS.app3.secret}"
client_events = true

[pusher.apps.limits]
max_connections = 3
client_events_per_second = 2
max_event_size = 100
max_presence_members = 2
`);
}

/** The `pusher` server SDK pointed at a node. */
export function server(port, app = APPS.app1) {
  return new PusherServer({
    appId: app.id, key: app.key, secret: app.secret, encryptionMasterKeyBase64: MASTER_KEY,
    host: "127.0.0.1", port: String(port), useTLS: false,
  });
}

/**
 * The application's auth endpoint, made with the `pusher` SDK as a Laravel or Express app
 * makes it: `user` (a form field) names who is asking; "mallory" is refused with 403.
 */
export async function startAuth(app = APPS.app1) {
  const sdk = new PusherServer({
    appId: app.id, key: app.key, secret: app.secret, encryptionMasterKeyBase64: MASTER_KEY,
  });
  const srv = http.createServer((req, res) => {
    if (req.method === "GET") {
      page(req, res);
      return;
    }
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const form = new URLSearchParams(body);
      const socket = form.get("socket_id");
      const user = form.get("user") ?? "anon";
      if (user === "mallory") {
        res.writeHead(403).end("forbidden");
        return;
      }
      let answer;
      if (req.url.startsWith("/user-auth")) {
        const watchlist = form.get("watchlist");
        const data = { id: user, name: `User ${user}` };
        if (watchlist) data.watchlist = watchlist.split(",");
        answer = sdk.authenticateUser(socket, data);
      } else {
        const channel = form.get("channel_name");
        answer = channel.startsWith("presence-")
          ? sdk.authorizeChannel(socket, channel, { user_id: user, user_info: { name: `User ${user}` } })
          : sdk.authorizeChannel(socket, channel);
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${srv.address().port}`;
  return { url, close: () => srv.close() };
}

/**
 * The application's webhook endpoint, made with the `pusher` SDK: every POST whose signature
 * `webhook().isValid()` accepts adds its events to `events`; any other is counted in
 * `invalid` (and answered 401).
 */
export async function startWebhooks(app = APPS.app1) {
  const sdk = new PusherServer({ appId: app.id, key: app.key, secret: app.secret });
  const hooks = { events: [], invalid: 0 };
  const srv = http.createServer((req, res) => {
    let rawBody = "";
    req.on("data", (c) => (rawBody += c));
    req.on("end", () => {
      const hook = sdk.webhook({ headers: req.headers, rawBody });
      if (!hook.isValid()) {
        hooks.invalid++;
        res.writeHead(401).end();
        return;
      }
      hooks.events.push(...hook.getEvents());
      res.writeHead(200).end();
    });
  });
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  hooks.url = `http://127.0.0.1:${srv.address().port}/pusher/webhooks`;
  hooks.close = () => srv.close();
  return hooks;
}

/** The browser page (pusher-js's web build, from npm) at `/`, and the script it loads. */
function page(req, res) {
  if (req.url === "/pusher.js") {
    const script = readFileSync(new URL("./node_modules/pusher-js/dist/web/pusher.min.js", import.meta.url));
    res.writeHead(200, { "content-type": "text/javascript" }).end(script);
  } else if (req.url === "/") {
    const html = '<!doctype html><meta charset="utf-8"><title>pusher-js</title><script src="/pusher.js"></script>';
    res.writeHead(200, { "content-type": "text/html" }).end(html);
  } else {
    res.writeHead(404).end();
  }
}

/**
 * A pusher-js client of `app` on the node at `port`, authorised as `user`; on sign-in the
 * auth endpoint gives it `watchlist` (user ids), if any.
 */
export function client(port, auth, { user = "anon", app = APPS.app1, watchlist = [], ...options } = {}) {
  const signin = watchlist.length ? { user, watchlist: watchlist.join(",") } : { user };
  return new Pusher(app.key, {
    wsHost: "127.0.0.1", wsPort: port, forceTLS: false, enabledTransports: ["ws"],
    disableStats: true, cluster: "mt1",
    channelAuthorization: { endpoint: `${auth.url}/channel-auth`, transport: "ajax", params: { user } },
    userAuthentication: { endpoint: `${auth.url}/user-auth`, transport: "ajax", params: signin },
    ...options,
  });
}

/** Resolves with the first `event` on `emitter` (a pusher-js channel or connection). */
export function next(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    const handler = (data) => {
      clearTimeout(timer);
      emitter.unbind(event, handler);
      resolve(data);
    };
    emitter.bind(event, handler);
  });
}

/** Resolves once the connection is in `state`. */
export function state(pusher, wanted, ms = 8000) {
  if (pusher.connection.state === wanted) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ${wanted} within ${ms} ms (${pusher.connection.state})`)), ms);
    const handler = ({ current }) => {
      if (current !== wanted) return;
      clearTimeout(timer);
      pusher.connection.unbind("state_change", handler);
      resolve();
    };
    pusher.connection.bind("state_change", handler);
  });
}

/** Subscribes and waits for pusher:subscription_succeeded; returns the channel. */
export async function subscribed(pusher, name) {
  const channel = pusher.subscribe(name);
  const ok = next(channel, "pusher:subscription_succeeded");
  const failed = next(channel, "pusher:subscription_error").then((e) => {
    throw new Error(`subscription to ${name} failed: ${JSON.stringify(e)}`);
  });
  failed.catch(() => {});
  await Promise.race([ok, failed]);
  return channel;
}

/** Resolves when no `event` arrives on `emitter` within `ms`; rejects if one does. */
export function none(emitter, event, ms = 400) {
  return new Promise((resolve, reject) => {
    const handler = (data) => reject(new Error(`unexpected ${event}: ${JSON.stringify(data)}`));
    emitter.bind(event, handler);
    setTimeout(() => {
      emitter.unbind(event, handler);
      resolve();
    }, ms);
  });
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}
