// A fake WebSocket and a fake clock: the client's whole world, with no network and no waiting.

/** Timers that fire only when the test advances time. */
export class FakeClock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.nextHandle = 1;
  }

  setTimeout(fn, ms) {
    const handle = this.nextHandle++;
    this.timers.set(handle, { at: this.now + Math.max(0, ms), fn, ms });
    return handle;
  }

  clearTimeout(handle) {
    this.timers.delete(handle);
  }

  /** Runs every timer due within `ms`, in time order, letting promises settle in between. */
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      await settle();
      const due = [...this.timers.entries()]
        .filter(([, t]) => t.at <= end)
        .sort((a, b) => a[1].at - b[1].at || a[0] - b[0]);
      if (due.length === 0) break;
      const [handle, timer] = due[0];
      this.timers.delete(handle);
      this.now = timer.at;
      timer.fn();
    }
    this.now = end;
    await settle();
  }
}

/** Lets pending promise callbacks run. */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Records every socket the client opens; the test plays the server. */
export class FakeSocket {
  static all = [];

  static reset() {
    FakeSocket.all = [];
  }

  static get last() {
    return FakeSocket.all.at(-1);
  }

  constructor(url, protocol) {
    this.url = url;
    this.protocol = protocol;
    this.sent = [];
    this.closedWith = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
    FakeSocket.all.push(this);
  }

  send(text) {
    if (this.closedWith) throw new Error("send on a closed socket");
    this.sent.push(JSON.parse(text));
  }

  close(code, reason) {
    this.closedWith = { code, reason };
  }

  /** The server sends a JSON message. */
  receive(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  connected(pingInterval = 25) {
    this.receive({ push: "connected", client: `c${FakeSocket.all.length}`, user: "", ping_interval: pingInterval });
  }

  /** The connection ends with `code`, as the browser reports it. */
  drop(code, reason = "") {
    this.onclose?.({ code, reason });
  }

  /** The last command sent with `method`. */
  lastCommand(method) {
    return this.sent.filter((c) => c.method === method).at(-1);
  }

  reply(command, result) {
    this.receive({ id: command.id, result });
  }
}
