#!/usr/bin/env bash
# The gateway's identity flows proved with software nobody on this team
# wrote. One gateway with authentication on (test/interop/configs/
# auth-gateway.yaml: a temporary SQLite store, the key-encryption key and
# the admin token from the environment, the built-in demo servers behind the
# virtual servers "support" and "crm"), users and agents created with the
# gatehouse CLI, then:
#
#   1. conformance  the official suite's authorization-server scenarios
#                   (@modelcontextprotocol/conformance 0.2.0-alpha.12
#                   `authorization`: metadata endpoint, authorization code
#                   grant) for a dynamically registered public client; the
#                   person at the browser is ts-auth/with-browser.mjs
#   2. ts-sdk       node --test ts-auth/*.test.mjs: the TypeScript SDK
#                   1.32.2 OAuth client (authorization code + PKCE with
#                   dynamic registration and with a client ID metadata
#                   document, refresh), its ClientCredentialsProvider,
#                   revocation and audience checks
#   3. inspector    the MCP Inspector CLI 2.12.0 with a bearer token from
#                   client_credentials, without one (refused), with a token
#                   for another server (refused), and through its own
#                   interactive OAuth (dynamic registration + login)
#
# Usage: test/interop/run-auth.sh        (KEEP_TMP=1 keeps the temp dir)
# Everything listens on 127.0.0.1; every process is stopped by PID (lib.sh).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

T0=$SECONDS
lib_tmpdir
TMP="$LIB_TMP"
lib_npm_ci
lib_use_node22
mkdir -p "$TMP/data" "$TMP/home" "$TMP/cimd"

# --- the gateway -------------------------------------------------------------
lib_log "building gatehouse"
go build -o "$TMP/gatehouse" ./cmd/gatehouse
GH="$TMP/gatehouse"

rand() { head -c "$1" /dev/urandom | base64 | tr -d '\n=' | tr '+/' '-_'; }
port="$(lib_free_port)"
ISSUER="http://127.0.0.1:$port"
export GATEHOUSE_AUTH_ISSUER="$ISSUER"
export GATEHOUSE_AUTH_DATA="$TMP/data"
GATEHOUSE_AUTH_KEK="$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
export GATEHOUSE_AUTH_KEK
GATEHOUSE_AUTH_ADMIN_TOKEN="gh-interop-admin-$(rand 24)"
export GATEHOUSE_AUTH_ADMIN_TOKEN
# The management commands read these.
export GATEHOUSE_ADMIN_URL="$ISSUER" GATEHOUSE_ADMIN_TOKEN="$GATEHOUSE_AUTH_ADMIN_TOKEN"

# A certificate for https://127.0.0.1 (the client ID metadata document the
# SDK test serves: the SDK accepts only https metadata URLs). The gateway
# trusts it through SSL_CERT_FILE; it is the only root the gateway needs.
(cd "$TMP/cimd" && go run "$(go env GOROOT)/src/crypto/tls/generate_cert.go" \
	--host 127.0.0.1 --ecdsa-curve P256 --duration 2h) >"$TMP/cimd/generate.log" 2>&1 ||
	{ cat "$TMP/cimd/generate.log"; lib_die "generating the test certificate failed"; }

lib_start gateway "$TMP/gateway.log" env SSL_CERT_FILE="$TMP/cimd/cert.pem" \
	"$GH" serve --config test/interop/configs/auth-gateway.yaml --listen "127.0.0.1:$port"
gw_pid=$LIB_LAST_PID
lib_wait_http "$ISSUER/healthz" 30 "$gw_pid" || { tail -n 40 "$TMP/gateway.log"; exit 1; }
lib_log "gateway up at $ISSUER"

on_exit() {
	if (($1 != 0)); then
		echo "--- last lines of the gateway log ($TMP/gateway.log)"
		tail -n 40 "$TMP/gateway.log"
	fi
}
lib_on_exit on_exit

# A person in the group granted both servers, created with the CLI.
AUTH_USERNAME="interop-$(rand 4 | tr -dc 'a-zA-Z0-9')"
AUTH_PASSWORD="$(rand 18)"
export AUTH_USERNAME AUTH_PASSWORD AUTH_TEAM=interop ISSUER
printf '%s\n' "$AUTH_PASSWORD" | "$GH" user create "$AUTH_USERNAME" --password-stdin --group interop-users

json_field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];if(v===undefined)process.exit(1);console.log(v)})' "$1"; }

declare -a PART_NAMES PART_RESULTS
FAILED=0
part() { # NAME RESULT OK(0/1)
	PART_NAMES+=("$1")
	PART_RESULTS+=("$2")
	if (($3 != 0)); then FAILED=$((FAILED + 1)); fi
}
heading() { printf '\n==== %s ====\n' "$*"; }

