// The demo chat: herald.js in protocol mode on /ws, channel `chat:<room>` (the channel that
// plain-mode clients of /chat?groupId=<room> share), in the namespace `chat` when the server
// runs web/chat.toml: history and presence are that namespace's. Everything people type is
// rendered with textContent, never as HTML.
//
// Who said something is what the server attests, never what the message says: a publication's
// `user` is the verified user id of the sender's token, and a sender without one is shown by
// the name it typed, marked "anonymous". A token comes from `?token=` (kept for the tab) or
// the `herald_token` cookie, which the server reads by itself.
import { Herald } from "/herald.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

// One id per tab, kept across reloads: it tells our own messages from others' and lets the
// others keep one name for us across our reconnects (each gets a new client id).
const sid = sessionStorage.getItem("herald.sid") ?? crypto.randomUUID();
sessionStorage.setItem("herald.sid", sid);
const token = params.get("token") ?? sessionStorage.getItem("herald.token") ?? "";
if (token) sessionStorage.setItem("herald.token", token);

// The messages this tab sent, id -> text: a message is ours when it is one of them and came
// with our identity, not when its data carries our sid (anyone can copy that). Copying one
// of ours whole only repeats it.
const SENT_KEPT = 200;
const sent = new Map(stored("herald.sent"));
function remember(d) {
  sent.set(d.id, d.text);
  while (sent.size > SENT_KEPT) sent.delete(sent.keys().next().value);
  sessionStorage.setItem("herald.sent", JSON.stringify([...sent]));
}
function stored(key) {
  try {
    const entries = JSON.parse(sessionStorage.getItem(key) ?? "[]");
    return Array.isArray(entries) ? entries.filter((e) => Array.isArray(e) && e.length === 2) : [];
  } catch {
    return [];
  }
}
const ours = (p, d) => sent.get(d.id) === d.text && attested(p) === (chat.client.user ?? "");

/**
 * Presence reads of one channel and the join/leave pushes that cross them. A read answers
 * with the broker's state when it was read, and a push handled before the code after the
 * `await` runs may be newer: a long-poll response that holds the reply and then a join hands
 * over both before that code runs. So every push seen while a read is open is replayed, in
 * order, on top of its answer; replaying one the answer already holds changes nothing.
 */
class PresenceReads {
  #open = new Set(); // the pushes seen by each read in flight

  note(kind, m) {
    for (const seen of this.#open) seen.push([kind, m]);
  }

  /** `clients` as answered, and `members` (client id -> entry) with the pushes replayed. */
  async read(client, channel) {
    const seen = [];
    this.#open.add(seen);
    try {
      const clients = await client.presence(channel);
      const members = new Map(clients.map((c) => [c.client, c]));
      for (const [kind, m] of seen) {
        if (kind === "join") members.set(m.client, m);
        else members.delete(m.client);
      }
      return { clients, members };
    } finally {
      this.#open.delete(seen);
    }
  }
}

const chat = {
  name: "",
  channel: "",
  client: null,
  sub: null,
  names: new Map(), // client id -> sid (learned from hello and message data)
  sids: new Map(), // sid -> name an anonymous tab typed
  present: new Set(), // presence keys (`user:<id>`, `sid:<sid>`) we believe are in the room
  members: new Map(), // client id -> {user}
  reads: new PresenceReads(), // the room's presence reads in flight
  pending: new Map(), // message id -> element
  joined: false, // subscribed at least once
  recovering: false, // between losing the connection and resubscribing
  missed: 0,
};

function start() {
  const room = params.get("room") ?? "";
  const name = params.get("name") ?? localStorage.getItem("herald.name") ?? "";
  $("join-room").value = ROOM_PATTERN.test(room) ? room : String(1000 + Math.floor(Math.random() * 9000));
  $("join-name").value = name;
  // With a token the server names us; a typed name only stands in until it has.
  $("join-name").required = !token;
  if (token) $("join-name").placeholder = "from your token";
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    enter($("join-name").value.trim(), $("join-room").value.trim());
  });
  if ((name.trim() || token) && ROOM_PATTERN.test(room)) enter(name.trim(), room);
  else $("join-name").focus();
}

function enter(name, room) {
  if ((!name && !token) || !ROOM_PATTERN.test(room)) return;
  if (name) localStorage.setItem("herald.name", name);
  history.replaceState(null, "", `?room=${encodeURIComponent(room)}`);
  Object.assign(chat, { name, channel: `chat:${room}` });
  $("room-name").textContent = room;
  $("room-label").hidden = false;
  $("status").hidden = false;
  document.title = `#${room} · Herald chat`;
  $("join").hidden = true;
  $("chat").hidden = false;
  $("send").addEventListener("submit", send);
  $("reload").addEventListener("click", () => location.reload());
  connect();
  $("text").focus();
}

