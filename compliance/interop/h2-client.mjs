// Node's built-in http2 client opening a WebSocket with an extended CONNECT (RFC 8441) on an
// h2c connection to a Herald echo server, with `ws`'s framing and permessage-deflate on the
// stream: waits for SETTINGS_ENABLE_CONNECT_PROTOCOL, then checks every echo byte for byte.
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import WebSocket from 'ws';
import { messages } from './messages.mjs';

// ws exports neither of these; by file path they load all the same.
const require = createRequire(import.meta.url);
const wsLib = new URL('./node_modules/ws/lib/', import.meta.url).pathname;
const PerMessageDeflate = require(`${wsLib}permessage-deflate.js`);
const { format, parse } = require(`${wsLib}extension.js`);

const url = new URL(process.argv[2]);
const MAX = 64 << 20;
const fail = (why) => { console.error(`node h2 client: ${why}`); process.exit(1); };

const session = http2.connect(`http://${url.host}`);
session.on('error', (e) => fail(e.message));
session.once('remoteSettings', (settings) => {
  if (!settings.enableConnectProtocol) fail('the server did not enable extended CONNECT');
  const deflate = new PerMessageDeflate({}, false, MAX);
  const stream = session.request({
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': 'http',
    ':path': url.pathname,
    ':authority': url.host,
    'sec-websocket-version': '13',
    'sec-websocket-extensions': format({ [PerMessageDeflate.extensionName]: deflate.offer() }),
  });
  stream.on('error', (e) => fail(e.message));
  stream.on('response', (headers) => {
    if (headers[':status'] !== 200) fail(`status ${headers[':status']}`);
    if ('sec-websocket-accept' in headers) fail('Sec-WebSocket-Accept over HTTP/2');
    const answer = parse(headers['sec-websocket-extensions'] ?? '');
    if (!answer[PerMessageDeflate.extensionName]) fail('no permessage-deflate');
    deflate.accept(answer[PerMessageDeflate.extensionName]);
    // A ws client on the stream: client role (masking), the negotiated extension.
    const ws = new WebSocket(null, undefined, {});
    ws._isServer = false;
    ws._extensions[PerMessageDeflate.extensionName] = deflate;
    ws.setSocket(stream, Buffer.alloc(0), { maxPayload: MAX });
    run(ws);
  });
});

async function run(ws) {
  const queue = [];
  let waiting = null;
  ws.on('message', (data, isBinary) => {
    const item = { data, isBinary };
    if (waiting) { const w = waiting; waiting = null; w(item); } else { queue.push(item); }
  });
  ws.on('error', (e) => fail(e.message));
  const next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => { waiting = r; });
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
  ws.on('close', (code) => {
    if (code !== 1000) fail(`closed with ${code}`);
    console.log(`node http2 client -> herald h2 server: ${count} messages echoed byte for byte over extended CONNECT`);
    session.close();
  });
  ws.close(1000);
}