# --- 1. conformance authorization-server scenarios ----------------------------
heading "1. conformance 0.2.0-alpha.12 authorization (authorization-server scenarios)"
cb_port="$(lib_free_port)"
reg="$(curl -sS --max-time 10 -X POST "$ISSUER/oauth/register" -H 'Content-Type: application/json' \
	-d "{\"redirect_uris\":[\"http://127.0.0.1:$cb_port/callback\"],\"token_endpoint_auth_method\":\"none\",\"grant_types\":[\"authorization_code\",\"refresh_token\"],\"client_name\":\"conformance\"}")"
conf_client="$(json_field client_id <<<"$reg")" || lib_die "dynamic registration failed: $reg"
lib_log "registered client $conf_client for http://127.0.0.1:$cb_port/callback"
conf_rc=0
lib_run "$TMP/conformance.log" timeout 180 node test/interop/ts-auth/with-browser.mjs \
	node test/interop/node_modules/conformance-next/dist/index.js authorization \
	--url "$ISSUER" --client-id "$conf_client" --resource "$ISSUER/mcp/support" \
	--port "$cb_port" -o "$TMP/conformance-results" || conf_rc=$?
cat "$TMP/conformance.log"
# Each check the suite recorded (from its -o results), with any message.
# shellcheck disable=SC2016 # JavaScript template literals
node -e 'const fs=require("fs");for(const f of process.argv.slice(1))for(const c of JSON.parse(fs.readFileSync(f,"utf8")))console.log(`  ${c.status.padEnd(8)} ${c.id}${c.errorMessage?": "+c.errorMessage:""}`)' \
	"$TMP"/conformance-results/*/checks.json 2>/dev/null || true
conf_total="$(sed -n 's/^Total: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 passed, \2 failed/p' "$TMP/conformance.log" | tail -n 1)"
conf_failed="$(sed -n 's/^Total: [0-9]* passed, \([0-9]*\) failed.*/\1/p' "$TMP/conformance.log" | tail -n 1)"
if ((conf_rc == 0)) && [[ "$conf_failed" == 0 ]] && grep -q '^✓ authorization-code-grant: 1 passed, 0 failed' "$TMP/conformance.log"; then
	part "conformance authorization" "${conf_total}" 0
else
	part "conformance authorization" "FAILED (exit $conf_rc; ${conf_total:-no summary})" 1
fi

