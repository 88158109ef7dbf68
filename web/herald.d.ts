// Types of herald.js, the browser client of the Herald hub's `herald.v1` protocol.

/** A place in a channel's stream: offsets only compare within one epoch. */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

export interface Publication {
  channel: string;
  offset: number;
  epoch: string;
  /** Any JSON; text from a plain-mode client is a string (base64 when `encoding` says so). */
  data: unknown;
  /** The publisher's verified user id, when it had one. */
  user?: string;
  encoding?: "base64";
}

export interface ClientInfo {
  client: string;
  /** Empty for anonymous connections. */
  user: string;
}

export type StateEvent =
  | { state: "connecting" }
  | { state: "connected"; client: string; user: string }
  | { state: "disconnected"; code: number; reason: string; willReconnect: boolean };

/** The outcome of a token refresh the server asked for: `expires` is the new token's expiry
 * (Unix seconds, null when it does not expire) or, on failure, the old one's. */
export type RefreshEvent =
  | { ok: true; expires: number | null }
  | { ok: false; expires: number; error: unknown };

export interface Backoff {
  /** Cap of the first retry delay, ms (default 500). */
  min: number;
  /** Largest cap, ms (default 20000). Each delay is uniform in [0, min(max, min·2^attempt)). */
  max: number;
}

// Checked both ways, like a method parameter, so the DOM's richer event types fit.
type Handler<E> = { bivarianceHack(event: E): unknown }["bivarianceHack"];

/** The subset of the browser's WebSocket the client uses (tests pass a fake). */
export interface TransportLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface HeraldOptions {
  /** A JWT, or a function giving one (then it works as `getToken`). A fixed string is used
   * for every connection; a 4501 close (the token expired) is then final. */
  token?: string | (() => string | Promise<string>);
  /** Gives a fresh JWT: called before every connection attempt (sent as the `token` query
   * parameter), on the server's `refresh` push (sent with the `refresh` command, so the
   * connection outlives the token), and after a 4501 close, which then reconnects. */
  getToken?: () => Promise<string> | string;
  /** The transport constructor: the browser's WebSocket by default. */
  WebSocket?: new (url: string, protocol: string) => TransportLike;
  /** Transports in order of preference (default in a page: `["websocket", "stream", "poll"]`,
   * else `["websocket"]`). One that does not reach `connected` gives way to the next at once;
   * the one that connected is remembered (localStorage `herald.transport`) and tried first. */
  transports?: Array<"websocket" | "stream" | "poll">;
  /** Ms a transport (all but the last) may take to reach `connected` before the next one
   * (default 4000). */
  fallbackTimeout?: number;
  /** Ms between WebSocket probes while connected over a fallback; one that reaches
   * `connected` moves the client back to WebSocket (default 60000; 0: never). */
  probeInterval?: number;
  /** The emulation's constructor (tests pass a fake). */
  HttpStream?: new (url: string, options: { fetch?: typeof fetch }) => TransportLike;
  /** The long-polling constructor (tests pass a fake). */
  HttpPoll?: new (url: string, options: { fetch?: typeof fetch }) => TransportLike;
  /** The fetch the emulation uses (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** Where the working transport is remembered (default localStorage; `null`: nowhere). */
  storage?: { getItem(key: string): string | null; setItem(key: string, value: string): void } | null;
  backoff?: Partial<Backoff>;
  /** Ms to wait for a reply, and for the `connected` push after opening (default 10000). */
  timeout?: number;
  /** Ms of silence beyond the server's ping_interval before the client pings (default 5000). */
  pingMargin?: number;
  /** Ms to wait for the answer to that ping before reconnecting (default 10000). */
  pingTimeout?: number;
  /** Injected clock for tests. */
  timers?: Timers;
  /** Injected randomness for tests: a function returning [0, 1). */
  random?: () => number;
}

export interface SubscribeOptions {
  onPublication?(publication: Publication): void;
  /** Needs `joinLeave: true`. */
  onJoin?(member: ClientInfo): void;
  onLeave?(member: ClientInfo): void;
  /** The server could not fill a gap (`recovered: false`): reload the state. */
  onRecoveryFailed?(event: StreamPosition & { previous: StreamPosition | null }): void;
  /** After every successful (re)subscribe. */
  /** `data`: what the application's backend attached to the subscription (its subscribe hook). */
  onSubscribed?(event: StreamPosition & { recovered?: boolean; data?: unknown }): void;
  /** A permanent refusal (permission denied, bad channel, limit): the subscription is dropped. */
  onError?(error: HeraldError): void;
  /** The server ended the subscription (a refreshed token no longer allows the channel). */
  onUnsubscribed?(event: { reason: string }): void;
  /** Ask for join/leave pushes. */
  joinLeave?: boolean;
  /** Start from this position: publications after it are delivered first (e.g. after `history`). */
  since?: StreamPosition;
  /** Without a position: how many of the channel's newest publications to deliver first (at
   * most the namespace's `latest`, which is also what the server sends when this is unset). */
  latest?: number;
}

