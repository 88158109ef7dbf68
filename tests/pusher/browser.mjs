// pusher-js's web build in Chromium (Debian's, driven by playwright-core) against Herald: a
// page joins a presence channel through the auth endpoint, receives the SDK's event, and
// whispers to a pusher-js client in Node.
import { chromium as playwright } from "playwright-core";
import { APPS, assert, client, next, server, subscribed } from "./harness.mjs";

export const browserCase = {
  name: "pusher-js in Chromium: presence, server events, client events",
  async run({ herald, auth, open, onClose, chromium }) {
    const browser = await playwright.launch({
      executablePath: chromium, headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
    onClose(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${auth.url}/`);
    const node = open(client(herald.port, auth, { user: "node" }));
    const nodeChannel = await subscribed(node, "presence-web");
    const joined = next(nodeChannel, "pusher:member_added", 10000);
    const members = await page.evaluate(({ key, port }) => new Promise((resolve, reject) => {
      const p = new window.Pusher(key, {
        wsHost: "127.0.0.1", wsPort: port, forceTLS: false, enabledTransports: ["ws"],
        disableStats: true, cluster: "mt1",
        channelAuthorization: { endpoint: "/channel-auth", transport: "ajax", params: { user: "browser" } },
      });
      window.received = [];
      const channel = p.subscribe("presence-web");
      channel.bind("from-server", (data) => window.received.push(data));
      channel.bind("pusher:subscription_error", reject);
      channel.bind("pusher:subscription_succeeded", (m) => {
        window.channel = channel;
        resolve({ count: m.count, me: m.me.id });
      });
    }), { key: APPS.app1.key, port: herald.port });
    assert(members.count === 2 && members.me === "browser", JSON.stringify(members));
    assert((await joined).id === "browser", "node sees the page join");
    await server(herald.port).trigger("presence-web", "from-server", { n: 1 });
    await page.waitForFunction(() => window.received.length === 1, null, { timeout: 5000 });
    const whisper = next(nodeChannel, "client-hello");
    await page.evaluate(() => window.channel.trigger("client-hello", { from: "chromium" }));
    assert((await whisper).from === "chromium", "client event from the page");
  },
};
