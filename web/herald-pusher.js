// Recovery for pusher-js on Herald: a plugin of a few lines, optional (pusher-js works
// unchanged without it).
//
//   import Pusher from "pusher-js";
//   import { recover } from "./herald-pusher.js";
//   const pusher = recover(new Pusher(key, options));
//
// Herald sends every channel event with its position (`herald_offset`, `herald_epoch`) and
// `pusher_internal:subscription_succeeded` with the channel's (`herald_position`). The plugin
// keeps the last position of each subscribed channel and, when pusher-js subscribes again
// (after a reconnect), adds it to `pusher:subscribe` as `herald_recover`: Herald then sends the
// events the client missed, in order, right after `pusher:subscription_succeeded`, whose data
// says `herald_recovered: true`. With `herald_recovered: false` (the history no longer
// reaches back that far) nothing was replayed and the application reloads its state.

/** Adds recovery to a pusher-js client; returns it. */
export function recover(pusher) {
  const positions = new Map();
  // pusher-js keeps only event, channel, data and user_id of a message: the positions are
  // read from the raw frames, on each new connection's transport.
  const track = (raw) => {
    if (typeof raw?.data !== "string" || !raw.data.includes('"herald_')) return;
    let message;
    try {
      message = JSON.parse(raw.data);
    } catch {
      return;
    }
    const { channel, event, data } = message;
    if (!channel) return;
    if (typeof message.herald_offset === "number") {
      positions.set(channel, { offset: message.herald_offset, epoch: message.herald_epoch });
    } else if (event === "pusher_internal:subscription_succeeded" && typeof data === "string") {
      const position = JSON.parse(data).herald_position;
      if (position) positions.set(channel, position);
    }
  };
  const manager = pusher.connection;
  const setConnection = manager.setConnection.bind(manager);
  manager.setConnection = (connection) => {
    connection.transport?.bind("message", track);
    return setConnection(connection);
  };
  manager.connection?.transport?.bind("message", track);
  const send = pusher.send_event.bind(pusher);
  pusher.send_event = (event, data, channel) => {
    if (event === "pusher:subscribe" && positions.has(data.channel)) {
      data = { ...data, herald_recover: positions.get(data.channel) };
    }
    return send(event, data, channel);
  };
  const unsubscribe = pusher.unsubscribe.bind(pusher);
  pusher.unsubscribe = (name) => {
    positions.delete(name);
    return unsubscribe(name);
  };
  return pusher;
}
