#!/usr/bin/env bash
# The official MCP conformance suites against the gateway, compared with the
# same suites against the conformance fixture alone, measured in the same run.
#
# Fixture: the go-sdk's conformance/everything-server (go.mod pins the module).
# Suites:  @modelcontextprotocol/conformance 0.1.16 (`server --suite all`) and
#          0.2.0-alpha.12 as conformance-next (`server --requirements REV`),
#          pinned by test/interop/package-lock.json, run on Node 22.
#
# Baselines (fixture alone, over HTTP):
#   fixture-stateful-v1-all        stateful fixture, 0.1.16 --suite all
#   fixture-stateful-2025-11-25    stateful fixture, alpha.12 --requirements 2025-11-25
#   fixture-stateless-2026-07-28   stateless fixture, alpha.12 --requirements 2026-07-28
# Gateway runs (gatehouse serve with the fixture as its only upstream, names
# unchanged, suites pointed at /mcp/everything), each against one baseline:
#   fixture as stdio upstream, stateful HTTP upstream, stateless HTTP upstream.
#
# A gateway run passes when passed >= baseline passed, failed <= baseline
# failed, and every scenario the baseline passes fully (✓, 0 failed) passes
# fully through the gateway too. A baseline must also meet the floors in
# conformance-baseline.txt. Exit status is non-zero when anything fails.
#
# Usage: test/interop/run-conformance.sh   (from anywhere; KEEP_TMP=1 keeps
# the temp dir with all outputs and logs; SUITE_TIMEOUT overrides 300 s).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

SUITE_TIMEOUT="${SUITE_TIMEOUT:-300}"
lib_tmpdir
TMP="$LIB_TMP"
BIN="$TMP/bin"
OUT="$TMP/out"
LOGS="$TMP/logs"
WORK="$TMP/work"   # cwd of the suites, in case they write files
mkdir -p "$BIN" "$OUT" "$LOGS" "$WORK"

lib_npm_ci
lib_use_node22
CONF_V1="$INTEROP_DIR/node_modules/.bin/conformance"
CONF_NEXT="$INTEROP_DIR/node_modules/conformance-next/dist/index.js"
[[ -x "$CONF_V1" ]] || lib_die "$CONF_V1 missing: npm ci in test/interop"
[[ -f "$CONF_NEXT" ]] || lib_die "$CONF_NEXT missing: npm ci in test/interop"

hr() { printf '%s\n' "================================================================================"; }

hr
echo "conformance: building gatehouse and the go-sdk conformance fixture"
hr
echo "node $(node --version); conformance $(node -p "require('$INTEROP_DIR/node_modules/@modelcontextprotocol/conformance/package.json').version"); conformance-next $(node -p "require('$INTEROP_DIR/node_modules/conformance-next/package.json').version")"
go build -o "$BIN/gatehouse" ./cmd/gatehouse
go build -o "$BIN/everything-server" github.com/modelcontextprotocol/go-sdk/conformance/everything-server
echo "fixture: github.com/modelcontextprotocol/go-sdk $(go list -m -f '{{.Version}}' github.com/modelcontextprotocol/go-sdk) conformance/everything-server"

# ---------------------------------------------------------------------------
# Suite invocations. suite_args SUITE -> the command line for that suite.
suite_label() {
  case "$1" in
    v1) echo "0.1.16 server --suite all" ;;
    r2025) echo "alpha.12 --requirements 2025-11-25" ;;
    r2026) echo "alpha.12 --requirements 2026-07-28" ;;
  esac
}

run_suite() { # SUITE URL OUTFILE -> suite exit status
  local suite="$1" url="$2" out="$3" rc=0
  local cmd
  case "$suite" in
    v1) cmd=("$CONF_V1" server --url "$url" --suite all) ;;
    r2025) cmd=(node "$CONF_NEXT" server --url "$url" --requirements 2025-11-25) ;;
    r2026) cmd=(node "$CONF_NEXT" server --url "$url" --requirements 2026-07-28) ;;
    *) lib_die "unknown suite $suite" ;;
  esac
  lib_run "$out" env -C "$WORK" timeout "$SUITE_TIMEOUT" "${cmd[@]}" || rc=$?
  return "$rc"
}

