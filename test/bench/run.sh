#!/usr/bin/env bash
# End-to-end benchmark of the gateway's cost per tools/call.
#
# Starts the Go echo upstream (gatehouse bench echo-server), the gateway in
# front of it (one transparent virtual server) and, for calibration, a plain
# net/http reverse proxy with no MCP logic (gatehouse bench reverse-proxy),
# then measures, alternating in one run: direct calls to the upstream, calls
# through the gateway and calls through the plain proxy, at concurrency 1
# and 16. A second gateway with authentication on (an OAuth access token,
# verified once and then cached) measures what identity adds per call, and a
# third one with the same authentication and a realistic policy (50 bundles of
# 5 CEL-conditioned rules, 500 agents, an organisation-wide deny over every URL
# in the arguments, a workflow rule) measures what policy adds. These two run
# with the audit trail off; a fourth gateway, the authenticated one with the
# audit trail on (SQLite, write sync), measures what auditing adds.
# Each measurement reports requests/s, latency
# percentiles, errors, and the CPU time per call of the process serving the
# URL (the echo server for direct calls, the gateway for gateway calls) read
# from /proc. Prints every run and the median of each series.
#
#   test/bench/run.sh [ROUNDS] [DURATION]        (defaults: 5 rounds of 5s)
#   TARGETS="auth audit" test/bench/run.sh ...   (only those series)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
duration=${2:-5s}
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/gatehouse" ./cmd/gatehouse
gh="$tmp/gatehouse"

echo_addr=127.0.0.1:19200
gw_addr=127.0.0.1:19201
rp_addr=127.0.0.1:19202
auth_addr=127.0.0.1:19203
pol_addr=127.0.0.1:19204
aud_addr=127.0.0.1:19205
"$gh" bench echo-server --addr "$echo_addr" >"$tmp/echo.log" 2>&1 &
echo_pid=$!
pids+=("$echo_pid")
cat >"$tmp/bench.yaml" <<YAML
upstreams:
  echo:
    url: http://$echo_addr/
servers:
  echo:
    upstreams:
      - upstream: echo
        prefix: ""
identity: {auth: "off"}
admin: {disabled: true}
inspect: {disabled: true}
YAML
# The inspecting gateway: the same with the detectors on (their defaults).
insp_addr=127.0.0.1:19206
sed -e "/^inspect:/d" "$tmp/bench.yaml" >"$tmp/inspect.yaml"
"$gh" serve --config "$tmp/inspect.yaml" --listen "$insp_addr" >"$tmp/inspect.log" 2>&1 &
insp_pid=$!
pids+=("$insp_pid")
"$gh" serve --config "$tmp/bench.yaml" --listen "$gw_addr" >"$tmp/gw.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
"$gh" bench reverse-proxy --addr "$rp_addr" --to "http://$echo_addr/" >"$tmp/rp.log" 2>&1 &
rp_pid=$!
pids+=("$rp_pid")

# The authenticated gateway: its own data directory, key and admin token.
export BENCH_KEK BENCH_ADMIN
BENCH_KEK=$(head -c 32 /dev/urandom | base64)
BENCH_ADMIN=bench-admin-$(head -c 12 /dev/urandom | base64 | tr -dc A-Za-z0-9)
cat >"$tmp/auth.yaml" <<YAML
upstreams:
  echo:
    url: http://$echo_addr/
servers:
  echo:
    upstreams:
      - upstream: echo
        prefix: ""
store: {path: $tmp/auth-data/gatehouse.db}
vault: {kek: "env:BENCH_KEK"}
admin: {token: "\${BENCH_ADMIN}"}
identity:
  issuer: http://$auth_addr
  token_ttl: 1h
  bootstrap_user: ""
  teams: [{name: bench, servers: [echo]}]
audit: {disabled: true}
inspect: {disabled: true}
YAML
# The audited gateway: the same, with its own store and the audit trail on.
sed -e "s|auth-data|audit-data|" -e "s|http://$auth_addr|http://$aud_addr|" -e "/^audit:/d" "$tmp/auth.yaml" >"$tmp/audit.yaml"
"$gh" serve --config "$tmp/auth.yaml" --listen "$auth_addr" >"$tmp/auth.log" 2>&1 &
auth_pid=$!
pids+=("$auth_pid")

