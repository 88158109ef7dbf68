// Node `ws` client with perMessageDeflate against a Herald echo server.
import WebSocket from 'ws';
import { messages } from './messages.mjs';

const ws = new WebSocket(process.argv[2], { perMessageDeflate: true, maxPayload: 64 << 20 });
const fail = (why) => { console.error(`node client: ${why}`); process.exit(1); };
const queue = [];
let waiting = null;
ws.on('message', (data, isBinary) => {
  const item = { data, isBinary };
  if (waiting) { const w = waiting; waiting = null; w(item); } else { queue.push(item); }
});
ws.on('error', (e) => fail(e.message));
const next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => { waiting = r; });

ws.on('open', async () => {
  if (!String(ws.extensions).includes('permessage-deflate')) fail(`no permessage-deflate (${ws.extensions})`);
  let count = 0;
  for (const [text, binary] of messages()) {
    ws.send(text);
    const t = await next();
    if (t.isBinary || t.data.toString() !== text) fail(`echo of ${text.length} text bytes differs`);
    ws.send(binary);
    const b = await next();
    if (!b.isBinary || !Buffer.from(b.data).equals(binary)) fail(`echo of ${binary.length} binary bytes differs`);
    count += 2;
  }
  console.log(`node ws client -> herald server: ${count} messages echoed byte for byte`);
  ws.close(1000);
});
