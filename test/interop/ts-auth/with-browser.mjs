// with-browser.mjs CMD [ARGS...]: run a program that prints an authorization
// URL and waits for the browser to come back to its redirect URI (the
// conformance suite's authorization-code-grant scenario, the MCP Inspector
// CLI's interactive OAuth), and play the person at the browser: when the
// program prints a URL of the gateway's authorization endpoint, sign in on
// the login page (browser.mjs) and open the redirect, which delivers the
// code to the program's callback listener. The program's output is passed
// through; the exit status is the program's (1 if the browser step failed).
//
// Environment: ISSUER, AUTH_USERNAME, AUTH_PASSWORD; BROWSER_MAX (how many
// authorization URLs to serve, default 1).
import { spawn } from "node:child_process";
import { login } from "./browser.mjs";

const need = (k) => {
  const v = process.env[k];
  if (!v) {
    console.error(`with-browser: ${k} is not set`);
    process.exit(2);
  }
  return v;
};
const issuer = need("ISSUER");
const username = need("AUTH_USERNAME");
const password = need("AUTH_PASSWORD");
const max = Number(process.env.BROWSER_MAX ?? 1);
const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error("usage: with-browser.mjs CMD [ARGS...]");
  process.exit(2);
}

const authz = new RegExp(`${issuer.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/oauth/authorize\\?[^\\s"'\\x1b]+`);
const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
let served = 0;
let failed = null;
const say = (msg) => process.stderr.write(`[browser] ${msg}\n`);

// deliver opens the redirect; the program's listener may still be coming up.
async function deliver(location) {
  for (let i = 0; ; i++) {
    try {
      return await fetch(location);
    } catch (err) {
      if (i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function browse(url) {
  try {
    const { location, trace } = await login(url, { username, password });
    const cb = new URL(location);
    say(`${trace.join(", ")}; redirected to ${cb.origin}${cb.pathname} with ${[...cb.searchParams.keys()].join(", ")}`);
    if (cb.searchParams.has("error")) {
      say(`the gateway refused: ${cb.searchParams.get("error")}: ${cb.searchParams.get("error_description")}`);
    }
    const res = await deliver(location);
    say(`GET ${cb.pathname} -> ${res.status}`);
    await res.body?.cancel();
  } catch (err) {
    failed = err;
    say(`FAILED: ${err.message}`);
    child.kill("SIGTERM"); // it would wait minutes for the callback
  }
}

function watch(stream, out) {
  let buf = "";
  stream.on("data", (d) => {
    out.write(d);
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const m = line.match(authz);
      if (m && served < max) {
        served++;
        browse(m[0]);
      }
    }
  });
}
watch(child.stdout, process.stdout);
watch(child.stderr, process.stderr);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => child.kill(sig));
}
child.on("exit", (code, signal) => {
  if (failed) process.exit(1);
  if (served === 0) say("no authorization URL was printed");
  process.exit(code ?? (signal ? 1 : 0));
});
