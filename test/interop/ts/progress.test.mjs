// Progress notifications and cancellation of a long-running tool call.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { McpError } from "@modelcontextprotocol/sdk/types.js";

import { SDK_RECONNECT_NOISE, T, cancelLog, connect, forEachTarget, sleep, textOf, uniq, waitFor } from "./lib/harness.mjs";

const TOOL = "trigger-long-running-operation";

forEachTarget("progress", describe, it, (target) => {
  it("delivers progress notifications in order, then the result", T, async (t) => {
    const client = await connect(t, target);
    const progress = [];
    const res = await client.callTool({ name: TOOL, arguments: { duration: 1.2, steps: 4 } }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    assert.equal(textOf(res), "Long running operation completed. Duration: 1.2 seconds, Steps: 4.");
    assert.ok(progress.length >= 1, "at least one progress notification");
    // server-everything sends one per step; all of them must come through.
    assert.deepEqual(
      progress.map((p) => [p.progress, p.total]),
      [
        [1, 4],
        [2, 4],
        [3, 4],
        [4, 4],
      ],
    );
    assert.deepEqual(client.errors, [], "no stray messages");
  });

  it("keeps progress of two concurrent calls apart", T, async (t) => {
    const client = await connect(t, target);
    const a = [];
    const b = [];
    const [ra, rb] = await Promise.all([
      client.callTool({ name: TOOL, arguments: { duration: 0.9, steps: 3 } }, undefined, { onprogress: (p) => a.push(p) }),
      client.callTool({ name: TOOL, arguments: { duration: 1, steps: 2 } }, undefined, { onprogress: (p) => b.push(p) }),
    ]);
    assert.match(textOf(ra), /Steps: 3\./);
    assert.match(textOf(rb), /Steps: 2\./);
    assert.deepEqual(a.map((p) => p.progress), [1, 2, 3]);
    assert.deepEqual(b.map((p) => p.progress), [1, 2]);
    assert.ok(a.every((p) => p.total === 3) && b.every((p) => p.total === 2));
  });

  it("cancels a call on abort: the upstream is told, the session keeps working", { timeout: 45_000 }, async (t) => {
    const client = await connect(t, target);
    const reason = uniq("interop-cancel");
    const controller = new AbortController();
    const progress = [];
    let abortedAt = 0;
    let afterAbort = 0;
    const started = Date.now();
    // 6 steps of 0.5 s: the operation would end about 3 s after it started.
    const call = client.callTool({ name: TOOL, arguments: { duration: 3, steps: 6 } }, undefined, {
      signal: controller.signal,
      onprogress: (p) => {
        if (abortedAt) afterAbort++;
        progress.push(p);
        if (!abortedAt) {
          abortedAt = Date.now();
          controller.abort(new Error(reason));
        }
      },
    });
    await assert.rejects(call, (err) => {
      assert.ok(err instanceof McpError, `expected McpError, got ${err}`);
      assert.ok(err.message.includes(reason), `abort error carries the reason: ${err.message}`);
      return true;
    });
    assert.equal(progress.length, 1, "aborted after the first progress notification");
    assert.ok(abortedAt - started < 2500, "first progress came early");

    // The session keeps working while the upstream winds down.
    const msg = uniq("after-cancel");
    assert.equal(textOf(await client.callTool({ name: "echo", arguments: { message: msg } })), `Echo: ${msg}`);

    // The upstream received notifications/cancelled with the reason and an
    // id that matched the request it was handling (preload log).
    const log = cancelLog();
    if (log === null) {
      t.diagnostic("EVERYTHING_CANCEL_LOG not set: cannot check what the upstream received");
    } else {
      const entry = await waitFor(() => cancelLog().find((e) => String(e.reason).includes(reason)), {
        timeoutMs: 3000,
        what: "the upstream to log notifications/cancelled",
      });
      assert.equal(entry.matched, true, `upstream got the cancellation for an unknown request id: ${JSON.stringify(entry)}`);
    }

    // Wait until the upstream's operation would have finished, then check
    // that no response for the cancelled request reached the client (the
    // SDK reports one as "unknown message ID") and no progress was handled.
    await sleep(Math.max(0, started + 4000 - Date.now()));
    assert.equal(afterAbort, 0, "no progress delivered after the abort");
    const late = client.errors.map(String);
    const lateResponses = late.filter((e) => /unknown message ID/i.test(e));
    assert.deepEqual(lateResponses, [], "no response to the cancelled request");
    const lateProgress = late.filter((e) => /progress notification for an unknown token/i.test(e));
    // server-everything ignores the cancellation and keeps sending progress
    // for the operation; whoever passes those on is not wrong per the spec,
    // so this is reported, not asserted.
    t.diagnostic(`progress notifications for the cancelled token that reached the client: ${lateProgress.length}`);
    assert.deepEqual(
      late.filter((e) => !lateProgress.includes(e)),
      [],
      "no other client-side errors",
    );
    assert.equal(textOf(await client.callTool({ name: "echo", arguments: { message: "end" } })), "Echo: end");
  });

  it("cancels with the SDK request timeout, and the session keeps working", T, async (t) => {
    const client = await connect(t, target);
    const started = Date.now();
    await assert.rejects(
      client.callTool({ name: TOOL, arguments: { duration: 2, steps: 2 } }, undefined, { timeout: 300 }),
      (err) => err instanceof McpError && /timed out/i.test(err.message),
    );
    assert.ok(Date.now() - started < 1500, "rejected at the timeout");
    assert.equal(textOf(await client.callTool({ name: "echo", arguments: { message: "x" } })), "Echo: x");
  });

  // The gateway configurations set timeouts.tool_call to 5 s (see
  // configs/everything-*.yaml).
  it(
    "fails a call at the gateway's tool_call timeout, cancels it upstream, and passes none of its later progress to other sessions",
    {
      timeout: 45_000,
      skip: target.gateway ? false : "only the gateway has a tool_call timeout",
    },
    async (t) => {
      const client = await connect(t, target);
      const bystander = await connect(t, target); // another session, idle
      const progress = [];
      const started = Date.now();
      // 7 steps of 1 s, past the 5 s tool_call timeout.
      let error;
      await assert.rejects(
        client.callTool({ name: TOOL, arguments: { duration: 7, steps: 7 } }, undefined, {
          onprogress: (p) => progress.push(p),
          timeout: 20_000,
        }),
        (err) => {
          error = err;
          return true;
        },
      );
      const failedAfter = Date.now() - started;
      assert.ok(failedAfter >= 4500 && failedAfter < 6500, `failed after ${failedAfter} ms: ${error}`);
      assert.ok(progress.length >= 3, `progress before the timeout: ${progress.length}`);
      await sleep(Math.max(0, started + 7800 - Date.now()));

      const problems = [];
      if (!(error instanceof McpError) || !/did not answer tools\/call within 5s/.test(error.message)) {
        problems.push(`not the gateway's timeout error: ${error}`);
      }
      const log = cancelLog();
      if (log !== null && !log.some((e) => e.time >= started && /gateway timeout/.test(String(e.reason)))) {
        problems.push("the upstream received no notifications/cancelled for the timed-out call");
      }
      for (const e of bystander.errors.map(String)) problems.push(`message at an unrelated session: ${e}`);
      for (const e of client.errors.map(String)) {
        if (/progress notification for an unknown token/i.test(e) || SDK_RECONNECT_NOISE.test(e)) continue;
        problems.push(`stray message at the calling session: ${e}`);
      }
      assert.deepEqual(problems, []);
    },
  );

  // This test waits well past the gateway's 5 s tool_call timeout. Keep it
  // last in this file: its wait also outlasts what earlier tests left
  // running on a shared upstream.
  it(
    "sends nothing more for a cancelled call, even past the gateway's tool_call timeout",
    { timeout: 45_000 },
    async (t) => {
      const client = await connect(t, target);
      const bystander = await connect(t, target); // another session, idle
      const reason = uniq("interop-cancel-late");
      const controller = new AbortController();
      const started = Date.now();
      // 7 steps of 1 s: the upstream keeps going (server-everything ignores
      // cancellation) past the gateway's 5 s tool_call timeout.
      const call = client.callTool({ name: TOOL, arguments: { duration: 7, steps: 7 } }, undefined, {
        signal: controller.signal,
        onprogress: () => controller.abort(new Error(reason)),
      });
      await assert.rejects(call, (err) => err instanceof McpError && err.message.includes(reason));
      await sleep(Math.max(0, started + 7800 - Date.now()));

      const problems = [];
      const strs = (c) => c.errors.map(String);
      for (const e of strs(client).filter((e) => /unknown message ID/i.test(e))) {
        problems.push(`response to the cancelled request: ${e}`);
      }
      for (const e of strs(bystander)) problems.push(`message at an unrelated session: ${e}`);
      const log = cancelLog();
      if (log !== null) {
        const first = log.find((e) => String(e.reason).includes(reason));
        if (!first) {
          problems.push("the upstream never received notifications/cancelled");
        } else {
          for (const e of log) {
            if (e !== first && e.pid === first.pid && e.requestId === first.requestId && e.time >= first.time && e.time <= Date.now()) {
              problems.push(`another notifications/cancelled for the same upstream request: ${JSON.stringify(e)}`);
            }
          }
        }
      }
      assert.deepEqual(problems, []);
      assert.equal(textOf(await client.callTool({ name: "echo", arguments: { message: "after" } })), "Echo: after");
    },
  );
});
