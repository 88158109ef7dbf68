// The cases: each gets { herald, auth, restart } and throws on failure.
import Echo from "laravel-echo";
import Pusher from "pusher-js";
import { recover } from "../../web/herald-pusher.js";
import { APPS, API_KEY, assert, client, next, none, server, startAuth, state, subscribed } from "./harness.mjs";

const SOCKET_ID = /^\d+\.\d+$/;

/** Waits (up to 5 s) for `cond()` to hold. */
async function until(cond, what) {
  for (let i = 0; i < 100; i++) {
    if (cond()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`not ${what} within 5 s`);
}

export const cases = {
  async "public channel: connect, subscribe, trigger, socket_id exclusion"({ herald, auth, open }) {
    const a = open(client(herald.port, auth));
    const b = open(client(herald.port, auth));
    await Promise.all([state(a, "connected"), state(b, "connected")]);
    assert(SOCKET_ID.test(a.connection.socket_id), `socket id ${a.connection.socket_id}`);
    const [ca, cb] = await Promise.all([subscribed(a, "news"), subscribed(b, "news")]);
    const sdk = server(herald.port);
    const got = next(ca, "greet");
    await sdk.trigger("news", "greet", { hello: "world" });
    assert((await got).hello === "world", "a got the event");
    // Excluded by socket_id: b receives, a does not.
    const toB = next(cb, "only-others");
    const notA = none(ca, "only-others", 600);
    await sdk.trigger("news", "only-others", { n: 1 }, { socket_id: a.connection.socket_id });
    await toB;
    await notA;
  },

  async "private channel: auth endpoint, refusals, client events"({ herald, auth, open }) {
    const a = open(client(herald.port, auth, { user: "alice" }));
    const b = open(client(herald.port, auth, { user: "bob" }));
    const [ca, cb] = await Promise.all([subscribed(a, "private-room"), subscribed(b, "private-room")]);
    const got = next(cb, "client-typing");
    const noEcho = none(ca, "client-typing", 600);
    assert(ca.trigger("client-typing", { who: "alice" }), "client event sent");
    assert((await got).who === "alice", "b got the client event");
    await noEcho;
    // The auth endpoint refuses mallory: pusher-js reports it on the channel.
    const m = open(client(herald.port, auth, { user: "mallory" }));
    const refused = next(m.subscribe("private-room"), "pusher:subscription_error");
    assert((await refused).status === 403, "the endpoint's 403");
    // A forged signature is refused by Herald itself.
    const forger = open(client(herald.port, auth, {
      channelAuthorization: {
        customHandler: (_, callback) => callback(null, { auth: `${APPS.app1.key}:${"0".repeat(64)}` }),
      },
    }));
    const forged = await next(forger.subscribe("private-room"), "pusher:subscription_error");
    assert(forged.status === 401, `forged auth refused: ${JSON.stringify(forged)}`);
  },

  async "presence channel: members, member events, users and channel info API"({ herald, auth, open }) {
    const sdk = server(herald.port);
    const alice = open(client(herald.port, auth, { user: "alice" }));
    const ca = await subscribed(alice, "presence-lobby");
    assert(ca.members.count === 1 && ca.members.me.id === "alice", "alice alone");
    const added = next(ca, "pusher:member_added");
    const bob = open(client(herald.port, auth, { user: "bob" }));
    const cb = await subscribed(bob, "presence-lobby");
    const member = await added;
    assert(member.id === "bob" && member.info.name === "User bob", `member_added ${JSON.stringify(member)}`);
    assert(cb.members.count === 2 && cb.members.get("alice").info.name === "User alice", "bob sees alice");
    const users = await (await sdk.get({ path: "/channels/presence-lobby/users" })).json();
    assert(JSON.stringify(users.users.map((u) => u.id).sort()) === '["alice","bob"]', JSON.stringify(users));
    const info = await (await sdk.get({
      path: "/channels/presence-lobby", params: { info: "user_count,subscription_count" },
    })).json();
    assert(info.occupied && info.user_count === 2 && info.subscription_count === 2, JSON.stringify(info));
    const list = await (await sdk.get({
      path: "/channels", params: { filter_by_prefix: "presence-", info: "user_count" },
    })).json();
    assert(list.channels["presence-lobby"]?.user_count === 2, JSON.stringify(list));
    const removed = next(ca, "pusher:member_removed");
    bob.disconnect();
    assert((await removed).id === "bob", "member_removed");
    const empty = await (await sdk.get({ path: "/channels/presence-nobody" })).json();
    assert(empty.occupied === false, JSON.stringify(empty));
  },

  async "presence: a user with two connections is one member, added once and removed with its last"({ herald, auth, open }) {
    const alice = open(client(herald.port, auth, { user: "alice" }));
    const ca = await subscribed(alice, "presence-tabs");
    const added = [];
    const removed = [];
    ca.bind("pusher:member_added", (m) => added.push(m.id));
    ca.bind("pusher:member_removed", (m) => removed.push(m.id));
    const tab1 = open(client(herald.port, auth, { user: "bob" }));
    await subscribed(tab1, "presence-tabs");
    const tab2 = open(client(herald.port, auth, { user: "bob" }));
    const c2 = await subscribed(tab2, "presence-tabs");
    await until(() => added.length === 1, "bob added");
    assert(c2.members.count === 2, `bob's second tab sees two members: ${c2.members.count}`);
    tab2.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert(removed.length === 0 && ca.members.count === 2, "bob stays while a tab is open");
    tab1.disconnect();
    await until(() => removed.length === 1, "bob removed with his last tab");
    assert(JSON.stringify(added) === '["bob"]' && JSON.stringify(removed) === '["bob"]', `${added} / ${removed}`);
  },

  async "server SDK: triggerBatch, multi-channel trigger, signed requests only"({ herald, auth, open }) {
    const a = open(client(herald.port, auth));
    const [c1, c2] = await Promise.all([subscribed(a, "one"), subscribed(a, "two")]);
    const sdk = server(herald.port);
    const e1 = next(c1, "batched");
    const e2 = next(c2, "batched");
    await sdk.triggerBatch([
      { channel: "one", name: "batched", data: { n: 1 } },
      { channel: "two", name: "batched", data: { n: 2 } },
    ]);
    assert((await e1).n === 1 && (await e2).n === 2, "both batch events");
    const m1 = next(c1, "multi");
    const m2 = next(c2, "multi");
    await sdk.trigger(["one", "two"], "multi", "plain string");
    assert((await m1) === "plain string" && (await m2) === "plain string", "multi-channel");
    // The wrong secret, and another app's credentials, are refused.
    const wrong = server(herald.port, { ...APPS.app1, secret: "not-the-secret" });
    const refused = await wrong.trigger("one", "x", {}).then(() => null, (e) => e);
    assert(refused?.status === 401, `wrong secret: ${refused}`);
    const cross = await server(herald.port, { ...APPS.app1, id: APPS.app2.id })
      .trigger("one", "x", {}).then(() => null, (e) => e);
    assert(cross?.status === 401, `app1 credentials on app2: ${cross}`);
    // A request the SDK signed an hour ago (its clock set back while it signs) is stale.
    const now = Date.now;
    Date.now = () => now() - 3600 * 1000;
    const signedLate = sdk.trigger("one", "x", {});
    Date.now = now;
    const stale = await signedLate.then(() => null, (e) => e);
    assert(stale?.status === 401 && /timestamp/.test(stale.body), `stale: ${stale?.status} ${stale?.body}`);
  },

  async "apps are isolated, unknown keys refused with 4001"({ herald, auth, open, onClose }) {
    const one = open(client(herald.port, auth));
    const two = open(client(herald.port, auth, { app: APPS.app2 }));
    const [c1, c2] = await Promise.all([subscribed(one, "news"), subscribed(two, "news")]);
    const got = next(c1, "hello");
    const notTwo = none(c2, "hello", 600);
    await server(herald.port).trigger("news", "hello", {});
    await got;
    await notTwo;
    // app2 does not allow client events (its own auth endpoint signs with its secret).
    const auth2 = await startAuth(APPS.app2);
    const signed2 = open(client(herald.port, auth2, { app: APPS.app2 }));
    onClose(() => auth2.close());
    const p2 = await subscribed(signed2, "private-x");
    const crossed = await next(open(client(herald.port, auth, { app: APPS.app2 }))
      .subscribe("private-x"), "pusher:subscription_error");
    assert(crossed.status === 401, "app1's signature does not open app2's channel");
    const error = next(signed2.connection, "error");
    p2.trigger("client-x", {});
    const e = await error;
    assert(/client events/.test(JSON.stringify(e)), `client events refused: ${JSON.stringify(e)}`);
    const ghost = open(client(herald.port, auth, { app: { key: "no-such-key" } }));
    const refused = await next(ghost.connection, "error");
    assert((refused.error ?? refused).data?.code === 4001, `unknown key: ${JSON.stringify(refused)}`);
  },

  async "herald.v1 and Pusher share channels: history and the hub API"({ herald, auth, open }) {
    const a = open(client(herald.port, auth, { user: "alice" }));
    const b = open(client(herald.port, auth, { user: "bob" }));
    const [ca, cb] = await Promise.all([subscribed(a, "private-shared"), subscribed(b, "private-shared")]);
    const got = next(cb, "client-note");
    ca.trigger("client-note", { text: "kept" });
    await got;
    const history = await (await fetch(`${herald.url}/api/history/pusher-app1:private-shared`, {
      headers: { "x-api-key": API_KEY },
    })).json();
    const last = history.publications.at(-1)?.data;
    assert(last?.event === "client-note" && last.data.text === "kept", JSON.stringify(history));
    const fromHub = next(cb, "from-hub");
    const plain = next(cb, "message");
    for (const data of [{ event: "from-hub", data: { n: 7 } }, { any: "json" }]) {
      const r = await fetch(`${herald.url}/api/publish`, {
        method: "POST",
        headers: { "x-api-key": API_KEY, "content-type": "application/json" },
        body: JSON.stringify({ channel: "pusher-app1:private-shared", data }),
      });
      assert(r.ok, `hub publish ${r.status}`);
    }
    assert((await fromHub).n === 7, "an envelope is its event");
    assert((await plain).any === "json", "other data arrives as message");
  },

  async "signin, the user's channel, terminate connections"({ herald, auth, open }) {
    const carol = open(client(herald.port, auth, { user: "carol" }));
    await state(carol, "connected");
    carol.signin();
    // Signed in, pusher-js subscribes to #server-to-user-carol.
    await until(() => carol.user.serverToUserChannel?.subscribed, "signed in, own channel subscribed");
    const note = next(carol.user, "note");
    await server(herald.port).sendToUser("carol", "note", { x: 1 });
    assert((await note).x === 1, "sendToUser");
    const closed = next(carol.connection, "error");
    await server(herald.port).terminateUserConnections("carol");
    const e = await closed;
    assert(e.data?.code === 4009, `terminated with 4009: ${JSON.stringify(e)}`);
    await state(carol, "disconnected");
  },

  async "recovery: the herald-pusher plugin replays what a reconnecting client missed"({ herald, auth, open }) {
    const a = open(recover(client(herald.port, auth)));
    const channel = await subscribed(a, "feed");
    const seen = [];
    channel.bind("tick", (d) => seen.push(d.n));
    const sdk = server(herald.port);
    const first = next(channel, "tick");
    await sdk.trigger("feed", "tick", { n: 1 });
    await first;
    a.disconnect();
    await state(a, "disconnected");
    await sdk.trigger("feed", "tick", { n: 2 });
    await sdk.trigger("feed", "tick", { n: 3 });
    const again = next(channel, "pusher:subscription_succeeded");
    a.connect();
    const data = await again;
    assert(data.herald_recovered === true, `recovered: ${JSON.stringify(data)}`);
    await until(() => seen.length === 3, "three ticks");
    assert(JSON.stringify(seen) === "[1,2,3]", `in order, once: ${seen}`);
    // Without the plugin, a client gets only what comes next.
    const plain = open(client(herald.port, auth));
    const pc = await subscribed(plain, "feed");
    await none(pc, "tick", 300);
  },

  async "reconnect after a server restart"({ herald, auth, open, restart }) {
    const a = open(client(herald.port, auth));
    await subscribed(a, "news");
    await restart();
    await state(a, "connecting", 8000).catch(() => {});
    await state(a, "connected", 15000);
    const channel = a.channel("news");
    // pusher-js subscribes again on reconnect; wait for it, then receive.
    await next(channel, "pusher:subscription_succeeded", 8000).catch(() => {});
    const got = next(channel, "after");
    await server(herald.port).trigger("news", "after", { ok: true });
    assert((await got).ok, "event after the restart");
  },

  async "Laravel Echo: channel, private, join"({ herald, auth, open }) {
    const echo = (user) => new Echo({
      broadcaster: "pusher", Pusher, key: APPS.app1.key, cluster: "mt1",
      wsHost: "127.0.0.1", wsPort: herald.port, forceTLS: false, enabledTransports: ["ws"],
      disableStats: true, authEndpoint: `${auth.url}/channel-auth`, auth: { params: { user } },
    });
    const e1 = echo("erin");
    const e2 = echo("frank");
    open(e1.connector.pusher);
    open(e2.connector.pusher);
    const sdk = server(herald.port);
    const news = new Promise((resolve) => e1.channel("orders").listen(".shipped", resolve));
    const priv = new Promise((resolve) => e1.private("orders.1").listen(".paid", resolve));
    const here = new Promise((resolve) => e1.join("room.1").here(resolve));
    const joining = new Promise((resolve) => e1.join("room.1").joining(resolve));
    const members = await here;
    assert(members.length === 1 && members[0].name === "User erin", JSON.stringify(members));
    const frankHere = new Promise((resolve) => e2.join("room.1").here(resolve));
    assert((await frankHere).length === 2, "frank sees both");
    assert((await joining).name === "User frank", "joining");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await sdk.trigger("orders", "shipped", { id: 1 });
    await sdk.trigger("private-orders.1", "paid", { id: 1 });
    assert((await news).id === 1 && (await priv).id === 1, "Echo listeners");
    const whisper = new Promise((resolve) => e2.private("orders.1").listenForWhisper("typing", resolve));
    await new Promise((resolve) => setTimeout(resolve, 500));
    e1.private("orders.1").whisper("typing", { who: "erin" });
    assert((await whisper).who === "erin", "whisper (a client event)");
  },

  async "webhooks: the pusher SDK verifies Herald's channel, member and client events"({ herald, auth, webhooks, open }) {
    const channel = `presence-hooks-${Date.now()}`;
    const of = (name) => webhooks.events.filter((e) => e.channel === channel && e.name === name);
    const a = open(client(herald.port, auth, { user: "alice" }));
    const b = open(client(herald.port, auth, { user: "bob" }));
    const [ca] = await Promise.all([subscribed(a, channel), subscribed(b, channel)]);
    await until(() => of("member_added").length === 2 && of("channel_occupied").length === 1, "occupied, two members");
    assert(ca.trigger("client-ping", { n: 1 }), "client event sent");
    await until(() => of("client_event").length === 1, "the client event's webhook");
    const ping = of("client_event")[0];
    assert(ping.event === "client-ping" && ping.user_id === "alice", JSON.stringify(ping));
    assert(JSON.parse(ping.data).n === 1 && ping.socket_id === a.connection.socket_id, JSON.stringify(ping));
    a.disconnect();
    b.disconnect();
    await until(() => of("member_removed").length === 2 && of("channel_vacated").length === 1, "vacated, members removed");
    const users = of("member_added").map((e) => e.user_id).sort();
    assert(JSON.stringify(users) === '["alice","bob"]', JSON.stringify(users));
    assert(of("channel_occupied").length === 1, "occupied once");
    assert(webhooks.invalid === 0, `${webhooks.invalid} webhooks failed the SDK's check`);
  },

  async "encrypted channel: the SDK encrypts, Herald relays only ciphertext, pusher-js decrypts"({ herald, auth, open }) {
    const a = open(client(herald.port, auth, { user: "alice" }));
    const channel = await subscribed(a, "private-encrypted-vault");
    const got = next(channel, "secret");
    await server(herald.port).trigger("private-encrypted-vault", "secret", { pin: 4321 });
    assert((await got).pin === 4321, "decrypted by pusher-js");
    const history = await (await fetch(`${herald.url}/api/history/pusher-app1:private-encrypted-vault`, {
      headers: { "x-api-key": API_KEY },
    })).json();
    const stored = history.publications.at(-1)?.data;
    const box = JSON.parse(stored?.data ?? "{}");
    assert(box.nonce && box.ciphertext && !JSON.stringify(stored).includes("4321"),
      `only ciphertext stored: ${JSON.stringify(stored)}`);
    // pusher-js will not send one; sent raw, Herald refuses it too.
    const refused = next(a.connection, "error");
    a.send_event("client-x", {}, "private-encrypted-vault");
    assert(/client events/.test(JSON.stringify(await refused)), "no client events on encrypted channels");
  },

  async "per-app limits: app3 at its own limits, app1 on the same server unaffected"({ herald, auth, open, onClose }) {
    const auth3 = await startAuth(APPS.app3);
    onClose(() => auth3.close());
    const three = (user) => open(client(herald.port, auth3, { user, app: APPS.app3 }));
    const one = (user) => open(client(herald.port, auth, { user }));
    // Presence: app3 holds two users, and refuses a third with Pusher's 4100.
    const [a3, b3, c3] = [three("alice"), three("bob"), three("carol")];
    const [p3] = await Promise.all([subscribed(a3, "presence-room"), subscribed(b3, "presence-room")]);
    const full = await next(c3.subscribe("presence-room"), "pusher:subscription_error");
    assert(full.status === 4100, `a third member refused: ${JSON.stringify(full)}`);
    const [a1, b1, c1, d1] = [one("alice"), one("bob"), one("carol"), one("dave")];
    // One after another: carol's member list holds all three only if she joins last.
    const p1 = await subscribed(a1, "presence-room");
    const q1 = await subscribed(b1, "presence-room");
    const r1 = await subscribed(c1, "presence-room");
    assert(r1.members.count === 3, `app1 holds three members: ${r1.members.count}`);
    // Connections: a fourth of app3 is closed with 4004; app1's fourth is connected.
    const refused = await next(three("dave").connection, "error");
    assert((refused.error ?? refused).data?.code === 4004, `over quota: ${JSON.stringify(refused)}`);
    await state(d1, "connected");
    // Client events: app3 lets 2 through at once and answers the rest with 4301; app1 all 5.
    const got3 = [];
    const got1 = [];
    const q3 = b3.channel("presence-room");
    q3.bind("client-n", (d) => got3.push(d.n));
    q1.bind("client-n", (d) => got1.push(d.n));
    const limited = next(a3.connection, "error");
    for (let n = 0; n < 5; n++) {
      p3.trigger("client-n", { n });
      p1.trigger("client-n", { n });
    }
    const rate = await limited;
    assert((rate.error ?? rate).data?.code === 4301, `rate limited: ${JSON.stringify(rate)}`);
    await until(() => got1.length === 5, "app1's five client events");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert(JSON.stringify(got3) === "[0,1]", `app3 delivered two: ${got3}`);
    // Event size: 100 bytes for app3, from the API (413) and from a client (4301); app1 takes it.
    const big = { text: "x".repeat(200) };
    const tooBig = await server(herald.port, APPS.app3).trigger("news", "big", big).then(() => null, (e) => e);
    assert(tooBig?.status === 413, `app3's API refuses 200 bytes: ${tooBig}`);
    const fine = await server(herald.port).trigger("news", "big", big);
    assert(fine.status === 200, `app1 takes them: ${fine.status}`);
    // Refused for its size whatever the rate (the burst's three errors came before).
    const sized = next(a3.connection, "error");
    p3.trigger("client-big", big);
    const e = await sized;
    assert((e.error ?? e).data?.code === 4301 && /too large/.test(JSON.stringify(e)), JSON.stringify(e));
    const text = await (await fetch(`${herald.url}/metrics`)).text();
    const hits = (app, limit) => Number(text.match(new RegExp(
      `herald_pusher_limit_hits_total\\{app="${app}",limit="${limit}"\\} (\\d+)`))?.[1] ?? 0);
    for (const limit of ["max_presence_members", "max_connections", "client_events_per_second", "max_event_size"]) {
      assert(hits("app3", limit) >= 1, `${limit} counted for app3`);
    }
    assert(!/herald_pusher_limit_hits_total\{app="app1"/.test(text), "nothing counted for app1");
  },

  async "watchlist: online and offline events for the users a signed-in user watches"({ herald, auth, open }) {
    const signedIn = async (c) => {
      await state(c, "connected");
      c.signin();
      await until(() => c.user.serverToUserChannel?.subscribed, "signed in");
      return c;
    };
    await signedIn(open(client(herald.port, auth, { user: "dave" })));
    const carol = open(client(herald.port, auth, { user: "carol", watchlist: ["dave", "erin"] }));
    const online = [];
    const offline = [];
    carol.user.watchlist.bind("online", (e) => online.push(...e.user_ids));
    carol.user.watchlist.bind("offline", (e) => offline.push(...e.user_ids));
    await signedIn(carol);
    await until(() => online.includes("dave"), "dave online at sign-in");
    const erin = await signedIn(open(client(herald.port, auth, { user: "erin" })));
    await until(() => online.includes("erin"), "erin online");
    // A user's second connection and its end change nothing; the last one is offline.
    const again = await signedIn(open(client(herald.port, auth, { user: "erin" })));
    again.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert(offline.length === 0, `erin still online: ${offline}`);
    erin.disconnect();
    await until(() => offline.includes("erin"), "erin offline with her last connection");
    assert(JSON.stringify(online) === '["dave","erin"]' && JSON.stringify(offline) === '["erin"]',
      `${online} / ${offline}`);
  },

  async "events reply: info=subscription_count,user_count through trigger and triggerBatch"({ herald, auth, open }) {
    const a = open(client(herald.port, auth, { user: "alice" }));
    const b = open(client(herald.port, auth, { user: "bob" }));
    await Promise.all([subscribed(a, "presence-info"), subscribed(b, "presence-info"), subscribed(a, "info-public")]);
    const sdk = server(herald.port);
    const info = "subscription_count,user_count";
    const reply = await (await sdk.trigger(["presence-info", "info-public"], "x", {}, { info })).json();
    const [presence, plain] = [reply.channels?.["presence-info"], reply.channels?.["info-public"]];
    assert(presence?.user_count === 2 && presence.subscription_count === 2, JSON.stringify(reply));
    assert(plain?.subscription_count === 1 && !("user_count" in plain), JSON.stringify(reply));
    const batch = await (await sdk.triggerBatch([
      { channel: "info-public", name: "y", data: {}, info: "subscription_count" },
      { channel: "presence-info", name: "y", data: {} },
    ])).json();
    assert(batch.batch?.[0]?.subscription_count === 1 && JSON.stringify(batch.batch[1]) === "{}",
      JSON.stringify(batch));
    const plainReply = await (await sdk.trigger("info-public", "z", {})).json();
    assert(JSON.stringify(plainReply) === "{}", `no info asked: ${JSON.stringify(plainReply)}`);
  },
};

/** Two nodes on one Redis: clients on each node meet in the same channels. */
export const cluster = {
  async "two nodes with Redis: trigger on one, receive on the other"({ nodes, auth, open }) {
    const [n1, n2] = nodes;
    const a = open(client(n1.port, auth, { user: "alice" }));
    const b = open(client(n2.port, auth, { user: "bob" }));
    const [pa, pb] = await Promise.all([subscribed(a, "private-x"), subscribed(b, "private-x")]);
    const got = next(pb, "across");
    await server(n1.port).trigger("private-x", "across", { from: "node1" });
    assert((await got).from === "node1", "node 2 got node 1's event");
    const whisper = next(pa, "client-hi");
    pb.trigger("client-hi", { from: "bob" });
    assert((await whisper).from === "bob", "client event across nodes");
    const ca = await subscribed(a, "presence-both");
    const added = next(ca, "pusher:member_added");
    const cb = await subscribed(b, "presence-both");
    assert((await added).id === "bob" && cb.members.count === 2, "presence across nodes");
    // A watchlist on node 2 follows a user signed in on node 1.
    const carol = open(client(n2.port, auth, { user: "carol", watchlist: ["dave"] }));
    const events = [];
    carol.user.watchlist.bind("online", (e) => events.push(`online ${e.user_ids}`));
    carol.user.watchlist.bind("offline", (e) => events.push(`offline ${e.user_ids}`));
    await state(carol, "connected");
    carol.signin();
    await until(() => carol.user.serverToUserChannel?.subscribed, "carol signed in");
    const dave = open(client(n1.port, auth, { user: "dave" }));
    await state(dave, "connected");
    dave.signin();
    await until(() => events.length === 1, "dave online, seen across nodes");
    dave.disconnect();
    await until(() => events.length === 2, "dave offline, seen across nodes");
    assert(JSON.stringify(events) === '["online dave","offline dave"]', JSON.stringify(events));
    // app3's max_connections (3) holds over both nodes.
    const three = [n1, n1, n2].map((n) => open(client(n.port, auth, { app: APPS.app3 })));
    await Promise.all(three.map((c) => state(c, "connected")));
    const over = await next(open(client(n2.port, auth, { app: APPS.app3 })).connection, "error");
    assert((over.error ?? over).data?.code === 4004, `a fourth on node 2: ${JSON.stringify(over)}`);
  },
};
