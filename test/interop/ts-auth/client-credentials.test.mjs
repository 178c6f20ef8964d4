// Agents: the client_credentials grant with the TypeScript SDK's own
// provider (ClientCredentialsProvider from @modelcontextprotocol/sdk
// 1.32.2 client/auth-extensions: client_secret_basic, the SDK discovers the
// token endpoint from the 401 and the metadata by itself), an agent created
// with `gatehouse agent create`, then revocation and audience checks
// through the SDK client.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ClientCredentialsProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { InvalidClientError } from "@modelcontextprotocol/sdk/server/auth/errors.js";

import {
  ISSUER,
  T,
  bearerOptions,
  clientCredentialsToken,
  connectClient,
  createAgent,
  decodeJwt,
  gatehouse,
  rawInitialize,
  recordingFetch,
  resourceOf,
  serverUrl,
  textOf,
} from "./lib.mjs";

const provider = (agent) =>
  new ClientCredentialsProvider({
    clientId: agent.clientId,
    clientSecret: agent.clientSecret,
    clientName: agent.name,
    expectedIssuer: ISSUER,
  });

const seen = (requests, method, path, status) =>
  requests.some((r) => r.method === method && r.path === path && (status === undefined || r.status === status));

describe("client credentials (TypeScript SDK ClientCredentialsProvider)", () => {
  it("an agent created with the CLI gets a token and calls a tool", T, async (t) => {
    const agent = await createAgent("sdk-cc");
    const p = provider(agent);
    const requests = [];
    const client = await connectClient(t, "support", { authProvider: p, fetch: recordingFetch(requests) });
    const trail = requests.map((r) => `${r.method} ${r.path} ${r.status}`).join("\n");
    assert.ok(seen(requests, "POST", "/mcp/support", 401), trail);
    assert.ok(seen(requests, "GET", "/.well-known/oauth-protected-resource/mcp/support", 200), trail);
    assert.ok(seen(requests, "GET", "/.well-known/oauth-authorization-server", 200), trail);
    assert.ok(seen(requests, "POST", "/oauth/token", 200), trail);
    assert.ok(!seen(requests, "POST", "/oauth/register"), "an agent does not register");

    const { payload } = decodeJwt(p.tokens().access_token);
    assert.equal(payload.iss, ISSUER);
    assert.deepEqual([payload.aud].flat(), [resourceOf("support")]);
    assert.match(payload.scope, /\bmcp:support\b/);
    assert.equal(payload.act, undefined, "no human in the chain");

    const res = await client.callTool({ name: "tickets_list_tickets", arguments: { queue: "billing" } });
    assert.notEqual(res.isError, true, textOf(res));
    assert.match(textOf(res), /ticket\(s\) in queue billing/);
    const { tools } = await client.listTools();
    assert.ok(tools.some((x) => x.name === "crm_get_invoice"));
  });

  it("a revoked agent's live token stops working at once (401 with a description)", T, async (t) => {
    const agent = await createAgent("sdk-revoke");
    const p = provider(agent);
    const viaProvider = await connectClient(t, "support", { authProvider: p });
    await viaProvider.callTool({ name: "crm_search_customers", arguments: { query: "acme" } });
    const token = p.tokens().access_token;
    // A second client that holds the token itself (no provider to hide a 401).
    const viaHeader = await connectClient(t, "support", bearerOptions(token));
    await viaHeader.callTool({ name: "crm_search_customers", arguments: { query: "acme" } });

    await gatehouse("agent", "revoke", agent.name, "--yes");
    const t0 = Date.now();

    // The unexpired token is refused on the very next call.
    await assert.rejects(viaHeader.callTool({ name: "crm_search_customers", arguments: { query: "acme" } }), (err) => {
      assert.equal(err.code, 401, String(err));
      assert.match(err.message, /invalid_token/);
      assert.match(err.message, /revoked/i);
      t.diagnostic(`bearer client: ${err.message}`);
      return true;
    });
    const raw = await rawInitialize("support", token);
    assert.equal(raw.status, 401);
    assert.match(raw.challenge, /error="invalid_token", error_description="[^"]*revoked/i);
    t.diagnostic(`WWW-Authenticate: ${raw.challenge}`);

    // The provider client gets the 401, tries for a new token, and the
    // token endpoint refuses the revoked agent.
    await assert.rejects(viaProvider.callTool({ name: "crm_search_customers", arguments: { query: "acme" } }), (err) => {
      assert.ok(err instanceof InvalidClientError, `${err?.constructor?.name}: ${err}`);
      t.diagnostic(`provider client: ${err.constructor.name}: ${err.message}`);
      return true;
    });
    t.diagnostic(`refused ${Date.now() - t0} ms after the revoke command returned`);
  });

  it("a token for one server is refused by another (audience), with the description", T, async (t) => {
    const agent = await createAgent("sdk-aud");
    // The agent's team may use both servers; the token is for support only.
    const { access_token: token } = await clientCredentialsToken(agent, resourceOf("support"));
    const ok = await connectClient(t, "support", bearerOptions(token));
    await ok.callTool({ name: "crm_search_customers", arguments: { query: "acme" } });

    await assert.rejects(connectClient(t, "crm", bearerOptions(token)), (err) => {
      assert.equal(err.code, 401, String(err));
      assert.match(err.message, /invalid_token/);
      assert.match(err.message, /audience|aud/i);
      t.diagnostic(`SDK error: ${err.message}`);
      return true;
    });
    const raw = await rawInitialize("crm", token);
    assert.equal(raw.status, 401);
    assert.match(raw.challenge, /resource_metadata="[^"]*\/mcp\/crm"/);
    assert.match(raw.challenge, /error="invalid_token", error_description="[^"]*(audience|aud)/i);
    t.diagnostic(`WWW-Authenticate: ${raw.challenge}`);

    // With a provider, the SDK recovers by itself: it gets a token for crm.
    const p = provider(agent);
    const crm = await connectClient(t, "crm", { authProvider: p });
    const res = await crm.callTool({ name: "search_customers", arguments: { query: "acme" } });
    assert.match(textOf(res), /CUST-1001/);
    assert.deepEqual([decodeJwt(p.tokens().access_token).payload.aud].flat(), [resourceOf("crm")]);
  });

  it("a disabled agent is refused until it is enabled again", T, async (t) => {
    const agent = await createAgent("sdk-disable");
    const { access_token: token } = await clientCredentialsToken(agent, resourceOf("support"));
    const client = await connectClient(t, "support", bearerOptions(token));
    await client.callTool({ name: "crm_search_customers", arguments: { query: "acme" } });

    await gatehouse("agent", "disable", agent.name);
    await assert.rejects(client.callTool({ name: "crm_search_customers", arguments: { query: "acme" } }), (err) => {
      assert.equal(err.code, 401, String(err));
      assert.match(err.message, /invalid_token: [^"]*disabled/);
      t.diagnostic(`disabled: ${err.message}`);
      return true;
    });
    await gatehouse("agent", "enable", agent.name);
    const res = await client.callTool({ name: "crm_search_customers", arguments: { query: "acme" } });
    assert.match(textOf(res), /CUST-1001/, "the same token works again once enabled");
  });

  it("a session belongs to the identity that opened it (another agent gets 404)", T, async (t) => {
    const [a, b] = [await createAgent("sdk-owner"), await createAgent("sdk-other")];
    const tokA = (await clientCredentialsToken(a, resourceOf("support"))).access_token;
    const tokB = (await clientCredentialsToken(b, resourceOf("support"))).access_token;
    const owner = await connectClient(t, "support", bearerOptions(tokA));
    const sessionId = owner.transport.sessionId;
    assert.ok(sessionId, "the gateway gave the session an id");

    // The SDK resumes a session when given its id (no initialize).
    const resume = async (token) => {
      const transport = new StreamableHTTPClientTransport(serverUrl("support"), { sessionId, ...bearerOptions(token) });
      const client = new Client({ name: "gatehouse-auth-interop", version: "1.0.0" });
      await client.connect(transport);
      t.after(() => transport.close().catch(() => {}));
      return client;
    };
    const thief = await resume(tokB);
    await assert.rejects(thief.listTools(), (err) => {
      assert.equal(err.code, 404, String(err));
      t.diagnostic(`other identity: ${err.message}`);
      return true;
    });
    const again = await resume(tokA);
    const { tools } = await again.listTools();
    assert.ok(tools.length > 0, "the owner resumes its own session");
  });
});
