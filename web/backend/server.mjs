// A tiny application backend for the demo chat, with no dependencies: it logs people in with
// a session cookie and answers Herald's connect hook, so the hub admits a browser by the
// application's own session instead of a token.
//
//   PORT=3000 node web/backend/server.mjs
//   herald serve --config web/chat.toml --connect-hook-url http://127.0.0.1:3000/herald/connect
//   open http://127.0.0.1:3000/login?next=http://127.0.0.1:8080/
//
// Cookies are kept per host, not per port, so a session cookie set here on 127.0.0.1 reaches
// the hub on 127.0.0.1 too. In production both sit behind one domain (the backend at /, the
// hub at /ws), and the same cookie reaches both.
import http from "node:http";
import { randomBytes } from "node:crypto";

const COOKIE = "chat_session";
const NAME = /^[A-Za-z0-9_-]{1,32}$/;
const MAX_BODY = 64 * 1024;
/** session id -> user name; in memory, as a demo may. */
const sessions = new Map();

function cookie(header, name) {
  for (const part of (header ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return "";
}

function body(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error("body too large"), { status: 413 }));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const escape = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(next) {
  return `<!doctype html><meta charset="utf-8"><title>Log in to the chat</title>
<form method="post" action="/login">
  <label>Name <input name="name" id="name" pattern="[A-Za-z0-9_\\-]{1,32}" required autofocus></label>
  <input type="hidden" name="next" value="${escape(next)}">
  <button id="login">Log in</button>
</form>`;
}

/** Where to go after logging in: `next` when it is on this host (any port), else nowhere. */
function safeNext(next, req) {
  try {
    const url = new URL(next);
    const host = (req.headers.host ?? "").split(":")[0];
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname === host ? url.href : "";
  } catch {
    return "";
  }
}

/** The connect hook: the handshake's cookie names a session, or the browser is refused. */
function admit(call) {
  const user = sessions.get(cookie(call.headers?.cookie, COOKIE));
  if (!user) return { allow: false, status: 401, body: "not logged in" };
  return { allow: true, user, channels: ["chat:*", "online:all", "news:*"] };
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://backend");
  const send = (status, type, text, headers = {}) => {
    res.writeHead(status, { "content-type": type, ...headers });
    res.end(text);
  };
  try {
    if (req.method === "GET" && url.pathname === "/login") {
      return send(200, "text/html; charset=utf-8", loginPage(url.searchParams.get("next") ?? ""));
    }
    if (req.method === "POST" && url.pathname === "/login") {
      const form = new URLSearchParams(await body(req));
      const name = form.get("name") ?? "";
      if (!NAME.test(name)) return send(400, "text/plain", "a name is 1 to 32 letters, digits, - or _");
      const sid = randomBytes(16).toString("hex");
      sessions.set(sid, name);
      const next = safeNext(form.get("next") ?? "", req);
      const headers = { "set-cookie": `${COOKIE}=${sid}; HttpOnly; SameSite=Lax; Path=/` };
      if (next) return send(303, "text/plain", "logged in", { ...headers, location: next });
      return send(200, "text/plain", `logged in as ${name}`, headers);
    }
    if (req.method === "POST" && url.pathname === "/herald/connect") {
      return send(200, "application/json", JSON.stringify(admit(JSON.parse(await body(req)))));
    }
    send(404, "text/plain", "not found");
  } catch (e) {
    send(e.status ?? 400, "text/plain", e.message);
  }
});

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.error(`backend: listening on http://127.0.0.1:${server.address().port}`);
});
