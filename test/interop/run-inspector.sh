#!/usr/bin/env bash
# The MCP Inspector CLI (@modelcontextprotocol/inspector, pinned by
# package-lock.json) against the quickstart configuration: the built-in demo
# servers behind the gateway, authentication on. The quickstart's agent
# support-bot gets a secret with the CLI and a token per virtual server with
# client_credentials; the Inspector sends it as a bearer header. Each check runs in both protocol eras the
# Inspector speaks (--protocol-era legacy: initialize and sessions;
# modern: the stateless 2026-07-28 revision) and asserts on the JSON it prints.
#
# Usage: test/interop/run-inspector.sh
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

lib_tmpdir
TMP="$LIB_TMP"
lib_npm_ci
mkdir -p "$TMP/home" # the Inspector writes ~/.mcp-inspector: give it its own

go build -o "$TMP/gatehouse" ./cmd/gatehouse
cp examples/quickstart.yaml "$TMP/quickstart.yaml"
port="$(lib_free_port)"
# The gateway's data (gatehouse-data/) goes to the temp dir, its cwd.
(cd "$TMP" && lib_start gateway "$TMP/gateway.log" "$TMP/gatehouse" serve --config "$TMP/quickstart.yaml" --listen "127.0.0.1:$port"
	echo "$LIB_LAST_PID" >"$TMP/gw.pid")
gw_pid=$(cat "$TMP/gw.pid")
LIB_PIDS+=("$gw_pid")
LIB_NAMES+=(gateway)
lib_wait_http "http://127.0.0.1:$port/healthz" 30 "$gw_pid" || { tail -n 30 "$TMP/gateway.log"; exit 1; }

# An agent and a token per virtual server (the admin token is the one the
# gateway wrote to its data dir on first start).
gh() { (cd "$TMP" && "$TMP/gatehouse" "$@" --admin-url "http://127.0.0.1:$port"); }
secret=$(gh agent rotate support-bot --overlap 0s --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
client_id=$(gh agent show support-bot --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
token_for() {
	curl -fs -u "$client_id:$secret" -d grant_type=client_credentials -d "resource=http://127.0.0.1:$port/mcp/$1" \
		"http://127.0.0.1:$port/oauth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
tok_support=$(token_for support)
tok_crm=$(token_for crm)

inspector="$REPO_ROOT/test/interop/node_modules/.bin/mcp-inspector"
failures=0
# check NAME ERA EXPECTED_SUBSTRING ARGS...: run the Inspector CLI, print a
# verdict, count failures.
check() {
	local name="$1" era="$2" want="$3" out
	shift 3
	out="$TMP/$name-$era.json"
	# The exit status is not checked: the CLI exits non-zero for a tool
	# result with isError, which one check expects.
	local server=${SERVER:-support} tok
	tok=$tok_support
	[ "$server" = crm ] && tok=$tok_crm
	HOME="$TMP/home" timeout 60 "$inspector" --cli "http://127.0.0.1:$port/mcp/$server" --transport http \
		--header "Authorization: Bearer $tok" --protocol-era "$era" --format json -q "$@" >"$out" 2>"$out.err" || true
	if grep -qF -- "$want" "$out"; then
		printf 'PASS  %-28s %-7s\n' "$name" "$era"
	else
		printf 'FAIL  %-28s %-7s (wanted %q)\n' "$name" "$era" "$want"
		head -c 600 "$out" "$out.err"
		echo
		failures=$((failures + 1))
	fi
}

for era in legacy modern; do
	check tools-list "$era" '"name":"tickets_create_ticket"' --method tools/list
	check tools-call "$era" 'ticket(s) in queue billing' --method tools/call --tool-name tickets_list_tickets --tool-args-json '{"queue":"billing"}'
	check tools-call-error "$era" '"isError":true' --method tools/call --tool-name crm_get_customer --tool-args-json '{"id":"CUST-0000"}'
	check resources-templates "$era" 'crm://customers/{id}' --method resources/templates/list
	check resources-read "$era" 'CUST-1001' --method resources/read --uri crm://customers/CUST-1001
	check prompts-get "$era" 'CUST-1001' --method prompts/get --prompt-name crm_summarize_account --prompt-args customer_id=CUST-1001
	SERVER=crm check renamed-tool "$era" '"name":"invoice"' --method tools/list
done

echo
if ((failures > 0)); then
	echo "inspector: $failures check(s) failed"
	tail -n 40 "$TMP/gateway.log"
	exit 1
fi
echo "inspector: all checks passed"