# parse OUTFILE -> writes OUTFILE.total ("PASSED FAILED", empty when the suite
# printed no Total line) and OUTFILE.scen ("NAME MARK PASSED FAILED" for each
# scenario line of the summary: "✓ tools-list: 1 passed, 0 failed").
parse() {
  local out="$1"
  sed -n 's/^Total: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*$/\1 \2/p' "$out" | tail -n 1 >"$out.total"
  sed -n '/^=== SUMMARY ===/,$p' "$out" |
    sed -n 's/^\(✓\|✗\) \([^ :][^:]*\): \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*$/\2 \1 \3 \4/p' >"$out.scen"
}

print_summary() { # OUTFILE
  local out="$1"
  if grep -q '^=== SUMMARY ===' "$out"; then
    sed -n '/^=== SUMMARY ===/,$p' "$out"
  else
    echo "(no summary printed; last 40 lines of the suite's output:)"
    tail -n 40 "$out"
  fi
}

# ---------------------------------------------------------------------------
# Targets. Each start_* sets URL and appends the PIDs it started to RUN_PIDS;
# the logs go to $LOGS/ID-*.log.
RUN_PIDS=()

start_fixture_http() { # ID stateful|stateless -> FIXTURE_URL
  local id="$1" mode="$2" port stateless=true
  [[ "$mode" == stateful ]] && stateless=false
  port="$(lib_free_port)"
  lib_start "fixture($id)" "$LOGS/$id-fixture.log" \
    "$BIN/everything-server" -http="127.0.0.1:$port" -stateless="$stateless"
  RUN_PIDS+=("$LIB_LAST_PID")
  lib_wait_port "$port" 30 "$LIB_LAST_PID" || return 1
  FIXTURE_URL="http://127.0.0.1:$port/"
}

start_gateway() { # ID CONFIG -> URL (env FIXTURE_BIN / FIXTURE_URL already set)
  local id="$1" config="$2" port
  port="$(lib_free_port)"
  lib_start "gatehouse($id)" "$LOGS/$id-gateway.log" \
    env FIXTURE_BIN="${FIXTURE_BIN:-}" FIXTURE_URL="${FIXTURE_URL:-}" \
    "$BIN/gatehouse" serve --config "$config" --listen "127.0.0.1:$port"
  RUN_PIDS+=("$LIB_LAST_PID")
  lib_wait_http "http://127.0.0.1:$port/healthz" 60 "$LIB_LAST_PID" || return 1
  URL="http://127.0.0.1:$port/mcp/everything"
}

start_target() { # ID TARGET
  local id="$1" target="$2"
  FIXTURE_BIN="" FIXTURE_URL="" URL=""
  case "$target" in
    fixture-stateful) start_fixture_http "$id" stateful && URL="$FIXTURE_URL" ;;
    fixture-stateless) start_fixture_http "$id" stateless && URL="$FIXTURE_URL" ;;
    gw-stdio)
      FIXTURE_BIN="$BIN/everything-server"
      start_gateway "$id" test/interop/configs/conformance-stdio.yaml ;;
    gw-http-stateful)
      start_fixture_http "$id" stateful &&
        start_gateway "$id" test/interop/configs/conformance-http.yaml ;;
    gw-http-stateless)
      start_fixture_http "$id" stateless &&
        start_gateway "$id" test/interop/configs/conformance-http.yaml ;;
    *) lib_die "unknown target $target" ;;
  esac
}

