// Resources: paginated listing, reads, templates, subscriptions.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

import { T, connect, forEachTarget, listAll, sleep, toggleTo, waitFor } from "./lib/harness.mjs";

// server-everything exposes each file of its docs/ folder.
const DOCS = ["architecture.md", "extension.md", "features.md", "how-it-works.md", "instructions.md", "startup.md", "structure.md"];
const docURI = (f) => `demo://resource/static/document/${f}`;
const TEXT_TEMPLATE = "demo://resource/dynamic/text/{resourceId}";
const BLOB_TEMPLATE = "demo://resource/dynamic/blob/{resourceId}";
const randomId = () => String(100000 + Math.floor(Math.random() * 899999));

forEachTarget("resources", describe, it, (target) => {
  it("lists every resource, following nextCursor", T, async (t) => {
    const client = await connect(t, target);
    const { items, pages } = await listAll((p) => client.listResources(p), "resources");
    t.diagnostic(`${items.length} resources in ${pages} page(s)`);
    const uris = items.map((r) => r.uri);
    assert.equal(new Set(uris).size, uris.length, "no resource listed twice");
    for (const f of DOCS) assert.ok(uris.includes(docURI(f)), `${docURI(f)} missing from ${uris.join(", ")}`);
    const md = items.find((r) => r.uri === docURI("features.md"));
    assert.equal(md.mimeType, "text/markdown");
    assert.equal(md.name, "features.md");
  });

  it("reads a static resource", T, async (t) => {
    const client = await connect(t, target);
    const res = await client.readResource({ uri: docURI("instructions.md") });
    assert.equal(res.contents.length, 1);
    const [c] = res.contents;
    assert.equal(c.uri, docURI("instructions.md"));
    assert.equal(c.mimeType, "text/markdown");
    assert.match(c.text, /^# Everything Server/);
  });

  it("lists resource templates and reads through them", T, async (t) => {
    const client = await connect(t, target);
    const { items } = await listAll((p) => client.listResourceTemplates(p), "resourceTemplates");
    const templates = items.map((x) => x.uriTemplate);
    assert.ok(templates.includes(TEXT_TEMPLATE), templates.join(", "));
    assert.ok(templates.includes(BLOB_TEMPLATE), templates.join(", "));

    const id = randomId();
    const text = await client.readResource({ uri: `demo://resource/dynamic/text/${id}` });
    assert.equal(text.contents[0].uri, `demo://resource/dynamic/text/${id}`);
    assert.match(text.contents[0].text, new RegExp(`^Resource ${id}: This is a plaintext resource`));

    const blob = await client.readResource({ uri: `demo://resource/dynamic/blob/${id}` });
    assert.match(Buffer.from(blob.contents[0].blob, "base64").toString(), new RegExp(`^Resource ${id}: This is a base64 blob`));
  });

  it("returns an error for an unknown resource", T, async (t) => {
    const client = await connect(t, target);
    await assert.rejects(client.readResource({ uri: "demo://resource/dynamic/text/not-a-number" }), /Unknown resource|not found/i);
    await assert.rejects(client.readResource({ uri: "demo://no/such/resource" }), /not found|Unknown resource/i);
  });

  it("subscribes: resources/updated arrives, and stops after unsubscribe", { timeout: 40_000 }, async (t) => {
    const updates = [];
    const client = await connect(t, target, {
      setup: (c) => c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updates.push(n.params.uri)),
    });
    const uri = `demo://resource/dynamic/text/${randomId()}`;
    assert.deepEqual(await client.subscribeResource({ uri }), {});
    t.after(() => toggleTo(client, "toggle-subscriber-updates", "Stopped").catch(() => {}));
    // Starting the simulated updates sends one resources/updated per
    // subscribed URI at once, then every 5 s.
    await toggleTo(client, "toggle-subscriber-updates", "Started");
    await waitFor(() => updates.includes(uri), { timeoutMs: 7000, what: `resources/updated for ${uri}` });

    assert.deepEqual(await client.unsubscribeResource({ uri }), {});
    updates.length = 0;
    await toggleTo(client, "toggle-subscriber-updates", "Stopped");
    await toggleTo(client, "toggle-subscriber-updates", "Started"); // sends at once again
    await sleep(1000);
    assert.ok(!updates.includes(uri), `update after unsubscribe: ${updates.join(", ")}`);
  });
});
