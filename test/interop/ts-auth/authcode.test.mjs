// The MCP authorization flow for a person, driven by the official TypeScript
// SDK's OAuth client (@modelcontextprotocol/sdk 1.32.2, StreamableHTTP
// client transport with an OAuthClientProvider) with no manual step:
// connect -> 401 with resource_metadata -> RFC 9728 protected resource
// metadata -> RFC 8414 authorization server metadata -> dynamic client
// registration (RFC 7591) or a client ID metadata document -> authorization
// code + PKCE (S256) with the resource indicator -> the gateway's login page
// (browser.mjs signs in) -> token -> reconnect -> tools/list and tools/call.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { UnauthorizedError, auth, isHttpsUrl } from "@modelcontextprotocol/sdk/client/auth.js";
import { InvalidClientMetadataError } from "@modelcontextprotocol/sdk/server/auth/errors.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

import {
  BrowserLoginProvider,
  ISSUER,
  T,
  bearerOptions,
  connectClient,
  decodeJwt,
  env,
  rawInitialize,
  recordingFetch,
  resourceOf,
  serveMetadataDocument,
  serverUrl,
  startCallbackServer,
  textOf,
} from "./lib.mjs";

const user = () => ({ username: env("AUTH_USERNAME"), password: env("AUTH_PASSWORD") });

// authorize runs the SDK's flow up to the token: the first connect fails
// with UnauthorizedError after redirectToAuthorization (our browser has
// signed in by then), finishAuth exchanges the code.
async function authorize(t, provider, requests, server = "support") {
  const transport = new StreamableHTTPClientTransport(serverUrl(server), {
    authProvider: provider,
    fetch: recordingFetch(requests),
  });
  const client = new Client({ name: "gatehouse-auth-interop", version: "1.0.0" });
  await assert.rejects(client.connect(transport), UnauthorizedError, "the first connect needs authorization");
  assert.equal(provider.authorizationUrls.length, 1, "one authorization request");
  assert.ok(provider.pending, "the browser step produced a code");
  await transport.finishAuth(provider.pending);
  await transport.close().catch(() => {});
  assert.ok(provider.tokens()?.access_token, "finishAuth saved the tokens");
}

// seen reports whether the SDK requested METHOD PATH (status optional).
const seen = (requests, method, path, status) =>
  requests.some((r) => r.method === method && r.path === path && (status === undefined || r.status === status));