stop_run() {
  local i
  for ((i = ${#RUN_PIDS[@]} - 1; i >= 0; i--)); do lib_stop "${RUN_PIDS[i]}"; done
  RUN_PIDS=()
}

print_logs() { # ID
  local f
  for f in "$LOGS/$1"-*.log; do
    [[ -f "$f" ]] || continue
    echo "--- last 40 lines of $(basename "$f") ---"
    tail -n 40 "$f"
  done
}

# ---------------------------------------------------------------------------
# Results, for the final tables.
declare -A R_SUITE R_P R_F R_RC R_BASE R_VERDICT R_WHY
ORDER=()

# execute ID TARGET SUITE DESCRIPTION: start the target, run the suite, print
# the summary, stop the target. Leaves $OUT/ID.txt{,.total,.scen}.
execute() {
  local id="$1" target="$2" suite="$3" desc="$4" rc=0 t0
  ORDER+=("$id")
  R_SUITE[$id]="$(suite_label "$suite")"
  echo
  hr
  echo "[$id] $desc"
  echo "     suite: $(suite_label "$suite")"
  hr
  : >"$OUT/$id.txt"
  t0=$SECONDS
  if start_target "$id" "$target"; then
    echo "target: $URL"
    run_suite "$suite" "$URL" "$OUT/$id.txt" || rc=$?
  else
    echo "could not start the target" >"$OUT/$id.txt"
    rc=125
  fi
  stop_run
  parse "$OUT/$id.txt"
  print_summary "$OUT/$id.txt"
  echo "(suite exit status $rc, $((SECONDS - t0)) s)"
  if ((rc == 124)); then echo "suite timed out after ${SUITE_TIMEOUT}s"; fi
  local tp="" tf=""
  read -r tp tf <"$OUT/$id.txt.total" || true
  R_P[$id]="$tp" R_F[$id]="$tf" R_RC[$id]="$rc"
}

fail_run() { # ID REASON
  R_VERDICT[$1]=FAIL
  R_WHY[$1]+="${R_WHY[$1]:+; }$2"
}

no_total_reason() { # ID
  case "${R_RC[$1]}" in
    125) echo "target did not start" ;;
    124) echo "suite timed out after ${SUITE_TIMEOUT}s" ;;
    *) echo "no Total line (suite exit status ${R_RC[$1]})" ;;
  esac
}

# check_baseline ID: measured totals against the floors file.
check_baseline() {
  local id="$1" fp="" ff=""
  R_VERDICT[$id]=PASS
  read -r fp ff < <(awk -v id="$id" '$1 == id { print $2, $3 }' "$INTEROP_DIR/conformance-baseline.txt") || true
  R_BASE[$id]="${fp:-?}/${ff:-?}"
  if [[ -z "${R_P[$id]}" ]]; then
    fail_run "$id" "$(no_total_reason "$id")"
  elif [[ -z "${fp:-}" ]]; then
    fail_run "$id" "no floor for $id in conformance-baseline.txt"
  else
    ((${R_P[$id]} >= fp)) || fail_run "$id" "passed ${R_P[$id]} < floor $fp"
    ((${R_F[$id]} <= ff)) || fail_run "$id" "failed ${R_F[$id]} > ceiling $ff"
  fi
  echo "baseline $id: ${R_P[$id]:-?} passed, ${R_F[$id]:-?} failed (floor ${R_BASE[$id]}): ${R_VERDICT[$id]}${R_WHY[$id]:+ (${R_WHY[$id]})}"
}

