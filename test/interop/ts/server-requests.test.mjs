// Server→client requests relayed through the gateway: sampling
// (sampling/createMessage) and form elicitation (elicitation/create),
// answered by the SDK Client's request handlers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { CreateMessageRequestSchema, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

import { T, connect, forEachTarget, textOf, uniq, waitForTool } from "./lib/harness.mjs";

forEachTarget("server-requests", describe, it, (target) => {
  it("relays sampling/createMessage to the client and its result to the tool", T, async (t) => {
    const canned = uniq("canned-completion");
    const requests = [];
    const client = await connect(t, target, {
      capabilities: { sampling: {} },
      setup: (c) =>
        c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
          requests.push(req.params);
          return {
            role: "assistant",
            content: { type: "text", text: canned },
            model: "gatehouse-interop-canned-model",
            stopReason: "endTurn",
          };
        }),
    });
    await waitForTool(client, "trigger-sampling-request");

    const prompt = uniq("prompt");
    const res = await client.callTool({
      name: "trigger-sampling-request",
      arguments: { prompt, maxTokens: 77 },
    });
    assert.equal(res.isError, undefined, textOf(res));

    // What the client was asked.
    assert.equal(requests.length, 1, "one sampling request");
    const p = requests[0];
    assert.equal(p.maxTokens, 77);
    assert.equal(p.systemPrompt, "You are a helpful test server.");
    assert.equal(p.messages.length, 1);
    assert.equal(p.messages[0].role, "user");
    assert.match(p.messages[0].content.text, new RegExp(prompt));

    // What the tool got back from the client.
    const text = textOf(res);
    assert.match(text, /^LLM sampling result:/);
    const json = JSON.parse(text.slice(text.indexOf("{")));
    assert.equal(json.model, "gatehouse-interop-canned-model");
    assert.equal(json.role, "assistant");
    assert.equal(json.stopReason, "endTurn");
    assert.deepEqual(json.content, { type: "text", text: canned });
  });

  it("returns a sampling error from the client to the tool", T, async (t) => {
    const client = await connect(t, target, {
      capabilities: { sampling: {} },
      setup: (c) =>
        c.setRequestHandler(CreateMessageRequestSchema, async () => {
          throw new Error("user rejected sampling");
        }),
    });
    await waitForTool(client, "trigger-sampling-request");
    let outcome;
    try {
      outcome = await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "x" } });
    } catch (err) {
      outcome = err;
    }
    // server-everything lets the error escape the tool: McpServer turns it
    // into an isError result carrying the client's message.
    const text = outcome instanceof Error ? outcome.message : textOf(outcome);
    if (!(outcome instanceof Error)) assert.equal(outcome.isError, true, text);
    assert.match(text, /user rejected sampling/);
    // The session still works.
    assert.equal(textOf(await client.callTool({ name: "echo", arguments: { message: "ok" } })), "Echo: ok");
  });

  it("relays elicitation/create (form) and the accepted content", T, async (t) => {
    const requests = [];
    const name = `Ada ${uniq("Lovelace")}`;
    const client = await connect(t, target, {
      capabilities: { elicitation: {} },
      setup: (c) =>
        c.setRequestHandler(ElicitRequestSchema, async (req) => {
          requests.push(req.params);
          return {
            action: "accept",
            content: {
              name,
              check: true,
              email: "ada@example.com",
              homepage: "https://example.com/ada",
              birthdate: "1815-12-10",
              integer: 7,
              number: 2.5,
              untitledSingleSelectEnum: "Joey",
              untitledMultipleSelectEnum: ["Piano", "Violin"],
              titledSingleSelectEnum: "hero-3",
              titledMultipleSelectEnum: ["fish-2"],
              legacyTitledEnum: "pet-2",
            },
          };
        }),
    });
    await waitForTool(client, "trigger-elicitation-request");

    const res = await client.callTool({ name: "trigger-elicitation-request", arguments: {} });
    assert.equal(res.isError, undefined, textOf(res));
    assert.equal(requests.length, 1, "one elicitation request");
    const p = requests[0];
    assert.equal(p.message, "Please provide inputs for the following fields:");
    assert.equal(p.requestedSchema.type, "object");
    assert.deepEqual(p.requestedSchema.required, ["name"]);
    assert.equal(p.requestedSchema.properties.email.format, "email");

    const text = textOf(res);
    assert.match(text, /User provided the requested information/);
    assert.ok(text.includes(`- Name: ${name}`), text);
    assert.match(text, /- Agreed to terms: true/);
    assert.match(text, /- Email: ada@example\.com/);
    assert.match(text, /- Favorite Integer: 7/);
    assert.match(text, /- Favorite Number: 2\.5/);
    const raw = JSON.parse(text.slice(text.indexOf("Raw result:") + "Raw result:".length));
    assert.equal(raw.action, "accept");
    assert.deepEqual(raw.content.untitledMultipleSelectEnum, ["Piano", "Violin"]);
  });

  it("relays a declined elicitation", T, async (t) => {
    const client = await connect(t, target, {
      capabilities: { elicitation: {} },
      setup: (c) => c.setRequestHandler(ElicitRequestSchema, async () => ({ action: "decline" })),
    });
    await waitForTool(client, "trigger-elicitation-request");
    const res = await client.callTool({ name: "trigger-elicitation-request", arguments: {} });
    assert.match(textOf(res), /User declined to provide the requested information/);
  });
});
