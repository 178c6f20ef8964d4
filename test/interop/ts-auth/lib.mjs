// Shared helpers of the identity interop tests (run by test/interop/run-auth.sh).
//
// Environment:
//   ISSUER                  the gateway's issuer, http://127.0.0.1:PORT
//   GATEHOUSE_BIN           the gatehouse binary (management commands)
//   GATEHOUSE_ADMIN_URL     its admin API base URL (= ISSUER)
//   GATEHOUSE_ADMIN_TOKEN   the admin token
//   AUTH_USERNAME, AUTH_PASSWORD  a local user in a group granted the servers
//   AUTH_TEAM               a team granted the servers
//   CIMD_CERT, CIMD_KEY     a certificate for 127.0.0.1 the gateway trusts
//                           (SSL_CERT_FILE), for the metadata document server
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

import { login } from "./browser.mjs";

export function env(name) {
  const v = process.env[name];
  assert.ok(v, `${name} must be set (run test/interop/run-auth.sh)`);
  return v;
}

export const ISSUER = env("ISSUER");
export const serverUrl = (name) => new URL(`${ISSUER}/mcp/${name}`);
export const resourceOf = (name) => `${ISSUER}/mcp/${name}`;
export const T = { timeout: 60_000 };

export const uniq = () => randomBytes(4).toString("hex");

// gatehouse runs a management command against the gateway's admin API.
export async function gatehouse(...args) {
  const { stdout } = await promisify(execFile)(env("GATEHOUSE_BIN"), args, {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      GATEHOUSE_ADMIN_URL: env("GATEHOUSE_ADMIN_URL"),
      GATEHOUSE_ADMIN_TOKEN: env("GATEHOUSE_ADMIN_TOKEN"),
    },
    timeout: 30_000,
  });
  return stdout;
}

// createAgent registers an agent with `gatehouse agent create` and returns
// its name, client id and secret.
export async function createAgent(prefix) {
  const name = `${prefix}-${uniq()}`;
  const out = JSON.parse(
    await gatehouse("agent", "create", name, "--team", env("AUTH_TEAM"), "--owner", "interop@example.com", "--json"),
  );
  assert.ok(out.client_id && out.client_secret, `agent create printed no credentials: ${JSON.stringify(out)}`);
  return { name, clientId: out.client_id, clientSecret: out.client_secret };
}

// recordingFetch wraps fetch and records "METHOD path -> status" of each
// request, so a test can show which endpoints the SDK discovered and used.
export function recordingFetch(log) {
  return async (input, init) => {
    const res = await fetch(input, init);
    const u = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
    log.push({ method: (init?.method ?? "GET").toUpperCase(), path: u.pathname, status: res.status });
    return res;
  };
}

// connectClient connects an SDK Client to a virtual server with the given
// transport options; the test's cleanup closes it.
export async function connectClient(t, name, opts) {
  const transport = new StreamableHTTPClientTransport(serverUrl(name), opts);
  const client = new Client({ name: "gatehouse-auth-interop", version: "1.0.0" });
  await client.connect(transport);
  t.after(() => client.close().catch(() => {}));
  return client;
}

export const textOf = (res) => res.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");

// bearerClient connects with a fixed Authorization header and no provider:
// what a client holding a token it got elsewhere does.
export function bearerOptions(token) {
  return { requestInit: { headers: { Authorization: `Bearer ${token}` } } };
}

// clientCredentialsToken asks the token endpoint directly (client_secret_basic).
export async function clientCredentialsToken({ clientId, clientSecret }, resource) {
  const res = await fetch(`${ISSUER}/oauth/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`,
    },
    body: new URLSearchParams({ grant_type: "client_credentials", resource }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, `token endpoint: ${JSON.stringify(body)}`);
  return body;
}

// rawPost sends one JSON-RPC initialize with a bearer token and returns the
// status and WWW-Authenticate challenge (for the negative checks' details).
export async function rawInitialize(server, token) {
  const res = await fetch(serverUrl(server), {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
    }),
  });
  await res.text();
  return { status: res.status, challenge: res.headers.get("www-authenticate") ?? "" };
}