# check_gateway ID BASELINE-ID: the pass rule.
check_gateway() {
  local id="$1" base="$2" name mark p f gline regress=()
  R_VERDICT[$id]=PASS
  R_BASE[$id]="${R_P[$base]:-?}/${R_F[$base]:-?}"
  if [[ -z "${R_P[$base]}" ]]; then
    fail_run "$id" "baseline $base has no result"
  elif [[ -z "${R_P[$id]}" ]]; then
    fail_run "$id" "$(no_total_reason "$id")"
  else
    ((${R_P[$id]} >= ${R_P[$base]})) || fail_run "$id" "passed ${R_P[$id]} < baseline ${R_P[$base]}"
    ((${R_F[$id]} <= ${R_F[$base]})) || fail_run "$id" "failed ${R_F[$id]} > baseline ${R_F[$base]}"
    while read -r name mark p f; do
      [[ "$mark" == "✓" && "$f" == 0 ]] || continue
      gline="$(awk -v n="$name" '$1 == n { print $2, $3, $4; exit }' "$OUT/$id.txt.scen")"
      if [[ -z "$gline" ]]; then
        regress+=("$name: missing (baseline ✓ $p passed, 0 failed)")
      else
        read -r mark p f <<<"$gline"
        if [[ "$mark" != "✓" || "$f" != 0 ]]; then
          regress+=("$name: $mark $p passed, $f failed (baseline passes fully)")
        fi
      fi
    done <"$OUT/$base.txt.scen"
    if ((${#regress[@]})); then
      fail_run "$id" "${#regress[@]} scenario(s) regressed"
      echo "scenarios the baseline passes fully but the gateway does not:"
      printf '  %s\n' "${regress[@]}"
    fi
  fi
  echo "gateway $id vs $base: ${R_P[$id]:-?}/${R_F[$id]:-?} vs ${R_BASE[$id]}: ${R_VERDICT[$id]}${R_WHY[$id]:+ (${R_WHY[$id]})}"
  if [[ "${R_VERDICT[$id]}" == FAIL ]]; then print_logs "$id"; fi
}

# ---------------------------------------------------------------------------
# 1. Baselines: the fixture alone.
BASELINES=(fixture-stateful-v1-all fixture-stateful-2025-11-25 fixture-stateless-2026-07-28)
execute fixture-stateful-v1-all fixture-stateful v1 "baseline: fixture alone (stateful, Streamable HTTP)"
check_baseline fixture-stateful-v1-all
execute fixture-stateful-2025-11-25 fixture-stateful r2025 "baseline: fixture alone (stateful, Streamable HTTP)"
check_baseline fixture-stateful-2025-11-25
execute fixture-stateless-2026-07-28 fixture-stateless r2026 "baseline: fixture alone (stateless, Streamable HTTP)"
check_baseline fixture-stateless-2026-07-28

# 2.-4. Through the gateway.
GATEWAY_RUNS=()
gw() { # ID TARGET SUITE BASELINE DESCRIPTION
  GATEWAY_RUNS+=("$1")
  execute "$1" "$2" "$3" "$5"
  check_gateway "$1" "$4"
}
gw gw-stdio-v1-all gw-stdio v1 fixture-stateful-v1-all \
  "gateway, fixture as stdio upstream"
gw gw-stdio-2025-11-25 gw-stdio r2025 fixture-stateful-2025-11-25 \
  "gateway, fixture as stdio upstream"
gw gw-http-stateful-v1-all gw-http-stateful v1 fixture-stateful-v1-all \
  "gateway, stateful fixture as Streamable HTTP upstream"
gw gw-http-stateful-2025-11-25 gw-http-stateful r2025 fixture-stateful-2025-11-25 \
  "gateway, stateful fixture as Streamable HTTP upstream"
gw gw-http-stateless-2026-07-28 gw-http-stateless r2026 fixture-stateless-2026-07-28 \
  "gateway, stateless fixture as Streamable HTTP upstream"
gw gw-stdio-2026-07-28 gw-stdio r2026 fixture-stateless-2026-07-28 \
  "gateway, fixture as stdio upstream"

# ---------------------------------------------------------------------------
echo
hr
echo "conformance summary"
hr
nfail=0
printf '%-30s %-36s %-12s %-8s %s\n' "baseline" "suite" "floor P/F" "P/F" "verdict"
for id in "${BASELINES[@]}"; do
  printf '%-30s %-36s %-12s %-8s %s\n' "$id" "${R_SUITE[$id]}" "${R_BASE[$id]}" \
    "${R_P[$id]:-?}/${R_F[$id]:-?}" "${R_VERDICT[$id]}${R_WHY[$id]:+: ${R_WHY[$id]}}"
  [[ "${R_VERDICT[$id]}" == PASS ]] || nfail=$((nfail + 1))
done
echo
printf '%-30s %-36s %-12s %-12s %s\n' "gateway run" "suite" "baseline P/F" "gateway P/F" "verdict"
for id in "${GATEWAY_RUNS[@]}"; do
  printf '%-30s %-36s %-12s %-12s %s\n' "$id" "${R_SUITE[$id]}" "${R_BASE[$id]}" \
    "${R_P[$id]:-?}/${R_F[$id]:-?}" "${R_VERDICT[$id]}${R_WHY[$id]:+: ${R_WHY[$id]}}"
  [[ "${R_VERDICT[$id]}" == PASS ]] || nfail=$((nfail + 1))
done
total=$((${#BASELINES[@]} + ${#GATEWAY_RUNS[@]}))
echo
echo "conformance: $((total - nfail)) passed, $nfail failed"
((nfail == 0))