export declare const CODES: {
  errors: Record<string, { code: number; temporary: boolean; message: string }>;
  disconnects: Record<string, { code: number; reconnect: boolean; reason: string }>;
  reconnect_ranges: { reconnect: [number, number]; terminal: [number, number] };
};

/** Codes of failures on the client's side: 1 timeout, 2 disconnected, 3 closed. */
export declare const LOCAL_ERRORS: Record<
  "timeout" | "disconnected" | "closed",
  { code: number; temporary: boolean; message: string }
>;

export declare function shouldReconnect(code: number): boolean;
export declare function backoffDelay(attempt: number, backoff: Backoff, random?: () => number): number;

export declare class HeraldError extends Error {
  /** The server's error code (100–110), or a LOCAL_ERRORS code. */
  code: number;
  /** Whether retrying later may succeed. */
  temporary: boolean;
}

export declare class Subscription {
  readonly channel: string;
  /** The last publication applied (or the subscribe reply's position). */
  readonly position: StreamPosition | null;
  readonly subscribed: boolean;
  /** Settles with the first subscribe reply. */
  readonly ready: Promise<StreamPosition & { recovered?: boolean; data?: unknown }>;
  unsubscribe(): void;
}

/** herald.v1 over `GET /stream` (event stream down) and `POST /stream/{session}` (commands
 * up), shaped like a WebSocket. */
export declare class HttpStream implements TransportLike {
  constructor(url: string, options?: { fetch?: typeof fetch });
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

/** herald.v1 over long polls: `GET /poll` opens, `GET /poll/{session}?last=N` brings the
 * messages after `N`, commands go up by `POST /poll/{session}`; shaped like a WebSocket. */
export declare class HttpPoll extends HttpStream {}

/** The emulation's downstream URL for a WebSocket URL: `ws://h/ws?q` → `http://h/stream?q`. */
export declare function streamUrl(url: string): string;

/** The long-polling URL for a WebSocket URL: `ws://h/ws?q` → `http://h/poll?q`. */
export declare function pollUrl(url: string): string;

export declare class Herald {
  constructor(url: string, options?: HeraldOptions);
  readonly state: "connecting" | "connected" | "disconnected";
  /** The transport in use, or to be tried next. */
  readonly transport: "websocket" | "stream" | "poll";
  /** This connection's id, after `connected`. */
  readonly clientId: string | null;
  readonly user: string | null;
  connect(): void;
  close(): void;
  on(event: "state", listener: (event: StateEvent) => void): () => void;
  /** The server subscribed this client to a channel (its personal channel, a token `subs`
   * entry, the server API), at connect and again after each reconnect. `recovered` is absent
   * the first time; then `true` when every publication missed meanwhile was delivered (read
   * with `history`), `false` when the server no longer had them: reload the state. */
  on(
    event: "subscribed",
    listener: (event: StreamPosition & { channel: string; recovered?: boolean }) => void,
  ): () => void;
  /** The server ended a subscription (the server API); it is not renewed after a reconnect. */
  on(event: "unsubscribed", listener: (event: { channel: string; reason: string }) => void): () => void;
  /** A publication on a server-side subscription, once each and in order. */
  on(event: "publication", listener: (publication: Publication) => void): () => void;
  /** The channels the server subscribed this client to, with the last applied position. */
  readonly serverSubscriptions: { channel: string; position: StreamPosition | null }[];
  on(event: "refresh", listener: (event: RefreshEvent) => void): () => void;
  subscribe(channel: string, options?: SubscribeOptions): Subscription;
  publish(channel: string, data: unknown): Promise<StreamPosition>;
  history(
    channel: string,
    options?: { since?: StreamPosition; limit?: number; reverse?: boolean },
  ): Promise<StreamPosition & { publications: Omit<Publication, "channel" | "epoch">[] }>;
  /** As the broker read them: join/leave pushes handled while the call is open may be newer. */
  presence(channel: string): Promise<ClientInfo[]>;
  /** Calls `method` of the application's backend (the hub's RPC hook) with `data`; resolves
   * to the backend's answer. Rejects with the backend's error (code 1000-1999), 102 when the
   * hub has no RPC hook, 109 when the backend is unavailable. */
  rpc<T = unknown>(method: string, data?: unknown): Promise<T>;
}