# The policy gateway: the authenticated one plus a policy section of the
# size the issue calls realistic; bench-bot (team bench) is a member of 5 of
# the 50 bundles, one of which allows echo under a condition on its
# arguments.
python3 - "$tmp" "$echo_addr" "$pol_addr" >"$tmp/policy.yaml" <<'PY'
import sys
tmp, echo, addr = sys.argv[1:4]
teams = ["bench"] + [f"team{i}" for i in range(1, 10)]
print(f"""upstreams:
  echo:
    url: http://{echo}/
servers:
  echo:
    upstreams:
      - upstream: echo
        prefix: ""
store: {{path: {tmp}/policy-data/gatehouse.db}}
vault: {{kek: "env:BENCH_KEK"}}
admin: {{token: "${{BENCH_ADMIN}}"}}
identity:
  issuer: http://{addr}
  token_ttl: 1h
  bootstrap_user: ""
  teams:""")
for t in teams:
    print(f"    - {{name: {t}, servers: [echo]}}")
print("  agents:")
for a in range(500):
    print(f"    - {{name: agent{a}, team: {teams[a % 10]}, owner: o@example.com, attributes: {{queues: [billing, general]}}}}")
print("""audit: {disabled: true}
inspect: {disabled: true}
policy:
  tools:
    - {upstream: echo, tools: ["echo"], labels: [internal]}
  organisation:
    deny:
      - name: no-foreign-links
        tools: ["*"]
        when: 'urls(args).exists(u, !(host(u) in ["example.com"]))'
  workflows:
    - {name: fin-to-comms, after: [customer_financial], calls: [communications], action: approve}
  bundles:""")
for i in range(50):
    t = teams[i % 10]
    print(f"""    b{i}:
      version: 1
      members: {{teams: [{t}]}}
      allow:
        - {{name: r1, tools: ["echo/get_*"], class: read_only, when: 'request.time.getHours("Europe/Paris") >= 0'}}
        - {{name: r2, tools: ["echo/list_*"], when: 'has(args.queue) && args.queue in agent.attributes.queues'}}
        - {{name: r3, tools: ["echo/echo"], when: 'has(args.message) && size(args.message) < 1000 && agent.team == "{t}"'}}
        - {{name: r4, tools: ["echo/*"], when: '"oncall" in user.groups'}}
        - {{name: r5, tools: ["echo/search_*"], when: 'size(args) < 10'}}""")
PY
"$gh" serve --config "$tmp/policy.yaml" --listen "$pol_addr" >"$tmp/policy.log" 2>&1 &
pol_pid=$!
pids+=("$pol_pid")
"$gh" serve --config "$tmp/audit.yaml" --listen "$aud_addr" >"$tmp/audit.log" 2>&1 &
aud_pid=$!
pids+=("$aud_pid")
for addr in "$gw_addr" "$auth_addr" "$pol_addr" "$aud_addr" "$insp_addr"; do
	for _ in $(seq 100); do
		curl -fs "http://$addr/healthz" >/dev/null 2>&1 && break
		sleep 0.1
	done
done
"$gh" agent create bench-bot --team bench --owner bench@example.com --json \
	--admin-url "http://$auth_addr" --admin-token "$BENCH_ADMIN" >"$tmp/agent.json"
client_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$tmp/agent.json")
client_secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$tmp/agent.json")
token=$(curl -fs -u "$client_id:$client_secret" -d grant_type=client_credentials \
	-d resource="http://$auth_addr/mcp/echo" "http://$auth_addr/oauth/token" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
"$gh" agent create bench-bot --team bench --owner bench@example.com --json \
	--admin-url "http://$pol_addr" --admin-token "$BENCH_ADMIN" >"$tmp/pagent.json"
client_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$tmp/pagent.json")
client_secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$tmp/pagent.json")
"$gh" agent create bench-bot --team bench --owner bench@example.com --json \
	--admin-url "http://$aud_addr" --admin-token "$BENCH_ADMIN" >"$tmp/aagent.json"
client_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$tmp/aagent.json")
client_secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$tmp/aagent.json")
atoken=$(curl -fs -u "$client_id:$client_secret" -d grant_type=client_credentials \
	-d resource="http://$aud_addr/mcp/echo" "http://$aud_addr/oauth/token" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
client_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_id"])' "$tmp/pagent.json")
client_secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["client_secret"])' "$tmp/pagent.json")
ptoken=$(curl -fs -u "$client_id:$client_secret" -d grant_type=client_credentials \
	-d resource="http://$pol_addr/mcp/echo" "http://$pol_addr/oauth/token" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

kb_args=$(python3 -c 'import json; t="Invoice INV-2026-0042 for ACME Corp is open; amount 1250.00 EUR, due in 30 days. "; print(json.dumps({"message": (t*20)[:1024]}))')
results="$tmp/results.tsv"
: >"$results"
run() { # target concurrency
	local target=$1 c=$2 url pid
	case $target in
	direct) url="http://$echo_addr/" pid=$echo_pid ;;
	gateway) url="http://$gw_addr/mcp/echo" pid=$gw_pid ;;
	proxy) url="http://$rp_addr/" pid=$rp_pid ;;
	auth) url="http://$auth_addr/mcp/echo" pid=$auth_pid ;;
	policy) url="http://$pol_addr/mcp/echo" pid=$pol_pid ;;
	audit) url="http://$aud_addr/mcp/echo" pid=$aud_pid ;;
	gw1k) url="http://$gw_addr/mcp/echo" pid=$gw_pid ;;
	inspect) url="http://$insp_addr/mcp/echo" pid=$insp_pid ;;
	esac
	# The inspection series send a 1 KB message (echoed back: 1 KB of
	# arguments and 1 KB of result to scan).
	local args=()
	case $target in gw1k | inspect) args=(--args "$kb_args") ;; esac
	local hdr=()
	[ "$target" = auth ] && hdr=(--header "Authorization: Bearer $token")
	[ "$target" = policy ] && hdr=(--header "Authorization: Bearer $ptoken")
	[ "$target" = audit ] && hdr=(--header "Authorization: Bearer $atoken")
	"$gh" bench --url "$url" -c "$c" -d "$duration" --warmup 1s --pid "$pid" --json "${hdr[@]}" "${args[@]}" 2>/dev/null >"$tmp/one.json"
	python3 - "$target" "$c" "$tmp/one.json" >>"$results" <<'PY'
