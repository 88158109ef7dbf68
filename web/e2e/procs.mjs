// The processes the browser tests drive: `herald serve`, redis-server, and a TCP proxy that
// can cut connections or switch nodes the way a load balancer would.
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

// Every process started here, so that an interrupted run leaves none behind.
const children = new Set();

function track(child) {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** Kills whatever is still running (SIGKILL). */
export function killAll() {
  for (const child of children) child.kill("SIGKILL");
}

const LISTENING = /herald: listening on https?:\/\/([\d.]+):(\d+)/;

/** Starts `herald serve`; resolves once it prints its address. Logs go to `logFile`. */
export function startHerald(bin, { port = 0, args = [], logFile }) {
  const child = track(spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, HERALD_LOG: process.env.HERALD_LOG ?? "info" },
  }));
  const log = createWriteStream(logFile, { flags: "a" });
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => fail(new Error(`herald did not start in 10 s: ${seen.slice(-500)}`)), 10000);
    const fail = (e) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(e);
    };
    child.on("exit", (code) => fail(new Error(`herald exited with ${code}: ${seen.slice(-500)}`)));
    child.stderr.on("data", (chunk) => {
      log.write(chunk);
      if (seen === null) return;
      seen += chunk;
      const m = LISTENING.exec(seen);
      if (!m) return;
      seen = null;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve(new Herald(child, Number(m[2])));
    });
  });
}

class Herald {
  constructor(child, port) {
    this.child = child;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.exited = new Promise((resolve) => child.on("exit", resolve));
  }

  /** SIGTERM: the graceful shutdown (close 1001 to every WebSocket). */
  async stop() {
    if (this.child.exitCode === null) this.child.kill("SIGTERM");
    await Promise.race([this.exited, sleep(8000)]);
    this.kill();
  }

  /** SIGKILL: the node dies without a word. */
  async kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
  }
}

/** A free TCP port on 127.0.0.1 (free now; the caller binds it soon after). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `cmd` runs at all (found on PATH). */
export function exists(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/** Starts the demo chat's backend (web/backend/server.mjs); resolves once it listens. */
export function startBackend(logFile) {
  const script = new URL("../backend/server.mjs", import.meta.url).pathname;
  const child = track(spawn(process.execPath, [script], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, PORT: "0" } }));
  const log = createWriteStream(logFile, { flags: "a" });
  child.stderr.pipe(log);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the backend did not start in 5 s")), 5000);
    let seen = "";
    child.stderr.on("data", (chunk) => {
      seen += chunk;
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(seen);
      if (!m) return;
      clearTimeout(timer);
      resolve({ url: m[1], stop: () => child.kill("SIGKILL") });
    });
    child.on("exit", (code) => reject(new Error(`the backend exited with ${code}: ${seen}`)));
  });
}

/** Starts a throwaway redis-server (no persistence) on a free port. */
export async function startRedis(logFile) {
  const port = await freePort();
  const child = track(spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "pipe"],
  }));
  const log = createWriteStream(logFile, { flags: "a" });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  for (let i = 0; i < 50; i++) {
    if (await canConnect(port)) return { port, url: `redis://127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") };
    await sleep(100);
  }
  child.kill("SIGKILL");
  throw new Error("redis-server did not listen within 5 s");
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/** A TCP proxy on 127.0.0.1: `cut()` drops every connection and refuses new ones until
 * `restore()`; `target` may change between connections (a load balancer's failover). */
export async function startProxy(target) {
  const sockets = new Set();
  const state = { up: true, target };
  const server = net.createServer((client) => {
    if (!state.up) return client.destroy();
    const upstream = net.connect(state.target, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    get url() {
      return `http://127.0.0.1:${this.port}`;
    },
    setTarget(port) {
      state.target = port;
    },
    cut() {
      state.up = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      state.up = true;
    },
    close() {
      this.cut();
      server.close();
    },
  };
}

/**
 * Debian's nginx in front of `ports` (round robin, no stickiness), as any user, everything in
 * a temporary directory. `upgrade: false` leaves out the Upgrade/Connection lines, so every
 * WebSocket upgrade fails and only plain HTTP (the event streams and POSTs) gets through.
 * `buffering: true` makes nginx hold streamed bytes, as a buffering proxy does: buffering on
 * with the hub's `X-Accel-Buffering: no` ignored, and gzip on for event streams, whose deflate
 * output stays in nginx's buffers until they fill (buffering alone does not hold them: nginx
 * passes on what it read at once). An event stream then delivers nothing, not even its head,
 * and only responses that end (long polls) get through.
 */
export async function startNginx(ports, { upgrade, buffering = false }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "herald-nginx-"));
  const port = await freePort();
  const upgradeLines = upgrade
    ? "proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection $connection_upgrade;"
    : "";
  const bufferingLines = buffering
    ? "proxy_buffering on;\n      proxy_ignore_headers X-Accel-Buffering;\n      proxy_buffer_size 64k;\n      proxy_buffers 4 64k;\n      proxy_busy_buffers_size 64k;\n      gzip on;\n      gzip_proxied any;\n      gzip_min_length 0;\n      gzip_types text/event-stream application/json;"
    : "";
  writeFileSync(
    path.join(dir, "nginx.conf"),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream herald {
    ${ports.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=30s;`).join("\n    ")}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://herald;
      proxy_http_version 1.1;
      ${upgradeLines}
      ${bufferingLines}
      proxy_set_header Host $http_host;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout;
    }
  }
}
`,
  );
  const child = track(spawn("/usr/sbin/nginx", ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-e", path.join(dir, "error.log"), "-g", "daemon off;"], {
    stdio: ["ignore", "ignore", "pipe"],
  }));
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  for (let i = 0; i < 50; i++) {
    if (await canConnect(port)) {
      return {
        port,
        url: `http://127.0.0.1:${port}`,
        stop() {
          child.kill("SIGKILL");
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  child.kill("SIGKILL");
  throw new Error(`nginx did not listen within 5 s: ${stderr}`);
}
