// Node `ws` broadcast server, a fan-out baseline for scripts/bench-peers.
//
// Usage: node broadcast.mjs [HOST:PORT] (default 127.0.0.1:9005; port 0 lets the OS choose).
// Every text or binary message a client sends goes to every other open client, the way ws's
// own README broadcasts; permessage-deflate is off. Prints `listening on HOST:PORT`.
import { WebSocketServer, WebSocket } from "ws";

const [host, port] = (process.argv[2] ?? "127.0.0.1:9005").split(":");
const wss = new WebSocketServer({ host, port: Number(port), perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    for (const client of wss.clients) {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    }
  });
});
wss.on("listening", () => {
  const { address, port } = wss.address();
  process.stdout.write(`listening on ${address}:${port}\n`);
});
