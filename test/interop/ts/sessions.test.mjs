// Several client sessions on one endpoint at once. Each session must see the
// server as if it were alone: its own log level, its own subscriptions, its
// own server→client requests. Behind the gateway, a stdio upstream is one
// process shared by every session (target.sharedUpstream), which is where
// these tests bite.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  CreateMessageRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

import { T, connect, forEachTarget, sleep, textOf, toggleTo, uniq, waitFor, waitForTool } from "./lib/harness.mjs";

const TOOL = "trigger-long-running-operation";

async function observed(t, target, opts = {}) {
  const client = await connect(t, target, {
    ...opts,
    setup: (c) => {
      c.logs = [];
      c.updates = [];
      c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => c.logs.push(n.params));
      c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => c.updates.push(n.params.uri));
      opts.setup?.(c);
    },
  });
  return client;
}

function samplingClient(t, target, canned) {
  return observed(t, target, {
    capabilities: { sampling: {} },
    setup: (c) => {
      c.sampled = [];
      c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
        c.sampled.push(req.params);
        await sleep(300); // a slow "LLM": keeps the calls overlapping
        return { role: "assistant", content: { type: "text", text: canned }, model: "canned" };
      });
    },
  });
}

async function rootsClient(t, target, roots) {
  const client = await observed(t, target, {
    capabilities: { roots: { listChanged: true } },
    setup: (c) => {
      c.roots = roots;
      c.rootsAsked = 0;
      c.setRequestHandler(ListRootsRequestSchema, async () => {
        c.rootsAsked++;
        return { roots: c.roots };
      });
    },
  });
  await waitForTool(client, "get-roots-list");
  return client;
}

const rootsText = async (c) => textOf(await c.callTool({ name: "get-roots-list", arguments: {} }));

// Documented limitations of a stdio upstream with sharing: shared (one
// process serves every session): roots cannot be kept per session, and a
// server→client request cannot be attributed while several sessions have
// calls in flight. The same tests pass with sharing: per_session
// (target gateway/stdio-per-session) and with HTTP upstreams.
const SHARED_TODO = {
  roots: "limitation of sharing: shared: the one server process keeps one roots list (use sharing: per_session)",
  rootsChanged:
    "limitation of sharing: shared: roots/list sent after notifications/roots/list_changed cannot be attributed to a session (use sharing: per_session)",
  concurrentSampling:
    "limitation of sharing: shared: a server→client request cannot be attributed while several sessions have calls in flight (use sharing: per_session)",
};
const todoOn = (target, key) => ({ ...T, todo: target.sharedUpstream ? SHARED_TODO[key] : undefined });

