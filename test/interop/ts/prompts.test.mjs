// Prompts and argument completion (completion/complete) for prompt and
// resource-template references.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { T, connect, forEachTarget, listAll } from "./lib/harness.mjs";

forEachTarget("prompts", describe, it, (target) => {
  it("lists prompts with their arguments", T, async (t) => {
    const client = await connect(t, target);
    const { items } = await listAll((p) => client.listPrompts(p), "prompts");
    const byName = Object.fromEntries(items.map((p) => [p.name, p]));
    for (const n of ["simple-prompt", "args-prompt", "completable-prompt", "resource-prompt"]) {
      assert.ok(byName[n], `prompt ${n} missing from ${Object.keys(byName).join(", ")}`);
    }
    assert.deepEqual(
      byName["args-prompt"].arguments.map((a) => [a.name, a.required]),
      [
        ["city", true],
        ["state", false],
      ],
    );
    assert.equal(byName["completable-prompt"].title, "Team Management");
  });

  it("gets prompts with and without arguments", T, async (t) => {
    const client = await connect(t, target);
    const simple = await client.getPrompt({ name: "simple-prompt" });
    assert.deepEqual(simple.messages, [
      { role: "user", content: { type: "text", text: "This is a simple prompt without arguments." } },
    ]);

    const args = await client.getPrompt({ name: "args-prompt", arguments: { city: "Zürich", state: "ZH" } });
    assert.equal(args.messages[0].content.text, "What's weather in Zürich, ZH?");
    const cityOnly = await client.getPrompt({ name: "args-prompt", arguments: { city: "Lyon" } });
    assert.equal(cityOnly.messages[0].content.text, "What's weather in Lyon?");

    const team = await client.getPrompt({ name: "completable-prompt", arguments: { department: "Sales", name: "Eve" } });
    assert.equal(team.messages[0].content.text, "Please promote Eve to the head of the Sales team.");

    const embedded = await client.getPrompt({ name: "resource-prompt", arguments: { resourceType: "Text", resourceId: "5" } });
    assert.equal(embedded.messages.length, 2);
    assert.equal(embedded.messages[1].content.type, "resource");
    assert.equal(embedded.messages[1].content.resource.uri, "demo://resource/dynamic/text/5");
    assert.match(embedded.messages[1].content.resource.text, /^Resource 5:/);
  });

  it("returns an error for a missing required argument and an unknown prompt", T, async (t) => {
    const client = await connect(t, target);
    await assert.rejects(client.getPrompt({ name: "args-prompt", arguments: {} }), /city|Invalid/i);
    await assert.rejects(client.getPrompt({ name: "no-such-prompt" }), /no-such-prompt|not found/i);
  });

  it("completes prompt arguments, using context arguments", T, async (t) => {
    const client = await connect(t, target);
    const ref = { type: "ref/prompt", name: "completable-prompt" };
    const dept = await client.complete({ ref, argument: { name: "department", value: "Ma" } });
    assert.deepEqual(dept.completion.values, ["Marketing"]);

    const all = await client.complete({ ref, argument: { name: "department", value: "" } });
    assert.deepEqual(all.completion.values, ["Engineering", "Sales", "Marketing", "Support"]);

    const people = await client.complete({
      ref,
      argument: { name: "name", value: "" },
      context: { arguments: { department: "Support" } },
    });
    assert.deepEqual(people.completion.values, ["John", "Kim", "Lee"]);

    const type = await client.complete({
      ref: { type: "ref/prompt", name: "resource-prompt" },
      argument: { name: "resourceType", value: "B" },
    });
    assert.deepEqual(type.completion.values, ["Blob"]);
  });

  it("completes resource template arguments", T, async (t) => {
    const client = await connect(t, target);
    const res = await client.complete({
      ref: { type: "ref/resource", uri: "demo://resource/dynamic/text/{resourceId}" },
      argument: { name: "resourceId", value: "42" },
    });
    assert.deepEqual(res.completion.values, ["42"]);
    const none = await client.complete({
      ref: { type: "ref/resource", uri: "demo://resource/dynamic/blob/{resourceId}" },
      argument: { name: "resourceId", value: "abc" },
    });
    assert.deepEqual(none.completion.values, []);
  });
});
