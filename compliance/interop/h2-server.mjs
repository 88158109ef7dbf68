// Node's built-in http2 server (h2c) with SETTINGS_ENABLE_CONNECT_PROTOCOL, echoing over each
// extended CONNECT (RFC 8441) with `ws`'s framing and permessage-deflate on the stream; prints
// `listening on ADDR`.
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import WebSocket from 'ws';

const require = createRequire(import.meta.url);
const wsLib = new URL('./node_modules/ws/lib/', import.meta.url).pathname;
const PerMessageDeflate = require(`${wsLib}permessage-deflate.js`);
const { format, parse } = require(`${wsLib}extension.js`);
const MAX = 64 << 20;

const server = http2.createServer({ settings: { enableConnectProtocol: true } });
server.on('stream', (stream, headers) => {
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket'
      || headers['sec-websocket-version'] !== '13') {
    stream.respond({ ':status': 400 });
    stream.end('extended CONNECT with :protocol websocket and version 13 required\n');
    return;
  }
  const ws = new WebSocket(null, undefined, {});
  const offers = parse(headers['sec-websocket-extensions'] ?? '');
  const response = { ':status': 200 };
  const offer = offers[PerMessageDeflate.extensionName];
  if (offer) {
    const deflate = new PerMessageDeflate({}, true, MAX);
    const params = deflate.accept(offer);
    response['sec-websocket-extensions'] = format({ [PerMessageDeflate.extensionName]: params });
    ws._extensions[PerMessageDeflate.extensionName] = deflate;
  }
  stream.respond(response);
  ws.setSocket(stream, Buffer.alloc(0), { maxPayload: MAX });
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => stream.close());
});
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
