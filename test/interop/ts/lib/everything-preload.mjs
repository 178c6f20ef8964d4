// Preload for @modelcontextprotocol/server-everything, loaded with
// `node --import <this file> .../dist/index.js <transport>`. It changes
// nothing in the server's MCP behaviour; it only
//
//  1. forces every listening socket onto 127.0.0.1: the server calls
//     app.listen(PORT) and would otherwise bind all interfaces;
//  2. when EVERYTHING_CANCEL_LOG names a file, appends one JSON line per
//     notifications/cancelled the server receives: the request id, the
//     reason, and whether the id matched a request the server was still
//     handling. Tests read it to prove a cancellation reached the upstream
//     with a correctly mapped request id.
import net from "node:net";
import { appendFileSync } from "node:fs";
import { Protocol } from "@modelcontextprotocol/sdk/shared/protocol.js";

const LOOPBACK = "127.0.0.1";
const origListen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const a0 = args[0];
  const isPort =
    typeof a0 === "number" || (typeof a0 === "string" && a0 !== "" && !Number.isNaN(Number(a0)));
  if (isPort && typeof args[1] !== "string") {
    args.splice(1, 0, LOOPBACK);
  } else if (a0 && typeof a0 === "object" && !(a0 instanceof net.Server) && a0.path === undefined && a0.fd === undefined && a0.handle === undefined && a0._handle === undefined) {
    if (!a0.host) args[0] = { ...a0, host: LOOPBACK };
  } else if (a0 === undefined || typeof a0 === "function") {
    args.unshift(0, LOOPBACK);
  }
  return origListen.apply(this, args);
};

const cancelLog = process.env.EVERYTHING_CANCEL_LOG;
if (cancelLog) {
  const orig = Protocol.prototype._oncancel;
  Protocol.prototype._oncancel = async function (notification) {
    const id = notification?.params?.requestId;
    const matched = this._requestHandlerAbortControllers?.has?.(id) ?? false;
    try {
      appendFileSync(
        cancelLog,
        JSON.stringify({
          pid: process.pid,
          time: Date.now(),
          requestId: id ?? null,
          reason: notification?.params?.reason ?? null,
          matched,
        }) + "\n",
      );
    } catch {
      // best effort: the log is diagnostics for the tests only
    }
    return orig.call(this, notification);
  };
}
