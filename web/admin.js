// The operator's page: reads /admin/api/overview (every node, over the hub's control
// surveys), tails a channel through an EventSource on /admin/api/tail, publishes and
// disconnects through /admin/api/publish and /admin/api/disconnect. The browser sends the
// page's Basic credentials with each request; nothing here stores them.
const $ = (id) => document.getElementById(id);

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "muted";
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = String(text);
  if (cls) td.className = cls;
  return td;
}

function rows(table, list) {
  const body = $(table).tBodies[0];
  body.replaceChildren(...list.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }));
}

async function call(path, body) {
  const init = body === undefined
    ? { headers: { accept: "application/json" } }
    : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const reply = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(reply.error || `HTTP ${response.status}`);
  return reply;
}

async function refresh() {
  try {
    const o = await call("/admin/api/overview");
    $("connections").textContent = String(o.connections);
    rows("nodes", o.nodes.map((n) => [cell(n.node), cell(n.version), cell(n.connections, "n")]));
    const channels = Object.entries(o.channels.channels);
    rows("channels", channels.map(([name, count]) => {
      const tr = [cell(name), cell(count, "n")];
      const td = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Tail";
      button.dataset.channel = name;
      button.addEventListener("click", () => {
        $("tail-channel").value = name;
        $("publish-channel").value = name;
        tail(name);
      });
      td.append(button);
      tr.push(td);
      return tr;
    }));
    $("channels-note").textContent = `(${o.channels.nodes} nodes answered${o.channels.truncated ? ", truncated" : ""})`;
    $("channels").dataset.loaded = "true";
    status(`Updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    status(`Overview failed: ${e.message}`, true);
  }
}

let source = null;

function stopTail() {
  if (source) source.close();
  source = null;
  $("tail-stop").disabled = true;
  $("tail-status").textContent = "";
}

function tail(channel) {
  stopTail();
  $("tail").replaceChildren();
  $("tail-status").textContent = "connecting";
  source = new EventSource(`/admin/api/tail?${new URLSearchParams({ channel })}`);
  $("tail-stop").disabled = false;
  source.addEventListener("ready", () => {
    $("tail-status").textContent = `live on ${channel}`;
    $("tail").dataset.live = channel;
  });
  source.onerror = () => { $("tail-status").textContent = "reconnecting"; };
  source.onmessage = (e) => {
    const pub = JSON.parse(e.data);
    const li = document.createElement("li");
    li.value = pub.offset;
    li.textContent = `${pub.user ? `${pub.user}: ` : ""}${JSON.stringify(pub.data)}`;
    $("tail").append(li);
    li.scrollIntoView({ block: "nearest" });
  };
}

$("refresh").addEventListener("click", refresh);
$("tail-stop").addEventListener("click", stopTail);
$("tail-form").addEventListener("submit", (e) => {
  e.preventDefault();
  tail($("tail-channel").value.trim());
});
$("publish-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const out = $("publish-result");
  try {
    const data = JSON.parse($("publish-data").value);
    const r = await call("/admin/api/publish", { channel: $("publish-channel").value.trim(), data });
    out.textContent = `published at offset ${r.offset}`;
    out.className = "muted";
  } catch (err) {
    out.textContent = err.message;
    out.className = "error";
  }
});
$("disconnect-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const out = $("disconnect-result");
  try {
    await call("/admin/api/disconnect", { user: $("disconnect-user").value.trim() });
    out.textContent = "disconnected";
    out.className = "muted";
    setTimeout(refresh, 300);
  } catch (err) {
    out.textContent = err.message;
    out.className = "error";
  }
});

refresh();
setInterval(refresh, 5000);
