// Node `ws` echo server with perMessageDeflate; prints `listening on ADDR`.
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true, maxPayload: 64 << 20 });
wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`listening on ${address}:${port}`);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