// decodeJwt returns a JWT's header and payload without verifying it.
export function decodeJwt(jwt) {
  const [h, p] = jwt.split(".");
  const dec = (s) => JSON.parse(Buffer.from(s, "base64url").toString("utf8"));
  return { header: dec(h), payload: dec(p) };
}

// startCallbackServer listens on 127.0.0.1 (a free port) for the
// authorization response, like a native MCP client's loopback redirect.
export async function startCallbackServer(t) {
  let deliver;
  const received = [];
  let next = new Promise((r) => (deliver = r));
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, "http://127.0.0.1");
    if (u.pathname !== "/callback") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain" }).end("Signed in. You can close this page.");
    received.push(u);
    const d = deliver;
    next = new Promise((r) => (deliver = r));
    d(u);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => new Promise((r) => server.close(r)));
  const port = server.address().port;
  return { port, redirectUrl: `http://127.0.0.1:${port}/callback`, received, next: () => next };
}

// serveMetadataDocument serves a client ID metadata document over https on
// 127.0.0.1 with the certificate the gateway was told to trust; it returns
// the document's URL (the client_id) and a counter of fetches.
export async function serveMetadataDocument(t, makeDoc) {
  const hits = [];
  let url;
  const server = https.createServer(
    { cert: readFileSync(env("CIMD_CERT")), key: readFileSync(env("CIMD_KEY")) },
    (req, res) => {
      hits.push(`${req.method} ${req.url}`);
      if (req.url !== "/client.json") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=60" });
      res.end(JSON.stringify(makeDoc(url)));
    },
  );
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => new Promise((r) => server.close(r)));
  url = `https://127.0.0.1:${server.address().port}/client.json`;
  return { url, hits };
}

// BrowserLoginProvider implements the SDK's OAuthClientProvider for a
// native client with a loopback redirect URI; its redirectToAuthorization
// is the person at the browser: it opens the URL, signs in on the
// gateway's page and opens the redirect, which reaches the callback server.
export class BrowserLoginProvider {
  constructor({ redirectUrl, callback, username, password, clientName = "gatehouse-auth-interop", clientMetadataUrl }) {
    this._redirectUrl = redirectUrl;
    this.callback = callback;
    this.username = username;
    this.password = password;
    this.clientName = clientName;
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this._state = undefined;
    this.authorizationUrls = [];
    this.savedTokens = [];
    this.savedClients = [];
    this.pending = null; // promise of the code of the last authorization
  }
  get redirectUrl() {
    return this._redirectUrl;
  }
  get clientMetadata() {
    return {
      client_name: this.clientName,
      redirect_uris: [this._redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    this._state = randomBytes(16).toString("base64url");
    return this._state;
  }
  clientInformation() {
    return this._clientInformation;
  }
  saveClientInformation(info) {
    this.savedClients.push(info);
    this._clientInformation = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this.savedTokens.push(tokens);
    this._tokens = tokens;
  }
  saveCodeVerifier(v) {
    this._codeVerifier = v;
  }
  codeVerifier() {
    assert.ok(this._codeVerifier, "no code verifier saved");
    return this._codeVerifier;
  }
  async redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
    const wait = this.callback.next();
    const { location } = await login(url.toString(), { username: this.username, password: this.password });
    const loc = new URL(location);
    assert.equal(`${loc.origin}${loc.pathname}`, this._redirectUrl, "redirected to the registered redirect URI");
    // Open the redirect: the loopback callback server receives it.
    const res = await fetch(location);
    assert.equal(res.status, 200);
    const got = await wait;
    assert.equal(got.searchParams.get("error"), null, `authorization error: ${got.searchParams.get("error_description")}`);
    assert.equal(got.searchParams.get("state"), this._state, "state is returned unchanged");
    assert.equal(got.searchParams.get("iss"), ISSUER, "iss (RFC 9207) names the issuer");
    this.pending = got.searchParams.get("code");
    assert.ok(this.pending, "the redirect carries a code");
  }
}