describe("authorization code + PKCE (TypeScript SDK OAuth client)", () => {
  it("discovers, registers dynamically, signs in and calls tools", T, async (t) => {
    const cb = await startCallbackServer(t);
    const provider = new BrowserLoginProvider({ redirectUrl: cb.redirectUrl, callback: cb, ...user(), clientName: "sdk-dcr" });
    const requests = [];
    await authorize(t, provider, requests);

    // What the SDK did, in order, against the gateway.
    const trail = requests.map((r) => `${r.method} ${r.path} ${r.status}`).join("\n");
    assert.ok(seen(requests, "POST", "/mcp/support", 401), `401 first:\n${trail}`);
    assert.ok(seen(requests, "GET", "/.well-known/oauth-protected-resource/mcp/support", 200), `RFC 9728:\n${trail}`);
    assert.ok(seen(requests, "GET", "/.well-known/oauth-authorization-server", 200), `RFC 8414:\n${trail}`);
    assert.ok(seen(requests, "POST", "/oauth/register", 201), `DCR:\n${trail}`);
    assert.ok(seen(requests, "POST", "/oauth/token", 200), `token:\n${trail}`);

    // The authorization request the SDK built.
    const a = provider.authorizationUrls[0];
    assert.equal(`${a.origin}${a.pathname}`, `${ISSUER}/oauth/authorize`);
    assert.equal(a.searchParams.get("code_challenge_method"), "S256");
    assert.ok(a.searchParams.get("code_challenge"));
    assert.equal(a.searchParams.get("resource"), resourceOf("support"), "RFC 8707 resource indicator");
    assert.equal(a.searchParams.get("scope"), "mcp:support", "scope from the resource metadata");
    assert.match(provider.clientInformation().client_id, /^ghc_/, "a dynamically registered client id");

    // The token: audience-bound JWT for the person.
    const tok = provider.tokens();
    assert.equal(tok.token_type.toLowerCase(), "bearer");
    assert.ok(tok.refresh_token, "a refresh token is issued");
    const { header, payload } = decodeJwt(tok.access_token);
    assert.ok(["ES256", "EdDSA"].includes(header.alg), `alg ${header.alg}`);
    assert.ok(header.kid, "kid");
    assert.equal(payload.iss, ISSUER);
    assert.deepEqual([payload.aud].flat(), [resourceOf("support")]);
    assert.match(payload.scope, /\bmcp:support\b/);
    const ttl = payload.exp - payload.iat;
    assert.ok(ttl >= 60 && ttl <= 3600, `lifetime ${ttl}s`);

    // Reconnect with the tokens: tools/list and tools/call go through.
    const client = await connectClient(t, "support", { authProvider: provider });
    const { tools } = await client.listTools();
    const names = tools.map((x) => x.name);
    assert.ok(names.includes("crm_search_customers"), names.join(", "));
    assert.ok(names.includes("tickets_list_tickets"), names.join(", "));
    const res = await client.callTool({ name: "crm_search_customers", arguments: { query: "acme" } });
    assert.notEqual(res.isError, true, textOf(res));
    assert.match(textOf(res), /CUST-1001/);
    assert.equal(provider.authorizationUrls.length, 1, "no second sign-in");
  });

  it("refreshes an expired access token without a new sign-in", T, async (t) => {
    const cb = await startCallbackServer(t);
    const provider = new BrowserLoginProvider({ redirectUrl: cb.redirectUrl, callback: cb, ...user(), clientName: "sdk-refresh" });
    await authorize(t, provider, []);
    const first = provider.tokens();
    // The access token is gone (as if expired and rejected): the SDK gets
    // a 401, uses the refresh token, and retries.
    provider._tokens = { ...first, access_token: "expired" };
    const requests = [];
    const client = await connectClient(t, "support", { authProvider: provider, fetch: recordingFetch(requests) });
    const res = await client.callTool({ name: "tickets_list_tickets", arguments: { queue: "billing" } });
    assert.match(textOf(res), /ticket\(s\) in queue billing/);
    assert.equal(provider.authorizationUrls.length, 1, "no second sign-in");
    assert.ok(seen(requests, "POST", "/oauth/token", 200), "refreshed at the token endpoint");
    const second = provider.tokens();
    assert.notEqual(second.access_token, first.access_token);
    assert.ok(second.refresh_token && second.refresh_token !== first.refresh_token, "the refresh token is rotated");

    // The used refresh token no longer works (rotation, RFC 9700 §4.14).
    const reuse = await fetch(`${ISSUER}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: first.refresh_token,
        client_id: provider.clientInformation().client_id,
        resource: resourceOf("support"),
      }),
    });
    const body = await reuse.json();
    assert.equal(reuse.status, 400, JSON.stringify(body));
    assert.equal(body.error, "invalid_grant", JSON.stringify(body));
  });

  it("a person's token for one server is refused by another (audience)", T, async (t) => {
    const cb = await startCallbackServer(t);
    const provider = new BrowserLoginProvider({ redirectUrl: cb.redirectUrl, callback: cb, ...user(), clientName: "sdk-aud" });
    await authorize(t, provider, [], "support");
    const token = provider.tokens().access_token;
    // The same person may use crm, but not with a token for support.
    await assert.rejects(connectClient(t, "crm", bearerOptions(token)), (err) => {
      assert.equal(err.code, 401, String(err));
      assert.match(err.message, /invalid_token/);
      assert.match(err.message, /audience|aud/i);
      return true;
    });
    const raw = await rawInitialize("crm", token);
    assert.equal(raw.status, 401);
    assert.match(raw.challenge, /error="invalid_token"/);
    assert.match(raw.challenge, /error_description="[^"]*(audience|aud)/i);
    t.diagnostic(`WWW-Authenticate: ${raw.challenge}`);
  });
});

describe("client ID metadata document (TypeScript SDK clientMetadataUrl)", () => {
  it("signs in with an https URL as client_id, no registration", T, async (t) => {
    const cb = await startCallbackServer(t);
    const doc = await serveMetadataDocument(t, (url) => ({
      client_id: url,
      client_name: "sdk-cimd",
      redirect_uris: [cb.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }));
    const provider = new BrowserLoginProvider({
      redirectUrl: cb.redirectUrl,
      callback: cb,
      ...user(),
      clientName: "sdk-cimd",
      clientMetadataUrl: doc.url,
    });
    const requests = [];
    await authorize(t, provider, requests);
    assert.ok(!seen(requests, "POST", "/oauth/register"), "no dynamic registration");
    assert.equal(provider.clientInformation().client_id, doc.url, "the document URL is the client_id");
    assert.equal(provider.authorizationUrls[0].searchParams.get("client_id"), doc.url);
    assert.ok(doc.hits.includes("GET /client.json"), `the gateway fetched the document: ${doc.hits}`);

    const client = await connectClient(t, "support", { authProvider: provider });
    const res = await client.callTool({ name: "crm_search_customers", arguments: { query: "acme" } });
    assert.match(textOf(res), /CUST-1001/);
  });

  it("SDK 1.32.2 accepts only https metadata URLs (http://127.0.0.1 is refused client-side)", T, async (t) => {
    assert.equal(isHttpsUrl("http://127.0.0.1:9/client.json"), false);
    const cb = await startCallbackServer(t);
    const provider = new BrowserLoginProvider({
      redirectUrl: cb.redirectUrl,
      callback: cb,
      ...user(),
      clientMetadataUrl: "http://127.0.0.1:9/client.json",
    });
    await assert.rejects(auth(provider, { serverUrl: serverUrl("support") }), InvalidClientMetadataError);
    assert.equal(provider.authorizationUrls.length, 0);
  });
});
