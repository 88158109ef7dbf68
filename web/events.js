// A read-only view of channels with the browser's EventSource and nothing else: no SDK, no
// WebSocket. /events.html?channel=chat:lobby (several `channel` parameters allowed). The
// browser reconnects by itself and sends the last event id; the hub replays what was missed.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const channels = params.getAll("channel");
$("room-name").textContent = channels.join(", ");

function status(kind, text) {
  $("status").className = `badge ${kind}`;
  $("status").textContent = text;
}

function line(cls, text, attrs = {}) {
  const li = document.createElement("li");
  li.className = cls;
  const span = document.createElement("span");
  span.className = "text";
  span.textContent = text;
  li.append(span);
  for (const [k, v] of Object.entries(attrs)) li.dataset[k] = v;
  $("log").append(li);
  li.scrollIntoView({ block: "end" });
}

const query = new URLSearchParams(channels.map((c) => ["channel", c]));
const source = new EventSource(`/sse?${query}`, { withCredentials: true });
status("connecting", "Connecting");

source.addEventListener("ready", () => status("connected", "Live"));
source.onerror = () => status("connecting", "Reconnecting");
source.onmessage = (e) => {
  const pub = JSON.parse(e.data);
  const data = pub.data;
  const text = data && typeof data === "object" && "text" in data ? String(data.text) : JSON.stringify(data);
  const type = data && typeof data === "object" && data.type ? data.type : "data";
  line("msg", text, { channel: pub.channel, offset: pub.offset, type });
};
source.addEventListener("recovery", (e) => {
  const r = JSON.parse(e.data);
  line("system", `Could not recover ${r.channel}: reload for the latest state`);
});
source.addEventListener("disconnect", (e) => {
  const { code } = JSON.parse(e.data);
  // 4500–4999, 1000 and 1008 mean "do not reconnect".
  if ((code >= 4500 && code <= 4999) || code === 1000 || code === 1008) {
    source.close();
    status("closed", "Closed");
  }
});
