// herald.js mirrors the hub's codes from the shared fixture; these tests keep them equal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { CODES, LOCAL_ERRORS, shouldReconnect } from "../herald.js";

const fixture = JSON.parse(
  readFileSync(new URL("../../crates/herald-hub-protocol/codes.json", import.meta.url), "utf8"),
);

test("herald.js codes equal crates/herald-hub-protocol/codes.json", () => {
  assert.deepEqual(CODES, fixture);
});

test("every disconnect in the fixture reconnects exactly when the fixture says", () => {
  for (const [name, d] of Object.entries(fixture.disconnects)) {
    assert.equal(shouldReconnect(d.code), d.reconnect, name);
  }
});

test("the reconnect range reconnects and the terminal range does not", () => {
  const [low, high] = fixture.reconnect_ranges.reconnect;
  const [tlow, thigh] = fixture.reconnect_ranges.terminal;
  for (const code of [low, low + 50, high]) assert.equal(shouldReconnect(code), true, `${code}`);
  for (const code of [tlow, tlow + 77, thigh]) assert.equal(shouldReconnect(code), false, `${code}`);
});

test("transient transport codes reconnect; other standard codes do not", () => {
  for (const code of [1001, 1006, 1011, 1012, 1013]) assert.equal(shouldReconnect(code), true, `${code}`);
  for (const code of [1000, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 3000, 5000]) {
    assert.equal(shouldReconnect(code), false, `${code}`);
  }
});

test("client-side error codes never collide with the server's", () => {
  const server = new Set(Object.values(fixture.errors).map((e) => e.code));
  for (const e of Object.values(LOCAL_ERRORS)) {
    assert.ok(e.code < 100 && !server.has(e.code), `${e.code}`);
  }
});
