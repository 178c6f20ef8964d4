// A scripted browser for the gateway's login page: plain fetch with manual
// cookie handling, no HTML library. It does what a person does in a real
// browser: open the authorization URL, read the sign-in form (its action,
// every hidden input including the CSRF form token, and the login cookie the
// page sets), submit username and password, and return where the gateway
// redirects to (the client's redirect URI with code, state and iss).

// decodeEntities undoes the HTML escaping of attribute values (Go's
// html/template writes &amp; &#43; &#34; &#39; &lt; &gt; and others).
export function decodeEntities(s) {
  const named = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    if (e[0] === "#") {
      const n = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(n) ? String.fromCodePoint(n) : m;
    }
    return named[e.toLowerCase()] ?? m;
  });
}

// attrs parses the attributes of one start tag ("<input a="b" c>").
function attrs(tag) {
  const out = {};
  const re = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const body = tag.replace(/^<\s*[a-zA-Z]+/, "").replace(/\/?>$/, "");
  let m;
  while ((m = re.exec(body)) !== null) {
    out[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return out;
}

// parseLoginForm returns the form's method, action and hidden fields, and
// whether it has username and password inputs.
export function parseLoginForm(html) {
  const form = html.match(/<form\b[^>]*>([\s\S]*?)<\/form>/i);
  if (!form) return null;
  const fa = attrs(form[0].match(/<form\b[^>]*>/i)[0]);
  const hidden = [];
  const inputs = [];
  for (const m of form[1].matchAll(/<input\b[^>]*>/gi)) {
    const a = attrs(m[0]);
    inputs.push(a);
    if ((a.type ?? "").toLowerCase() === "hidden" && a.name) hidden.push([a.name, a.value ?? ""]);
  }
  const submit = [...form[1].matchAll(/<button\b[^>]*>/gi)].map((m) => attrs(m[0]));
  return {
    method: (fa.method ?? "get").toUpperCase(),
    action: fa.action ?? "",
    hidden,
    hasUsername: inputs.some((a) => a.name === "username"),
    hasPassword: inputs.some((a) => a.name === "password" && a.type === "password"),
    submit,
  };
}

// CookieJar keeps name=value pairs per path prefix (enough for one host).
export class CookieJar {
  constructor() {
    this.cookies = new Map(); // name -> {value, path}
  }
  take(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrsList] = sc.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = "/";
      let expired = false;
      for (const a of attrsList) {
        const [k, v = ""] = a.split("=");
        const key = k.trim().toLowerCase();
        if (key === "path") path = v.trim() || "/";
        if (key === "max-age" && Number(v) <= 0) expired = true;
      }
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, { value, path });
    }
  }
  header(url) {
    const p = new URL(url).pathname;
    return [...this.cookies]
      .filter(([, c]) => p === c.path || p.startsWith(c.path.endsWith("/") ? c.path : c.path + "/"))
      .map(([n, c]) => `${n}=${c.value}`)
      .join("; ");
  }
  names() {
    return [...this.cookies.keys()];
  }
}

// login opens authUrl, signs in and returns {location, status, trace}: the
// URL the gateway redirects the browser to after a successful sign-in. It
// throws with the page's message when the sign-in does not redirect.
export async function login(authUrl, { username, password, action = "login", jar = new CookieJar() } = {}) {
  const trace = [];
  const page = await fetch(authUrl, { redirect: "manual", headers: { accept: "text/html" } });
  jar.take(page);
  trace.push(`GET ${new URL(authUrl).pathname} -> ${page.status}`);
  if (page.status >= 300 && page.status < 400) {
    // The request was refused straight back to the client (an OAuth error).
    return { location: page.headers.get("location"), status: page.status, trace };
  }
  const html = await page.text();
  if (page.status !== 200) throw new Error(`login page: HTTP ${page.status}: ${pageMessage(html)}`);
  const form = parseLoginForm(html);
  if (!form) throw new Error(`login page has no form: ${pageMessage(html)}`);
  if (!form.hasUsername || !form.hasPassword) throw new Error("login form lacks username/password inputs");
  if (!form.hidden.some(([n]) => n === "form_token")) throw new Error("login form has no CSRF form_token");
  if (jar.names().length === 0) throw new Error("login page set no cookie");
  const target = new URL(form.action || authUrl, authUrl).toString();
  const body = new URLSearchParams(form.hidden);
  body.set("username", username);
  body.set("password", password);
  body.set("action", action);
  const res = await fetch(target, {
    method: form.method,
    redirect: "manual",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      cookie: jar.header(target),
      origin: new URL(authUrl).origin, // what a browser sends with a form post
    },
    body,
  });
  jar.take(res);
  trace.push(`POST ${new URL(target).pathname} -> ${res.status}`);
  const location = res.headers.get("location");
  if (res.status < 300 || res.status >= 400 || !location) {
    throw new Error(`sign-in did not redirect: HTTP ${res.status}: ${pageMessage(await res.text())}`);
  }
  return { location: new URL(location, target).toString(), status: res.status, trace, form };
}

// pageMessage extracts the human-readable message of a gateway page.
export function pageMessage(html) {
  const m = html.match(/<p class="alert"[^>]*>([\s\S]*?)<\/p>/i) ?? html.match(/<h1>([\s\S]*?)<\/h1>/i);
  return m ? decodeEntities(m[1].replace(/<[^>]+>/g, "").trim()) : html.slice(0, 200);
}
