// Shared helpers for the TypeScript SDK interop tests. The tests run against
// every target in MCP_TARGETS (set by test/interop/run-ts.sh): the gateway in
// front of server-everything over stdio, Streamable HTTP and HTTP+SSE, or
// server-everything's own endpoints (DIRECT=1), which proves the tests right.
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

export { sleep };

/**
 * @typedef {object} Target
 * @property {string} name          label used in test names
 * @property {string} url           Streamable HTTP endpoint
 * @property {string} [legacySseUrl] 2024-11-05 HTTP+SSE endpoint (GET opens the stream)
 * @property {boolean} [gateway]  the endpoint is the gateway (not server-everything itself)
 * @property {string} [upstream]   the gateway's upstream transport: stdio, http or sse
 * @property {boolean} [sharedUpstream] one upstream connection serves every
 *           session (the gateway's stdio upstream): server-side state such as
 *           toggles is then shared between sessions
 */

/** @returns {Target[]} */
export function targets() {
  const raw = process.env.MCP_TARGETS;
  if (!raw) return [];
  const list = JSON.parse(raw);
  if (!Array.isArray(list)) throw new Error("MCP_TARGETS must be a JSON array");
  return list;
}

/** Registers fn once per target in a suite "title @ target", or one skipped test when no target is set. */
export function forEachTarget(title, describe, it, fn) {
  const list = targets();
  if (list.length === 0) {
    it("needs MCP_TARGETS (run test/interop/run-ts.sh)", { skip: "MCP_TARGETS is not set" }, () => {});
    return;
  }
  for (const target of list) describe(`${title} @ ${target.name}`, () => fn(target));
}

/** A fresh id for values that must be recognisable across sessions. */
export const uniq = (p = "interop") => `${p}-${randomUUID()}`;

/**
 * Errors SDK 1.32's StreamableHTTPClientTransport reports by itself after a
 * JSON-RPC *error* response arrives on a resumable SSE stream: it counts
 * only result responses as "the response", so it tries to resume the
 * finished stream with Last-Event-ID (400 once the server has forgotten the
 * stream), or after an empty resumption retries a plain GET, which a server
 * with the standalone stream already open refuses with 409 (so does the
 * SDK's own server). Client-side noise after the request already failed.
 */
export const SDK_RECONNECT_NOISE =
  /Failed to open SSE stream: (Conflict|Bad Request)|Failed to reconnect SSE stream|Maximum reconnection attempts/;

/** Per-test timeout: a hang fails its test instead of stalling the run. */
export const T = { timeout: 30_000 };

/** fetch, with the cause of a network failure in the error message. */
async function explainingFetch(url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    if (err?.cause && !String(err.message).includes("cause:")) {
      err.message += ` (${init?.method ?? "GET"} ${url}; cause: ${err.cause.code ?? ""} ${err.cause.message ?? err.cause})`;
    }
    throw err;
  }
}

/**
 * Opens an SDK Client to target over Streamable HTTP (or the legacy HTTP+SSE
 * transport with {legacy: true}) and closes it when test t ends. Errors the
 * SDK reports outside any request (for example a progress notification for
 * a token it no longer knows, or a response to a cancelled request) are
 * collected in client.errors.
 */
export async function connect(t, target, { capabilities = {}, legacy = false, setup } = {}) {
  const client = new Client({ name: "gatehouse-interop", version: "1.0.0" }, { capabilities });
  client.errors = [];
  client.onerror = (err) => client.errors.push(err);
  if (setup) setup(client);
  let transport;
  if (legacy) {
    if (!target.legacySseUrl) throw new Error(`target ${target.name} has no legacySseUrl`);
    transport = new SSEClientTransport(new URL(target.legacySseUrl), { fetch: explainingFetch });
  } else {
    transport = new StreamableHTTPClientTransport(new URL(target.url), { fetch: explainingFetch });
  }
  await client.connect(transport);
  t.after(async () => {
    if (!legacy) {
      // DELETE the session so the gateway (and the upstream) free it.
      await transport.terminateSession().catch(() => {});
    }
    await client.close().catch(() => {});
  });
  return client;
}

/** Polls fn until it returns a truthy value or timeoutMs passes. */
export async function waitFor(fn, { timeoutMs = 5000, intervalMs = 50, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Lists tools until name appears: server-everything registers the tools that
 * depend on client capabilities (sampling, elicitation) only once the
 * session is initialized, and announces them with tools/list_changed.
 */
export async function waitForTool(client, name, timeoutMs = 5000) {
  let last = [];
  try {
    return await waitFor(
      async () => {
        last = (await client.listTools()).tools;
        return last.find((x) => x.name === name);
      },
      { timeoutMs, intervalMs: 100, what: `tool ${name}` },
    );
  } catch (err) {
    err.message += `; tools were: ${last.map((x) => x.name).join(", ")}`;
    throw err;
  }
}

/** The concatenated text of a result's text content blocks. */
export function textOf(result) {
  return (result?.content ?? [])
    .filter((c) => c.type === "text")
    .map((c) => c.text)
    .join("\n");
}

/** Every page of a paginated list method, following nextCursor. */
export async function listAll(fetchPage, key, maxPages = 100) {
  const items = [];
  const cursors = [];
  let cursor;
  for (let page = 0; page < maxPages; page++) {
    const res = await fetchPage(cursor === undefined ? {} : { cursor });
    items.push(...res[key]);
    if (res.nextCursor === undefined || res.nextCursor === null) return { items, pages: page + 1, cursors };
    if (cursors.includes(res.nextCursor)) throw new Error(`cursor ${res.nextCursor} repeated: pagination loops`);
    cursors.push(res.nextCursor);
    cursor = res.nextCursor;
  }
  throw new Error(`more than ${maxPages} pages`);
}

/**
 * The notifications/cancelled the servers received, as logged by
 * lib/everything-preload.mjs into EVERYTHING_CANCEL_LOG (null when the
 * runner did not set it).
 */
export function cancelLog() {
  const file = process.env.EVERYTHING_CANCEL_LOG;
  if (!file) return null;
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/**
 * Calls a server-everything toggle tool (toggle-simulated-logging,
 * toggle-subscriber-updates) until it reports the wanted state ("Started"
 * or "Stopped"). The state is per upstream session, so on a shared stdio
 * upstream a previous test may have left it either way.
 */
export async function toggleTo(client, tool, want) {
  for (let i = 0; i < 2; i++) {
    const text = textOf(await client.callTool({ name: tool, arguments: {} }));
    if (text.startsWith(want)) return text;
  }
  throw new Error(`${tool} did not reach state ${want}`);
}