async function connect() {
  const client = new Herald("/ws", token ? { token } : {});
  chat.client = client;
  client.on("state", onState);
  client.connect();
  let since;
  try {
    const past = await client.history(chat.channel, { limit: 50 });
    for (const p of past.publications) receive({ ...p, epoch: past.epoch }, { quiet: true });
    since = { offset: past.offset, epoch: past.epoch };
  } catch {
    // No history (none kept, or the connection is slow): start from now.
  }
  chat.sub = client.subscribe(chat.channel, {
    joinLeave: true,
    since,
    onPublication: (p) => receive(p, {}),
    onJoin: (m) => {
      chat.reads.note("join", m);
      chat.members.set(m.client, m);
      renderOnline();
    },
    onLeave: (m) => {
      chat.reads.note("leave", m);
      leave(m.client);
    },
    onSubscribed: () => subscribed(),
    onRecoveryFailed: () => recoveryFailed(),
  });
  watchEveryone(client);
}

// Everyone online in any room: the channel `online:all`, in a namespace that keeps presence
// and nothing else (web/chat.toml). One presence read after each (re)subscribe, then its
// join/leave pushes keep the count. A token whose channels do not cover it hides the count.
const EVERYONE = "online:all";

function watchEveryone(client) {
  const reads = new PresenceReads();
  let here = new Map();
  const show = () => {
    $("everyone").hidden = false;
    $("everyone-count").textContent = String(here.size);
  };
  client.subscribe(EVERYONE, {
    joinLeave: true,
    onSubscribed: async () => {
      try {
        ({ members: here } = await reads.read(client, EVERYONE));
        show();
      } catch {
        // The next subscribe reads it again.
      }
    },
    onJoin: (m) => {
      reads.note("join", m);
      here.set(m.client, m);
      show();
    },
    onLeave: (m) => {
      reads.note("leave", m);
      here.delete(m.client);
      show();
    },
    onError: () => {
      $("everyone").hidden = true;
    },
  });
}

// The gap cannot be filled (history trimmed, or lost with a server restart). Say so, and
// learn from what history there is who the people here are now.
async function recoveryFailed() {
  $("notice").hidden = false;
  try {
    const past = await chat.client.history(chat.channel, { limit: 100 });
    for (const p of past.publications) learn(p, parse(p.data));
    renderOnline();
  } catch {
    // Names stay unknown ("Guest") until those people speak.
  }
}

// What a publication tells about the anonymous tabs here. Names of signed-in people come
// from the server (`user`), so their messages teach nothing.
function learn(p, d) {
  if (attested(p)) return;
  if (d.client && d.sid) chat.names.set(d.client, d.sid);
  if (d.sid && d.name) chat.sids.set(d.sid, d.name);
}

/** The sender's verified user id, or "" for a sender without a token. */
const attested = (p) => (typeof p.user === "string" ? p.user.slice(0, 64) : "");

/** Who sent `p` (data `d`), as shown: the attested user, or the typed name marked anonymous. */
function sender(p, d) {
  const user = attested(p);
  return user ? { name: user, verified: true } : { name: d.name, verified: false };
}

const label = (who) => (who.verified ? who.name : `${who.name} (anonymous)`);

function onState(e) {
  const badge = $("status");
  let [text, kind] = ["Connected", "connected"];
  if (e.state === "connecting") [text, kind] = [chat.recovering ? "Reconnecting" : "Connecting", "connecting"];
  if (e.state === "disconnected") {
    [text, kind] = e.willReconnect ? ["Reconnecting", "connecting"] : ["Closed", "closed"];
    chat.recovering = chat.joined;
    chat.missed = 0;
  }
  if (e.state === "connected" && chat.client.user) chat.name = chat.client.user;
  badge.textContent = text;
  badge.className = `badge ${kind}`;
  badge.title = e.state === "disconnected" ? `closed with ${e.code} ${e.reason}`.trim() : "";
}

// After every (re)subscribe: say who we are (our client id is new) and reread who is here.
async function subscribed() {
  const { client } = chat;
  if (chat.recovering) {
    const n = chat.missed;
    system(n ? `Reconnected · ${n} missed message${n === 1 ? "" : "s"}` : "Reconnected");
    chat.recovering = false;
  }
  chat.joined = true;
  chat.present.add(presenceKey({ verified: Boolean(client.user), name: client.user }, sid));
  client.publish(chat.channel, { type: "hello", name: chat.name, sid, client: client.clientId }).catch(() => {});
  try {
    const { clients, members } = await chat.reads.read(client, chat.channel);
    chat.members = members;
    for (const c of clients) {
      const row = member(c.client, c);
      if (row.verified || chat.names.has(c.client)) chat.present.add(row.presence);
    }
    renderOnline();
  } catch {
    // The next subscribe tries again.
  }
}

// A publication, live or recovered. `quiet`: part of the history shown on entry.
function receive(p, { quiet }) {
  const d = parse(p.data);
  learn(p, d);
  const who = sender(p, d);
  if (d.type === "hello") {
    if (quiet) return;
    const key = presenceKey(who, d.sid);
    if (!chat.present.has(key)) system(`${label(who)} joined`);
    chat.present.add(key);
    renderOnline();
    return;
  }
  if (chat.recovering && !quiet) chat.missed++;
  const own = ours(p, d);
  if (own) {
    chat.pending.get(d.id)?.remove();
    chat.pending.delete(d.id);
  }
  message(d, who, { own });
}