forEachTarget("sessions", describe, it, (target) => {
  it("keeps each session's log level", todoOn(target, "logLevel"), async (t) => {
    const a = await observed(t, target);
    const b = await observed(t, target);
    t.after(() => Promise.all([a.setLoggingLevel("debug"), b.setLoggingLevel("debug")]).catch(() => {}));
    await a.setLoggingLevel("error");
    await b.setLoggingLevel("debug");
    // The subscribe handler acknowledges with an info-level log message.
    const ua = `demo://resource/dynamic/text/${uniq("level-a")}`;
    const ub = `demo://resource/dynamic/text/${uniq("level-b")}`;
    await a.subscribeResource({ uri: ua });
    await b.subscribeResource({ uri: ub });
    await waitFor(() => b.logs.some((l) => String(l.data).includes(ub)), { timeoutMs: 3000, what: "B's info log" });
    await sleep(300);
    assert.deepEqual(
      a.logs.filter((l) => l.level === "info").map((l) => l.data),
      [],
      "session A set level error but received info messages",
    );
    await a.unsubscribeResource({ uri: ua });
    await b.unsubscribeResource({ uri: ub });
  });

  it("keeps a subscription when another session unsubscribes the same URI", { ...todoOn(target, "unsubscribe"), timeout: 30_000 }, async (t) => {
    const a = await observed(t, target);
    const b = await observed(t, target);
    const uri = `demo://resource/dynamic/text/${uniq("shared-sub")}`;
    await a.subscribeResource({ uri });
    await b.subscribeResource({ uri });
    await a.unsubscribeResource({ uri });
    t.after(() => toggleTo(b, "toggle-subscriber-updates", "Stopped").catch(() => {}));
    await toggleTo(b, "toggle-subscriber-updates", "Started"); // one update per subscribed URI at once
    await waitFor(() => b.updates.includes(uri), { timeoutMs: 2500, what: `resources/updated for ${uri} at B` }).catch(
      (err) => assert.fail(`B is still subscribed to ${uri} but got no resources/updated (${err.message})`),
    );
    assert.ok(!a.updates.includes(uri), "A unsubscribed but got resources/updated");
    await b.unsubscribeResource({ uri });
  });

  it("gives each session its own roots", todoOn(target, "roots"), async (t) => {
    const ra = { uri: `file:///tmp/${uniq("root-a")}`, name: "A's workspace" };
    const rb = { uri: `file:///tmp/${uniq("root-b")}`, name: "B's workspace" };
    const a = await rootsClient(t, target, [ra]);
    const b = await rootsClient(t, target, [rb]);
    const ta = await rootsText(a);
    assert.ok(ta.includes(ra.uri), `A: ${ta}`);
    const tb = await rootsText(b);
    assert.ok(tb.includes(rb.uri), `B sees ${tb}`);
    assert.ok(!tb.includes(ra.uri), "B was shown A's roots");
  });

  it("asks for the roots again after notifications/roots/list_changed", todoOn(target, "rootsChanged"), async (t) => {
    const r1 = { uri: `file:///tmp/${uniq("root-1")}`, name: "first" };
    const r2 = { uri: `file:///tmp/${uniq("root-2")}`, name: "second" };
    const a = await rootsClient(t, target, [r1]);
    await rootsText(a); // the server has fetched the roots at least once
    const asked = a.rootsAsked;
    a.roots = [r2];
    await a.sendRootsListChanged();
    await waitFor(() => a.rootsAsked > asked, { timeoutMs: 3000, what: "roots/list after roots/list_changed" });
    // The server stores the answer when it arrives, which may be after the
    // client sent it: poll until the new list shows.
    let text = "";
    await waitFor(async () => (text = await rootsText(a)).includes(r2.uri), { timeoutMs: 3000, what: "the server to hold the new roots" })
      .catch(() => {});
    assert.ok(text.includes(r2.uri), text);
    assert.ok(!text.includes(r1.uri), text);
  });

  it("never sends sampling/createMessage to a client without the sampling capability", T, async (t) => {
    const requests = [];
    const client = await connect(t, target, {
      setup: (c) => {
        c.fallbackRequestHandler = async (req) => {
          requests.push(req.method);
          throw new Error("unexpected request");
        };
      },
    });
    const { tools } = await client.listTools();
    if (tools.some((x) => x.name === "trigger-sampling-request")) {
      // Listed (a shared upstream registered it for another client): the
      // call must fail without the request reaching this client.
      const res = await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "x" } });
      assert.equal(res.isError, true, textOf(res));
      assert.match(textOf(res), /sampling/i);
    } else {
      t.diagnostic("trigger-sampling-request not listed for a client without sampling (as server-everything does)");
    }
    assert.deepEqual(requests, []);
  });

  it("relays concurrent sampling requests of two sessions each to its own client", todoOn(target, "concurrentSampling"), async (t) => {
    const cannedA = uniq("canned-A");
    const cannedB = uniq("canned-B");
    const a = await samplingClient(t, target, cannedA);
    const b = await samplingClient(t, target, cannedB);
    await waitForTool(a, "trigger-sampling-request");
    await waitForTool(b, "trigger-sampling-request");
    const [ra, rb] = await Promise.all([
      a.callTool({ name: "trigger-sampling-request", arguments: { prompt: "from A" } }),
      b.callTool({ name: "trigger-sampling-request", arguments: { prompt: "from B" } }),
    ]);
    assert.equal(ra.isError, undefined, `A: ${textOf(ra)}`);
    assert.equal(rb.isError, undefined, `B: ${textOf(rb)}`);
    assert.ok(textOf(ra).includes(cannedA), textOf(ra));
    assert.ok(textOf(rb).includes(cannedB), textOf(rb));
    assert.equal(a.sampled.length, 1);
    assert.match(a.sampled[0].messages[0].content.text, /from A/);
    assert.equal(b.sampled.length, 1);
    assert.match(b.sampled[0].messages[0].content.text, /from B/);
  });

  // Keep last in this file: on a shared upstream, a cancelled call may
  // linger in the gateway until its tool_call timeout.
  it("serves another session's sampling right after a call was cancelled", todoOn(target, "cancelBlocks"), async (t) => {
    const a = await observed(t, target);
    const canned = uniq("canned");
    const b = await samplingClient(t, target, canned);
    await waitForTool(b, "trigger-sampling-request");

    const controller = new AbortController();
    const call = a.callTool({ name: TOOL, arguments: { duration: 3, steps: 6 } }, undefined, {
      signal: controller.signal,
      onprogress: () => controller.abort(new Error("cancelled by the test")),
    });
    await assert.rejects(call);
    const res = await b.callTool({ name: "trigger-sampling-request", arguments: { prompt: "after cancel" } });
    assert.equal(res.isError, undefined, textOf(res));
    assert.ok(textOf(res).includes(canned));
  });
});
