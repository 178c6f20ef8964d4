// logging/setLevel and notifications/message.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

import { T, connect, forEachTarget, sleep, toggleTo, uniq, waitFor } from "./lib/harness.mjs";

const LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

async function logClient(t, target) {
  const logs = [];
  const client = await connect(t, target, {
    setup: (c) => c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n.params)),
  });
  return { client, logs };
}

forEachTarget("logging", describe, it, (target) => {
  it("sets the level and receives simulated log messages", { timeout: 20_000 }, async (t) => {
    const { client, logs } = await logClient(t, target);
    assert.deepEqual(await client.setLoggingLevel("debug"), {});
    t.after(() => toggleTo(client, "toggle-simulated-logging", "Stopped").catch(() => {}));
    // Starting the simulation sends one message at once (random level),
    // then one every 5 s.
    await toggleTo(client, "toggle-simulated-logging", "Started");
    const m = await waitFor(() => logs.find((l) => /-level message|level-message/.test(String(l.data))), {
      timeoutMs: 7000,
      what: "a notifications/message",
    });
    assert.ok(LEVELS.includes(m.level), `level ${m.level}`);
    await toggleTo(client, "toggle-simulated-logging", "Stopped");
  });

  it("receives log messages at or above the set level only", { timeout: 20_000 }, async (t) => {
    const { client, logs } = await logClient(t, target);
    t.after(() => client.setLoggingLevel("debug").catch(() => {}));
    // The subscribe handler acknowledges with an info-level log message
    // naming the URI.
    const a = `demo://resource/dynamic/text/${uniq("log-a")}`;
    const b = `demo://resource/dynamic/text/${uniq("log-b")}`;
    await client.setLoggingLevel("info");
    await client.subscribeResource({ uri: a });
    const m = await waitFor(() => logs.find((l) => String(l.data).includes(a)), {
      timeoutMs: 3000,
      what: `the info log message for subscribing ${a}`,
    });
    assert.equal(m.level, "info");
    assert.match(String(m.data), /^Received Subscribe Resource request for URI/);

    await client.setLoggingLevel("error");
    await client.subscribeResource({ uri: b });
    await sleep(800);
    assert.ok(!logs.some((l) => String(l.data).includes(b)), "info message sent although the level is error");
    await client.unsubscribeResource({ uri: a });
    await client.unsubscribeResource({ uri: b });
  });
});