import json, sys
t, c, f = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(f))
print("\t".join(str(x) for x in [t, c, d["rps"], d["p50_ms"], d["p90_ms"], d["p99_ms"], d.get("cpu_us_per_call", -1), d["errors"]]))
PY
	tail -1 "$results" | awk -F'\t' '{printf "%-7s c=%-3s rps=%8.1f p50=%7.3fms p90=%7.3fms p99=%7.3fms cpu/call=%7.1fus errors=%s\n", $1,$2,$3,$4,$5,$6,$7,$8}'
}
for r in $(seq "$rounds"); do
	echo "--- round $r"
	for c in 1 16; do
		for t in ${TARGETS:-direct gateway auth policy audit gw1k inspect proxy}; do
			run "$t" "$c"
		done
	done
done

echo
echo "=== medians over $rounds rounds of $duration (machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def med(t, c, i):
    v = [float(r[i]) for r in rows if r[0] == t and r[1] == c]
    return statistics.median(v) if v else float("nan")
print("| concurrency | path | requests/s | p50 ms | p90 ms | p99 ms | CPU µs/call | errors |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for c in ("1", "16"):
    for t in ("direct", "gateway", "auth", "policy", "audit", "gw1k", "inspect", "proxy"):
        if not any(r[0] == t for r in rows):
            continue
        errs = sum(int(r[7]) for r in rows if r[0] == t and r[1] == c)
        print(f"| {c} | {t} | {med(t,c,2):.0f} | {med(t,c,3):.3f} | {med(t,c,4):.3f} | {med(t,c,5):.3f} | {med(t,c,6):.1f} | {errs} |")
for c in ("1", "16"):
    print(f"concurrency {c}: authentication adds {med('auth',c,6)-med('gateway',c,6):+.1f} µs CPU per call "
          f"({med('auth',c,6):.1f} vs {med('gateway',c,6):.1f}) and p50 {med('auth',c,3)-med('gateway',c,3):+.3f} ms")
for c in ("1", "16"):
    print(f"concurrency {c}: policy adds {med('policy',c,6)-med('auth',c,6):+.1f} µs CPU per call "
          f"({med('policy',c,6):.1f} vs {med('auth',c,6):.1f}) and p50 {med('policy',c,3)-med('auth',c,3):+.3f} ms")
for c in ("1", "16"):
    print(f"concurrency {c}: audit adds {med('audit',c,6)-med('auth',c,6):+.1f} µs CPU per call "
          f"({med('audit',c,6):.1f} vs {med('auth',c,6):.1f}) and p50 {med('audit',c,3)-med('auth',c,3):+.3f} ms")
for c in ("1", "16"):
    print(f"concurrency {c}: inspection adds {med('inspect',c,6)-med('gw1k',c,6):+.1f} µs CPU per 1 KB call "
          f"({med('inspect',c,6):.1f} vs {med('gw1k',c,6):.1f}) and p50 {med('inspect',c,3)-med('gw1k',c,3):+.3f} ms")
for c in ("1", "16"):
    print(f"concurrency {c}: gateway adds p50 {med('gateway',c,3)-med('direct',c,3):+.3f} ms; "
          f"gateway CPU per call {med('gateway',c,6):.1f} µs = {med('gateway',c,6)/med('proxy',c,6):.2f}x a plain reverse proxy's "
          f"({med('proxy',c,6):.1f} µs), {med('gateway',c,6)/med('direct',c,6):.2f}x the upstream's own")
PY
