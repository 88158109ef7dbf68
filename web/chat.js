// The demo chat: herald.js in protocol mode on /ws, channel `chat:<room>` (the channel that
// plain-mode clients of /chat?groupId=<room> share). Everything people type is rendered with
// textContent, never as HTML.
import { Herald } from "/herald.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

// One id per tab, kept across reloads: it tells our own messages from others' and lets the
// others keep one name for us across our reconnects (each gets a new client id).
const sid = sessionStorage.getItem("herald.sid") ?? crypto.randomUUID();
sessionStorage.setItem("herald.sid", sid);

const chat = {
  name: "",
  channel: "",
  client: null,
  sub: null,
  names: new Map(), // client id -> sid (learned from hello and message data)
  sids: new Map(), // sid -> name
  present: new Set(), // sids we believe are in the room
  members: new Map(), // client id -> {user}
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
  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    enter($("join-name").value.trim(), $("join-room").value.trim());
  });
  if (name.trim() && ROOM_PATTERN.test(room)) enter(name.trim(), room);
  else $("join-name").focus();
}

function enter(name, room) {
  if (!name || !ROOM_PATTERN.test(room)) return;
  localStorage.setItem("herald.name", name);
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
  const client = new Herald("/ws");
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
      chat.members.set(m.client, m);
      renderOnline();
    },
    onLeave: (m) => leave(m.client),
    onSubscribed: () => subscribed(),
    onRecoveryFailed: () => recoveryFailed(),
  });
}

// The gap cannot be filled (history trimmed, or lost with a server restart). Say so, and
// learn from what history there is who the people here are now.
async function recoveryFailed() {
  $("notice").hidden = false;
  try {
    const past = await chat.client.history(chat.channel, { limit: 100 });
    for (const p of past.publications) learn(parse(p.data));
    renderOnline();
  } catch {
    // Names stay unknown ("Guest") until those people speak.
  }
}

function learn(d) {
  if (d.client && d.sid) chat.names.set(d.client, d.sid);
  if (d.sid && d.name) chat.sids.set(d.sid, d.name);
}

function onState(e) {
  const badge = $("status");
  let [text, kind] = ["Connected", "connected"];
  if (e.state === "connecting") [text, kind] = [chat.recovering ? "Reconnecting" : "Connecting", "connecting"];
  if (e.state === "disconnected") {
    [text, kind] = e.willReconnect ? ["Reconnecting", "connecting"] : ["Closed", "closed"];
    chat.recovering = chat.joined;
    chat.missed = 0;
  }
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
  chat.present.add(sid);
  client.publish(chat.channel, { type: "hello", name: chat.name, sid, client: client.clientId }).catch(() => {});
  try {
    const clients = await client.presence(chat.channel);
    chat.members = new Map(clients.map((c) => [c.client, c]));
    for (const c of clients) if (chat.names.has(c.client)) chat.present.add(chat.names.get(c.client));
    renderOnline();
  } catch {
    // The next subscribe tries again.
  }
}

// A publication, live or recovered. `quiet`: part of the history shown on entry.
function receive(p, { quiet }) {
  const d = parse(p.data);
  learn(d);
  if (d.type === "hello") {
    if (quiet) return;
    if (!chat.present.has(d.sid)) system(`${d.name} joined`);
    chat.present.add(d.sid);
    renderOnline();
    return;
  }
  if (chat.recovering && !quiet) chat.missed++;
  chat.pending.get(d.id)?.remove();
  chat.pending.delete(d.id);
  message(d, { own: d.sid === sid });
}

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
  const s = chat.names.get(client);
  chat.members.delete(client);
  const still = [...chat.members.keys()].some((c) => chat.names.get(c) === s);
  if (s && !still && chat.present.delete(s)) system(`${chat.sids.get(s) ?? "Someone"} left`);
  renderOnline();
}

function send(e) {
  e.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  const data = { type: "msg", id: crypto.randomUUID(), name: chat.name, text, ts: Date.now(), sid, client: chat.client.clientId };
  const el = message(data, { own: true, pending: true });
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

function message(d, { own, pending }) {
  const li = el("li", `msg${own ? " own" : ""}${pending ? " pending" : ""}`);
  const avatar = el("span", "avatar", initial(d.name));
  avatar.style.setProperty("--hue", hue(d.name));
  const body = el("div", "bubble");
  const meta = el("div", "meta");
  meta.append(el("span", "who", own ? "You" : d.name), el("time", "time", pending ? "sending…" : clock(d.ts)));
  body.append(meta, el("p", "text", d.text));
  li.append(avatar, body);
  return append(li);
}

function system(text) {
  append(el("li", "system", text));
}

function renderOnline() {
  const list = $("online");
  // One row per tab: a tab that reconnected may linger under its old client id for a while.
  const tabs = new Map();
  for (const client of chat.members.keys()) {
    const s = client === chat.client.clientId ? sid : chat.names.get(client);
    const name = s === sid ? chat.name : (chat.sids.get(s) ?? `Guest ${client.slice(-4)}`);
    tabs.set(s ?? client, { name, you: s === sid });
  }
  const rows = [...tabs.values()];
  rows.sort((a, b) => b.you - a.you || a.name.localeCompare(b.name));
  list.replaceChildren(
    ...rows.map(({ name, you }) => {
      const li = el("li", you ? "you" : "");
      const dot = el("span", "avatar small", initial(name));
      dot.style.setProperty("--hue", hue(name));
      li.append(dot, el("span", "name", name));
      if (you) li.append(el("span", "tag", "you"));
      return li;
    }),
  );
  $("online-count").textContent = String(rows.length);
}

const initial = (name) => (name.trim()[0] ?? "?").toUpperCase();
const clock = (ts) => new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

function hue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
  return String(h);
}

start();