// One presence entry per signed-in user, or per anonymous tab.
const presenceKey = (who, s) => (who.verified ? `user:${who.name}` : `sid:${s}`);

// Data from this page is an object; from a plain-mode client, a string (maybe JSON).
function parse(data) {
  let d = data;
  if (typeof d === "string") {
    try {
      d = JSON.parse(d);
    } catch {
      return { type: "msg", text: data, name: "Plain client" };
    }
  }
  if (!d || typeof d !== "object" || Array.isArray(d)) return { type: "msg", text: JSON.stringify(data), name: "?" };
  const str = (v, max) => (typeof v === "string" ? v.slice(0, max) : "");
  return {
    type: d.type === "hello" ? "hello" : "msg",
    id: str(d.id, 64),
    name: str(d.name, 32) || "Guest",
    text: str(d.text, 2000),
    ts: Number.isFinite(d.ts) ? d.ts : Date.now(),
    sid: str(d.sid, 64),
    client: str(d.client, 128),
  };
}

function leave(client) {
  const m = chat.members.get(client);
  chat.members.delete(client);
  const row = m && member(client, m);
  const still = row && [...chat.members].some(([c, other]) => member(c, other).key === row.key);
  if (row && !still && chat.present.delete(row.presence)) system(`${label(row)} left`);
  renderOnline();
}

function send(e) {
  e.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  const data = { type: "msg", id: crypto.randomUUID(), name: chat.name, text, ts: Date.now(), sid, client: chat.client.clientId };
  remember(data);
  const me = { name: chat.name, verified: Boolean(chat.client.user) };
  const el = message(data, me, { own: true, pending: true });
  chat.pending.set(data.id, el);
  chat.client.publish(chat.channel, data).catch((err) => {
    el.classList.add("failed");
    el.querySelector(".time").textContent = `not sent (${err.message})`;
  });
}

// ---- rendering: textContent only ----

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function append(node) {
  const log = $("log");
  const pane = log.parentElement;
  const atBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 80;
  log.append(node);
  if (atBottom || node.classList.contains("own")) pane.scrollTop = pane.scrollHeight;
  return node;
}

function message(d, who, { own, pending }) {
  const li = el("li", `msg${own ? " own" : ""}${pending ? " pending" : ""}${who.verified ? "" : " anon"}`);
  const avatar = el("span", "avatar", initial(who.name));
  avatar.style.setProperty("--hue", hue(who.name));
  const body = el("div", "bubble");
  const meta = el("div", "meta");
  meta.append(el("span", "who", own ? "You" : who.name), identity(who), el("time", "time", pending ? "sending…" : clock(d.ts)));
  body.append(meta, el("p", "text", d.text));
  li.append(avatar, body);
  return append(li);
}

/** The mark beside a name: verified by the server, or typed by whoever sent it. */
function identity(who) {
  const mark = who.verified ? el("span", "tag verified", "✓") : el("span", "tag anon", "anonymous");
  mark.title = who.verified ? "Signed in: the server vouches for this name" : "No token: anyone can type this name";
  return mark;
}

function system(text) {
  append(el("li", "system", text));
}

// A member as listed: signed-in people by their user id (one row for all their tabs),
// anonymous tabs by the name they typed (one row per tab: a tab that reconnected may linger
// under its old client id for a while).
function member(client, m) {
  const me = client === chat.client.clientId;
  if (m.user) {
    const key = `user:${m.user}`;
    return { key, presence: key, name: m.user, verified: true, you: m.user === chat.client.user };
  }
  const s = me ? sid : chat.names.get(client);
  const you = s === sid && !chat.client.user;
  const name = you ? chat.name : (chat.sids.get(s) ?? `Guest ${client.slice(-4)}`);
  return { key: `sid:${s ?? client}`, presence: `sid:${s}`, name, verified: false, you };
}

function renderOnline() {
  const list = $("online");
  const rows = new Map();
  for (const [client, m] of chat.members) {
    const row = member(client, m);
    rows.set(row.key, row);
  }
  const sorted = [...rows.values()];
  sorted.sort((a, b) => b.you - a.you || a.name.localeCompare(b.name));
  list.replaceChildren(
    ...sorted.map((row) => {
      const li = el("li", `${row.you ? "you" : ""}${row.verified ? "" : " anon"}`.trim());
      const dot = el("span", "avatar small", initial(row.name));
      dot.style.setProperty("--hue", hue(row.name));
      li.append(dot, el("span", "name", row.name), identity(row));
      if (row.you) li.append(el("span", "tag", "you"));
      return li;
    }),
  );
  $("online-count").textContent = String(sorted.length);
}

const initial = (name) => (name.trim()[0] ?? "?").toUpperCase();
const clock = (ts) => new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

function hue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
  return String(h);
}

start();
