// Plain mode with nothing but the browser's WebSocket: /chat?groupId=<room> is the channel
// chat:<room>, the same one the protocol-mode page at / uses. No reconnect, no recovery:
// that is what herald.js adds.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const room = /^[A-Za-z0-9_-]{1,64}$/.test(params.get("room") ?? "") ? params.get("room") : "lobby";
const name = (params.get("name") ?? localStorage.getItem("herald.name") ?? "").trim().slice(0, 32) || "Plain guest";
$("room-name").textContent = room;

const status = $("status");
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const ws = new WebSocket(`${scheme}//${location.host}/chat?groupId=${encodeURIComponent(room)}`);
const show = (state, text) => {
  status.className = `badge ${state}`;
  status.textContent = text;
};
show("connecting", "Connecting");
ws.onopen = () => show("connected", "Connected");
ws.onclose = (e) => show("closed", `Closed (${e.code})`);
ws.onmessage = (e) => receive(String(e.data));

// Protocol-mode pages publish JSON objects; anyone else may send bare text.
function receive(raw) {
  let d;
  try {
    d = JSON.parse(raw);
  } catch {
    return line(raw, "Someone", false);
  }
  if (d && d.type === "hello") return system(`${d.name} is here`);
  if (d && typeof d === "object" && typeof d.text === "string") return line(d.text, String(d.name ?? "?"), false, d.ts);
  line(raw, "Someone", false);
}

$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text || ws.readyState !== WebSocket.OPEN) return;
  ws.send(JSON.stringify({ type: "msg", name, text, ts: Date.now() }));
  line(text, "You", true);
  input.value = "";
});

function line(text, who, own, ts = Date.now()) {
  const li = document.createElement("li");
  li.className = own ? "msg own" : "msg";
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  const meta = document.createElement("div");
  meta.className = "meta";
  const whoEl = document.createElement("span");
  whoEl.className = "who";
  whoEl.textContent = who;
  const time = document.createElement("time");
  time.className = "time";
  time.textContent = new Date(Number(ts) || Date.now()).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const p = document.createElement("p");
  p.className = "text";
  p.textContent = text;
  meta.append(whoEl, time);
  bubble.append(meta, p);
  li.append(bubble);
  append(li);
}

function system(text) {
  const li = document.createElement("li");
  li.className = "system";
  li.textContent = text;
  append(li);
}

function append(li) {
  const log = $("log");
  log.append(li);
  log.parentElement.scrollTop = log.parentElement.scrollHeight;
}