# --- 2. TypeScript SDK ----------------------------------------------------------
heading "2. TypeScript SDK 1.32.2 (node --test test/interop/ts-auth)"
export GATEHOUSE_BIN="$GH" CIMD_CERT="$TMP/cimd/cert.pem" CIMD_KEY="$TMP/cimd/key.pem"
ts_rc=0
lib_run "$TMP/ts.log" node --test --test-concurrency=1 --test-timeout=90000 \
	--test-reporter=spec --test-reporter-destination=stdout \
	--test-reporter=tap --test-reporter-destination="$TMP/ts.tap" test/interop/ts-auth/*.test.mjs || ts_rc=$?
cat "$TMP/ts.log"
tap() { sed -n "s/^# $1 \([0-9]*\)$/\1/p" "$TMP/ts.tap" | tail -n 1; }
ts_summary="$(tap tests) tests, $(tap pass) passed, $(tap fail) failed"
if ((ts_rc == 0)) && [[ "$(tap fail)" == 0 && "$(tap tests)" -gt 0 ]]; then
	part "TypeScript SDK" "$ts_summary" 0
else
	part "TypeScript SDK" "FAILED (exit $ts_rc; $ts_summary)" 1
fi

# --- 3. MCP Inspector CLI -------------------------------------------------------
heading "3. MCP Inspector CLI 2.12.0"
inspector="$REPO_ROOT/test/interop/node_modules/.bin/mcp-inspector"
insp_pass=0 insp_fail=0
# icheck NAME WANT_EXIT WANT_SUBSTRING(in stdout+stderr) CMD...: one verdict.
icheck() {
	local name="$1" want_rc="$2" want="$3" rc=0 out="$TMP/inspector-$1"
	shift 3
	HOME="$TMP/home" MCP_INSPECTOR_SECRET_STORE=memory timeout 90 "$@" >"$out.out" 2>"$out.err" </dev/null || rc=$?
	if [[ "$rc" == "$want_rc" ]] && grep -qF -- "$want" "$out.out" "$out.err"; then
		printf 'PASS  %-34s exit %s, %s\n' "$name" "$rc" "$(grep -hoF -- "$want" "$out.out" "$out.err" | head -n 1)"
		insp_pass=$((insp_pass + 1))
	else
		printf 'FAIL  %-34s exit %s (want %s and %q)\n' "$name" "$rc" "$want_rc" "$want"
		head -c 1500 "$out.out" "$out.err"
		echo
		insp_fail=$((insp_fail + 1))
	fi
}
agent_json="$("$GH" agent create "inspector-$(rand 4 | tr -dc 'a-zA-Z0-9')" --team interop --owner interop@example.com --json)"
ag_id="$(json_field client_id <<<"$agent_json")"
ag_secret="$(json_field client_secret <<<"$agent_json")"
tok_json="$(curl -sS --max-time 10 -u "$ag_id:$ag_secret" -d grant_type=client_credentials \
	--data-urlencode "resource=$ISSUER/mcp/support" "$ISSUER/oauth/token")"
token="$(json_field access_token <<<"$tok_json")" || lib_die "client_credentials token request failed: $tok_json"
lib_log "client_credentials token for $ag_id ($(json_field expires_in <<<"$tok_json") s)"

icheck bearer-tools-call 0 'ticket(s) in queue billing' \
	"$inspector" --cli "$ISSUER/mcp/support" --transport http --header "Authorization: Bearer $token" \
	--method tools/call --tool-name tickets_list_tickets --tool-args-json '{"queue":"billing"}' --format json -q
icheck bearer-tools-list 0 '"name":"crm_get_invoice"' \
	"$inspector" --cli "$ISSUER/mcp/support" --transport http --header "Authorization: Bearer $token" \
	--method tools/list --format json -q
# Without a token: the gateway's 401; the CLI (told not to start a browser
# login) exits 3 (auth_required) with the gateway's answer.
icheck no-token-refused 3 'authentication required' \
	"$inspector" --cli "$ISSUER/mcp/support" --transport http --stored-auth-only \
	--method tools/call --tool-name tickets_list_tickets --tool-args-json '{"queue":"billing"}' --format json -q
code="$(curl -s -o /dev/null -D "$TMP/noauth.headers" -w '%{http_code}' --max-time 10 -X POST "$ISSUER/mcp/support" \
	-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
	-d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}')"
if [[ "$code" == 401 ]] && grep -qi "^www-authenticate: Bearer resource_metadata=\"$ISSUER/.well-known/oauth-protected-resource/mcp/support\"" "$TMP/noauth.headers"; then
	printf 'PASS  %-34s HTTP %s, %s\n' "same-request-is-401" "$code" "$(grep -i '^www-authenticate' "$TMP/noauth.headers" | tr -d '\r')"
	insp_pass=$((insp_pass + 1))
else
	printf 'FAIL  %-34s HTTP %s\n' "same-request-is-401" "$code"
	cat "$TMP/noauth.headers"
	insp_fail=$((insp_fail + 1))
fi
# The support token on crm: refused for its audience, with the reason.
icheck other-audience-refused 3 'does not include this server' \
	"$inspector" --cli "$ISSUER/mcp/crm" --transport http --stored-auth-only --header "Authorization: Bearer $token" \
	--method tools/list --format json -q
# The Inspector's own OAuth client: 401 -> discovery -> dynamic registration
# -> authorization code + PKCE -> our scripted browser signs in -> tools/call.
insp_cb="$(lib_free_port)"
icheck inspector-oauth-login 0 'ticket(s) in queue billing' \
	env MCP_AUTO_OPEN_ENABLED=true BROWSER=true node test/interop/ts-auth/with-browser.mjs \
	"$inspector" --cli "$ISSUER/mcp/support" --transport http --callback-url "http://127.0.0.1:$insp_cb/oauth/callback" \
	--method tools/call --tool-name tickets_list_tickets --tool-args-json '{"queue":"billing"}' --format json
grep -h '^\[browser\]' "$TMP/inspector-inspector-oauth-login.err" || true
if ((insp_fail == 0)); then
	part "MCP Inspector CLI" "$insp_pass checks passed, 0 failed" 0
else
	part "MCP Inspector CLI" "FAILED ($insp_pass passed, $insp_fail failed)" 1
fi

# --- summary --------------------------------------------------------------------
heading "summary (gateway $ISSUER, $((SECONDS - T0)) s)"
for i in "${!PART_NAMES[@]}"; do
	printf '%-28s %s\n' "${PART_NAMES[i]}" "${PART_RESULTS[i]}"
done
if grep -q 'level=ERROR' "$TMP/gateway.log"; then
	echo "gateway errors logged:"
	grep 'level=ERROR' "$TMP/gateway.log" | head -n 20
fi
if ((FAILED > 0)); then
	echo "auth interop: $FAILED part(s) failed"
	exit 1
fi
echo "auth interop: all parts passed"
